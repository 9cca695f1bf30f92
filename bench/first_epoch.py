"""What a new model's first epoch costs beyond a later one, and what TensorFlow/Keras options change it.

    python -m bench.first_epoch                 # every variant, 3 models each, one fresh process per variant
    python -m bench.first_epoch --tiny          # CI
    python -m bench.first_epoch --backends tensorflow jax torch   # the default variant on each Keras backend

One conv_lstm configuration of the default space (window 40, Conv1D 32x5, one LSTM of 32, batch 32,
Adam, Huber) on the default synthetic series, built and trained for 3 epochs, three times in a row
(a fresh model each time, as trials are), per variant:

- `default`: as a search trains it;
- `no_grappler`: TensorFlow's graph optimiser (grappler's meta-optimizer) off;
- `no_validation`: no validation pass (what tracing the validation step costs);
- `steps_per_execution`: 16 training steps per call of the compiled step;
- `unrolled_lstm`: the LSTM unrolled over its time steps (`unroll=True`).

Prints, per model: build and dataset seconds, each epoch's seconds and the last val_mae (equal
val_mae across variants means the same training).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

VARIANTS = ("default", "no_grappler", "no_validation", "steps_per_execution", "unrolled_lstm")
VALUES = dict(
    model="conv_lstm",
    window_size=40,
    split_time=0.77,
    batch_size=32,
    scaling="standard",
    ar_skip=0,
    seasons=0,
    season_halfwidth=2,
    filters=32,
    kernel_size=5,
    lstm_units=32,
    lstm_layers=1,
    bidirectional=False,
    dense_units=0,
    learning_rate=1e-3,
    optimizer="adam",
    loss="huber",
    momentum=0.9,
)


def measure(variant: str, models: int, overrides: list[str]) -> None:
    """In this process: build and train `models` fresh models under `variant`, one line each."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if variant == "no_grappler":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    import keras

    from search.fit.backends import prepare

    prepare(keras.backend.backend(), deterministic=False, seed=1)

    if variant == "unrolled_lstm":

        class UnrolledLSTM(keras.layers.LSTM):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, unroll=True, **kwargs)

        keras.layers.LSTM = UnrolledLSTM
    from hydra import compose, initialize_config_dir

    from bench.tiny import ROOT
    from data.windows import windowed_dataset
    from search.config import register_configs
    from search.plan.planning import Request, make_plan
    from search.tune.settings import Settings
    from search.tune.tuning import hypermodel_for

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=["+space=conv_lstm", *overrides])
    hypermodel = hypermodel_for(Settings.of(cfg), make_plan(Request.of(cfg)))

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    values = {**VALUES, "window_size": min(VALUES["window_size"], hypermodel.layout.score_start // 4)}
    layout = hypermodel.layout
    keras.utils.set_random_seed(1)
    for index in range(models):
        keras.backend.clear_session()
        started = time.perf_counter()
        model = hypermodel.model_for(values)
        if variant == "steps_per_execution":
            model.compile(loss=model.loss, optimizer=model.optimizer, metrics=["mae"], steps_per_execution=16)
        built = time.perf_counter()
        train = hypermodel.training_windows(values)
        valid = windowed_dataset(hypermodel.series, values["window_size"], 256, 0, layout.score_start, layout.test_start)
        ready = time.perf_counter()
        timer = EpochTimer()
        validation = {} if variant == "no_validation" else {"validation_data": valid}
        history = model.fit(train, epochs=3, verbose=0, callbacks=[timer], **validation).history
        val_mae = history.get("val_mae", [float("nan")])[-1]
        epochs = " ".join(f"{s:.2f}" for s in timer.seconds)
        head = f"{keras.backend.backend():<10} {variant:<20} {index}  build {built - started:.2f}  data {ready - built:.2f}"
        print(f"{head}  epochs {epochs}  val_mae {val_mae:.4f}")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (what the others call)")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--backends", nargs="*", help="run the default variant on each of these Keras backends instead")
    args = parser.parse_args()
    overrides = ["data.length=500", "data.test_size=60", "data.season_length=0"] if args.tiny else []
    if args.variant:
        measure(args.variant, args.models, overrides)
        return
    models = 1 if args.tiny else args.models
    if args.backends:
        import os

        for backend in args.backends:
            command = [sys.executable, "-m", "bench.first_epoch", "--variant", "default", "--models", str(models)]
            env = {**os.environ, "KERAS_BACKEND": backend}
            subprocess.run(command + (["--tiny"] if args.tiny else []), check=True, env=env)
        return
    for variant in VARIANTS[:2] if args.tiny else VARIANTS:
        command = [sys.executable, "-m", "bench.first_epoch", "--variant", variant, "--models", str(models)]
        subprocess.run(command + (["--tiny"] if args.tiny else []), check=True)


if __name__ == "__main__":
    main()

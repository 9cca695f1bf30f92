"""Wall time of the same Hyperband search with bare Keras Tuner and with our MLflow tracking.

    python -m bench.tracking_overhead                  # conv_lstm space, max_epochs=9, factor=3
    python -m bench.tracking_overhead --tiny           # CI

All variants use the same seed, space, data and HyperModel, so they train the same trials:

- `bare`: plain `keras_tuner.Hyperband`, no MLflow.
- `tracked`: our tuner as the search runs it: a child run per trial with params, per-epoch
  metrics, forecast plot, history and model (drawn and uploaded on the logging thread; the timer
  stops after it has drained), with `search.fit.memory`'s fixes, as the search runs it.
- `tracked_lean`: `tracked` with `tracking.log_trial_plots=false tracking.log_trial_models=false`
  (params, per-epoch metrics, history and timings only).
- `bare_memory`: `bare` with the same two memory fixes as `tracked` (`search.fit.memory`: startup
  objects frozen, each trial's traced graphs released), so `tracked / bare_memory` is the cost of
  the logging alone.

Each search runs in its own fresh Python process, so none inherits another's TensorFlow state;
rounds run the variants in turn and the best time of each is compared, since the machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = ("bare", "bare_memory", "tracked", "tracked_lean")
from bench.tiny import SMALL_DNN, TINY_SPACE  # noqa: E402

SMALL_SPACE = ["space.lstm_units.max=32", "space.lstm_layers.max=1", "space.filters.values=[16,32]"]


def build(max_epochs: int, factor: int, length: int, tiny: bool = False):
    from hydra import compose, initialize_config_dir

    from data.sources import synthetic_series
    from data.split import plan_layout
    from search.config import register_configs
    from search.plan.planning import searched_space
    from search.plan.space import candidates

    register_configs()
    conf = Path(__file__).resolve().parent.parent / "conf"
    # The tiny series is shorter than the synthetic year: no season there.
    space = [f"+space={TINY_SPACE}", *SMALL_DNN, "data.season_length=0"] if tiny else ["+space=conv_lstm", *SMALL_SPACE]
    overrides = [*space, f"tuner.max_epochs={max_epochs}", f"tuner.factor={factor}"]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    specs, _ = searched_space(cfg.space, cfg.data)
    series = synthetic_series(length=length)
    test_size = length // 10
    layout = plan_layout(len(series), test_size, candidates(specs["split_time"]), candidates(specs["window_size"]))
    return cfg, specs, series, layout


def one_search(variant: str, cfg, specs, series, layout, workdir: Path) -> tuple[float, int]:
    import contextlib

    import keras
    import keras_tuner

    from search.core.quiet import quiet_known_noise
    from search.fit.hypermodel import WindowedHyperModel
    from search.fit.memory import release_traced_graphs, startup_objects_frozen
    from search.record.tracking import Tracker
    from search.tune.tuner import make_tuner

    tracked = variant.startswith("tracked")

    quiet_known_noise()
    keras.utils.set_random_seed(cfg.seed)
    hypermodel = WindowedHyperModel(
        series, layout, specs, 1000, cfg.tuner.patience, cfg.seed, season_length=cfg.data.season_length
    )
    directory = str(workdir / variant)
    if tracked:
        tracker = Tracker(f"sqlite:///{workdir / 'mlflow.db'}", "bench-overhead")
        tracker.start_parent("overhead", {"mode": "bench"})
        full = variant == "tracked"
        cfg.tracking.log_trial_models = cfg.tracking.log_trial_plots = full
        tuner = make_tuner(cfg.tuner, cfg.tracking, cfg.seed, hypermodel, tracker, specs, Path(directory), resume=False)
    else:

        class BareHyperband(keras_tuner.Hyperband):
            def on_trial_end(self, trial):
                super().on_trial_end(trial)
                if variant == "bare_memory":
                    release_traced_graphs()

        tuner = BareHyperband(
            hypermodel,
            objective=keras_tuner.Objective("val_mae", "min"),
            max_epochs=cfg.tuner.max_epochs,
            factor=cfg.tuner.factor,
            seed=cfg.seed,
            directory=directory,
            project_name="tuner",
            overwrite=True,
        )
    frozen = startup_objects_frozen() if variant != "bare" else contextlib.nullcontext()
    start = time.perf_counter()
    with frozen:
        tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    if tracked:
        tracker.drain()
    seconds = time.perf_counter() - start
    if tracked:
        tracker.end(tracker.parent_id, "FINISHED")
    return seconds, len(tuner.oracle.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # one search, in this process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    max_epochs, factor, length, pairs = (2, 3, 400, 1) if args.tiny else (args.max_epochs, args.factor, 1461, args.pairs)
    if args.one:
        cfg, specs, series, layout = build(max_epochs, factor, length, tiny=args.tiny)
        seconds, trials = one_search(args.one, cfg, specs, series, layout, Path(args.workdir))
        print(json.dumps({"seconds": seconds, "trials": trials}))
        return
    times = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(pairs):
            for variant in VARIANTS:
                workdir = Path(tmp) / str(index)
                if args.tiny:  # CI only checks the script runs: one process, TensorFlow imported once
                    workdir.mkdir(parents=True, exist_ok=True)
                    seconds, trials = one_search(variant, *build(max_epochs, factor, length, tiny=True), workdir)
                    result = {"seconds": seconds, "trials": trials}
                else:  # each search in a fresh process, so none inherits another's caches
                    command = [sys.executable, "-m", "bench.tracking_overhead", *sys.argv[1:], "--one", variant]
                    out = subprocess.run([*command, "--workdir", str(workdir)], capture_output=True, text=True, check=True)
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                times[variant].append(result["seconds"])
                print(f"{variant:<11} trials={result['trials']} {result['seconds']:.1f}s", flush=True)
    bare, bare_memory, tracked, lean = (min(times[variant]) for variant in VARIANTS)
    print(f"bare={bare:.1f}s tracked={tracked:.1f}s ratio={tracked / bare:.3f} (bar <= 1.10)")
    print(f"bare_memory={bare_memory:.1f}s tracked/bare_memory={tracked / bare_memory:.3f} (the logging alone)")
    print(f"tracked_lean={lean:.1f}s tracked_lean/bare_memory={lean / bare_memory:.3f} (no trial plots or models)")


if __name__ == "__main__":
    main()

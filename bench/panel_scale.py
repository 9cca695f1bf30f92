"""A panel's scale: peak memory and training windows per second with many series, one epoch of one configuration.

    python -m bench.panel_scale                                  # 10,000 series x 500 points, conv_lstm's defaults
    python -m bench.panel_scale --count 1000 --length 200 --epochs 2
    python -m bench.panel_scale --windows-per-series 24          # the cap on each series' windows an epoch

Builds the panel (`data.panel.synthetic_panel`, every series `--length` points), plans it as a search would
(`make_plan` on `data=synthetic_panel`), and trains one model of the space's reference configuration (the LR range
test's) on every training window (`search.fit.panel_hypermodel.PanelHyperModel`) for `--epochs` epochs; prints the
windows, the seconds per epoch, windows per second and the process's peak resident memory (`resource.getrusage`).
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--windows-per-series", type=int, default=0)
    parser.add_argument("--space", default="conv_lstm")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from search.core.quiet import quiet_start_up

    quiet_start_up()
    from hydra import compose, initialize_config_dir

    from search.command.composed import CONF_DIR
    from search.config import register_configs
    from search.plan.planning import Request, make_plan
    from search.plan.space import reference_values
    from search.tune.settings import Settings
    from search.tune.tuning import hypermodel_for, prepare_backend

    overrides = [
        f"+space={args.space}",
        "data=synthetic_panel",
        f"data.count={args.count}",
        f"data.min_length={args.length}",
        f"data.max_length={args.length}",
        f"data.windows_per_series={args.windows_per_series}",
        "search.workers=1",
    ]
    started = time.monotonic()
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="panel_scale"):
        cfg = compose(config_name="config", overrides=overrides)
    plan = make_plan(Request.of(cfg))
    planned = time.monotonic() - started
    settings = Settings.of(cfg)
    prepare_backend(True, cfg.seed)
    hypermodel = hypermodel_for(settings, plan)
    values = reference_values(plan.specs)  # the LR range test's reference configuration
    model = hypermodel.model_for(values)
    data = hypermodel.training_windows(values)
    windows = len(data) * values["batch_size"]
    seconds = []
    for _ in range(args.epochs):
        clock = time.monotonic()
        model.fit(data, epochs=1, verbose=0, shuffle=False)
        seconds.append(time.monotonic() - clock)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"{args.count} series x {args.length} points: planned in {planned:.1f} s; {windows} windows an epoch "
        f"(input {hypermodel.input_length(values)}, batch {values['batch_size']}); epoch seconds "
        f"{', '.join(f'{s:.1f}' for s in seconds)}; {windows / min(seconds):,.0f} windows/s; peak {peak:.2f} GiB"
    )


if __name__ == "__main__":
    main()

"""How a search's cost grows with tuner.max_epochs, and what a trial costs beyond its epochs.

    python -m bench.search_cost --max-epochs 9 27 81     # the default conv_lstm search, three budgets
    python -m bench.search_cost --max-epochs 27 --set tuner.reuse_models=false   # any overrides
    python -m bench.search_cost --tiny                   # CI

Each budget runs the real command (`python -m search +space=conv_lstm tuner.max_epochs=E`) in a
fresh process against a temporary sqlite store, then reads what every trial logged to MLflow:
`trial_seconds` (on the training thread, model build to end of fit), `fit_seconds` (inside
`model.fit`) and `epoch_seconds` per epoch. Per trial's fixed cost, three views:

- fit: least squares `trial_seconds = fixed + per_epoch * epochs` over the trials;
- outside fit: `trial_seconds - fit_seconds`, measured: Keras Tuner's session clearing and
  garbage collection, model build and compile, the two tf.data pipelines, logging on the
  training thread;
- first-epoch extra: the first epoch minus the median of the later ones (trials of 2+ epochs):
  tracing the new model's train and validation `tf.function`s.

Shares are of the summed trial seconds. Hyperband's budget grows as O(max_epochs * log(max_epochs));
the table prints the epochs trained next to it.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

from bench.tiny import SMALL_DNN, TINY_SPACE, search_env, timed_search

TINY = ["data.length=500", "data.test_size=60", "data.season_length=0", "tuner.factor=2", "search.workers=1", *SMALL_DNN]


def run_search(max_epochs: int, workdir: Path, extra: list[str], space: str = "conv_lstm") -> dict:
    """One search at `max_epochs`; returns wall time, trials, epochs trained and the fixed-cost views."""
    from mlflow.tracking import MlflowClient

    run_dir = workdir / f"max_epochs_{max_epochs}"
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    args = [f"+space={space}", f"tuner.max_epochs={max_epochs}", *extra]
    args += [f"hydra.run.dir={run_dir}", f"tracking.experiment=cost-{max_epochs}"]
    args += ["search.select.top_k=1", "search.refit=false"]  # the search alone: the stages after it are bench.forecast_quality's
    summary, _, _ = timed_search(args, run_dir, search_env(uri), workdir)
    client = MlflowClient(uri)
    children = client.search_runs(
        [summary["mlflow_experiment_id"]],
        f"tags.mlflow.parentRunId = '{summary['mlflow_parent_run_id']}' and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    children = [c for c in children if "stage" not in c.data.tags]  # trials only: not the backtest/refit fits
    trial = np.array([c.data.metrics["trial_seconds"] for c in children])
    fit = np.array([c.data.metrics["fit_seconds"] for c in children])
    epochs = [[m.value for m in client.get_metric_history(c.info.run_id, "epoch_seconds")] for c in children]
    counts = np.array([len(e) for e in epochs], float)
    per_epoch, fixed = np.polyfit(counts, trial, 1)
    first_extra = float(np.median([e[0] - np.median(e[1:]) for e in epochs if len(e) > 1] or [np.nan]))
    total = trial.sum()
    return {
        "max_epochs": max_epochs,
        "wall_s": summary["wall_time_s"],
        "trials": len(children),
        "epochs_trained": int(counts.sum()),
        "budget_units": max_epochs * math.log(max_epochs, 3),
        "fixed_s_per_trial": fixed,
        "outside_fit_s_per_trial": float((trial - fit).mean()),
        "first_epoch_extra_s": first_extra,
        "s_per_epoch": per_epoch,
        "fixed_share": fixed * len(trial) / total,
        "outside_fit_share": float((trial - fit).sum() / total),
        "first_epoch_extra_share": first_extra * len(trial) / total,
        "best_val_mae": summary["best_val_mae"],
    }


COLUMNS = [  # (heading, key, format)
    ("max_epochs", "max_epochs", "d"),
    ("wall_s", "wall_s", ".0f"),
    ("trials", "trials", "d"),
    ("epochs", "epochs_trained", "d"),
    ("E*log3(E)", "budget_units", ".1f"),
    ("s/epoch", "s_per_epoch", ".2f"),
    ("fixed_s/trial", "fixed_s_per_trial", ".2f"),
    ("outside_fit_s", "outside_fit_s_per_trial", ".2f"),
    ("first_epoch_extra_s", "first_epoch_extra_s", ".2f"),
    ("fixed_share", "fixed_share", ".1%"),
    ("outside_fit_share", "outside_fit_share", ".1%"),
    ("first_epoch_share", "first_epoch_extra_share", ".1%"),
    ("best_val_mae", "best_val_mae", ".4f"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-epochs", type=int, nargs="+", default=[9, 27, 81])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every search")
    args = parser.parse_args()
    budgets, extra = ([2], TINY) if args.tiny else (args.max_epochs, [])
    extra = [*extra, *args.set]
    print("  ".join(heading for heading, _, _ in COLUMNS), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for max_epochs in budgets:
            r = run_search(max_epochs, Path(tmp), extra, TINY_SPACE if args.tiny else "conv_lstm")
            cells = [f"{format(r[key], spec):>{len(heading)}}" for heading, key, spec in COLUMNS]
            print("  ".join(cells), flush=True)
    print("bar: fixed_share <= 10% (fixed = outside fit + first-epoch extra, roughly)")


if __name__ == "__main__":
    main()

"""How a search's cost grows with tuner.max_epochs, and what a trial costs before its first epoch.

    python -m bench.search_cost --max-epochs 9 27 81     # the default conv_lstm search, three budgets
    python -m bench.search_cost --tiny                   # CI

Each budget runs the real command (`python -m search +space=conv_lstm tuner.max_epochs=E`) in a
fresh process against a temporary sqlite store. Per trial, the seconds come from the search's
progress line and the epochs actually trained (early stopping included) from the trial's MLflow
history; a least-squares fit `seconds = fixed + per_epoch * epochs` over the trials gives the fixed
cost of a trial (model and dataset build, tf.function tracing, logging), reported as a share of
all trial time. Hyperband's budget grows as O(max_epochs * log(max_epochs)); the table prints
the epochs trained next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TRIAL_LINE = re.compile(r"^trial (\d+) .* ([\d.]+)s$")
TINY = [
    "data.length=500",
    "data.test_size=60",
    "data.season_length=0",
    "tuner.factor=2",
    "space.window_size.max=20",
    "space.filters.values=[4]",
    "space.lstm_units.max=16",
    "space.lstm_layers.max=1",
    "space.batch_size.values=[64]",
]


def run_search(max_epochs: int, workdir: Path, extra: list[str]) -> dict:
    """One search at `max_epochs`; returns wall time, trials, epochs trained and the fixed-cost fit."""
    from mlflow.tracking import MlflowClient

    run_dir = workdir / f"max_epochs_{max_epochs}"
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    command = [sys.executable, "-m", "search", "+space=conv_lstm", f"tuner.max_epochs={max_epochs}", *extra]
    command += [f"hydra.run.dir={run_dir}", f"tracking.experiment=cost-{max_epochs}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    out = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, check=True).stdout
    seconds = {m.group(1): float(m.group(2)) for m in map(TRIAL_LINE.match, out.splitlines()) if m}
    summary = json.loads((run_dir / "summary.json").read_text())
    client = MlflowClient(uri)
    children = client.search_runs(
        [summary["mlflow_experiment_id"]], f"tags.mlflow.parentRunId = '{summary['mlflow_parent_run_id']}'", max_results=1000
    )
    epochs = {c.data.tags["trial_id"]: len(client.get_metric_history(c.info.run_id, "val_mae")) for c in children}
    trials = sorted(set(seconds) & set(epochs))
    x = np.array([epochs[t] for t in trials], float)
    y = np.array([seconds[t] for t in trials])
    per_epoch, fixed = np.polyfit(x, y, 1)
    return {
        "max_epochs": max_epochs,
        "wall_s": summary["wall_time_s"],
        "trials": len(trials),
        "epochs_trained": int(x.sum()),
        "budget_units": max_epochs * math.log(max_epochs, 3),
        "fixed_s_per_trial": fixed,
        "s_per_epoch": per_epoch,
        "fixed_share": fixed * len(trials) / y.sum(),
        "best_val_mae": summary["best_val_mae"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-epochs", type=int, nargs="+", default=[9, 27, 81])
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    budgets, extra = ([2], TINY) if args.tiny else (args.max_epochs, [])
    print("max_epochs  wall_s  trials  epochs  E*log3(E)  fixed_s/trial  s/epoch  fixed_share  best_val_mae")
    with tempfile.TemporaryDirectory() as tmp:
        for max_epochs in budgets:
            r = run_search(max_epochs, Path(tmp), extra)
            cells = [
                f"{r['max_epochs']:>10}",
                f"{r['wall_s']:>6.0f}",
                f"{r['trials']:>6}",
                f"{r['epochs_trained']:>6}",
                f"{r['budget_units']:>9.1f}",
                f"{r['fixed_s_per_trial']:>13.2f}",
                f"{r['s_per_epoch']:>7.2f}",
                f"{r['fixed_share']:>11.1%}",
                f"{r['best_val_mae']:>12.4f}",
            ]
            print("  ".join(cells), flush=True)
    print("bar: fixed_share <= 10%")


if __name__ == "__main__":
    main()

"""The default command end to end, as a forecaster runs it: wall time, each stage, cores busy, the winner's test MAE.

    python -m bench.default_command --seeds 42                                   # this checkout's defaults
    python -m bench.default_command --checkout /tmp/old --seeds 42               # another commit's (a worktree)
    python -m bench.default_command --seeds 1 2 3 4 42 --set search.workers=1    # a setting changed
    python -m bench.default_command --tiny                                       # CI: every code path, seconds

Each run is `python -m search +space=conv_lstm seed=S [--set ...]` in a fresh process against a fresh sqlite
store, the code imported from `--checkout` (default: this one). Reported per run: wall time, summary.json's
`stage_seconds`, CPU seconds of the command and its child processes per wall second (cores busy), the winner's
validation and test MAE, and the best baseline on test. Runs go one after the other: time them back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.tiny import ROOT, SMALL_DNN, TINY_SPACE, timed_search

TINY = ["data.length=500", "data.test_size=60", "data.season_length=0", "tuner.max_epochs=2", "tuner.factor=2", *SMALL_DNN]
# CI: one process, 4 backtest fits and 2 members (the defaults' workers, 15 fits and 3 members only add seconds here).
TINY += ["search.workers=1", "search.select.top_k=2", "search.select.folds=2", "search.ensemble=2"]


def run_default(checkout: Path, seed: int, workdir: Path, extra: list[str], space: str) -> dict:
    """One whole command; returns its figures."""
    name = f"s{seed}-{time.monotonic_ns()}"
    run_dir = workdir / name
    env = {**os.environ, "PYTHONPATH": str(checkout), "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / (name + '.db')}"}
    args = [f"+space={space}", f"seed={seed}", *extra, f"hydra.run.dir={run_dir}"]
    summary, wall, cores_busy = timed_search(args, run_dir, env, checkout)
    baselines = {name: maes["test_mae"] for name, maes in summary["baselines"].items() if maes.get("test_mae") is not None}
    best = min(baselines, key=baselines.get)
    return {
        "checkout": str(checkout),
        "settings": " ".join(extra),
        "seed": seed,
        "wall_s": round(wall, 1),
        "stage_seconds": summary["stage_seconds"],
        "workers": summary.get("workers", 1),
        "cores_busy": round(cores_busy, 2),
        "trials": summary["trials"]["completed"],
        "val_mae": summary["winner_val_mae"],
        "test_mae": summary["test_mae"],
        "best_baseline": best,
        "best_baseline_test_mae": baselines[best],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| checkout | settings | seed | wall s | search / backtest / refit or ensemble s | cores busy | trials | val MAE "
        "| test MAE | best baseline (test) |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        stages = row["stage_seconds"]
        after = stages.get("ensemble", stages.get("refit", "-"))
        lines.append(
            f"| {Path(row['checkout']).name} | {row['settings'] or 'defaults'} | {row['seed']} | {row['wall_s']:.0f} "
            f"| {stages.get('search', '-')} / {stages.get('backtest', '-')} / {after} | {row['cores_busy']:.2f} "
            f"| {row['trials']} | {row['val_mae']:.4f} | {row['test_mae']:.4f} "
            f"| {row['best_baseline']} {row['best_baseline_test_mae']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the code to run (a git worktree of another commit)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--set", nargs="*", default=[], help="overrides added to the command, e.g. search.workers=1")
    parser.add_argument("--out", type=Path, help="append the rows to this JSON-lines file")
    parser.add_argument("--tiny", action="store_true", help="a tiny dense search (CI: every code path)")
    args = parser.parse_args(argv)
    extra = [*TINY, *args.set] if args.tiny else list(args.set)
    space = TINY_SPACE if args.tiny else "conv_lstm"
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for seed in args.seeds:
            row = run_default(args.checkout.resolve(), seed, Path(workdir), extra, space)
            row["settings"] = " ".join(args.set)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()

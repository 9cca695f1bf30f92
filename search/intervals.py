"""Split-conformal prediction intervals around the winner's forecasts (`search.intervals`).

The searched winner never trained on the scored validation origins, so its absolute errors there are
a calibration sample: for level `a` and `n` calibration origins, each step ahead gets the half-width
`q` = the `ceil((n + 1) a)`-th smallest absolute error of that step, and `forecast +- q` covers an
unseen value with probability at least `a` when the errors to come are exchangeable with those seen
(split conformal prediction; Vovk et al. 2005, Lei et al. 2018). Nothing is retrained.

What it assumes, in a forecaster's words (README): the test tail's errors look like the validation
origins' errors (no change of regime, no trend in the error size); the registered model, refit on
more data, errs no more than the searched one did; errors are treated as symmetric. Neighbouring
origins share most of their values, so coverage measured on a short tail wanders more than the
level's binomial spread suggests.
"""

from __future__ import annotations

import math

import numpy as np


def calibration_limit(level: float) -> int:
    """The fewest calibration origins a finite interval at `level` needs: the least `n` with `ceil((n + 1) level) <= n`
    (about `level / (1 - level)`: 4 for 0.8, 19 for 0.95), counted by the same float rule `half_widths` uses."""
    n = max(1, math.floor(level / (1.0 - level)) - 1)
    while math.ceil((n + 1) * level) > n:
        n += 1
    return n


def half_widths(actual: np.ndarray, forecast: np.ndarray, level: float) -> np.ndarray:
    """Each step's half-width at `level` from the calibration errors (rows: origins; `(n,)` for one step).

    Returns shape `(h,)`; `inf` where there are too few origins for the level (`calibration_limit`).
    """
    errors = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64))
    errors = errors.reshape(len(errors), -1)
    n = len(errors)
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return np.full(errors.shape[1], np.inf)
    return np.sort(errors, axis=0)[rank - 1]


def coverage(actual: np.ndarray, forecast: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """Share of values inside `forecast +- half_width`, per step ahead (shape `(h,)`)."""
    actual = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)
    forecast = np.asarray(forecast, dtype=np.float64).reshape(len(forecast), -1)
    return np.mean(np.abs(actual - forecast) <= half_width, axis=0)


def interval_report(levels, val_actual, val_forecast, test_actual=None, test_forecast=None) -> dict:
    """`{level: figures}` for `summary.json`, the parent run and the closing table.

    Each level's figures: `half_width` per step, `mean_width` (twice the mean half-width, in the
    series' units), `calibration_origins`, and on the test tail (when there is one) `coverage` over all
    steps and `coverage_per_step`.
    """
    report = {}
    for level in sorted(float(v) for v in levels):
        widths = half_widths(val_actual, val_forecast, level)
        figures = {
            "half_width": [float(w) for w in widths],
            "mean_width": float(2 * widths.mean()),
            "calibration_origins": int(len(val_actual)),
            "coverage": None,
        }
        if test_actual is not None and len(test_actual):
            per_step = coverage(test_actual, test_forecast, widths)
            figures["coverage"] = float(per_step.mean())
            figures["coverage_per_step"] = [float(c) for c in per_step]
        report[f"{level:g}"] = figures
    return report

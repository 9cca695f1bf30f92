"""Common-sense forecasts every model must beat, scored on the same points as the model."""

from __future__ import annotations

import numpy as np


def naive(series: np.ndarray, labels: range) -> np.ndarray:
    """Tomorrow equals today: `series[t - 1]`."""
    return series[labels.start - 1 : labels.stop - 1]


def seasonal_naive(series: np.ndarray, labels: range, season_length: int) -> np.ndarray:
    """The value one season ago: `series[t - season_length]`."""
    return series[labels.start - season_length : labels.stop - season_length]


def moving_average(series: np.ndarray, labels: range, window: int) -> np.ndarray:
    """The mean of the last `window` values, as in the course's moving-average forecast."""
    cumulative = np.concatenate([[0.0], np.cumsum(series, dtype=np.float64)])
    ends = np.arange(labels.start, labels.stop)
    return ((cumulative[ends] - cumulative[ends - window]) / window).astype(np.float32)


def baseline_maes(series: np.ndarray, labels: range, season_length: int = 0, ma_window: int = 30) -> dict[str, float]:
    """MAE of each baseline whose history fits before `labels.start`, keyed by baseline name."""
    if len(labels) == 0:
        return {}
    actual = series[labels.start : labels.stop]
    forecasts = {"naive": naive(series, labels)}
    if 0 < ma_window <= labels.start:
        forecasts["moving_average"] = moving_average(series, labels, ma_window)
    if 0 < season_length <= labels.start:
        forecasts["seasonal_naive"] = seasonal_naive(series, labels, season_length)
    return {name: float(np.mean(np.abs(actual - forecast))) for name, forecast in forecasts.items()}

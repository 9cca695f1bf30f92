"""Common-sense forecasts every model must beat, scored on the same points as the model.

Every baseline forecasts one step ahead from the values before each point, as the models do:
naive (the last value), seasonal naive (the value one season ago), moving average, drift (the last
value plus the average change so far), a least-squares autoregression on the last changes and,
when statsmodels is installed, exponential smoothing (Holt-Winters: damped additive trend, additive
season). The last two are fitted once on the pre-test points and then rolled forward one step at a
time without refitting.
"""

from __future__ import annotations

import warnings

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


def drift(series: np.ndarray, labels: range) -> np.ndarray:
    """The last value plus the average one-step change since the first point: `y[t-1] + (y[t-1] - y[0]) / (t - 1)`."""
    ends = np.arange(labels.start, labels.stop)
    last = series[ends - 1].astype(np.float64)
    slope = (last - float(series[0])) / np.maximum(ends - 1, 1)
    return (last + slope).astype(np.float32)


def exponential_smoothing(series: np.ndarray, fit_stop: int, season_length: int) -> np.ndarray | None:
    """Holt-Winters one-step forecasts of every point (`forecast[t]` for `series[t]`), fitted on `series[:fit_stop]` only.

    The fitted parameters and initial states are then run over the whole series without refitting,
    so the forecast of `y[t]` uses `y[:t]` and nothing after. Points inside `[:fit_stop]` are
    in-sample for the parameters (as validation points are for a searched network's choice).
    Returns None without statsmodels, or when the series is too short to fit.
    """
    try:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
    except ImportError:
        return None
    seasonal = season_length >= 2 and fit_stop >= 2 * season_length + 2
    spec = dict(
        trend="add", damped_trend=True, seasonal="add" if seasonal else None, seasonal_periods=season_length if seasonal else None
    )
    if fit_stop < 10:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimiser
        fitted = ExponentialSmoothing(series[:fit_stop].astype(np.float64), initialization_method="estimated", **spec).fit()
        p = fitted.params
        known = dict(initialization_method="known", initial_level=p["initial_level"], initial_trend=p["initial_trend"])
        if seasonal:
            known["initial_seasonal"] = p["initial_seasons"]
        rolled = ExponentialSmoothing(series.astype(np.float64), **spec, **known).fit(
            smoothing_level=p["smoothing_level"],
            smoothing_trend=p["smoothing_trend"],
            smoothing_seasonal=p["smoothing_seasonal"] if seasonal else None,
            damping_trend=p["damping_trend"],
            optimized=False,
        )
    forecast = np.asarray(rolled.fittedvalues, dtype=np.float64)
    return forecast.astype(np.float32) if np.all(np.isfinite(forecast)) else None


def ar_changes(series: np.ndarray, fit_stop: int, lags: int, ridge: float = 1e-2) -> np.ndarray | None:
    """One-step forecasts of every point from a least-squares autoregression on the last `lags` changes.

    `forecast[t] = y[t-1] + b + w . (y[t-lags] - y[t-lags-1], ..., y[t-1] - y[t-2])`, with `b, w` fitted
    (ridge `ridge` x the mean feature energy, for stability) on the targets in `[lags + 1, fit_stop)` only.
    A cheap, strong reference on real series: a network that loses to it is missing something in its inputs.
    NaN where a point has too little history; None when there are too few points to fit.
    """
    values = np.asarray(series, dtype=np.float64)
    changes = np.diff(values)
    targets = np.arange(lags + 1, fit_stop)
    if lags < 1 or len(targets) < 2 * lags + 2:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(changes, lags)  # windows[i] = changes[i : i + lags]
    design = np.hstack([np.ones((len(windows), 1)), windows])  # row i forecasts point i + lags + 1
    x, y = design[targets - lags - 1], changes[targets - 1]
    gram = x.T @ x
    penalty = ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    penalty[0, 0] = 0.0  # no shrinkage of the intercept
    weights = np.linalg.solve(gram + penalty, x.T @ y)
    forecast = np.full(len(values), np.nan)
    points = np.arange(lags + 1, len(values))
    forecast[points] = values[points - 1] + design[points - lags - 1] @ weights
    return forecast.astype(np.float32)


def baseline_forecasts(
    series: np.ndarray,
    labels: range,
    season_length: int = 0,
    ma_window: int = 30,
    smoothing: np.ndarray | None = None,
    autoregression: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each baseline's forecasts for `labels`, keyed by name: those whose history fits before `labels.start`.

    `smoothing` and `autoregression` are the exponential-smoothing and `ar_changes` forecasts of every
    point, if any.
    """
    if len(labels) == 0:
        return {}
    forecasts = {"naive": naive(series, labels)}
    if 0 < season_length <= labels.start:
        forecasts["seasonal_naive"] = seasonal_naive(series, labels, season_length)
    if 0 < ma_window <= labels.start:
        forecasts["moving_average"] = moving_average(series, labels, ma_window)
    if labels.start >= 2:
        forecasts["drift"] = drift(series, labels)
    if smoothing is not None:
        forecasts["ets"] = smoothing[labels.start : labels.stop]
    if autoregression is not None and np.all(np.isfinite(autoregression[labels.start : labels.stop])):
        forecasts["ar_changes"] = autoregression[labels.start : labels.stop]
    return forecasts


def baseline_maes(series: np.ndarray, labels: range, season_length: int = 0, ma_window: int = 30) -> dict[str, float]:
    """MAE of each baseline whose history fits before `labels.start`, keyed by baseline name."""
    actual = series[labels.start : labels.stop]
    forecasts = baseline_forecasts(series, labels, season_length, ma_window)
    return {name: float(np.mean(np.abs(actual - forecast))) for name, forecast in forecasts.items()}


def naive_scale(series: np.ndarray, stop: int) -> float:
    """MASE's scale: the MAE of the one-step naive forecast over `series[:stop]` (the points a forecaster had)."""
    history = np.asarray(series[:stop], dtype=np.float64)
    return float(np.mean(np.abs(np.diff(history)))) if len(history) > 1 else float("nan")

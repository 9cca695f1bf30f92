"""Common-sense forecasts every model must beat, scored on the same points as the model.

Every baseline forecasts from the values before each origin, as the models do: naive (the last
value), seasonal naive (the value one season ago), moving average, drift (the last value plus the
average change so far), a least-squares autoregression on the last changes and, when statsmodels is
installed, exponential smoothing (Holt-Winters: damped additive trend, additive season) and the Theta
method (M3's winner: simple exponential smoothing plus half the series' linear trend, on the series with
its season divided out). The last three are fitted once on the pre-test points and then rolled forward
one step at a time without refitting.

With `horizon` h > 1 each baseline forecasts the h values from each origin `t` (rows of an `(n, h)`
array): naive repeats the last value, seasonal naive repeats the last season, the moving average stays
flat, drift extends its line, the autoregression is iterated on its own forecasts, and Holt-Winters
forecasts from its state at the origin. With h = 1 every function returns the one-step `(n,)` array.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def targets(series: np.ndarray, origins: range, horizon: int = 1) -> np.ndarray:
    """What each origin is scored on: `series[t]` (`(n,)`), or `series[t : t + horizon]` (`(n, horizon)`)."""
    if horizon == 1:
        return series[origins.start : origins.stop]
    return np.lib.stride_tricks.sliding_window_view(series, horizon)[origins.start : origins.stop]


def _repeated(values: np.ndarray, horizon: int) -> np.ndarray:
    """One value per origin, held flat over the horizon."""
    return values if horizon == 1 else np.repeat(values[:, None], horizon, axis=1)


def naive(series: np.ndarray, labels: range, horizon: int = 1) -> np.ndarray:
    """Tomorrow equals today: `series[t - 1]`, for every step ahead."""
    return _repeated(series[labels.start - 1 : labels.stop - 1], horizon)


def seasonal_naive(series: np.ndarray, labels: range, season_length: int, horizon: int = 1) -> np.ndarray:
    """The value one season ago: `series[t + k - season_length * (k // season_length + 1)]` for step `k` (from 0):
    the last observed season, repeated."""
    if horizon == 1:
        return series[labels.start - season_length : labels.stop - season_length]
    steps = np.arange(horizon)
    back = steps - season_length * (steps // season_length + 1)
    return series[np.arange(labels.start, labels.stop)[:, None] + back]


def moving_average(series: np.ndarray, labels: range, window: int, horizon: int = 1) -> np.ndarray:
    """The mean of the last `window` values, as in the course's moving-average forecast (flat over the horizon)."""
    cumulative = np.concatenate([[0.0], np.cumsum(series, dtype=np.float64)])
    ends = np.arange(labels.start, labels.stop)
    return _repeated(((cumulative[ends] - cumulative[ends - window]) / window).astype(np.float32), horizon)


def drift(series: np.ndarray, labels: range, horizon: int = 1) -> np.ndarray:
    """The last value plus the average one-step change since the first point, once per step ahead:
    `y[t-1] + (k + 1) * (y[t-1] - y[0]) / (t - 1)` for step `k` (from 0)."""
    ends = np.arange(labels.start, labels.stop)
    last = series[ends - 1].astype(np.float64)
    slope = (last - float(series[0])) / np.maximum(ends - 1, 1)
    if horizon == 1:
        return (last + slope).astype(np.float32)
    return (last[:, None] + slope[:, None] * np.arange(1, horizon + 1)).astype(np.float32)


def exponential_smoothing(series: np.ndarray, fit_stop: int, season_length: int, horizon: int = 1) -> np.ndarray | None:
    """Holt-Winters forecasts from every origin (`forecast[t]` for `series[t]`, or for `series[t : t + horizon]`),
    fitted on `series[:fit_stop]` only.

    The fitted parameters and initial states are then run over the whole series without refitting,
    so the forecast from origin `t` uses `y[:t]` and nothing after. Points inside `[:fit_stop]` are
    in-sample for the parameters (as validation points are for a searched network's choice). With
    `horizon` > 1, row `t` is the forecast from the states at `t - 1` (level, damped trend, the last
    season), as statsmodels' own `forecast` from there. Returns None without statsmodels, or when the
    series is too short to fit.
    """
    fitted = fit_exponential_smoothing(series, fit_stop, season_length)
    if fitted is None:
        return None
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    p, seasonal = fitted.params, fitted.model.seasonal is not None
    spec = dict(
        trend="add", damped_trend=True, seasonal="add" if seasonal else None, seasonal_periods=season_length if seasonal else None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimiser
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
    if not np.all(np.isfinite(forecast)):
        return None
    if horizon > 1:  # NaN where an origin has no season behind it yet
        forecast = _smoothing_paths(rolled, p["damping_trend"], season_length if seasonal else 0, horizon)
    return forecast.astype(np.float32)


def fit_exponential_smoothing(series: np.ndarray, fit_stop: int, season_length: int):
    """Holt-Winters (damped additive trend; additive season when `series[:fit_stop]` holds two seasons and more) fitted
    on `series[:fit_stop]` by statsmodels: its results (`.params`, `.model.seasonal`), or None without statsmodels or
    with fewer than 10 points."""
    try:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
    except ImportError:
        return None
    if fit_stop < 10:
        return None
    seasonal = season_length >= 2 and fit_stop >= 2 * season_length + 2
    spec = dict(
        trend="add", damped_trend=True, seasonal="add" if seasonal else None, seasonal_periods=season_length if seasonal else None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimiser
        return ExponentialSmoothing(series[:fit_stop].astype(np.float64), initialization_method="estimated", **spec).fit()


@dataclass(frozen=True)
class ThetaFit:
    """The Theta method's parameters, fitted by statsmodels' `ThetaModel` (Assimakopoulos & Nikolopoulos 2000, in
    Hyndman & Billah's form): the smoothing `alpha`, the trend line's slope `b0` (its forecast adds half of it,
    theta = 2), and the seasonal index of each phase `t % season_length` (empty: no season found by statsmodels'
    test, or none given), `multiplicative` or added."""

    alpha: float
    b0: float
    seasonal: np.ndarray
    multiplicative: bool


def fit_theta(series: np.ndarray, fit_stop: int, season_length: int) -> ThetaFit | None:
    """The Theta method fitted on `series[:fit_stop]` (statsmodels' defaults: the season divided out when its 90 %
    autocorrelation test finds one, multiplicatively for a positive series), or None without statsmodels, with fewer
    than 10 points, or where it cannot fit."""
    try:
        from statsmodels.tsa.forecasting.theta import ThetaModel
    except ImportError:
        return None
    if fit_stop < 10:
        return None
    history = np.asarray(series[:fit_stop], dtype=np.float64)
    if np.ptp(history) == 0:  # statsmodels drops a constant trend column and fits a slope to nothing
        return None
    seasonal = season_length >= 2 and fit_stop >= 2 * season_length + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimiser
        try:
            model = ThetaModel(history, period=season_length if seasonal else 1, deseasonalize=seasonal)
            fitted = model.fit()
            components = fitted.forecast_components(max(season_length, 1))
        except (ValueError, np.linalg.LinAlgError):
            return None
    alpha, b0 = float(fitted.params["alpha"]), float(fitted.params["b0"])
    indices = np.zeros(0)
    if getattr(model, "_has_seasonality", model.deseasonalize):  # what its 90 % test found, not what was asked
        phases = (fit_stop + np.arange(season_length)) % season_length
        indices = np.empty(season_length)
        indices[phases] = np.asarray(components["seasonal"], dtype=np.float64)
    if not (np.isfinite(alpha) and np.isfinite(b0) and np.all(np.isfinite(indices))) or alpha <= 0:
        return None
    return ThetaFit(alpha, b0, indices, bool(len(indices)) and model.method.startswith("mul"))


def theta(series: np.ndarray, fit_stop: int, season_length: int, horizon: int = 1) -> np.ndarray | None:
    """Theta forecasts from every origin (`forecast[t]` for `series[t]`, or rows `(n, horizon)` for
    `series[t : t + horizon]`), fitted on `series[:fit_stop]` only (`fit_theta`), then run over the whole series
    without refitting: the seasonal indices of each phase divided out, the smoothed level `l[t-1]` after the
    points before `t` (started at the first point, as statsmodels starts it), the forecast
    `l[t-1] + b0 / 2 (k - 1 + 1 / alpha - (1 - alpha)^t / alpha)` at step `k`, its phase's index put back.
    None without statsmodels or where it cannot fit."""
    fitted = fit_theta(series, fit_stop, season_length)
    if fitted is None:
        return None
    from scipy.signal import lfilter

    values = np.asarray(series, dtype=np.float64)
    n, steps, a = len(values), np.arange(1, horizon + 1), fitted.alpha
    phases = np.arange(n + horizon) % season_length if len(fitted.seasonal) else None
    index = fitted.seasonal[phases] if phases is not None else np.zeros(n + horizon)
    plain = values / index[:n] if fitted.multiplicative else values - index[:n]
    levels = lfilter([a], [1.0, -(1.0 - a)], plain, zi=[(1.0 - a) * plain[0]])[0]
    before = np.concatenate([[plain[0]], levels[:-1]])  # row t: the level after the points before t
    seen = np.arange(n)[:, None]
    trend = 0.5 * fitted.b0 * (steps - 1 + 1.0 / a - (1.0 - a) ** seen / a)
    paths = before[:, None] + trend
    future = index[np.arange(n)[:, None] + steps - 1]
    paths = paths * future if fitted.multiplicative else paths + future
    if not np.all(np.isfinite(paths)):
        return None
    return (paths[:, 0] if horizon == 1 else paths).astype(np.float32)


def _smoothing_paths(rolled, damping: float, season_length: int, horizon: int) -> np.ndarray:
    """Row `t`: `level[t-1] + (phi + ... + phi^(k+1)) trend[t-1] + season[t + k - m (k // m + 1)]` for step `k`
    (from 0); row 0 has no state before it (NaN)."""
    level, trend = np.asarray(rolled.level, dtype=np.float64), np.asarray(rolled.trend, dtype=np.float64)
    steps = np.arange(horizon)
    damped = np.cumsum(damping ** (steps + 1))
    paths = np.full((len(level), horizon), np.nan)
    paths[1:] = level[:-1, None] + damped * trend[:-1, None]
    if season_length:
        season = np.asarray(rolled.season, dtype=np.float64)
        index = np.arange(1, len(level))[:, None] + steps - season_length * (steps // season_length + 1)
        paths[1:] += np.where(index >= 0, season[np.clip(index, 0, None)], np.nan)
    return paths


def ar_changes(series: np.ndarray, fit_stop: int, lags: int, ridge: float = 1e-2, horizon: int = 1) -> np.ndarray | None:
    """Forecasts from every origin by a least-squares autoregression on the last `lags` changes.

    `forecast[t] = y[t-1] + b + w . (y[t-lags] - y[t-lags-1], ..., y[t-1] - y[t-2])`, with `b, w` fitted
    (ridge `ridge` x the mean feature energy, for stability) on the targets in `[lags + 1, fit_stop)` only.
    With `horizon` > 1, row `t` iterates it: each forecast change joins the lags of the next step.
    A cheap, strong reference on real series: a network that loses to it is missing something in its inputs.
    NaN where a point has too little history; None when there are too few points to fit.
    """
    values = np.asarray(series, dtype=np.float64)
    weights = fit_ar_changes(values, fit_stop, lags, ridge)
    if weights is None:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(np.diff(values), lags)  # windows[i] = changes[i : i + lags]
    design = np.hstack([np.ones((len(windows), 1)), windows])  # row i forecasts point i + lags + 1
    forecast = np.full(len(values), np.nan)
    points = np.arange(lags + 1, len(values))
    if horizon > 1:
        return _iterated(values, design[points - lags - 1, 1:], points, weights, horizon)
    forecast[points] = values[points - 1] + design[points - lags - 1] @ weights
    return forecast.astype(np.float32)


def fit_ar_changes(series: np.ndarray, fit_stop: int, lags: int, ridge: float = 1e-2) -> np.ndarray | None:
    """`ar_changes`' coefficients `[b, w_1 .. w_lags]` (oldest change first), fitted on the targets in
    `[lags + 1, fit_stop)`; None when there are too few of them."""
    values = np.asarray(series, dtype=np.float64)
    targets = np.arange(lags + 1, fit_stop)
    if lags < 1 or len(targets) < 2 * lags + 2:
        return None
    changes = np.diff(values)
    windows = np.lib.stride_tricks.sliding_window_view(changes, lags)
    design = np.hstack([np.ones((len(windows), 1)), windows])
    x, y = design[targets - lags - 1], changes[targets - 1]
    gram = x.T @ x
    penalty = ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    penalty[0, 0] = 0.0  # no shrinkage of the intercept
    return np.linalg.solve(gram + penalty, x.T @ y)


def _iterated(values: np.ndarray, recent: np.ndarray, points: np.ndarray, weights: np.ndarray, horizon: int) -> np.ndarray:
    """`horizon` steps of the autoregression from each origin in `points`, whose last changes are the rows of `recent`."""
    paths = np.full((len(values), horizon), np.nan)
    level, recent = values[points - 1].copy(), recent.copy()
    for step in range(horizon):
        change = weights[0] + recent @ weights[1:]
        level = level + change
        paths[points, step] = level
        recent = np.hstack([recent[:, 1:], change[:, None]])
    return paths.astype(np.float32)


def baseline_forecasts(
    series: np.ndarray,
    labels: range,
    season_length: int = 0,
    ma_window: int = 30,
    smoothing: np.ndarray | None = None,
    autoregression: np.ndarray | None = None,
    horizon: int = 1,
    theta_method: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each baseline's forecasts from the origins `labels`, keyed by name: those whose history fits before `labels.start`.

    `smoothing`, `autoregression` and `theta_method` are the exponential-smoothing, `ar_changes` and Theta
    forecasts from every origin, if any (made with the same `horizon`).
    """
    if len(labels) == 0:
        return {}
    forecasts = {"naive": naive(series, labels, horizon)}
    if 0 < season_length <= labels.start:
        forecasts["seasonal_naive"] = seasonal_naive(series, labels, season_length, horizon)
    if 0 < ma_window <= labels.start:
        forecasts["moving_average"] = moving_average(series, labels, ma_window, horizon)
    if labels.start >= 2:
        forecasts["drift"] = drift(series, labels, horizon)
    if smoothing is not None and np.all(np.isfinite(smoothing[labels.start : labels.stop])):
        forecasts["ets"] = smoothing[labels.start : labels.stop]
    if autoregression is not None and np.all(np.isfinite(autoregression[labels.start : labels.stop])):
        forecasts["ar_changes"] = autoregression[labels.start : labels.stop]
    if theta_method is not None and np.all(np.isfinite(theta_method[labels.start : labels.stop])):
        forecasts["theta"] = theta_method[labels.start : labels.stop]
    return forecasts


def naive_scale(series: np.ndarray, stop: int, season_length: int = 0) -> float:
    """MASE's scale (Hyndman & Koehler 2006): the in-sample MAE of the one-step naive forecast over `series[:stop]`
    (the points a forecaster had), or of the seasonal naive forecast (`y[t - season_length]`) when the series has a
    season shorter than that history, as forecasting competitions (M4) scale it.

    On a seasonal series the naive scale is inflated by the season's swings, so a MASE below 1 against it says little;
    against seasonal naive's, MASE < 1 means better than repeating last season, in-sample.
    """
    history = np.asarray(series[:stop], dtype=np.float64)
    lag = season_length if 0 < season_length < len(history) else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag]))) if len(history) > lag else float("nan")


def scale_name(series_length: int, season_length: int) -> str:
    """Which forecast `naive_scale` used, for the table and summary.json: `seasonal naive (lag 12)` or `naive (lag 1)`."""
    return f"seasonal naive (lag {season_length})" if 0 < season_length < series_length else "naive (lag 1)"

"""The statistical forecasters as fixed linear maps from a window of recent values to the next `horizon` values.

A blend (`search.choose.blend`) mixes the searched networks with the classical forecasters of the closing table,
and the registered model must compute every member from the window it is given, as a Keras layer that loads with
`safe_mode=True`. Each forecaster here is affine in its window once its parameters are fitted: naive, seasonal
naive and the moving average trivially; drift because its slope is a fitted parameter; `ar_changes` (least squares
on the last changes, iterated over the horizon) because it is a linear recursion; Holt-Winters (damped additive
trend, additive season) because its smoothing recursion is linear in the values and in its starting state, which
is estimated from the window's first seasons (a linear function of them); the Theta method (smoothing plus half a
least-squares slope) likewise, with its season taken out additively from the window's seasons. So each becomes
`window @ kernel + bias` (`kernel`: `(length, horizon)`), found by running the forecaster on the unit windows, and a
blend of them is one `Dense` layer with fixed weights.

These are computed from the window alone: `ets` here starts its states at the window's start rather than at the
series' first point, so its scores differ a little from the closing table's `ets`, which reads the whole history
(`theta` more: the table's takes the season out as statsmodels does, multiplicatively for a positive series);
`drift` keeps the slope of the history it was fitted on (the table's drift updates it at each origin: its
forecasts move by a fraction of a percent over a validation stretch). A blend weighs each by its own out-of-sample
forecasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from data.baselines import fit_ar_changes, fit_exponential_smoothing, fit_theta

ETS_SPAN = 300
"""Values of history the windowed Holt-Winters reads (whole seasons, at least `ETS_MIN_SEASONS`): its states start
from the seasons' average shape, so more seasons start it closer to the series' own."""

ETS_MIN_SEASONS = 2

ETS_SPAN_NO_SEASON = 120
"""Values the windowed Holt-Winters reads without a season (its level and trend forget the start within it)."""


@dataclass(frozen=True)
class LinearForecaster:
    """`forecast(x) = x @ kernel + bias` for windows `x` of `length` values (oldest first): `(n, horizon)`."""

    name: str
    kernel: np.ndarray  # (length, horizon)
    bias: np.ndarray  # (horizon,)

    @property
    def length(self) -> int:
        return int(self.kernel.shape[0])

    def forecast(self, windows: np.ndarray) -> np.ndarray:
        """`(n, horizon)` forecasts from `(n, >= length)` windows: each reads its most recent `length` values."""
        recent = np.asarray(windows, dtype=np.float64)[:, windows.shape[1] - self.length :]
        return recent @ self.kernel + self.bias

    def padded(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """The kernel for windows of `length >= self.length` values (zeros on the older ones) and the bias."""
        kernel = np.zeros((length, self.kernel.shape[1]))
        kernel[length - self.length :] = self.kernel
        return kernel, self.bias


def affine_map(name: str, forecast: Callable[[np.ndarray], np.ndarray], length: int) -> LinearForecaster:
    """The `LinearForecaster` of an affine `forecast` (`(n, length)` windows to `(n, horizon)`), from the unit windows."""
    probes = np.vstack([np.zeros((1, length)), np.eye(length)])
    out = np.asarray(forecast(probes), dtype=np.float64)
    return LinearForecaster(name, out[1:] - out[0], out[0])


def naive(length: int, horizon: int) -> LinearForecaster:
    return affine_map("naive", lambda x: np.repeat(x[:, -1:], horizon, axis=1), length)


def seasonal_naive(season_length: int, horizon: int) -> LinearForecaster:
    steps = np.arange(horizon)
    back = season_length + steps - season_length * (steps // season_length + 1)  # index into the last season
    return affine_map("seasonal_naive", lambda x: x[:, back], season_length)


def moving_average(window: int, horizon: int) -> LinearForecaster:
    return affine_map("moving_average", lambda x: np.repeat(x.mean(axis=1, keepdims=True), horizon, axis=1), window)


def drift(series: np.ndarray, fit_stop: int, horizon: int) -> LinearForecaster:
    """The closing table's drift (`data.baselines.drift`) with its slope fitted on `series[:fit_stop]`: the last value
    plus the average change per step from the series' first point to `series[fit_stop - 1]`, once per step ahead."""
    slope = (float(series[fit_stop - 1]) - float(series[0])) / max(fit_stop - 1, 1)
    steps = np.arange(1, horizon + 1)
    return affine_map("drift", lambda x: x[:, -1:] + slope * steps, 1)


def ar_changes(weights: np.ndarray, horizon: int) -> LinearForecaster:
    """`ar_changes`' forecast with coefficients `weights` (`data.baselines.fit_ar_changes`), iterated over the horizon."""
    lags = len(weights) - 1

    def forecast(x: np.ndarray) -> np.ndarray:
        level, recent, out = x[:, -1].copy(), np.diff(x, axis=1), []
        for _ in range(horizon):
            change = weights[0] + recent @ weights[1:]
            level = level + change
            out.append(level)
            recent = np.hstack([recent[:, 1:], change[:, None]])
        return np.stack(out, axis=1)

    return affine_map("ar_changes", forecast, lags + 1)


def holt_winters(
    alpha: float, beta: float, gamma: float, phi: float, season_length: int, length: int, horizon: int
) -> LinearForecaster:
    """Holt-Winters with smoothing `alpha` (level), `beta` (trend), `gamma` (season) and damping `phi`, run over the
    window. Its states start from a least-squares line through the window's whole seasons (level, trend) and each
    phase's mean deviation from that line over those seasons (season, summing to zero), or, without a season, from
    the line through the first `ETS_SPAN_NO_SEASON // 4` values; then the usual recursion (statsmodels' additive
    form) runs over the whole window, and the forecast is `level + (phi + .. + phi^k) trend + season`."""
    m = season_length
    fitted_span = (length // m) * m if m else max(2, min(length, ETS_SPAN_NO_SEASON // 4))
    time = np.arange(fitted_span, dtype=np.float64)
    design = np.stack([np.ones(fitted_span), time], axis=1)
    line = np.linalg.pinv(design)  # (2, span): window -> (intercept, slope), a linear map

    def forecast(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        intercept, slope = line @ x[:, :fitted_span].T
        level, trend = intercept - slope, slope  # the line one step before the window
        season = []
        if m:
            deviations = (x[:, :fitted_span] - (intercept[:, None] + slope[:, None] * time)).reshape(n, -1, m).mean(axis=1)
            deviations -= deviations.mean(axis=1, keepdims=True)
            season = [deviations[:, j] for j in range(m)]  # s at t = -m .. -1
        for t in range(length):
            y, previous = x[:, t], season[t] if m else 0.0
            new_level = alpha * (y - previous) + (1 - alpha) * (level + phi * trend)
            if m:
                season.append(gamma * (y - level - phi * trend) + (1 - gamma) * previous)
            trend = beta * (new_level - level) + (1 - beta) * phi * trend
            level = new_level
        damped = np.cumsum(phi ** np.arange(1, horizon + 1))
        out = level[:, None] + damped * trend[:, None]
        if m:
            steps = np.arange(horizon)
            index = m + length + steps - m * (steps // m + 1)  # season[i] holds s at t = i - m
            out = out + np.stack([season[i] for i in index], axis=1)
        return out.reshape(n, horizon)

    return affine_map("ets", forecast, length)


def ets(series: np.ndarray, fit_stop: int, season_length: int, horizon: int, available: int) -> LinearForecaster | None:
    """The windowed Holt-Winters with parameters fitted (statsmodels) on `series[:fit_stop]`, reading at most
    `available` values: whole seasons up to `ETS_SPAN` values (`ETS_MIN_SEASONS` at least, else no season), or
    `ETS_SPAN_NO_SEASON` values."""
    fitted = fit_exponential_smoothing(series, fit_stop, season_length)
    if fitted is None:
        return None
    p = fitted.params
    m, length = _smoothing_window(season_length if fitted.model.seasonal is not None else 0, available)
    if length < 3:
        return None
    gamma = p["smoothing_seasonal"] if m else 0.0
    return _finite(holt_winters(p["smoothing_level"], p["smoothing_trend"], gamma, p["damping_trend"], m, length, horizon))


def _smoothing_window(season_length: int, available: int) -> tuple[int, int]:
    """The season (0: none) and the window length a smoothing forecaster reads from `available` values: whole seasons
    up to `ETS_SPAN` values, `ETS_MIN_SEASONS` at least (else no season), or `ETS_SPAN_NO_SEASON` values."""
    m = season_length if season_length and ETS_MIN_SEASONS * season_length <= available else 0
    if m:
        return m, m * min(available // m, max(ETS_MIN_SEASONS, -(-ETS_SPAN // m)))
    return 0, min(available, ETS_SPAN_NO_SEASON)


def _finite(forecaster: LinearForecaster) -> LinearForecaster | None:
    """`forecaster`, or None where its fitted parameters made its map overflow."""
    return forecaster if np.all(np.isfinite(forecaster.kernel)) and np.all(np.isfinite(forecaster.bias)) else None


def windowed_theta(alpha: float, season_length: int, length: int, horizon: int) -> LinearForecaster:
    """The Theta method run over the window with smoothing `alpha`: the season (if `season_length`) taken out as each
    phase's mean deviation from a least-squares line through the window's whole seasons (added, not divided, so the
    map stays linear), the slope `b0` of a least-squares line through the rest, simple exponential smoothing from
    the window's first value, and the forecast `level + b0 / 2 (k - 1 + 1 / alpha - (1 - alpha)^length / alpha)`
    at step `k` with its phase's deviation put back."""
    m = season_length
    time = np.arange(length, dtype=np.float64)
    line = np.linalg.pinv(np.stack([np.ones(length), time], axis=1))  # (2, length): window -> (intercept, slope)
    steps = np.arange(1, horizon + 1)

    def forecast(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        future = np.zeros((n, horizon))
        if m:
            intercept, slope = line @ x.T
            deviations = (x - (intercept[:, None] + slope[:, None] * time)).reshape(n, -1, m).mean(axis=1)
            deviations -= deviations.mean(axis=1, keepdims=True)
            x = x - np.tile(deviations, (1, length // m))
            future = deviations[:, (length + steps - 1) % m]
        b0 = (line @ x.T)[1]
        level = x[:, 0].copy()
        for t in range(length):
            level = alpha * x[:, t] + (1 - alpha) * level
        trend = 0.5 * b0[:, None] * (steps - 1 + 1 / alpha - (1 - alpha) ** length / alpha)
        return level[:, None] + trend + future

    return affine_map("theta", forecast, length)


def theta(series: np.ndarray, fit_stop: int, season_length: int, horizon: int, available: int) -> LinearForecaster | None:
    """The windowed Theta method with `alpha` fitted (statsmodels' `ThetaModel`, `data.baselines.fit_theta`) on
    `series[:fit_stop]`, reading at most `available` values: whole seasons up to `ETS_SPAN` values where statsmodels
    found a season (`ETS_MIN_SEASONS` at least, else none), or `ETS_SPAN_NO_SEASON` values."""
    fitted = fit_theta(series, fit_stop, season_length)
    if fitted is None:
        return None
    m, length = _smoothing_window(season_length if len(fitted.seasonal) else 0, available)
    if length < 3:
        return None
    return _finite(windowed_theta(fitted.alpha, m, length, horizon))


def statistical_forecasters(
    series: np.ndarray,
    fit_stop: int,
    available: int,
    horizon: int,
    season_length: int = 0,
    ma_window: int = 30,
    ar_lags: int = 0,
    with_ets: bool = True,
) -> list[LinearForecaster]:
    """Every classical forecaster that fits in `available` values of history, its parameters fitted on
    `series[:fit_stop]`: naive, drift, seasonal naive, the moving average, `ar_changes`, and with `with_ets` the two
    statsmodels fits, Holt-Winters (`ets`) and the Theta method (`theta`)."""
    found = [naive(1, horizon), drift(series, fit_stop, horizon)]
    if 0 < season_length <= available:
        found.append(seasonal_naive(season_length, horizon))
    if 1 < ma_window <= available:
        found.append(moving_average(ma_window, horizon))
    if ar_lags > 0 and ar_lags + 1 <= available:
        weights = fit_ar_changes(series, fit_stop, ar_lags)
        if weights is not None:
            found.append(ar_changes(weights, horizon))
    if with_ets:
        for fitted in (
            ets(series, fit_stop, season_length, horizon, available),
            theta(series, fit_stop, season_length, horizon, available),
        ):
            if fitted is not None:
                found.append(fitted)
    return found

"""Scale-free scores of a panel: each series' MAE over its own scale, and the classical forecasters per series.

A mean of raw MAEs over series of levels 10 and 10,000 is the MAE of the large ones. Each series' errors are
therefore divided by its MASE scale (Hyndman & Koehler 2006): the in-sample MAE of its seasonal naive forecast
(naive where the data has no season or the series holds too little history), so a score below 1 beats repeating
last season in-sample, whatever the series' level; the panel's score is the mean over series.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from data.baselines import naive_scale
from data.panel import Panel
from data.panel_windows import panel_window_view


def panel_scales(panel: Panel, stop: int, season_length: int = 0) -> np.ndarray:
    """Each series' MASE scale from its points before column `stop`: seasonal naive's in-sample MAE (lag
    `season_length`, where the series has more points than that before `stop`), else naive's; a series flat there
    (scale 0) or with under two points takes its own mean absolute value (`_level`), as the served model does."""
    first = panel.starts()
    scales = np.array(
        [
            naive_scale(panel.values[i, first[i] : stop], stop - first[i], season_length) if stop - first[i] > 1 else np.nan
            for i in range(panel.count)
        ]
    )
    usable = np.isfinite(scales) & (scales > 0)
    own = np.array([_level(panel.values[i, first[i] : stop]) for i in range(panel.count)])
    return np.where(usable, scales, own)


def _level(values: np.ndarray) -> float:
    """A flat series' stand-in scale: its mean absolute value (1 where that is 0 too): its own units, not others'."""
    level = float(np.mean(np.abs(values))) if len(values) else 0.0
    return level if level > 0 else 1.0


def per_series_mae(forecasts: np.ndarray, actual: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """Each series' MAE over its origins (`rows[k]`: the series of origin k), NaN for a series without origins."""
    errors = np.abs(np.asarray(actual, np.float64) - np.asarray(forecasts, np.float64)).reshape(len(rows), -1).mean(axis=1)
    total = np.bincount(rows, weights=errors, minlength=count)
    seen = np.bincount(rows, minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, total / np.maximum(seen, 1), np.nan)


def panel_baselines(
    panel: Panel,
    label_start: int,
    label_stop: int,
    horizon: int,
    season_length: int = 0,
    with_ets: bool = True,
    workers: int = 1,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The classical forecasts from every origin of every series whose labels lie in `[label_start, label_stop)`:
    `naive`, `seasonal_naive` (where a whole season lies before the origin), `drift` (the line from the series'
    first point to the origin), and with `with_ets` `ets` (Holt-Winters, damped additive trend and additive season)
    and `theta` (the Theta method), both fitted by statsmodels on each series' points before `label_start` (a series
    too short to fit takes seasonal naive's, or naive's, forecast), spread over `workers` processes on a large panel.
    Returns `(forecasts by name, actual, rows, origins)`, the forecasts `(m, horizon)` in `panel_window_view`'s
    origin order; an origin qualifies when its series has one point before it."""
    _, actual, rows, origins = panel_window_view(panel.values, 1, label_start, label_stop, horizon)
    values, first = panel.values, panel.starts()
    last = values[rows, origins - 1].astype(np.float64)
    steps = np.arange(1, horizon + 1)
    found = {"naive": np.repeat(last[:, None], horizon, axis=1)}
    if season_length > 0:
        lagged = origins[:, None] - season_length + (steps - 1) % season_length
        has_season = (origins - season_length) >= first[rows]
        seasonal = np.where(has_season[:, None], values[rows[:, None], np.clip(lagged, 0, None)], found["naive"])
        found["seasonal_naive"] = seasonal.astype(np.float64)
    span = np.maximum(origins - 1 - first[rows], 1)
    slope = (last - values[rows, first[rows]]) / span
    found["drift"] = last[:, None] + slope[:, None] * steps
    if with_ets:
        fallback = found.get("seasonal_naive", found["naive"])
        fitted = _fitted_per_series(panel, rows, origins, label_start, horizon, season_length, workers)
        for name in FITTED:
            out = np.array(fallback, dtype=np.float64)
            for picked, forecasts in fitted[name]:
                out[picked] = forecasts
            found[name] = out
    return found, actual.astype(np.float64), rows, origins


FITTED = ("ets", "theta")
"""The forecasters fitted series by series (statsmodels): Holt-Winters and the Theta method."""

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The environment of the fit processes: with a BLAS thread per core in each, two processes on two cores ran the M3
fits 2.4x slower than one process (55 s against 23 s); with one thread each, 1.6x faster (14 s)."""

PARALLEL_FROM = 200
"""Series from which the per-series fits are spread over processes: below it, starting them costs more than it saves."""


def _fitted_per_series(panel: Panel, rows, origins, fit_stop: int, horizon: int, season_length: int, workers: int) -> dict:
    """`{name: [(positions, forecasts)]}` for each of `FITTED`, fitted on each series' points before `fit_stop`, over
    `workers` processes (fresh interpreters: the caller may hold TensorFlow's threads) where the panel is large."""
    first = panel.starts()
    jobs = []
    for row in np.unique(rows):
        local_stop = fit_stop - first[row]
        if local_stop < 10:  # too short to fit: the fallback stays
            continue
        picked = np.flatnonzero(rows == row)
        local = origins[picked] - first[row]
        jobs.append((picked, panel.values[row, first[row] : first[row] + local.max() + 1], local_stop, local))
    arguments = [(series, stop, season_length, horizon, local) for _, series, stop, local in jobs]
    if workers > 1 and len(jobs) >= PARALLEL_FROM:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from unittest import mock  # (the standard library's way to set environment variables for a block)

        context = multiprocessing.get_context("spawn")
        with mock.patch.dict(os.environ, ONE_THREAD):  # the children's BLAS: one thread each, or they fight for the cores
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                chunks = max(1, len(jobs) // (4 * workers))
                results = list(pool.map(_fit_one, *zip(*arguments, strict=True), chunksize=chunks))
    else:
        results = [_fit_one(*job) for job in arguments]
    fitted: dict = {name: [] for name in FITTED}
    for (picked, *_), forecasts in zip(jobs, results, strict=True):
        for name, values in forecasts.items():
            if values is not None:
                fitted[name].append((picked, values))
    return fitted


def _fit_one(series: np.ndarray, local_stop: int, season_length: int, horizon: int, local: np.ndarray) -> dict:
    """One series' `FITTED` forecasts `(len(local), horizon)` from its origins `local`, fitted on `series[:local_stop]`
    (None where a fit fails): Holt-Winters by one fit and its `forecast` where the only origin is `local_stop` (a block
    one horizon long), else its fitted states run over the later origins; Theta's level run over them."""
    from data.baselines import exponential_smoothing, theta

    series = np.asarray(series, dtype=np.float64)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(local) == 1 and local[0] == local_stop:
            quick = _quick_holt_winters(series[:local_stop], season_length)
            ets = None if quick is None else np.asarray(quick.forecast(horizon), dtype=np.float64)[None]
        else:
            rolled = exponential_smoothing(series, local_stop, season_length, horizon)
            ets = None if rolled is None else np.asarray(rolled, dtype=np.float64)[local].reshape(len(local), horizon)
        rolled = theta(series, local_stop, season_length, horizon)
    out["ets"] = ets
    out["theta"] = None if rolled is None else np.asarray(rolled, dtype=np.float64)[local].reshape(len(local), horizon)
    return {name: values if values is not None and np.all(np.isfinite(values)) else None for name, values in out.items()}


def _quick_holt_winters(history: np.ndarray, season_length: int):
    """Holt-Winters as `data.baselines.fit_exponential_smoothing` specifies it, with heuristic initial states and no
    brute-force start: 6x faster per series on a 2-core machine, at a mean MASE 0.445 instead of 0.430 on 30
    `synthetic_panel` series (a panel fits one per series). None where statsmodels cannot fit it."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = season_length >= 2 and len(history) >= 2 * season_length + 10
    spec = dict(
        trend="add", damped_trend=True, seasonal="add" if seasonal else None, seasonal_periods=season_length if seasonal else None
    )
    try:
        model = ExponentialSmoothing(
            history.astype(np.float64),
            initialization_method="heuristic" if seasonal or len(history) >= 10 else "estimated",
            **spec,
        )
        return model.fit(use_brute=False)
    except (ValueError, np.linalg.LinAlgError):
        return None

"""Splits put every part where the README says; baselines score the right points."""

import numpy as np
import pytest

from data.baselines import (
    ar_changes,
    baseline_forecasts,
    drift,
    exponential_smoothing,
    moving_average,
    naive,
    naive_scale,
    scale_name,
    seasonal_naive,
)
from data.errors import UserError
from data.split import plan_layout, resolve_split_time


def test_split_time_as_index_or_fraction():
    assert resolve_split_time(1000, 1300) == 1000
    assert resolve_split_time(0.5, 1300) == 650
    with pytest.raises(UserError, match="space.split_time"):
        resolve_split_time(-3, 1300)


def test_scored_points_are_common_to_every_split_time():
    layout = plan_layout(1461, 161, [900, 1000], [20, 60])
    assert (layout.test_start, layout.score_start, layout.score_points, layout.test_size) == (1300, 1000, 300, 161)


def test_test_size_zero_is_the_course_split():
    layout = plan_layout(1461, 0, [1000], [20])
    assert (layout.score_start, layout.test_start) == (1000, 1461)


@pytest.mark.parametrize(
    "length,test_size,splits,windows,field",
    [
        (100, 200, [50], [10], "data.test_size"),
        (100, 10, [95], [10], "space.split_time"),
        (100, 10, [20], [20], "space.window_size"),
        (100, -1, [50], [10], "data.test_size"),
    ],
)
def test_impossible_layouts_name_the_field(length, test_size, splits, windows, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        plan_layout(length, test_size, splits, windows)


def test_baselines_on_a_line():
    series = np.arange(100, dtype=np.float32)
    labels = range(50, 60)
    np.testing.assert_array_equal(naive(series, labels), np.arange(49, 59))
    np.testing.assert_array_equal(seasonal_naive(series, labels, 7), np.arange(43, 53))
    np.testing.assert_allclose(moving_average(series, labels, 4), np.arange(50, 60) - 2.5)
    np.testing.assert_allclose(drift(series, labels), np.arange(50, 60))  # a line is what drift extrapolates
    forecasts = baseline_forecasts(series, labels, season_length=7, ma_window=4)
    maes = {name: float(np.mean(np.abs(series[50:60] - forecast))) for name, forecast in forecasts.items()}
    assert maes == pytest.approx({"naive": 1.0, "moving_average": 2.5, "seasonal_naive": 7.0, "drift": 0.0})
    assert naive_scale(series, 50) == pytest.approx(1.0)
    assert naive_scale(series, 50, season_length=7) == pytest.approx(7.0)  # Hyndman & Koehler's seasonal scale


def test_mase_is_scaled_by_seasonal_naive_where_the_series_has_a_season():
    period = np.tile([0.0, 10.0, 0.0, -10.0], 25)  # a pure season: naive errs by 10 a step, seasonal naive never
    trend = period + 0.5 * np.arange(100)
    assert naive_scale(trend, 80) == pytest.approx(np.mean(np.abs(np.diff(trend[:80]))))
    assert naive_scale(trend, 80, season_length=4) == pytest.approx(2.0)  # 4 steps of 0.5
    assert scale_name(80, 4) == "seasonal naive (lag 4)" and scale_name(80, 0) == "naive (lag 1)"
    assert scale_name(80, 100) == "naive (lag 1)"  # a season longer than the history cannot scale it


def test_exponential_smoothing_uses_only_the_past_and_learns_the_season():
    """Fitted on the first 300 points of trend + season, its one-step forecasts of the next 100 beat naive and
    seasonal naive; changing a later value never changes an earlier forecast."""
    t = np.arange(400, dtype=np.float32)
    series = 10 + 0.1 * t + 5 * np.sin(2 * np.pi * t / 12) + np.random.RandomState(0).normal(0, 0.3, 400).astype(np.float32)
    forecast = exponential_smoothing(series, fit_stop=300, season_length=12)
    tail = range(300, 400)
    mae = np.mean(np.abs(series[300:] - forecast[300:]))
    assert mae < 0.5 * np.mean(np.abs(series[300:] - naive(series, tail)))
    assert mae < np.mean(np.abs(series[300:] - seasonal_naive(series, tail, 12)))
    changed = series.copy()
    changed[350:] += 100.0
    np.testing.assert_allclose(exponential_smoothing(changed, 300, 12)[:351], forecast[:351], rtol=1e-6)


def test_ar_changes_learns_momentum_from_the_fit_points_only():
    """Changes that follow AR(1) with coefficient 0.8: the autoregression forecasts y[t-1] + 0.8 * (y[t-1] - y[t-2])
    closely, beating naive by far; its forecasts never look at the point they forecast or anything after."""
    rng = np.random.RandomState(0)
    changes = np.zeros(600)
    for i in range(1, 600):
        changes[i] = 0.8 * changes[i - 1] + rng.normal()
    series = (100 + np.cumsum(changes)).astype(np.float32)
    forecast = ar_changes(series, fit_stop=500, lags=3)
    ideal = series[499:599] + 0.8 * (series[499:599] - series[498:598])
    assert np.mean(np.abs(forecast[500:] - ideal)) < 0.1
    assert np.mean(np.abs(series[500:] - forecast[500:])) < 0.7 * np.mean(np.abs(series[500:] - series[499:-1]))
    changed = series.copy()
    changed[550:] += 50.0
    np.testing.assert_allclose(ar_changes(changed, 500, 3)[:551], forecast[:551], rtol=1e-6)
    assert np.isnan(forecast[:4]).all() and ar_changes(series[:10], 10, 3) is None

"""The seasonal profile behind `scaling=profile` (models/profile.py): smoothed only where its seasons are too few,
keeping the season's breaks, and matched over a whole season."""

import numpy as np
import pandas as pd
import pytest

from data.sources import synthetic_series
from models.framing import PROFILE_MATCH_LIMIT, input_length
from models.profile import edge_preserving, profile_forecast, profile_path, seasonal_profile, smoothing_halfwidth


def test_edge_preserving_smoothing_keeps_a_step_that_a_moving_average_smears():
    """A noisy level that jumps by 36 in one step, as the synthetic season does when it restarts: Kuwahara's filter
    removes most of the noise on both sides and leaves the jump where it was, in one step."""
    level = np.where(np.arange(100) < 60, 0.0, 36.0)
    noisy = level + np.random.default_rng(0).normal(0, 3, 100)
    smooth = edge_preserving(noisy, 7)
    assert np.mean(np.abs(smooth - level)) < 0.5 * np.mean(np.abs(noisy - level))
    assert smooth[60] - smooth[59] > 30  # the step, still one step
    assert np.all(np.abs(smooth[[57, 58, 61, 62]] - level[[57, 58, 61, 62]]) < 4)  # its neighbours not dragged along


def test_the_profile_is_smoothed_where_seasons_are_few_and_kept_where_they_are_many():
    """Cross-validation across seasons picks no smoothing on 49 years of monthly El Nino and 31 of weekly CO2 (each
    phase's average is sharp), and a week or so on the synthetic series' 3.6 noisy seasons of 365 days, where the
    smoothed profile, its phase known, forecasts the test tail better than the raw one and than naive."""
    elnino = pd.read_csv("data/series/elnino_monthly.csv")["sst"].to_numpy()
    co2 = pd.read_csv("data/series/co2_weekly.csv")["co2"].interpolate().to_numpy()
    assert smoothing_halfwidth(elnino[:586], 12) == 0
    assert smoothing_halfwidth(co2[: int(len(co2) * 0.7)], 52) == 0

    series = synthetic_series().astype(np.float64)
    assert 3 <= smoothing_halfwidth(series[:1300], 365) <= 10
    test = np.arange(1300, 1461)

    def mae(profile):
        return np.mean(np.abs(series[test - 1] + profile_path(profile, test, 1).ravel() - series[test]))

    raw = np.array([np.diff(series[:1300])[np.arange(1, 1300) % 365 == j].mean() for j in range(365)])
    smoothed, _ = seasonal_profile(series[:1300], 365)
    naive = np.mean(np.abs(series[test - 1] - series[test]))
    assert mae(smoothed) < mae(raw) and mae(smoothed) < naive


def test_the_phase_is_matched_over_a_whole_season():
    """`profile` reads a season of changes (plus one point) to match its phase, however short the window, up to
    `PROFILE_MATCH_LIMIT`; on the synthetic series that is what finds the phase: windows of 61 points match it no
    better than naive, a season's 366 as well as knowing the calendar."""
    assert input_length(30, season_length=365, scaling="profile") == 366
    assert input_length(20, season_length=12, scaling="profile", ar_skip=24) == 24  # a monthly season: the window or skip
    assert input_length(30, season_length=100_000, scaling="profile") == PROFILE_MATCH_LIMIT

    series = synthetic_series().astype(np.float64)
    test = np.arange(1300, 1461)
    profile, spread = seasonal_profile(series[:1300], 365)

    def matched(width):
        windows = np.stack([series[t - width : t] for t in test])
        return np.mean(np.abs(profile_forecast(windows, profile, spread).ravel() - series[test]))

    known = np.mean(np.abs(series[test - 1] + profile_path(profile, test, 1).ravel() - series[test]))
    naive = np.mean(np.abs(series[test - 1] - series[test]))
    assert matched(61) > 0.98 * naive
    assert matched(366) == pytest.approx(known, abs=1e-6)


def test_a_moving_average_that_follows_the_season_beats_the_plain_one_on_the_synthetic_tail():
    """What a `profile` model's linear skip can learn on the synthetic series: the mean of the last 30 deseasonalised
    values plus the profile's path. It follows the season's turns and its restart as the plain 30-point moving
    average (the best baseline on this tail, 4.134) cannot, and smooths the noise as naive cannot."""
    series = synthetic_series().astype(np.float64)
    test = np.arange(1300, 1461)
    profile, spread = seasonal_profile(series[:1300], 365)
    windows = np.stack([series[t - 366 : t] for t in test])
    moving_average = np.mean(np.abs(windows[:, -30:].mean(axis=1) - series[test]))
    followed = np.mean(np.abs(profile_forecast(windows, profile, spread, level_width=30).ravel() - series[test]))
    assert moving_average == pytest.approx(4.1344, abs=1e-3)
    assert followed < 0.95 * moving_average
    np.testing.assert_array_equal(
        profile_forecast(windows, profile, spread, level_width=1), profile_forecast(windows, profile, spread)
    )

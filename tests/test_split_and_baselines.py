"""Splits put every part where the README says; baselines score the right points."""

import numpy as np
import pytest

from data.baselines import baseline_maes, moving_average, naive, seasonal_naive
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
    maes = baseline_maes(series, labels, season_length=7, ma_window=4)
    assert maes == pytest.approx({"naive": 1.0, "moving_average": 2.5, "seasonal_naive": 7.0})

"""Index ranges of one series: train `[:split_time]`, validation after it, and a held-out test tail.

`split_time` is tunable, so the validation points differ between candidates. Trials are therefore
scored on the validation points common to every candidate: from the largest candidate split time
to the start of the test tail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from data.errors import UserError


def resolve_split_time(value: float, search_length: int) -> int:
    """An absolute split index from a space value: an int index, or a fraction in (0, 1) of the part before the test tail."""
    if isinstance(value, bool):
        raise UserError(f"space.split_time={value!r} must be an index (int >= 1) or a fraction in (0, 1)")
    if isinstance(value, float) and 0 < value < 1:
        return int(round(value * search_length))
    if float(value).is_integer() and value >= 1:
        return int(value)
    raise UserError(f"space.split_time={value!r} must be an index (int >= 1) or a fraction in (0, 1)")


@dataclass(frozen=True)
class Layout:
    """Where each part of the series lies, all as label indices into one array of `length` points.

    Attributes:
        length: number of points in the series.
        test_start: first point of the held-out test tail (`length - test_size`).
        score_start: first validation point every trial is scored on.
        horizon: values each forecast reaches ahead (`data.horizon`): an origin `t` is scored on
            `y[t : t + horizon]`, so a split's origins are those whose `horizon` labels all lie in it.
    """

    length: int
    test_start: int
    score_start: int
    horizon: int = 1

    @property
    def test_size(self) -> int:
        return self.length - self.test_start

    @property
    def score_points(self) -> int:
        return self.test_start - self.score_start

    @property
    def val_origins(self) -> range:
        """Forecast origins scored on validation: every `t` whose `horizon` labels lie in `[score_start, test_start)`."""
        return origins(self.score_start, self.test_start, self.horizon)

    @property
    def test_origins(self) -> range:
        """Forecast origins scored on the test tail: every `t` whose `horizon` labels lie in the tail."""
        return origins(self.test_start, self.length, self.horizon)


def origins(start: int, stop: int, horizon: int = 1) -> range:
    """Every origin `t` in `[start, stop)` whose `horizon` labels `t .. t + horizon - 1` lie before `stop`."""
    return range(start, max(start, stop - horizon + 1))


def plan_layout(
    length: int,
    test_size: int,
    split_times: Iterable[float],
    window_sizes: Iterable[int],
    longest_input: int | None = None,
    horizon: int = 1,
    longest_input_field: str = "space.seasons",
) -> Layout:
    """Check that every candidate split and window fits the series, and return the layout.

    `longest_input` is the longest raw input a candidate reads, when seasonal context makes it longer
    than its window, and `longest_input_field` the setting that makes it so (named first in the message, with what
    to change); `horizon` the values each forecast reaches ahead. Raises `UserError` naming the field to
    change when the series is too short for the space.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise UserError(f"data.horizon={horizon!r} must be an integer >= 1 (values forecast from each origin)")
    if test_size < 0:
        raise UserError(f"data.test_size={test_size} must be >= 0")
    if 0 < test_size < horizon:
        raise UserError(
            f"data.test_size={test_size} is shorter than data.horizon={horizon}: no test origin has all its labels in the "
            "tail; raise data.test_size (or 0 for none) or lower data.horizon"
        )
    test_start = length - test_size
    if test_start <= 0:
        raise UserError(f"data.test_size={test_size} leaves no points to search on (series has {length}); lower data.test_size")
    splits = sorted(resolve_split_time(v, test_start) for v in split_times)
    windows = list(window_sizes)
    max_window = max(windows)
    if min(windows) < 1:
        raise UserError(f"space.window_size must be >= 1 (got {min(windows)})")
    if splits[-1] >= test_start:
        raise UserError(
            f"space.split_time={splits[-1]} is past the searchable part of the series ({test_start} points before the "
            f"test tail of data.test_size={test_size}); lower space.split_time or data.test_size"
        )
    if max_window + horizon >= splits[0]:
        raise UserError(
            f"space.window_size={max_window} leaves too few training windows before space.split_time={splits[0]}"
            + (f" with data.horizon={horizon}" if horizon > 1 else "")
            + "; lower window_size or raise split_time"
        )
    if test_start - splits[-1] < horizon:
        raise UserError(
            f"data.horizon={horizon} is longer than the {test_start - splits[-1]} validation points after "
            f"space.split_time={splits[-1]}: lower data.horizon or space.split_time"
        )
    if longest_input is not None and longest_input + horizon >= splits[0]:
        raise UserError(
            f"{longest_input_field}: a trial's input reaches {longest_input} points back, which leaves too few training windows "
            f"before space.split_time={splits[0]}; lower {longest_input_field.split('=')[0]}, or raise space.split_time"
        )
    return Layout(length=length, test_start=test_start, score_start=splits[-1], horizon=horizon)

"""The seasonal profile behind `scaling=profile`, in NumPy: estimated from a training stretch, smoothed where its
seasons are too few for each phase's average to be more than noise, and the fixed weights the model's profile
layers carry (`models.framing` builds them into Keras layers).

The profile is the average one-step change into each phase of the season. With many seasons (monthly El Niño, 60
years) each phase's average is sharp. With a few seasons of a long, noisy one (the synthetic series: 2.5 seasons
of 365 noisy days before validation) it is mostly noise, and its path forecasts worse than naive. The level it
adds up to is smoothed across neighbouring phases then, by an edge-preserving filter (Kuwahara's: each phase takes
the mean of whichever side, left or right, varies less), because a season's shape may break in one step (the
synthetic season restarts with a jump of ~36) and a plain moving average would smear the break over its
neighbours. How far to smooth is chosen by two-fold cross-validation across seasons: the profile of the even
seasons, smoothed, against the raw profile of the odd ones, and the other way round; 0 (no smoothing) is one of
the candidates, and is what monthly El Niño and weekly CO2 get.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SMOOTHING_HALFWIDTHS = (0, 1, 2, 3, 5, 7, 10, 15, 20, 30)
"""Candidate half-widths of the profile's smoothing, in phases; those above `season_length // 8` are not tried."""


def seasonal_profile(train, season_length: int) -> tuple[tuple[float, ...], float]:
    """`(profile, profile_std)` of a training stretch: the mean one-step change into each phase `j` of the season
    (the points at index `j` modulo `season_length`), smoothed by `smoothing_halfwidth`'s choice, and the std of the
    changes net of it. Needs at least one change at every phase (`season_length + 1` points)."""
    values = np.asarray(train, dtype=np.float64)
    if season_length < 2 or len(values) <= season_length:
        raise ValueError(f"a seasonal profile needs more than {season_length} points, got {len(values)}")
    changes, phases, _ = _changes(values, season_length)
    profile = smoothed(_phase_means(changes, phases, season_length), smoothing_halfwidth(values, season_length))
    return tuple(float(v) for v in profile), float((changes - profile[phases]).std()) or 1.0


def smoothing_halfwidth(train, season_length: int) -> int:
    """The half-width (in phases) of the profile's edge-preserving smoothing that best predicts one half of the
    seasons' profile from the other: two folds, the even and the odd seasons of `train`, each fold's profile
    smoothed and compared with the other's raw profile (squared error of the centred levels). 0 where a fold
    lacks a phase (fewer than about two seasons)."""
    changes, phases, seasons = _changes(np.asarray(train, dtype=np.float64), season_length)
    folds = [seasons % 2 == 0, seasons % 2 == 1]
    means = [_phase_means(changes[fold], phases[fold], season_length) for fold in folds]
    if any(np.isnan(m).any() for m in means):
        return 0
    raw_levels = [_level(m) for m in means]
    errors = {}
    for halfwidth in (h for h in SMOOTHING_HALFWIDTHS if h <= season_length // 8):
        errors[halfwidth] = sum(np.mean((_level(smoothed(means[fit], halfwidth)) - raw_levels[1 - fit]) ** 2) for fit in (0, 1))
    return min(errors, key=errors.get)


def smoothed(profile, halfwidth: int) -> np.ndarray:
    """`profile` (changes into each phase) with the level they add up to smoothed by `edge_preserving` over
    `halfwidth` phases each side, as changes again (the same mean change: a season still adds the same trend)."""
    profile = np.asarray(profile, dtype=np.float64)
    if halfwidth == 0:
        return profile
    level = edge_preserving(_level(profile), halfwidth)
    return np.diff(level, prepend=level[-1]) + profile.mean()


def edge_preserving(level, halfwidth: int) -> np.ndarray:
    """Kuwahara's filter on a circular sequence: each value becomes the mean of the side (its `halfwidth` values
    before it or after it, itself included) whose values vary less, so a step stays a step."""
    level = np.asarray(level, dtype=np.float64)
    size = len(level)
    sides = sliding_window_view(np.concatenate([level[-halfwidth:], level, level[:halfwidth]]), halfwidth + 1)
    before, after = sides[:size], sides[halfwidth : halfwidth + size]
    return np.where(before.var(axis=1) <= after.var(axis=1), before.mean(axis=1), after.mean(axis=1))


def profile_forecast(windows, profile, profile_std: float, horizon: int = 1, level_width: int = 1):
    """NumPy reference of what a `profile` model with a zero network forecasts from raw `windows` `(n, length)`:
    the last value plus the expected profile path, the phase weighted by its likelihood. Shape `(n, horizon)`.

    `level_width > 1` starts from the mean of the last `level_width` deseasonalised values instead of the last value:
    what the model's linear skip can learn on a noisy series (a moving average that follows the season)."""
    windows = np.asarray(windows, dtype=np.float64)
    profile = np.asarray(profile, dtype=np.float64)
    matcher, bias, path, offsets = profile_matrices(profile, profile_std, windows.shape[1], horizon)
    logits = np.diff(windows, axis=1) @ matcher + bias
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    level = (windows - (weights @ offsets))[:, -level_width:].mean(axis=1, keepdims=True)
    return level + weights @ path


def profile_path(profile, phases, horizon: int):
    """The profile's change from the last value to each step ahead, `sum profile[p .. p + k]` for step `k` (from 0),
    for forecasts whose first step has phase `p` (index modulo the season): shape `(len(phases), horizon)`."""
    profile = np.asarray(profile, dtype=np.float64)
    steps = np.asarray(phases)[:, None] + np.arange(horizon)[None, :]
    return np.cumsum(profile[steps % len(profile)], axis=1)


def profile_matrices(profile, profile_std: float, length: int, horizon: int):
    """The fixed weights of `profile` scaling, for raw inputs of `length` points, `p` the phase of the first point
    forecast (index `t` modulo the season):

    - `matcher` `(length - 1, season)` and `bias` `(season,)`: the log-likelihood of the window's changes under
      each phase (Gaussian, std `profile_std`), up to a constant: change `i` is into point `t - length + 1 + i`;
    - `path` `(season, horizon)`: the profile's change from the last value to step `k`, `sum profile[p .. p + k]`;
    - `offsets` `(season, length)`: each input point's seasonal offset from the last value,
      `-sum profile[phase of the points after it]`.
    """
    season = len(profile)
    phases = np.arange(season)
    variance = profile_std**2
    expected = profile[(phases[None, :] - (length - 1) + np.arange(length - 1)[:, None]) % season]  # (length - 1, season)
    matcher = expected / variance
    bias = -0.5 * (expected**2).sum(axis=0) / variance
    path = profile_path(profile, phases, horizon)
    after = profile[(phases[:, None] - length + np.arange(length)[None, :]) % season]  # change into each input point
    offsets = -np.cumsum(after[:, ::-1], axis=1)[:, ::-1] + after  # minus the changes into the points after it
    return matcher, bias, path, offsets


def _changes(values: np.ndarray, season_length: int):
    """`(changes, phases, seasons)`: each one-step change, the phase of the point it leads into, and that point's
    season (index // season_length)."""
    points = np.arange(1, len(values))
    return np.diff(values), points % season_length, points // season_length


def _phase_means(changes, phases, season_length: int) -> np.ndarray:
    """The mean change into each phase (NaN where a phase has none)."""
    counts = np.bincount(phases, minlength=season_length)
    sums = np.bincount(phases, weights=changes, minlength=season_length)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _level(profile) -> np.ndarray:
    """The level a profile's changes add up to over one season, net of their mean (so it closes into a circle),
    centred."""
    level = np.cumsum(profile - np.mean(profile))
    return level - level.mean()

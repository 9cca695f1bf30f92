"""Windows drawn from every series of a panel at once: one dataset, no per-series loop in the training path.

A panel (`data.panel.Panel`) is one `(N, length)` array, right-aligned; flattened row after row, a window of series
i starting at column c begins at flat index `i * length + c`. The training dataset is then the single-series
pipeline (`data.windows.windowed_dataset`) over the flattened array, fed the flat start indices of every window that
lies inside one series (no NaN before its first point) with all its labels in the wanted columns.
"""

from __future__ import annotations

import numpy as np


def panel_window_starts(
    first_points: np.ndarray,
    length: int,
    input_length: int,
    label_start: int,
    label_stop: int,
    horizon: int = 1,
    per_series: int = 0,
) -> np.ndarray:
    """Flat start indices (into the `(N, length)` panel flattened) of every window of `input_length` points whose
    `horizon` labels lie in columns `[label_start, label_stop)` and whose first point is at or after its row's first
    point (`first_points[i]`). With `per_series` > 0, at most that many windows of each series, the latest ones (the
    nearest the points it will forecast), so memory and epoch time stay bounded with many or long series."""
    first_label = np.maximum(first_points + input_length, label_start)
    last_label = label_stop - horizon  # inclusive
    counts = np.maximum(last_label - first_label + 1, 0)
    if per_series > 0:
        counts = np.minimum(counts, per_series)
    starts = []
    for row in np.flatnonzero(counts):
        labels = np.arange(last_label - counts[row] + 1, last_label + 1)
        starts.append(row * length + labels - input_length)
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, dtype=np.int64)


def panel_window_view(
    values: np.ndarray, input_length: int, label_start: int, label_stop: int, horizon: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inputs `(m, input_length)`, labels `(m, horizon)`, series (row) and origin column of every origin whose labels
    lie in `[label_start, label_stop)` and whose window holds no NaN (lies inside its series), rows in order and
    origins in time order within each row."""
    n, length = values.shape
    origins = np.arange(max(label_start, input_length), max(label_stop - horizon + 1, max(label_start, input_length)))
    if len(origins) == 0:
        empty = np.zeros((0, input_length), dtype=values.dtype)
        return empty, np.zeros((0, horizon), dtype=values.dtype), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(values, input_length + horizon, axis=1)
    taken = windows[:, origins - input_length]  # (n, origins, window + horizon)
    valid = ~np.isnan(taken[..., :input_length]).any(axis=2)
    rows, positions = np.nonzero(valid)
    picked = taken[rows, positions]
    return picked[:, :input_length], picked[:, input_length:], rows.astype(np.int64), origins[positions].astype(np.int64)

"""Windowed datasets with the course's `windowed_dataset` semantics, built from indices.

The course builds windows with `window(w + 1, shift=1).flat_map(batch)`, which materialises every
window as its own small dataset: 50-100x slower here at 1M points (bench/README.md). This module
shuffles window *start indices* instead (`Dataset.range` holds no array) and gathers each batch of windows from
the series in one op, so memory stays at the series itself and the pairs and their order are the
same as the course's for the same shuffle seed.

Small batches are gathered several at a time and split again (`rebatch`): tf.data's fixed cost per
element of a `map` dominated batch 32 (`python -m bench.windowing`, 1M points, w 20, batch 32:
0.46M windows/s with one `map` per batch, 1.18M with chunks). `rebatch` cuts batches across
chunk boundaries, so every batch, the last partial one included, is the same as without chunks.
"""

from __future__ import annotations

import math

import numpy as np

GATHER_CHUNK = 1024
"""Windows gathered per `map` call at least (a whole number of batches)."""


def window_starts(label_start: int, label_stop: int, input_length: int, horizon: int = 1) -> range:
    """Start indices of the windows whose `horizon` labels all fall in `[label_start, label_stop)`."""
    return range(max(label_start, input_length) - input_length, max(label_stop - input_length - horizon + 1, 0))


def window_view(
    series: np.ndarray, input_length: int, label_start: int, label_stop: int, horizon: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels of every origin whose `horizon` labels lie in `[label_start, label_stop)`, as `(x, y)`.

    `x` is a read-only strided view of shape `(n, input_length)` (no copy of the series); `x[i]` holds the
    `input_length` values just before the first label of `y[i]`. `y` has shape `(n,)` for one-step
    forecasts and `(n, horizon)` otherwise (also a view).
    """
    label_start = max(label_start, input_length)
    count = max(label_stop - horizon + 1 - label_start, 0)
    views = np.lib.stride_tricks.sliding_window_view(series, input_length)
    x = views[label_start - input_length : label_start - input_length + count]
    if horizon == 1:
        return x, series[label_start : label_start + count]
    return x, np.lib.stride_tricks.sliding_window_view(series, horizon)[label_start : label_start + count]


def windowed_dataset(
    series: np.ndarray,
    input_length: int,
    batch_size: int,
    shuffle_buffer: int,
    label_start: int = 0,
    label_stop: int | None = None,
    seed: int | None = None,
    horizon: int = 1,
    label_copies: int = 1,
    starts: np.ndarray | None = None,
):
    """A `tf.data.Dataset` of `(window, next values)` batches, shapes `(b, input_length)` and `(b,)` (one step
    ahead) or `(b, horizon)`; on Keras' JAX and PyTorch backends the same batches as a `data.batches.WindowBatches`.

    Args:
        series: float array of shape `(n,)`.
        input_length: number of past values each example sees.
        batch_size: examples per batch.
        shuffle_buffer: size of the shuffle buffer; 0 or 1 keeps time order (for validation).
        label_start: first label index (windows need `input_length` points before it).
        label_stop: one past the last label index; defaults to the end of the series.
        seed: shuffle seed, for a reproducible order.
        horizon: values each label holds; a window is kept when all of them lie before `label_stop`.
        label_copies: the labels repeated side by side this many times, shape `(b, horizon * label_copies)` (a
            quantile head's targets).
        starts: the windows' first indices, given instead of `label_start` / `label_stop` (a panel's windows,
            `data.panel_windows.panel_window_starts`, which never cross from one series into the next).
    """
    import keras

    label_stop = len(series) if label_stop is None else label_stop
    if starts is None:
        starts = window_starts(label_start, label_stop, input_length, horizon)
    if keras.backend.backend() != "tensorflow":
        from data.batches import WindowBatches

        return WindowBatches(series, starts, input_length, batch_size, shuffle_buffer, seed, horizon, label_copies)
    import tensorflow as tf

    values = tf.constant(np.asarray(series, dtype=np.float32))
    offsets = tf.range(input_length + horizon, dtype=tf.int64)

    def gather(first):
        windows = tf.gather(values, first[:, tf.newaxis] + offsets)
        if label_copies > 1:
            return windows[:, :input_length], tf.tile(tf.reshape(windows[:, input_length:], (-1, horizon)), (1, label_copies))
        if horizon == 1:
            return windows[:, :-1], windows[:, -1]
        return windows[:, :input_length], windows[:, input_length:]

    if isinstance(starts, range):
        dataset = tf.data.Dataset.range(starts.start, starts.stop)
    else:
        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(starts, dtype=np.int64))
    if shuffle_buffer > 1:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    batches_per_chunk = math.ceil(GATHER_CHUNK / batch_size)
    dataset = dataset.batch(batch_size * batches_per_chunk).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    if batches_per_chunk > 1:
        # rebatch loses the batch count, which Keras uses for its steps per epoch: restore it.
        batch_count = math.ceil(len(starts) / batch_size)
        dataset = dataset.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(batch_count))
    return dataset.prefetch(tf.data.AUTOTUNE)


def course_windowed_dataset(series: np.ndarray, input_length: int, batch_size: int, shuffle_buffer: int, seed: int | None = None):
    """The course's original pipeline, kept as the reference for tests and benchmarks."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(series, dtype=np.float32))
    dataset = dataset.window(input_length + 1, shift=1, drop_remainder=True)
    dataset = dataset.flat_map(lambda window: window.batch(input_length + 1))
    if shuffle_buffer > 1:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.map(lambda window: (window[:-1], window[-1]))
    return dataset.batch(batch_size).prefetch(1)

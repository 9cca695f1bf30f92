"""The windowed batches for Keras' JAX and PyTorch backends: a `keras.utils.PyDataset` over the series, no TensorFlow.

The same windows, labels and batch sizes as `data.windows.windowed_dataset`'s tf.data pipeline: window start
indices, shuffled through a buffer of `shuffle_buffer` (tf.data's `shuffle` algorithm, drawn anew each epoch),
each batch gathered from the series in one NumPy fancy index. Only the random draws differ from TensorFlow's.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def buffer_shuffle(count: int, buffer: int, rng: np.random.Generator) -> np.ndarray:
    """The order in which tf.data's `shuffle(buffer)` emits `range(count)`: fill a buffer of `buffer` items, emit one drawn
    at random, refill its slot with the next item. A buffer as large as the data is a uniform permutation."""
    if buffer >= count:
        return rng.permutation(count)
    order = np.empty(count, dtype=np.int64)
    pool = np.arange(buffer, dtype=np.int64)
    draws = rng.random(count)
    size, upcoming = buffer, buffer
    for position in range(count):
        slot = int(draws[position] * size)
        order[position] = pool[slot]
        if upcoming < count:
            pool[slot] = upcoming
            upcoming += 1
        else:
            size -= 1
            pool[slot] = pool[size]
    return order


class WindowBatches(keras.utils.PyDataset):
    """`(window, label)` batches of the windows starting at `starts`; `label_copies` > 1 repeats the labels side by side
    (a quantile head's targets: one block of `horizon` columns per quantile)."""

    def __init__(
        self,
        series: np.ndarray,
        starts: range | np.ndarray,
        input_length: int,
        batch_size: int,
        shuffle_buffer: int,
        seed: int | None,
        horizon: int = 1,
        label_copies: int = 1,
    ):
        super().__init__()
        self.values = np.asarray(series, dtype=np.float32)
        if isinstance(starts, range):
            self.starts = np.arange(starts.start, starts.stop, dtype=np.int64)
        else:
            self.starts = np.asarray(starts, dtype=np.int64)
        self.offsets = np.arange(input_length + horizon, dtype=np.int64)
        self.input_length, self.batch_size, self.horizon, self.label_copies = input_length, batch_size, horizon, label_copies
        self.shuffle_buffer = shuffle_buffer
        self.rng = np.random.default_rng(seed) if shuffle_buffer > 1 else None
        self.order = self._shuffled()

    def _shuffled(self) -> np.ndarray:
        if self.rng is None:
            return self.starts
        return self.starts[buffer_shuffle(len(self.starts), self.shuffle_buffer, self.rng)]

    def __len__(self) -> int:
        return math.ceil(len(self.starts) / self.batch_size)

    def __getitem__(self, index: int):
        first = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        windows = self.values[first[:, np.newaxis] + self.offsets]
        x = windows[:, : self.input_length]
        y = windows[:, self.input_length] if self.horizon == 1 else windows[:, self.input_length :]
        if self.label_copies > 1:
            y = np.tile(y.reshape(-1, self.horizon), (1, self.label_copies))
        return x, y

    def on_epoch_end(self) -> None:
        self.order = self._shuffled()  # tf.data reshuffles each epoch

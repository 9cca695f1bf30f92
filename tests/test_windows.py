"""The vectorised windows yield exactly what the course's tf.data pipeline yields."""

import numpy as np
import pytest

from data.windows import course_windowed_dataset, window_starts, window_view, windowed_dataset


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


@pytest.mark.parametrize(
    "points,window_size,batch_size,buffer",
    [
        (30, 4, 3, 1),
        (30, 4, 3, 10),
        (30, 5, 2, 1000),
        (30, 1, 7, 3),
        # several gather chunks of whole batches, the last chunk and the last batch partial
        (3_000, 20, 32, 1000),
        (3_000, 20, 100, 0),
        (3_000, 8, 2048, 500),
    ],
)
def test_same_pairs_in_same_order_as_the_course_pipeline(points, window_size, batch_size, buffer):
    series = np.arange(points, dtype=np.float32)
    ours = batches(windowed_dataset(series, window_size, batch_size, buffer, seed=7))
    course = batches(course_windowed_dataset(series, window_size, batch_size, buffer, seed=7))
    assert len(ours) == len(course)
    for (x1, y1), (x2, y2) in zip(ours, course, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("batch_size", [32, 100, 1024])
def test_the_batch_count_is_known_so_keras_knows_its_steps_per_epoch(batch_size):
    dataset = windowed_dataset(np.arange(3_000, dtype=np.float32), 20, batch_size, 1000, seed=0)
    assert int(dataset.cardinality()) == -(-2_980 // batch_size) == len(batches(dataset))


def test_unshuffled_windows_on_the_toy_series():
    x, y = next(iter(windowed_dataset(np.arange(10, dtype=np.float32), 4, 2, 0)))
    np.testing.assert_array_equal(x.numpy(), [[0, 1, 2, 3], [1, 2, 3, 4]])
    np.testing.assert_array_equal(y.numpy(), [4, 5])


def test_every_window_once_per_epoch_when_shuffled():
    series = np.arange(100, dtype=np.float32)
    labels = np.concatenate([y.numpy() for _, y in windowed_dataset(series, 8, 16, 1000, seed=1)])
    assert sorted(labels.tolist()) == list(range(8, 100))
    assert labels.tolist() != list(range(8, 100))


def test_label_range_selects_validation_windows_with_history_from_before():
    series = np.arange(50, dtype=np.float32)
    pairs = batches(windowed_dataset(series, 5, 100, 0, label_start=40, label_stop=45))
    x, y = pairs[0]
    np.testing.assert_array_equal(y, [40, 41, 42, 43, 44])
    np.testing.assert_array_equal(x[0], [35, 36, 37, 38, 39])


def test_window_view_is_a_view_not_a_copy():
    series = np.arange(20, dtype=np.float32)
    x, y = window_view(series, 3, 10, 15)
    assert np.shares_memory(x, series)
    np.testing.assert_array_equal(x[0], [7, 8, 9])
    np.testing.assert_array_equal(y, [10, 11, 12, 13, 14])
    assert window_starts(10, 15, 3) == range(7, 12)

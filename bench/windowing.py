"""Windows/s for one full epoch: data.windows vs the course's window().flat_map() pipeline.

python -m bench.windowing                 # 1,000 and 1,000,000 points, w = 20 and 64, batch 32 and 256
python -m bench.windowing --python-loop   # also time a Python `for` loop over each dataset
python -m bench.windowing --tiny          # CI: seconds

The main figure consumes the epoch inside TensorFlow (`Dataset.reduce`), as `model.fit` does: Keras
pulls each batch from the iterator inside its compiled train step. A Python `for` loop adds
TensorFlow's eager iterator overhead to every batch (~100-300 µs here), which then dominates a fast
pipeline at small batches, so it measures the loop rather than the pipeline; `--python-loop` shows it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data.windows import course_windowed_dataset, windowed_dataset  # noqa: E402


def in_graph_rate(dataset) -> tuple[float, int]:
    """Windows per second over one full pass consumed by `Dataset.reduce` (tracing included)."""
    start = time.perf_counter()
    count = dataset.reduce(tf.constant(0, tf.int64), lambda total, batch: total + tf.shape(batch[0], out_type=tf.int64)[0])
    count = int(count)
    return count / (time.perf_counter() - start), count


def python_loop_rate(dataset) -> tuple[float, int]:
    """Windows per second over one full pass with a Python `for` loop (the first batch counted)."""
    start, count = time.perf_counter(), 0
    for x, _ in dataset:
        count += int(x.shape[0])
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small sizes, for CI")
    parser.add_argument("--python-loop", action="store_true", help="also time a Python for loop over each dataset")
    args = parser.parse_args()
    sizes = [1_000, 5_000] if args.tiny else [1_000, 1_000_000]
    rates = [("in-graph", in_graph_rate)] + ([("python-loop", python_loop_rate)] if args.python_loop or args.tiny else [])
    print(f"{'points':>10} {'w':>4} {'batch':>6} {'consumed':>12} {'ours win/s':>12} {'course win/s':>13} {'ratio':>7}")
    for points in sizes:
        series = np.random.RandomState(0).normal(size=points).astype(np.float32)
        for window in (20, 64):
            for batch in (32, 256):
                for consumed, rate in rates:
                    ours, n1 = rate(windowed_dataset(series, window, batch, 1000, seed=0))
                    course, n2 = rate(course_windowed_dataset(series, window, batch, 1000, seed=0))
                    assert n1 == n2 == points - window
                    row = f"{points:>10} {window:>4} {batch:>6} {consumed:>12} {ours:>12,.0f} {course:>13,.0f}"
                    print(f"{row} {ours / course:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()

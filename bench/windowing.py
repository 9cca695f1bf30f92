"""Windows/s for one full epoch: data.windows vs the course's window().flat_map() pipeline.

python -m bench.windowing            # 1,000 and 1,000,000 points, w = 20 and 64
python -m bench.windowing --tiny     # CI: seconds
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from data.windows import course_windowed_dataset, windowed_dataset  # noqa: E402


def epoch_rate(dataset) -> tuple[float, int]:
    """Windows per second over one full pass (the first batch, which includes tracing, is counted)."""
    start, count = time.perf_counter(), 0
    for x, _ in dataset:
        count += int(x.shape[0])
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small sizes, for CI")
    args = parser.parse_args()
    sizes = [1_000, 20_000] if args.tiny else [1_000, 1_000_000]
    print(f"{'points':>10} {'w':>4} {'batch':>6} {'ours win/s':>12} {'course win/s':>13} {'ratio':>7}")
    for points in sizes:
        series = np.random.RandomState(0).normal(size=points).astype(np.float32)
        for window in (20, 64):
            for batch in (32, 256):
                ours, n1 = epoch_rate(windowed_dataset(series, window, batch, 1000, seed=0))
                course, n2 = epoch_rate(course_windowed_dataset(series, window, batch, 1000, seed=0))
                assert n1 == n2 == points - window
                print(f"{points:>10} {window:>4} {batch:>6} {ours:>12,.0f} {course:>13,.0f} {ours / course:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()

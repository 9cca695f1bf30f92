"""Peak RSS to build and iterate one epoch of windows over a long series (w = 128).

    python -m bench.memory               # 10,000,000 points
    python -m bench.memory --tiny        # CI

Reports the peak RSS growth over the process's RSS after importing TensorFlow, against the bar
3 x the series' bytes + 200 MB: windows are gathered from the series per batch, never
materialised as an n x w copy.
"""

from __future__ import annotations

import argparse
import os
import resource

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM), so the peak counts from now, not from TF's start-up."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_mb(was_reset: bool) -> float:
    return _status_mb("VmHWM") if was_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--points", type=int, default=10_000_000)
    args = parser.parse_args()
    points = 200_000 if args.tiny else args.points
    import numpy as np
    import tensorflow as tf

    from data.windows import windowed_dataset

    tf.constant(0.0) + 1  # initialise the runtime before the baseline
    baseline = rss_mb()
    was_reset = reset_peak()
    series = np.random.RandomState(0).normal(size=points).astype(np.float32)
    count = 0
    for x, _ in windowed_dataset(series, 128, 1024, 1000, seed=0):
        count += int(x.shape[0])
    assert count == points - 128
    growth = peak_mb(was_reset) - baseline
    bar = 3 * series.nbytes / 2**20 + 200
    print(
        f"points={points:,} w=128 series={series.nbytes / 2**20:.0f} MB baseline_rss={baseline:.0f} MB "
        f"peak_growth={growth:.0f} MB bar={bar:.0f} MB -> {'meets' if growth <= bar else 'MISSES'} the bar"
    )


if __name__ == "__main__":
    main()

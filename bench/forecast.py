"""Forecasting every validation window: one batched predict vs the course's per-window predict loop.

python -m bench.forecast             # 300 windows
python -m bench.forecast --tiny      # CI
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--windows", type=int, default=300)
    args = parser.parse_args()
    import numpy as np

    from data.sources import synthetic_series
    from data.windows import window_view
    from models import BUILDERS, compile_model

    window, count = 30, (10 if args.tiny else args.windows)
    series = synthetic_series()
    model = compile_model(BUILDERS["conv_lstm"](window_size=window, mean=50.0, std=20.0), "huber", "adam", 1e-3)
    x, _ = window_view(series, window, 1000, 1000 + count)
    model.predict(x[:1], verbose=0)  # warm both paths: traced predict functions for both shapes
    model.predict(np.ascontiguousarray(x), batch_size=1024, verbose=0)

    start = time.perf_counter()
    loop = [model.predict(series[t - window : t][np.newaxis], verbose=0) for t in range(1000, 1000 + count)]
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = model.predict(np.ascontiguousarray(x), batch_size=1024, verbose=0)
    batched_s = time.perf_counter() - start
    np.testing.assert_allclose(np.concatenate(loop).ravel(), batched.ravel(), rtol=1e-4, atol=1e-4)
    print(
        f"windows={count} loop={loop_s:.3f}s ({loop_s / count * 1000:.1f} ms/window) batched={batched_s:.4f}s "
        f"ratio={loop_s / batched_s:.0f}x"
    )


if __name__ == "__main__":
    main()

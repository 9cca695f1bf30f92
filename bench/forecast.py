"""Forecasting every validation window: the search's batched forecast vs the course's per-window loop.

python -m bench.forecast             # 300 windows: the default search's 299 scored validation points
python -m bench.forecast --tiny      # CI

`batched` is `models.forecast`, what the search evaluates its winner with: one compiled predict step
per chunk of windows. `predict` (one `model.predict` call over all windows) is printed beside it.
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
    from models import BUILDERS, compile_model, forecast
    from models.framing import Framing

    window, count = 30, (10 if args.tiny else args.windows)
    series = synthetic_series()
    model = compile_model(BUILDERS["conv_lstm"](framing=Framing(window, mean=50.0, std=20.0)), "huber", "adam", 1e-3)
    x, _ = window_view(series, window, 1000, 1000 + count)
    windows = np.ascontiguousarray(x)
    model.predict(x[:1], verbose=0)  # warm every path: traced predict functions for both shapes
    model.predict(windows, batch_size=1024, verbose=0)
    forecast(model, windows)

    start = time.perf_counter()
    loop = [model.predict(series[t - window : t][np.newaxis], verbose=0) for t in range(1000, 1000 + count)]
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(windows, batch_size=1024, verbose=0)
    predict_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = forecast(model, windows)
    batched_s = time.perf_counter() - start
    np.testing.assert_allclose(np.concatenate(loop).ravel(), batched, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(predicted.ravel(), batched, rtol=1e-4, atol=1e-4)
    print(
        f"windows={count} loop={loop_s:.3f}s ({loop_s / count * 1000:.1f} ms/window) predict={predict_s:.4f}s "
        f"batched={batched_s:.4f}s ratio={loop_s / batched_s:.0f}x (predict: {loop_s / predict_s:.0f}x)"
    )


if __name__ == "__main__":
    main()

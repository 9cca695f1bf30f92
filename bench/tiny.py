"""The tiny sizes the tests run each benchmark at (`--tiny`): every code path of a script, in seconds.

A tiny run uses a small dense space: a trial of it costs ~2 s on a 2-core machine against ~5 s for
the smallest conv_lstm (an LSTM's graphs take seconds to trace). The real runs use conv_lstm.
"""

from pathlib import Path

TINY_SPACE = "dnn"

SMALL_DNN = [
    "space.window_size.max=20",
    "space.dense_units.max=16",
    "space.dense_layers.max=1",
    "space.batch_size.values=[64]",
]

# A 600-point course series with a 50-point season, so seasonal context and the seasonal baselines run too.
TINY_SEASONAL = ["data.length=600", "data.test_size=60", "data.season_length=50", "tuner.max_epochs=2", "tuner.factor=2"]
TINY_SEASONAL += ["search.workers=1"]  # one process: tests run side by side
TINY_SEASONAL += SMALL_DNN

ROOT = Path(__file__).resolve().parent.parent


def search_env(tracking_uri: str) -> dict:
    """The environment for a benchmark's `python -m search` child: this checkout's code, this tracking store."""
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": tracking_uri}


def answers(port: int, seconds: float) -> bool:
    """Whether an MLflow server (or UI) on 127.0.0.1:`port` answers its health check within `seconds`."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return True
        except OSError:
            time.sleep(0.5)
    return False

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
TINY_SEASONAL += ["search.blend=false"]  # the blend has its own tiny runs (WITH_BLEND); elsewhere it only adds seconds

WITH_BLEND = [a for a in TINY_SEASONAL if a != "search.blend=false"]
"""`TINY_SEASONAL` with the stages' default, the blend."""

ROOT = Path(__file__).resolve().parent.parent


def search_env(tracking_uri: str) -> dict:
    """The environment for a benchmark's `python -m search` child: this checkout's code, this tracking store."""
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": tracking_uri}


def timed_search(args: list[str], run_dir: Path, env: dict, cwd: Path) -> tuple[dict, float, float]:
    """`python -m search *args` (its `hydra.run.dir` = `run_dir`) in a fresh process: its summary.json, wall seconds and
    cores busy (CPU seconds of the command and every process it started, per wall second). A failure ends the script
    with the command's stderr."""
    import json
    import resource
    import subprocess
    import sys
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "search", *args], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"the search failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads((run_dir / "summary.json").read_text()), wall, cpu / wall


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

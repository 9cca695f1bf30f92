"""Shared fixtures: a temporary sqlite MLflow store and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Small and fast, but the real pipeline: a 500-point course series, tiny models, tiny budgets.
TINY = [
    "data.length=500",
    "data.test_size=60",
    "data.season_length=0",
    "tuner.max_epochs=2",
    "tuner.factor=2",
    "tuner.patience=0",
]


@pytest.fixture
def store(tmp_path) -> str:
    """A fresh sqlite tracking URI in a temporary directory."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_cli(args: list[str], tracking_uri: str | None, cwd: Path, timeout: int = 600, env_extra: dict | None = None):
    """Run `python -m search ...` as a user would; returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(ROOT)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "search", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    """A daily CSV of the course series (500 points) with a date column."""
    from data.sources import synthetic_series

    series = synthetic_series(length=500)
    dates = pd.date_range("2020-01-01", periods=500, freq="D")
    path = tmp_path / "sales.csv"
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "units": series}).to_csv(path, index=False)
    return path

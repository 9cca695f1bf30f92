"""A person's view of a search in `mlflow ui`, in headless Chromium (`bench.ui_check`); skipped without a browser."""

import subprocess
import sys

import pytest

from bench.ui_check import browser_missing
from tests.conftest import ROOT, cli_env


@pytest.mark.slow
@pytest.mark.skipif(browser_missing() is not None, reason=f"bench.ui_check cannot run here: {browser_missing()}")
def test_the_printed_page_shows_the_trials_their_columns_and_the_parents_figures(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.ui_check", "--out", str(tmp_path)],
        cwd=ROOT,
        env=cli_env(None),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "runs table:" in result.stdout and "parent artifact vs_baselines.png: rendered" in result.stdout
    assert {p.name for p in tmp_path.iterdir()} >= {"runs_table.png", "compare_runs.png", "vs_baselines_page.png"}

"""The benchmark scripts run (on a tiny size) so they never rot; their figures live in bench/README.md."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize(
    "script,expect",
    [
        ("windowing", "ratio"),
        ("memory", "meets the bar"),
        ("forecast", "ratio="),
        ("tracking_overhead", "ratio="),
        ("search_cost", "fixed_share"),
        ("profile_trials", "Model.fit"),
        ("forecast_quality", "after_share"),
        ("selection_variants", "share_of_search"),
        ("fault_injection", "all zero"),
        ("workers", "of workers=1"),
        ("first_epoch", "no_grappler"),
        ("default_command", "| defaults | 42 |"),
    ],
)
def test_bench_script_runs_tiny(script, expect):
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{script}", "--tiny"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout


@pytest.mark.slow
def test_gpu_check_runs_tiny_and_writes_its_table(tmp_path):
    """Without a GPU it runs the CPU stages; `--only 1`: the default-search stage alone, to the end."""
    command = [sys.executable, "-m", "bench.gpu_check", "--tiny", "--only", "1", "--budget-s", "240", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "gpu_check.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| default search |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3] == "yes" and int(cells[4]) > 0 and float(cells[8]) > 0  # ended, trials, a test MAE
    assert (tmp_path / "gpu_check.json").is_file() and "===== stage 1" in (tmp_path / "logs.txt").read_text()

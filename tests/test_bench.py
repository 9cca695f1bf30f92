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
        ("interval_study", "split conformal (the search's)"),
        ("quantile_head", "conformalized quantile head (cqr)"),
    ],
)
def test_bench_script_runs_tiny(script, expect):
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{script}", "--tiny"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout

"""The benchmark scripts run (on a tiny size) so they never rot; their figures live in bench/README.md."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Scripts that train in their own process and start no search: run one after another in one Python process, as
# `python -m bench.<name> --tiny` would (TensorFlow imported once, not five times). `memory` first: it measures its own
# growth; `trial_timings` last: it wraps Keras' methods in timers for the rest of the process.
IN_ONE_PROCESS = [
    ("memory", "meets the bar"),
    ("windowing", "ratio"),
    ("forecast", "ratio="),
    ("tracking_overhead", "ratio="),
    ("profile_start", "| elnino (12) | 0 | 0.9904 | 0.3811 |"),
    ("trial_timings", "Model.fit"),
]

EACH_IN_TURN = """
import contextlib, io, json, runpy, sys
outputs = {}
for name in sys.argv[1:]:
    sys.argv = [f"bench/{name}.py", "--tiny"]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        runpy.run_module(f"bench.{name}", run_name="__main__", alter_sys=True)
    outputs[name] = printed.getvalue()
print(json.dumps(outputs))
"""


@pytest.mark.slow
def test_bench_scripts_without_a_search_run_tiny():
    names = [name for name, _ in IN_ONE_PROCESS]
    result = subprocess.run([sys.executable, "-c", EACH_IN_TURN, *names], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    for name, expect in IN_ONE_PROCESS:
        assert expect in printed[name], (name, printed[name][-2000:])


@pytest.mark.slow
@pytest.mark.parametrize(
    "script,expect",
    [
        ("search_cost", "fixed_share"),
        ("forecast_quality", "after_share"),
        ("selection_variants", "share_of_search"),
        ("fault_injection", "all zero"),
        ("workers", "of workers=1"),
        ("first_epoch", "no_grappler"),
        ("default_command", "| defaults | 42 |"),
        ("member_count", "members' spread"),
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


def test_the_nhits_peer_scales_each_series_as_the_served_panel_model_does():
    """bench/nhits_peer.py runs in a venv without this project's dependencies, so it carries its own copy of the
    MASE scale; the peer's MASE is comparable with ours only while the copy matches `series_scale`."""
    import numpy as np

    from bench.nhits_peer import mase_scale
    from models.panel_pyfunc import series_scale

    draws = np.random.default_rng(0)
    histories = [draws.normal(100, 10, n) for n in (1, 2, 12, 13, 60)] + [np.full(20, 5.0), np.zeros(8)]
    for history in histories:
        for season in (0, 1, 12):
            assert mase_scale(history, season) == series_scale(history, season)

"""A short seasonal series (300 monthly points, a 24-month horizon) runs with no option beyond its data settings:
the backtest's folds fit the validation stretch, MASE is scaled by seasonal naive, the model is named after the file."""

import json
import subprocess
import sys

import pytest

from data.split import Layout
from search.plan.planning import fit_folds
from tests.conftest import ROOT


def test_folds_are_lowered_to_the_blocks_of_horizon_the_validation_holds():
    short = Layout(length=300, test_start=252, score_start=194, horizon=24)  # 58 scored validation points
    assert fit_folds(3, 5, short) == (
        2,
        "search.select.folds=3 lowered to 2: the 58 scored validation points hold 2 blocks of data.horizon=24 "
        "(set search.select.folds to choose)",
    )
    folds, note = fit_folds(3, 5, Layout(300, 252, 220, horizon=24))  # 32 points: one block
    assert folds == 1 and "hold 1 block of data.horizon=24" in note
    assert fit_folds(3, 1, short) == (3, None)  # no backtest: nothing to fit
    assert fit_folds(3, 5, Layout(1461, 1300, 1001, horizon=1)) == (3, None)  # the default command keeps its folds


@pytest.mark.slow
def test_a_300_point_monthly_series_at_horizon_24_runs_and_names_its_scale_and_model(tmp_path):
    out = tmp_path / "rows.json"
    command = [sys.executable, "-m", "bench.short_series", "--tiny", "--series", "course300", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["folds"] == 2  # search.select.folds=3 lowered: 58 scored validation points, 2 blocks of 24
    assert row["mase_scale"] == "seasonal naive (lag 12)"
    assert row["registered_model"] == "course300-dnn"  # a CSV's model is named after its file
    assert row["test"] > 0 and row["snaive_test"] > 0
    assert "beats seasonal naive on validation and test" in result.stdout

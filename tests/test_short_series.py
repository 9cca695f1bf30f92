"""A short seasonal series (300 monthly points, a 24-month horizon) runs with no option beyond its data settings:
the backtest's folds fit the validation stretch, MASE is scaled by seasonal naive, the model is named after the file."""

import json
import subprocess
import sys

import pytest

from data.split import Layout
from search.plan.planning import backtest_folds, folds_that_fit
from tests.conftest import ROOT
from tests.test_spaces import compose_config


def test_folds_are_lowered_to_the_blocks_of_horizon_the_validation_holds():
    short = Layout(length=300, test_start=252, score_start=194, horizon=24)  # 58 scored validation points
    assert folds_that_fit(3, 5, short) == (
        2,
        "search.select.folds=3 lowered to 2: the 58 scored validation points hold 2 blocks of data.horizon=24 "
        "(set search.select.folds to choose)",
    )
    folds, note = folds_that_fit(3, 5, Layout(300, 252, 220, horizon=24))  # 32 points: one block
    assert folds == 1 and "hold 1 block of data.horizon=24" in note
    assert folds_that_fit(3, 1, short) == (3, None)  # no backtest: nothing to fit
    assert folds_that_fit(3, 5, Layout(1461, 1300, 1001, horizon=1)) == (3, None)  # the default command keeps its folds


@pytest.mark.parametrize(
    ("overrides", "folds", "skipped"),
    [
        ([], 0, True),  # the defaults: the blend weighs the 5 best configurations, whatever their ranking
        (["search.ensemble=3"], 3, False),  # 3 of 5: the ranking picks them
        (["search.ensemble_of=seeds"], 3, False),  # seeds of the winner: the ranking picks it
        (["search.select.backtest=always"], 3, False),
        (["search.ensemble=3", "search.select.backtest=never"], 0, False),  # ranked by search score
        (["search.select.top_k=1", "search.select.backtest=always"], 0, False),  # one candidate: nothing to rank
    ],
)
def test_the_backtest_runs_only_where_its_ranking_can_change_the_registered_model(overrides, folds, skipped):
    cfg = compose_config("+space=dnn", *overrides)
    found, note = backtest_folds(cfg.search, Layout(1461, 1300, 1001, horizon=1))
    assert found == folds
    assert (note is not None) == skipped
    if skipped:
        assert note.startswith("no backtest: the registered model weighs all 5 best configurations")
        assert "search.select.backtest=always" in note  # how to get it anyway


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

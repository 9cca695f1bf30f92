"""Many series in one search: the long CSV, windows that never cross series, per-series scores, and the whole command
(`data=synthetic_panel`, `data=panel`) to a registered pyfunc that forecasts a long DataFrame."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from data.errors import UserError
from data.panel import Panel, ScaledPanel, panel_frame, read_panel, right_aligned, synthetic_panel
from data.panel_scores import panel_baselines, panel_scales, per_series_mae
from data.panel_windows import panel_window_starts, panel_window_view
from models.panel_pyfunc import series_scale
from tests.conftest import ROOT, parent_and_children, run_cli

TINY_PANEL = [
    "+space=dnn",
    "space.window_size.max=20",
    "space.dense_units.max=16",
    "space.dense_layers.max=1",
    "space.batch_size.values=[64]",
    "tuner.max_epochs=2",
    "tuner.factor=2",
    "search.workers=1",
    "search.ensemble=2",
    "search.select.top_k=2",
    "tracking.log_trial_models=false",
]


def test_a_long_csv_reads_back_as_the_panel_it_was_written_from(tmp_path):
    panel = synthetic_panel(count=7, min_length=30, max_length=50)
    path = tmp_path / "long.csv"
    panel_frame(panel).sample(frac=1.0, random_state=0).to_csv(path, index=False)  # rows in any order
    read = read_panel(str(path))
    assert read.ids == panel.ids and list(read.lengths) == list(panel.lengths)
    np.testing.assert_allclose(np.nan_to_num(read.values), np.nan_to_num(panel.values), rtol=1e-6)
    assert np.isnan(read.values[np.argmin(read.lengths), 0])  # right-aligned: the shortest starts late


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": ["a"], "ds": [1], "y": [1.0]}), "data.id_column='unique_id' is not a column"),
        (pd.DataFrame({"unique_id": ["a", "a"], "ds": [1, 1], "y": [1.0, 2.0]}), "series 'a' has the time 1 twice"),
        (pd.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "y": [1.0, "x"]}), "non-numeric value 'x' at row 3"),
        (pd.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "y": [1.0, None]}), "is empty at row 3"),
    ],
)
def test_bad_long_csvs_are_refused_with_the_key_to_change(tmp_path, frame, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_panel(str(path))


def test_training_windows_stay_inside_one_series_and_before_the_stop():
    values, lengths = right_aligned([np.arange(10.0), 100 + np.arange(25.0), 1000 + np.arange(6.0)])
    panel = Panel(values, ["a", "b", "c"], lengths)
    starts = panel_window_starts(panel.starts(), panel.length, 4, 0, 20, horizon=2)
    flat = values.ravel()
    windows = np.stack([flat[s : s + 6] for s in starts])
    assert not np.isnan(windows).any()
    assert np.all(np.diff(windows, axis=1) == 1.0)  # consecutive points of one series, never two series joined
    assert np.all((starts % panel.length) + 6 <= 20)  # every label before column 20
    assert len(starts) == 15  # b (columns 0..24): starts 0..14; a (15..24) holds 5 points before 20, c none: too few
    capped = panel_window_starts(panel.starts(), panel.length, 4, 0, 25, horizon=1, per_series=3)
    assert np.bincount(capped // panel.length, minlength=3).max() == 3
    assert list(capped[capped // panel.length == 1] % panel.length) == [18, 19, 20]  # b's latest: labels 22, 23, 24


def test_per_series_scores_are_scale_free():
    season = np.tile([0.0, 3.0, 1.0, 5.0], 10)
    values, lengths = right_aligned([10 + season, 10_000 + 1000 * season])
    panel = Panel(values, ["small", "large"], lengths)
    forecasts, actual, rows, origins = panel_baselines(panel, 32, 40, 4, season_length=4, with_ets=False)
    assert list(rows) == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1] and list(origins[:5]) == [32, 33, 34, 35, 36]
    assert np.allclose(forecasts["seasonal_naive"], actual)  # a pure season: seasonal naive is exact
    scales = panel_scales(panel, 32, season_length=4)  # seasonal naive's in-sample MAE is 0 in both: the fallback
    naive_mase = per_series_mae(forecasts["naive"], actual, rows, 2) / panel_scales(panel, 32, season_length=0)
    assert naive_mase[0] == pytest.approx(naive_mase[1])  # the same shape at 1,000x the level scores the same
    assert np.all(scales > 0)


def test_the_per_series_fits_spread_over_processes_give_the_same_forecasts(monkeypatch):
    """ETS and Theta fitted series by series in two spawned processes forecast exactly what one process does, for a
    one-origin block (the competition's test tail) and for rolled origins; each beats naive on a seasonal panel."""
    import data.panel_scores

    panel = synthetic_panel(count=12, min_length=60, max_length=90)
    length = panel.values.shape[1]
    monkeypatch.setattr(data.panel_scores, "PARALLEL_FROM", 4)
    for start, stop, horizon in ((length - 12, length, 12), (length - 12, length, 1)):
        alone = panel_baselines(panel, start, stop, horizon, season_length=12, workers=1)[0]
        spread, actual, rows, _ = panel_baselines(panel, start, stop, horizon, season_length=12, workers=2)
        for name in ("ets", "theta"):
            np.testing.assert_array_equal(spread[name], alone[name])
            errors = np.abs(spread[name] - actual).mean()
            assert errors < np.abs(spread["naive"] - actual).mean(), name


def test_padded_inputs_reach_every_series_at_the_validation_origin():
    panel = synthetic_panel(count=5, min_length=40, max_length=80)
    scaled = ScaledPanel.of(panel, np.ones(panel.count))
    x, _, rows, _ = panel_window_view(scaled.values, 40, panel.length - 24, panel.length - 12, 12)
    assert sorted(set(rows.tolist())) == list(range(5)) and not np.isnan(x).any()
    assert 0 < scaled.padded(40, panel.length - 24) == int(np.sum(panel.lengths - 24 < 40))


@pytest.fixture(scope="module")
def panel_search(tmp_path_factory, _empty_store):
    from tests.conftest import store_in

    folder = tmp_path_factory.mktemp("panel")
    uri = store_in(folder, _empty_store)
    overrides = ["data=synthetic_panel", "data.count=40", "search.intervals=[0.8]", f"hydra.run.dir={folder / 'run'}"]
    result = run_cli([*TINY_PANEL, *overrides], uri, ROOT)
    return folder, uri, result


@pytest.mark.slow
def test_a_panel_search_scores_every_series_and_registers_a_long_dataframe_forecaster(panel_search):
    import mlflow
    from mlflow.tracking import MlflowClient

    folder, uri, result = panel_search
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((folder / "run" / "summary.json").read_text())
    assert summary["series"] == 40
    assert set(summary["panel"]) >= {"winner", "naive", "seasonal_naive", "ets", "theta"}
    assert 0.0 <= summary["panel"]["winner"]["beats_theta"] <= 1.0
    assert summary["mase"]["test"] == pytest.approx(summary["panel"]["winner"]["test_mean"])
    assert 0.0 <= summary["panel"]["winner"]["beats_seasonal_naive"] <= 1.0
    assert "MASE over series" in result.stdout and "winner beats" in result.stdout
    trial_lines = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert len(trial_lines) == summary["trials"]["total"] == 5  # Hyperband at 2 epochs, factor 2: the budget's 5
    assert trial_lines[0].endswith("left]") and "[1/5 trials, ~" in trial_lines[0]
    assert trial_lines[-1].endswith("[5/5 trials]")
    members = summary["selection"]["members"]  # search.ensemble=2 picks over the top_k=2 configurations
    assert sum(members.values()) == 2 and set(members) <= {c["trial_id"] for c in summary["selection"]["candidates"]}
    assert "averaged" in result.stdout
    with open(summary["per_series_csv"]) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 40
    assert {"unique_id", "points", "scale", "winner_test_mase", "seasonal_naive_test_mase", "ets_val_mae"} <= set(rows[0])
    mase = np.array([float(r["winner_test_mase"]) for r in rows])
    assert np.nanmean(mase) == pytest.approx(summary["panel"]["winner"]["test_mean"], rel=1e-4)
    client = MlflowClient(uri)
    parent, children = parent_and_children(client, summary["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and all(c.info.status != "RUNNING" for c in children)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"per_series.csv", "forecast_series.png"} <= artifacts

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(summary["model_uri"])
    new = panel_frame(synthetic_panel(count=3, seed=99))  # series the search never saw, any level
    forecast = model.predict(new)
    assert list(forecast.columns) == ["unique_id", "ds", "forecast", "forecast-lo-80", "forecast-hi-80"]
    assert len(forecast) == 3 * 12 and np.isfinite(forecast.drop(columns=["unique_id", "ds"]).to_numpy()).all()
    # Conformal over the 40 series: each step's margin in MASE units, times the new series' own scale.
    interval = summary["intervals"]["0.8"]
    assert interval["calibration_origins"] == 40 and interval["units"] == "each series' MASE scale"
    assert 0.5 <= interval["coverage"] <= 1.0  # measured on the 40 test tails, the level 0.8
    half = (forecast["forecast-hi-80"] - forecast["forecast-lo-80"]) / 2
    assert np.allclose(forecast["forecast"] - forecast["forecast-lo-80"], half)
    for uid, group in new.groupby("unique_id"):
        scale = series_scale(group["y"].to_numpy(), 12)
        assert np.allclose(half[forecast.unique_id == uid], np.array(interval["margin"]) * scale, rtol=1e-5)
    assert "interval 80%" in result.stdout and "MASE (conformal, 40 series)" in result.stdout
    first = forecast[forecast.unique_id == "S0000"]["ds"]
    assert list(first[:2]) == [pd.Timestamp("2021-01-01"), pd.Timestamp("2021-02-01")]  # month after month
    level = new.groupby("unique_id")["y"].last()
    ratio = forecast.groupby("unique_id")["forecast"].mean() / level
    assert ratio.between(0.3, 3.0).all()  # forecasts at each series' own level


def test_a_panel_csv_without_its_id_column_or_too_short_gets_one_line(tmp_path, store):
    panel = synthetic_panel(count=30, min_length=50, max_length=70)
    path = tmp_path / "sales.csv"
    panel_frame(panel).rename(columns={"unique_id": "store"}).to_csv(path, index=False)
    bad = run_cli([*TINY_PANEL, "data=panel", f"data.path={path}", f"hydra.run.dir={tmp_path / 'bad'}"], store, ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: data.id_column='unique_id' is not a column")
    assert "Traceback" not in bad.stderr
    short = run_cli(
        [*TINY_PANEL, "data=panel", f"data.path={path}", "data.id_column=store", "data.test_size=40", "data.horizon=40"],
        store,
        tmp_path,
    )
    assert short.returncode == 2 and "every series of panel is shorter than the 82 points" in short.stderr
    profile = run_cli([*TINY_PANEL, "data=synthetic_panel", "space.scaling.value=profile"], store, tmp_path)
    assert profile.returncode == 2 and "error: space.scaling=profile matches one series' seasonal profile" in profile.stderr
    few = run_cli([*TINY_PANEL, "data=synthetic_panel", "data.count=10", "search.intervals=[0.95]"], store, tmp_path)
    assert few.returncode == 2
    needs = "error: search.intervals: a 0.95 interval needs at least 19 series' validation origins, this layout has 10"
    assert needs in few.stderr
    cqr = run_cli([*TINY_PANEL, "data=synthetic_panel", "search.intervals=[0.8]", "search.intervals_method=cqr"], store, tmp_path)
    assert cqr.returncode == 2 and "error: search.intervals_method=cqr: a panel's intervals are conformal" in cqr.stderr


def test_the_budget_schedule_is_the_one_the_config_comment_promises():
    from search.plan.budget import Progress, hyperband_schedule

    assert len(hyperband_schedule(27, 4)) == 44 and len(hyperband_schedule(27, 3)) == 70  # search/config.py's figures
    assert len(hyperband_schedule(27, 4, iterations=2)) == 88
    progress = Progress([1, 1, 2], started=0.0)
    assert progress.line("0000", now=10.0) == "1/3 trials, ~30s left"  # 1 epoch in 10 s, 3 epochs to go
    assert progress.line("0002", now=40.0) == "3/3 trials"


def test_a_flat_series_is_scaled_by_its_own_level_in_training_and_serving():
    from models.panel_pyfunc import series_scale

    values, lengths = right_aligned([np.full(30, 500.0), 10 + np.tile([0.0, 1.0, 3.0], 10)])
    scales = panel_scales(Panel(values, ["flat", "seasonal"], lengths), 30, season_length=3)
    assert scales[0] == pytest.approx(500.0) and scales[1] > 0
    assert series_scale(np.full(30, 500.0), 3) == pytest.approx(500.0) and series_scale(np.array([7.0]), 12) == 7.0


def test_the_served_forecaster_takes_integer_times_and_values_and_one_point_series():
    import keras

    from models.panel_pyfunc import PanelForecaster

    forecaster = PanelForecaster()
    forecaster.model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    forecaster.input_length, forecaster.horizon, forecaster.season_length, forecaster.frequency = 4, 2, 0, 1.0
    history = pd.DataFrame({"unique_id": [3, 3, 3, 3, 3, 7], "ds": [10, 11, 12, 13, 14, 5], "y": [1, 2, 3, 4, 5, 9]})
    forecast = forecaster.predict(None, history.sample(frac=1.0, random_state=1))  # any row order
    assert list(forecast["ds"]) == [15, 16, 6, 7] and np.isfinite(forecast["forecast"]).all()
    dated = pd.DataFrame({"unique_id": ["a"], "ds": ["2020-05-01"], "y": [4.0]})
    forecaster.frequency = "MS"
    assert list(forecaster.predict(None, dated)["ds"]) == [pd.Timestamp("2020-06-01"), pd.Timestamp("2020-07-01")]
    forecaster.frequency = None
    with pytest.raises(ValueError, match="series 'a': one point and no known time step"):
        forecaster.predict(None, dated)


def test_numeric_times_stay_numbers(tmp_path):
    path = tmp_path / "ticks.csv"
    pd.DataFrame({"unique_id": ["a"] * 5, "ds": [0, 1, 2, 3, 4], "y": [1, 2, 3, 4, 5]}).to_csv(path, index=False)
    panel = read_panel(str(path))
    assert panel.last_times == [4] and panel.step == 1
    assert list(panel_frame(panel)["ds"]) == [0, 1, 2, 3, 4]

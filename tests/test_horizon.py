"""Forecasting h steps ahead (`data.horizon`) and conformal intervals (`search.intervals`)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bench.tiny import SMALL_DNN, TINY_SEASONAL, WITH_BLEND
from data.baselines import ar_changes, drift, exponential_smoothing, moving_average, naive, seasonal_naive, targets
from data.split import plan_layout
from data.windows import window_view, windowed_dataset
from search.plan.space import in_points, validate_space
from search.scoring.intervals import calibration_limit, coverage, half_widths, interval_report, margins
from tests.conftest import ROOT, parent_and_children, run_cli, stage_runs, store_in

SERIES = np.arange(100, dtype=np.float32) ** 1.5 / 10


def test_windows_hold_the_next_h_values_and_only_origins_whose_labels_fit():
    x, y = window_view(SERIES, 4, 10, 20, horizon=3)
    assert x.shape == (8, 4) and y.shape == (8, 3)  # origins 10..17: the labels of 18 and 19 would pass 20
    np.testing.assert_array_equal(x[0], SERIES[6:10])
    np.testing.assert_array_equal(y[0], SERIES[10:13])
    np.testing.assert_array_equal(y[-1], SERIES[17:20])
    x1, y1 = window_view(SERIES, 4, 10, 20)
    assert x1.shape == (10, 4) and y1.shape == (10,)  # one step ahead: as before
    np.testing.assert_array_equal(y1, SERIES[10:20])


def test_the_dataset_gives_the_same_pairs_as_the_view():
    batches = list(windowed_dataset(SERIES, 4, 5, 0, label_start=10, label_stop=20, horizon=3))
    xs = np.concatenate([np.asarray(b[0]) for b in batches])
    ys = np.concatenate([np.asarray(b[1]) for b in batches])
    x, y = window_view(SERIES, 4, 10, 20, horizon=3)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)
    assert [len(b[0]) for b in batches] == [5, 3]


def test_layout_origins_keep_every_label_inside_its_split():
    layout = plan_layout(100, 20, [60], [10], horizon=5)
    assert layout.val_origins == range(60, 76) and layout.test_origins == range(80, 96)
    assert plan_layout(100, 20, [60], [10]).val_origins == range(60, 80)


def test_baselines_over_a_horizon_by_hand():
    series = np.array([1, 2, 3, 4, 10, 20, 30, 40, 50, 60], dtype=np.float32)
    origins = range(6, 8)  # forecasts of [30, 40, 50] from y[:6] and [40, 50, 60] from y[:7]
    np.testing.assert_array_equal(naive(series, origins, 3), [[20, 20, 20], [30, 30, 30]])
    # Season 2: the last season (y[4], y[5]) repeated from origin 6; (y[5], y[6]) from origin 7.
    np.testing.assert_array_equal(seasonal_naive(series, origins, 2, 3), [[10, 20, 10], [20, 30, 20]])
    np.testing.assert_array_equal(moving_average(series, origins, 2, 3), [[15, 15, 15], [25, 25, 25]])
    # Drift from origin 6: last 20, slope (20 - 1) / 5 = 3.8 a step.
    np.testing.assert_allclose(drift(series, range(6, 7), 3), [[23.8, 27.6, 31.4]], rtol=1e-6)
    np.testing.assert_array_equal(targets(series, origins, 3), [[30, 40, 50], [40, 50, 60]])
    # Step 1 of every baseline is its one-step forecast.
    for multi, one in (
        (seasonal_naive(series, origins, 2, 3), seasonal_naive(series, origins, 2)),
        (drift(series, origins, 3), drift(series, origins)),
    ):
        np.testing.assert_allclose(multi[:, 0], one, rtol=1e-6)


def test_fitted_baselines_over_a_horizon_match_their_one_step_forecasts_and_statsmodels():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(0)
    t = np.arange(400)
    series = (10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, 400)).astype(np.float32)
    one, paths = exponential_smoothing(series, 300, 12), exponential_smoothing(series, 300, 12, horizon=15)
    np.testing.assert_allclose(paths[12:, 0], one[12:], rtol=1e-5)  # from the first origin with a season behind it
    assert np.isnan(paths[:12]).any()
    # From origin 350 the paths are statsmodels' own forecast from the same states (the parameters refitted on
    # y[:300] and rolled, as the baseline does): checked against a refit on y[:350] with those parameters fixed.
    assert np.isfinite(paths[350]).all() and paths.shape == (400, 15)
    fitted = ExponentialSmoothing(
        series[:300].astype(np.float64),
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=12,
        initialization_method="estimated",
    ).fit()
    p = fitted.params
    rolled = ExponentialSmoothing(
        series[:350].astype(np.float64), trend="add", damped_trend=True, seasonal="add", seasonal_periods=12,
        initialization_method="known", initial_level=p["initial_level"], initial_trend=p["initial_trend"],
        initial_seasonal=p["initial_seasons"],
    ).fit(
        smoothing_level=p["smoothing_level"], smoothing_trend=p["smoothing_trend"],
        smoothing_seasonal=p["smoothing_seasonal"], damping_trend=p["damping_trend"], optimized=False,
    )  # fmt: skip
    np.testing.assert_allclose(paths[350], rolled.forecast(15), rtol=1e-4)
    ar1, ar = ar_changes(series, 300, 3), ar_changes(series, 300, 3, horizon=4)
    np.testing.assert_allclose(ar[4:, 0], ar1[4:], rtol=1e-5)
    # Step 2 feeds step 1's change back: y[t-1] + c1 + c2 with c2 from the lags (.., y[t-1] - y[t-2], c1).
    assert np.isnan(ar[:4]).all() and np.isfinite(ar[4:]).all()


def test_models_end_in_one_unit_per_step_in_the_series_units():
    import keras

    from models import BUILDERS, forecast
    from models.framing import Framing

    x, _ = window_view(SERIES, 8, 8, 100)
    for scaling in ("standard", "last_value", "window"):
        framing = Framing(window_size=8, scaling=scaling, mean=40.0, std=25.0, step_std=1.5, horizon=4)
        for name, kwargs in (("linear", {}), ("conv_lstm", {"filters": 4, "lstm_units": 4, "lstm_layers": 1})):
            keras.utils.set_random_seed(0)
            model = BUILDERS[name](framing=framing, **kwargs)
            assert model.output_shape == (None, 4), (name, scaling)
            assert forecast(model, x).shape == (len(x), 4)
    one = BUILDERS["linear"](framing=Framing(window_size=8))
    assert one.output_shape == (None, 1) and forecast(one, x).shape == (len(x),)


def test_window_size_in_points_counts_in_horizons():
    specs = validate_space(
        {
            "model": {"kind": "fixed", "value": "dnn"},
            "window_size": {"kind": "choice", "values": [2, 4, 8], "per": "horizon"},
            "split_time": {"kind": "fixed", "value": 0.7},
            "batch_size": {"kind": "fixed", "value": 32},
            "learning_rate": {"kind": "fixed", "value": 1e-3},
        }
    )
    assert in_points(specs, 7)["window_size"]["values"] == [14, 28, 56]
    ranged = {**specs, "window_size": {"kind": "int", "min": 1, "max": 3, "per": "horizon"}}
    assert in_points(ranged, 5)["window_size"] == {"kind": "int", "min": 5, "max": 15}


def test_conformal_intervals_cover_gaussian_noise_at_their_level():
    """Forecast 0 for pure N(0, 1) noise: the half-widths approach the normal quantiles and cover at the level."""
    rng = np.random.default_rng(0)
    calibration, unseen = rng.normal(size=(2000, 3)), rng.normal(size=(20000, 3))
    zero = np.zeros_like
    for level, quantile in ((0.8, 1.2816), (0.95, 1.9600)):
        widths = half_widths(calibration, zero(calibration), level)
        np.testing.assert_allclose(widths, quantile, rtol=0.08)
        np.testing.assert_allclose(coverage(unseen, zero(unseen) - widths, zero(unseen) + widths), level, atol=0.02)
    bands = {level: (zero(calibration), zero(calibration)) for level in (0.8, 0.95)}
    tail = {level: (zero(unseen), zero(unseen)) for level in (0.8, 0.95)}
    report = interval_report([0.95, 0.8], calibration, bands, unseen, tail)
    assert list(report) == ["0.8", "0.95"] and abs(report["0.95"]["coverage"] - 0.95) < 0.02
    assert report["0.8"]["mean_width"] == pytest.approx(2 * np.mean(report["0.8"]["half_width"]))
    # Too few calibration origins for the level: no finite interval (planning refuses such a level first).
    assert calibration_limit(0.95) == 19 and np.isinf(half_widths(calibration[:18], zero(calibration[:18]), 0.95)).all()
    assert np.isfinite(half_widths(calibration[:19], zero(calibration[:19]), 0.95)).all()


def test_conformalized_bands_fix_a_band_that_is_too_narrow_or_too_wide():
    """CQR's margin: a band too narrow for the noise is widened, one too wide narrowed, both to the level's coverage;
    on noise whose size varies, a band that follows the size keeps the coverage with a narrower mean width than +- one
    half-width does."""
    rng = np.random.default_rng(1)
    scale_cal, scale_new = rng.uniform(0.2, 3.0, size=4000), rng.uniform(0.2, 3.0, size=40000)
    calibration, unseen = rng.normal(size=4000) * scale_cal, rng.normal(size=40000) * scale_new
    for factor in (0.3, 3.0):  # bands at +-0.3 or +-3 of each origin's own 80 % quantile
        band = 1.2816 * factor
        low, high = -band * scale_cal, band * scale_cal
        margin = margins(calibration, low, high, 0.8)
        assert (margin > 0) == (factor < 1)
        reached = coverage(unseen, -band * scale_new - margin, band * scale_new + margin)
        np.testing.assert_allclose(reached, 0.8, atol=0.02)
    adaptive = interval_report([0.8], calibration, {0.8: (-scale_cal, scale_cal)}, unseen, {0.8: (-scale_new, scale_new)}, "cqr")
    fixed = interval_report([0.8], calibration, {0.8: (zero := np.zeros(4000), zero)}, unseen, {0.8: (np.zeros(40000),) * 2})
    assert abs(adaptive["0.8"]["coverage"] - 0.8) < 0.02 and abs(fixed["0.8"]["coverage"] - 0.8) < 0.02
    assert adaptive["0.8"]["mean_width"] < 0.96 * fixed["0.8"]["mean_width"]  # 0.93 here
    assert adaptive["0.8"]["method"] == "cqr" and "half_width" not in adaptive["0.8"]


@pytest.fixture(scope="module")
def horizon_search(tmp_path_factory, _empty_store):
    """One tiny search at data.horizon=3 with intervals (its run dir beside its store, as the interval studies expect),
    shared by the tests that read it: the `horizon_search` group runs them on one xdist worker."""
    directory = tmp_path_factory.mktemp("horizon")
    store, run_dir = store_in(directory, _empty_store), directory / "run"
    args = ["+space=dnn", *WITH_BLEND, "data.horizon=3", "search.intervals=[0.8,0.95]", "search.select.top_k=2"]
    args += ["search.select.folds=2", "search.ensemble=1", "space.window_size.per=horizon", "space.window_size.min=2"]
    args += ["space.window_size.max=4", "space.window_size.step=2", f"hydra.run.dir={run_dir}"]
    result = run_cli(args, store, directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return store, run_dir, result


@pytest.mark.slow
@pytest.mark.xdist_group("horizon_search")
def test_a_horizon_search_scores_logs_and_registers_h_columns(horizon_search):
    """A tiny search at data.horizon=3 with intervals: per-step MAE on trials and parent, intervals in summary.json and
    the table, a registered pyfunc model with 3 output columns."""
    import mlflow

    store, run_dir, result = horizon_search
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["horizon"] == 3
    steps = summary["per_step"]
    assert len(steps["winner"]["val"]) == len(steps["winner"]["test"]) == 3
    assert {"naive", "seasonal_naive", "drift", "moving_average"} <= set(steps)
    assert np.mean(steps["winner"]["test"]) == pytest.approx(summary["test_mae"], rel=1e-5)
    assert np.mean(steps["naive"]["test"]) == pytest.approx(summary["baselines"]["naive"]["test_mae"], rel=1e-5)
    assert summary["best_hyperparameters"]["window_size"] in (6, 12)  # 2 or 4 horizons of 3
    assert set(summary["intervals"]) == {"0.8", "0.95"}
    low, high = summary["intervals"]["0.8"], summary["intervals"]["0.95"]
    assert 0 < low["mean_width"] < high["mean_width"] and 0 <= low["coverage"] <= high["coverage"] <= 1
    assert "interval 80%" in result.stdout and "test MAE by step" in result.stdout

    client = MlflowClient(store, registry_uri=store)
    parent, children = parent_and_children(client, summary["mlflow_parent_run_id"])
    metrics = parent.data.metrics
    assert metrics["test_mae_h3"] == pytest.approx(steps["winner"]["test"][2])
    assert metrics["interval_95_coverage"] == pytest.approx(high["coverage"])
    assert parent.data.params["data.horizon"] == "3"
    trials = [c for c in children if "stage" not in c.data.tags and c.info.status == "FINISHED"]
    assert trials and all({"val_mae_h1", "val_mae_h2", "val_mae_h3"} <= set(c.data.metrics) for c in trials)
    for trial in trials:  # the trial's per-step figures are its best epoch's: they average to its score
        per_step = [trial.data.metrics[f"val_mae_h{k}"] for k in (1, 2, 3)]
        assert np.mean(per_step) == pytest.approx(trial.data.metrics["best_val_mae"], rel=1e-3)

    version = client.get_model_version(summary["registered_model"], summary["registered_version"])
    widths = [float(w) for w in version.tags["interval_95_half_width"].split(",")]
    assert version.tags["horizon"] == "3" and widths == pytest.approx(high["half_width"], rel=1e-5)
    assert "Forecasts 3 steps ahead" in version.description and "95% conformal interval" in version.description

    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model(summary["model_uri"])
    outputs = model.metadata.signature.outputs.to_dict()
    assert list(outputs[0]["tensor-spec"]["shape"]) == [-1, 3]
    windows = window_view(np.arange(1000, dtype=np.float32), summary["input_length"], 950, 960)[0]
    assert np.asarray(model.predict(np.ascontiguousarray(windows))).shape == (len(windows), 3)
    # The registered blend (its classical members one fixed linear map per step ahead) scores, served from windows
    # alone, the test MAE of the summary; its intervals are calibrated on its cross-fitted validation forecasts.
    assert summary["ensemble_weights"] and summary["blend"]["val_mae_cross_fitted"] is not None
    from data.sources import synthetic_series

    x, y = window_view(synthetic_series(length=600), summary["input_length"], 540, 600, 3)
    served = np.asarray(model.predict(np.ascontiguousarray(x, dtype=np.float32)))
    assert float(np.mean(np.abs(y - served))) == pytest.approx(summary["test_mae"], rel=1e-4)


@pytest.mark.slow
@pytest.mark.xdist_group("horizon_search")
def test_the_interval_studies_run_on_a_finished_horizon_search(horizon_search):
    """`bench.interval_study` and `bench.quantile_head` read a finished horizon search's run dir (what their `--tiny`
    runs first): the search above serves both, so they never rot."""
    _, run_dir, _ = horizon_search
    studies = (("interval_study", "split conformal (the search's)"), ("quantile_head", "conformalized quantile head (cqr)"))
    for script, expect in studies:
        command = [sys.executable, "-m", f"bench.{script}", str(run_dir)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert expect in result.stdout


def test_a_resume_with_another_horizon_is_refused(tmp_path):
    """A run dir's trials forecast its horizon: resuming them at another one would mix models of different outputs."""
    from data.errors import UserError
    from search.plan.run_dir import prepare_run_dir, unlock_run_dir
    from search.record.parent_record import save_parent_id

    identity = {"space": "dnn", "data": "synthetic", "tuner": "hyperband", "data.horizon": "1"}
    save_parent_id(tmp_path, "run-id", "1", identity)
    with pytest.raises(UserError, match="holds a search of data.horizon=1, not 7"):
        prepare_run_dir(tmp_path, True, {**identity, "data.horizon": "7"})
    unlock_run_dir(tmp_path)


def test_cqr_intervals_train_a_quantile_head_that_loads_safely(tmp_path, store):
    """`search.intervals_method=cqr` one step ahead: a child run `stage=intervals` trains the winner's configuration as
    a quantile head (logged, loadable with safe_mode), and its conformalized bands are reported and tagged."""
    import keras

    run_dir = tmp_path / "run"
    args = ["+space=dnn", *TINY_SEASONAL, "search.intervals=[0.8]", "search.intervals_method=cqr", "search.select.top_k=1"]
    result = run_cli([*args, "search.ensemble=1", f"hydra.run.dir={run_dir}"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    figures = summary["intervals"]["0.8"]
    assert figures["method"] == "cqr" and len(figures["margin"]) == 1 and 0 <= figures["coverage"] <= 1
    assert "half_width" not in figures and figures["mean_width"] > 0
    assert "conformalized quantile head" in result.stdout

    client = MlflowClient(store, registry_uri=store)
    parent = client.get_run(summary["mlflow_parent_run_id"])
    head_run = stage_runs(client, parent.info.run_id, "intervals")
    assert len(head_run) == 1 and head_run[0].info.status == "FINISHED"
    assert head_run[0].info.run_id == figures["quantile_head_run_id"]
    path = client.download_artifacts(head_run[0].info.run_id, "quantile_head.keras", str(tmp_path))
    assert keras.saving.load_model(path, compile=False).output_shape == (None, 2)  # to forecast: nothing to import
    import models.quantiles  # noqa: F401  (registers the pinball loss, to load it compiled)

    head = keras.saving.load_model(path)  # safe_mode=True: a registered loss, no Lambda
    assert head.output_shape == (None, 2) and head.loss.quantiles == pytest.approx([0.1, 0.9])
    version = client.get_model_version(summary["registered_model"], summary["registered_version"])
    assert (
        version.tags["interval_method"] == "cqr" and version.tags["interval_quantile_run_id"] == figures["quantile_head_run_id"]
    )
    assert float(version.tags["interval_80_margin"]) == pytest.approx(figures["margin"][0], rel=1e-5)
    assert parent.data.params["search.intervals_method"] == "cqr"


def test_the_verdict_names_the_steps_where_the_winner_loses_to_a_simple_baseline():
    from search.scoring.evaluation import verdict

    baselines = {"naive": {"test_mae": 5.0}, "seasonal_naive": {"test_mae": 9.0}}
    best = {"test": {"name": "naive", "mae": 5.0}}
    steps = {"naive": {"test": [5, 5, 5]}, "seasonal_naive": {"test": [9, 9, 3]}}
    line = verdict(4.0, 4.6, best, baselines, {**steps, "winner": {"test": [4, 6, 4]}})
    assert line.endswith(
        "it beats naive and seasonal_naive on test; step by step it does NOT beat naive at h2 nor seasonal_naive at h3"
    )
    line = verdict(4.0, 2.0, best, baselines, {**steps, "winner": {"test": [2, 2, 2]}})
    assert line.endswith("it beats naive and seasonal_naive on test; at every one of the 3 steps ahead too")


def test_intervals_on_pure_gaussian_noise_cover_at_their_level(tmp_path, store):
    """The whole pipeline on a series of pure N(10, 2) noise: every origin is as hard as any other (exchangeable), so
    the intervals calibrated on validation cover the test tail at their level, within sampling error."""
    rng = np.random.default_rng(7)
    path = tmp_path / "noise.csv"
    path.write_text("v\n" + "\n".join(f"{v:.5f}" for v in rng.normal(10.0, 2.0, size=4000)) + "\n")
    run_dir = tmp_path / "run"
    args = ["+space=dnn", "data=csv", f"data.path={path}", "data.column=v", "data.test_size=800", "data.horizon=2"]
    args += ["space.split_time.value=0.5", "search.intervals=[0.8,0.95]", "tuner.max_epochs=2", "tuner.factor=2"]
    args += ["search.select.top_k=1", "search.refit=false", "search.ensemble=1", *SMALL_DNN, f"hydra.run.dir={run_dir}"]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    intervals = json.loads((run_dir / "summary.json").read_text())["intervals"]
    for level, figures in intervals.items():
        # Sampling error of a coverage from n calibration and m test origins: sqrt(p (1 - p) (1/n + 1/m)); 4 of them, as
        # neighbouring origins share a value (h = 2), so fewer than m are independent.
        p, n, m = float(level), figures["calibration_origins"], 799
        assert n == 1599 and abs(figures["coverage"] - p) < 4 * np.sqrt(p * (1 - p) * (1 / n + 1 / m)), (level, figures)
    # The half-widths approach the noise's own quantiles (1.28 and 1.96 sigma: 2.56, 3.92), give or take the model's
    # error (here 80.7 % and 95.2 % coverage, half-widths 2.74 and 4.29 at step 1).
    assert 2.0 < intervals["0.8"]["half_width"][0] < 3.6 and 3.4 < intervals["0.95"]["half_width"][0] < 5.2

"""A user's story: run a search from the command line, then open MLflow and find every trial."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from search.plan.cores import AUTO_MAX_WORKERS, available_cores
from tests.conftest import CONV_LSTM_TUNED, SMALL_CONV_LSTM, TINY, parent_and_children, run_cli, stage_runs


@pytest.mark.slow
def test_conv_lstm_search_logs_every_trial_and_registers_the_champion(tmp_path, store, monkeypatch):
    """Also the stages after the search: a backtest of 3 configurations x 2 folds, then the 2 best refit and averaged."""
    run_dir = tmp_path / "run"
    stages = ["search.select.top_k=3", "search.select.folds=2", "search.refit=true", "search.ensemble=2"]
    tiny = [item for item in TINY if not item.startswith("search.")]
    result = run_cli(["+space=conv_lstm", *tiny, *SMALL_CONV_LSTM, *stages, f"hydra.run.dir={run_dir}"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "val_mae=" in result.stdout and "registered" in result.stdout

    summary = json.loads((run_dir / "summary.json").read_text())
    for field in ("best_val_mae", "test_mae", "baselines", "best_hyperparameters", "mlflow_parent_run_id"):
        assert summary[field] is not None, field
    assert set(summary["baselines"]) >= {"naive", "moving_average", "drift", "ets"}
    assert "verdict" in result.stdout and summary["verdict"] in result.stdout
    naive = summary["baselines"]["naive"]
    assert summary["skill_vs_naive"]["test"] == pytest.approx(1 - summary["test_mae"] / naive["test_mae"])
    assert summary["best_baseline"]["test"]["mae"] == min(b["test_mae"] for b in summary["baselines"].values())
    # The evaluated and registered model is the best trial at its best epoch: it scores what the search scored.
    assert summary["winner_val_mae"] == pytest.approx(summary["best_val_mae"], rel=1e-4)
    assert summary["trials"]["completed"] >= 3 and summary["trials"]["failed"] == 0
    assert summary["horizon"] == 1 and "per_step" not in summary and "intervals" not in summary  # one step, no intervals

    client = MlflowClient(store, registry_uri=store)
    parent = client.get_run(summary["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert {"space": "conv_lstm", "data": "synthetic", "tuner": "hyperband", "seed": "42"}.items() <= parent.data.tags.items()
    assert "git_commit" in parent.data.tags and parent.data.tags["verdict"] == summary["verdict"]
    assert parent.data.metrics["test_mae"] == pytest.approx(summary["test_mae"])
    assert parent.data.metrics["best_val_mae"] == pytest.approx(summary["best_val_mae"])
    assert {"baseline_naive_val_mae", "baseline_ets_test_mae", "skill_vs_naive_test", "mase_test"} <= set(parent.data.metrics)
    assert parent.data.metrics["test_mae_without_refit"] == pytest.approx(summary["test_mae_without_refit"])
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "summary.json", "search_progress.png", "forecast_best.png", "vs_baselines.png"} <= parent_files

    # What MLflow's UI shows without digging (issue: comparing trials in mlflow ui).
    tags = parent.data.tags
    assert tags["mlflow.source.name"] == "python -m search" and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.user"]
    assert tags.get("mlflow.source.git.commit") == tags["git_commit"] or tags["git_commit"] == "unknown"
    assert parent.info.run_name.startswith("conv_lstm-synthetic 20")  # space, data, date and time
    dataset = parent.inputs.dataset_inputs[0].dataset
    assert dataset.name == "synthetic" and dataset.digest and "synthetic_series(length=500" in dataset.source
    params = parent.data.params
    workers = str(min(available_cores(), AUTO_MAX_WORKERS))  # the default, search.workers=auto: one per core
    assert {"tuner.name": "hyperband", "tuner.max_epochs": "2", "search.workers": workers}.items() <= params.items()
    assert params["space.window_size"] == "int 10..20 step 10" and params["space.model"] == "fixed conv_lstm"
    for name, value in summary["best_hyperparameters"].items():  # the trials' param names: one column for all rows
        assert params[name] == params[f"best.{name}"] == str(value), name
    assert any(name.startswith("system/cpu_utilization") for name in parent.data.metrics)
    assert tags["mlflow.note.content"].startswith(f"**Verdict:** {summary['verdict']}")  # the run's Description
    experiment_tags = client.get_experiment(parent.info.experiment_id).tags
    assert experiment_tags["mlflow.experimentKind"] == "custom_model_development"  # the runs table, not GenAI's overview
    view = json.loads(experiment_tags["mlflow.sharedViewState.trials"])
    assert {"metrics.`best_val_mae`", "params.`window_size`", "params.`learning_rate`"} <= set(view["selectedColumns"])
    page = f"/#/experiments/{parent.info.experiment_id}/runs?workflowType=machine_learning&viewStateShareKey=trials"
    assert summary["ui_url"] == f"http://127.0.0.1:5000{page}"
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui" in summary["ui_command"] and summary["ui_url"] in result.stdout
    version = client.get_model_version(summary["registered_model"], summary["registered_version"])
    assert f"conv_lstm on synthetic, from trial {summary['best_trial_id']}" in version.description
    assert f"test MAE {summary['test_mae']:.4g}" in version.description

    # The backtest: every candidate on every fold, one FINISHED child run per fit; the winner has the lowest mean.
    candidates = summary["selection"]["candidates"]
    assert len(candidates) == 3 and all(len(c["fold_maes"]) == 2 for c in candidates)
    assert summary["best_trial_id"] == min(candidates, key=lambda c: c["backtest_mae"])["trial_id"]
    backtest = stage_runs(client, parent.info.run_id, "backtest")
    assert sorted((r.data.tags["source_trial_id"], r.data.tags["fold"]) for r in backtest) == sorted(
        (c["trial_id"], str(fold)) for c in candidates for fold in range(2)
    )
    assert all(r.info.status == "FINISHED" and "fold_mae" in r.data.metrics for r in backtest)
    _assert_blend(client, summary, candidates, result.stdout, parent_files)

    _, children = parent_and_children(client, parent.info.run_id)
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert len(finished) == summary["trials"]["completed"] == len(children)
    assert len({c.data.tags["trial_id"] for c in finished}) == len(finished)
    scores = []
    for child in finished:
        assert {"trial_id", "bracket", "round", "status"} <= set(child.data.tags)
        for name in CONV_LSTM_TUNED:
            assert name in child.data.params, name
        history = client.get_metric_history(child.info.run_id, "val_mae")
        assert history and [m.step for m in history] == sorted(m.step for m in history)
        assert {"train_loss", "val_loss", "train_mae", "val_mae", "best_val_mae"} <= set(child.data.metrics)
        assert "loss" not in child.data.metrics  # the training loss is not confused with the `loss` hyperparameter
        # What each trial cost: seconds per epoch, in fit, and in all (build and datasets included).
        epoch_seconds = client.get_metric_history(child.info.run_id, "epoch_seconds")
        assert len(epoch_seconds) == len(history) and all(m.value > 0 for m in epoch_seconds)
        metrics = child.data.metrics
        assert metrics["trial_seconds"] > metrics["fit_seconds"] >= sum(m.value for m in epoch_seconds)
        files = {f.path for f in client.list_artifacts(child.info.run_id)}
        assert {"forecast_validation.png", "history.json", "model.keras"} <= files
        scores.append(child.data.metrics["best_val_mae"])
    assert min(scores) == pytest.approx(summary["best_val_mae"], rel=1e-5)
    # Hyperband continues trials across rounds: some child comes from round 1, named and tagged as a continuation.
    continued = [c for c in finished if c.data.tags["round"] == "1"]
    assert continued
    for child in continued:
        assert child.info.run_name == f"trial-{child.data.tags['trial_id']} (continues {child.data.tags['continues']})"
    assert all(c.data.tags["mlflow.source.name"] == "python -m search" and c.inputs.dataset_inputs for c in finished)

    version = client.get_model_version_by_alias(summary["registered_model"], "champion")
    assert version.run_id == parent.info.run_id
    assert float(version.tags["test_mae"]) == pytest.approx(summary["test_mae"], rel=1e-5)
    assert "skill_vs_naive" in version.tags

    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)  # for this test only: a global set_registry_uri leaked into later tests
    model = mlflow.pyfunc.load_model(f"models:/{summary['registered_model']}@champion")  # the blend
    forecast = np.asarray(model.predict(np.full((2, summary["input_length"]), 50.0, dtype=np.float32)))
    assert forecast.shape[0] == 2 and np.all(np.isfinite(forecast))
    # The served blend forecasts from the window alone, statistical members included: its test MAE is the summary's.
    from data.sources import synthetic_series
    from data.windows import window_view

    x, y = window_view(synthetic_series(length=500), summary["input_length"], 440, 500)
    served = np.asarray(model.predict(np.ascontiguousarray(x, dtype=np.float32))).reshape(y.shape)
    assert float(np.mean(np.abs(y - served))) == pytest.approx(summary["test_mae"], rel=1e-4)
    path = mlflow.artifacts.download_artifacts(f"models:/{summary['registered_model']}@champion")
    keras_file = next(Path(path).rglob("*.keras"))
    import keras

    reloaded = keras.saving.load_model(keras_file)  # safe_mode=True: no Lambda, only Keras' own layers
    assert np.allclose(np.asarray(reloaded.predict_on_batch(x[:4])).reshape(-1), served[:4], rtol=1e-5)


def _assert_blend(client, summary: dict, candidates: list[dict], stdout: str, parent_files: set) -> None:
    """The blend: the 2 best configurations of the backtest refit one fold back, and the winner as searched (child runs
    `stage=blend_candidate`), beside the statistical forecasters; its members and weights in summary.json, the closing
    table and the parent run; the refit members retrained on every pre-test point (`stage=refit`)."""
    parent = client.get_run(summary["mlflow_parent_run_id"])
    best_two = sorted(candidates, key=lambda c: c["backtest_mae"])[:2]
    offered = stage_runs(client, parent.info.run_id, "blend_candidate")
    assert sorted((r.data.tags["source_trial_id"], r.data.tags["recipe"]) for r in offered) == sorted(
        [(best_two[0]["trial_id"], "searched")] + [(c["trial_id"], "refit") for c in best_two]  # the winner as searched
    )
    refit_stops = {r.data.params["train_stop"] for r in offered if r.data.tags["recipe"] == "refit"}
    assert refit_stops == {"339"}  # one fold back: every point before the validation points
    blend = summary["blend"]
    names = {m["name"] for m in blend["members"]}
    assert {"naive", "drift", "moving_average", "ets"} <= names and len(names) == len(blend["members"])
    weights = summary["ensemble_weights"]
    assert weights == {m["name"]: m["weight"] for m in blend["members"] if m["weight"] > 0}
    assert sum(weights.values()) == pytest.approx(1.0) and blend["rounds"] >= 1
    assert blend["val_mae_cross_fitted"] is not None and "blend.json" in parent_files
    assert parent.data.metrics["blend_val_mae"] == pytest.approx(blend["val_mae"])
    for name, weight in weights.items():
        assert float(parent.data.params[f"ensemble_weight.{name.replace(' ', '_')}"]) == pytest.approx(weight)
        assert any(line.split()[:1] == [f"{weight:.3f}"] and name in line for line in stdout.splitlines()), name
    chosen = [m for m in blend["members"] if m["weight"] > 0]  # an average stands for its parts, each a network
    held = {name for m in chosen for name in m.get("parts", [m["name"]]) if name.startswith("trial ")}
    refits = stage_runs(client, parent.info.run_id, "refit")
    assert sorted(r.data.tags["source_trial_id"] for r in refits) == sorted(n.split()[1] for n in held if "refit" in n)
    assert all(r.data.params["train_stop"] == "440" for r in refits)  # every pre-test point
    assert summary["ensemble_members"] == max(1, len(held))


@pytest.mark.slow
# linear, dnn and lstm run end to end in test_scale_out, test_lr_find/test_reliability and the reproducibility test.
def test_every_space_runs_end_to_end(tmp_path, store):
    """rnn and gru, as one multirun (one process, TensorFlow imported once). Also the lean logging switches: no
    per-trial plot or model, the rest logged as usual."""
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        "+space=rnn,gru",
        *TINY,
        "tuner=random",
        "tuner.max_trials=2",
        "tuner.max_epochs=1",
        "tracking.log_trial_plots=false",
        "tracking.log_trial_models=false",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store)
    spaces = []
    for job in ("0", "1"):
        summary = json.loads((sweep_dir / job / "summary.json").read_text())
        spaces.append(summary["space"])
        assert summary["trials"]["completed"] == 2
        _, children = parent_and_children(client, summary["mlflow_parent_run_id"])
        assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]
        for child in children:
            assert {f.path for f in client.list_artifacts(child.info.run_id)} == {"history.json"}
            assert {"val_mae", "best_val_mae", "epoch_seconds", "trial_seconds"} <= set(child.data.metrics)
    assert sorted(spaces) == ["gru", "rnn"]


def test_without_a_space_lists_the_spaces_and_exits_2(tmp_path):
    result = run_cli([], None, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "choose a search space: python -m search +space=<conv_lstm|dnn|gru|linear|lstm|rnn>"
    ]


def test_default_store_is_an_absolute_sqlite_file_in_the_launch_dir(tmp_path):
    from pathlib import Path

    from search.record.tracking import resolve_uri

    uri = resolve_uri(None, Path("."))
    assert uri.startswith("sqlite:////") and uri.endswith("/mlflow.db")


@pytest.mark.slow
def test_last_value_scaling_on_a_random_walk_forecasts_like_naive(tmp_path, store):
    """On a random walk nothing beats the last value: a last_value model must land within 5 % of naive on the
    test tail (a standard-scaled one drifts off as the walk leaves its training range). Also the refit run, and a
    user's CSV end to end: a date column, the experiment and the registered model named after the data and file."""
    walk = 100 + np.cumsum(np.random.RandomState(3).normal(0, 1, 800))
    dates = pd.date_range("2020-01-01", periods=len(walk), freq="D").strftime("%Y-%m-%d")
    path = tmp_path / "walk.csv"
    pd.DataFrame({"date": dates, "v": walk.round(4)}).to_csv(path, index=False)
    run_dir = tmp_path / "run"
    args = [
        "+space=linear",
        "data=csv",
        f"data.path={path}",
        "data.column=v",
        "data.time_column=date",
        "data.test_size=150",
        "search.workers=1",
        "space.scaling.value=last_value",
        "space.window_size.value=10",
        "space.learning_rate.value=0.01",
        "space.optimizer.value=adam",
        "tuner=random",
        "tuner.max_trials=1",
        "tuner.max_epochs=10",
        "search.select.top_k=1",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["data"] == "csv" and summary["registered_model"] == "walk-linear"
    assert MlflowClient(store).get_experiment_by_name("csv-linear") is not None
    assert summary["test_mae"] / summary["baselines"]["naive"]["test_mae"] == pytest.approx(1.0, abs=0.05)
    assert "backtest" not in summary["stage_seconds"] and summary["selection"]["folds"] == 0  # top_k=1: no backtest
    (refit,) = stage_runs(MlflowClient(store), summary["mlflow_parent_run_id"], "refit")
    assert refit.info.status == "FINISHED" and refit.data.params["train_stop"] == "650"


@pytest.mark.slow
def test_an_ensemble_of_every_candidate_skips_the_backtest_and_averages_the_search_best(tmp_path, store):
    """`search.select.backtest=auto` (the default) with `search.ensemble` >= `top_k`: the ranking could not change the
    registered model, so no fold is trained; the members are the search's best configurations, the winner its best."""
    run_dir = tmp_path / "run"
    tiny = [item for item in TINY if not item.startswith("search.select")]
    stages = ["search.select.top_k=3", "search.ensemble=3"]
    result = run_cli(["+space=dnn", *tiny, "space.window_size.max=20", *stages, f"hydra.run.dir={run_dir}"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: no backtest: the registered model averages all 3 best configurations" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    selection = summary["selection"]
    assert selection["folds"] == 0 and selection["backtest"] == "auto" and "backtest" not in summary["stage_seconds"]
    assert len(selection["candidates"]) == 3 and all(c["fold_maes"] == [] for c in selection["candidates"])
    scores = [c["search_val_mae"] for c in selection["candidates"]]
    assert scores == sorted(scores) and summary["best_trial_id"] == summary["search_best_trial_id"]

    client = MlflowClient(store)
    parent_id = summary["mlflow_parent_run_id"]
    assert stage_runs(client, parent_id, "backtest") == []
    members = stage_runs(client, parent_id, "ensemble")
    assert sorted(r.data.tags["source_trial_id"] for r in members) == sorted(c["trial_id"] for c in selection["candidates"])
    assert summary["ensemble"] == summary["ensemble_members"] == 3
    params = client.get_run(parent_id).data.params
    assert params["search.select.backtest"] == "auto" and params["search.select.folds"] == "0"

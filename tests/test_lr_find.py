"""The learning-rate range test from the command line: `mode=lr_find`, and `space.learning_rate.range=auto`."""

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL_CONV_LSTM, TINY, parent_and_children, run_cli, store_in


def _lr_find(space: str, tmp_path, store, *overrides):
    run_dir = tmp_path / space
    result = run_cli([f"+space={space}", "mode=lr_find", *overrides, f"hydra.run.dir={run_dir}"], store, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result, run_dir, json.loads((run_dir / "lr_find.json").read_text())


def _falls_around(curve: pd.DataFrame, rate: float) -> bool:
    """The measured (raw, unsmoothed) loss falls across the decade centred on `rate`: least-squares slope < 0."""
    near = curve[(curve.learning_rate > rate / 10**0.5) & (curve.learning_rate < rate * 10**0.5)]
    slope = np.polyfit(np.log10(near.learning_rate), near.loss, 1)[0]
    return slope < 0 and len(near) >= 10


SPACES = ("conv_lstm", "dnn")


@pytest.fixture(scope="module")
def sweeps_found(tmp_path_factory, _empty_store):
    """`mode=lr_find` on each of SPACES as one multirun (one process: TensorFlow imported once), shared by the tests
    that read it: the `lr_find_sweeps` group runs them on one xdist worker."""
    directory = tmp_path_factory.mktemp("lr_find")
    store, sweep_dir = store_in(directory, _empty_store), directory / "sweep"
    args = ["-m", f"+space={','.join(SPACES)}", "mode=lr_find", f"hydra.sweep.dir={sweep_dir}"]
    result = run_cli(args, store, directory, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return store, result, {space: sweep_dir / str(job) for job, space in enumerate(SPACES)}


@pytest.mark.slow
@pytest.mark.xdist_group("lr_find_sweeps")
@pytest.mark.parametrize("space", SPACES)
def test_lr_find_suggests_a_rate_where_the_measured_loss_falls(sweeps_found, space):
    store, result, run_dirs = sweeps_found
    run_dir = run_dirs[space]
    found = json.loads((run_dir / "lr_find.json").read_text())
    rate = found["suggested_learning_rate"]
    assert f"suggested learning_rate  {rate:.3g}" in result.stdout

    curve = pd.read_csv(run_dir / "lr_find.csv")
    assert list(curve.columns) == ["step", "learning_rate", "loss", "smoothed_loss"]
    assert np.all(np.diff(curve.learning_rate) > 0) and curve.learning_rate.iloc[0] == pytest.approx(1e-7)
    assert _falls_around(curve, rate)
    lowest = curve.learning_rate[curve.smoothed_loss.idxmin()]
    assert rate < lowest
    assert curve.loss[curve.learning_rate <= rate].iloc[:10].mean() > curve.loss[curve.learning_rate.between(rate, lowest)].mean()
    assert found["range"] == pytest.approx([rate / 10, rate * 3])

    image = matplotlib.image.imread(run_dir / "lr_find.png")
    assert image.shape[0] > 300 and image.shape[1] > 500

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(f"synthetic-{space}")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.mode = 'lr_find'")
    assert run.info.run_id == found["mlflow_run_id"] and run.info.status == "FINISHED"
    assert run.data.metrics["suggested_learning_rate"] == pytest.approx(rate)
    assert run.data.params["lr_find.per"] == "batch" and run.data.params["model"] == space
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {"lr_find.png", "lr_find.csv"}
    assert len(client.get_metric_history(run.info.run_id, "loss")) == len(curve)


@pytest.mark.slow
def test_a_diverging_sweep_ends_cleanly_with_a_suggestion_from_before_it(tmp_path, store):
    result, run_dir, found = _lr_find(
        "dnn",
        tmp_path,
        store,
        "space.optimizer.value=sgd",
        "space.loss.value=mse",
        "lr_find.start=1e-9",
        "lr_find.end=1e4",
        "lr_find.stop_factor=0",  # stop on NaN/inf only
    )
    curve = pd.read_csv(run_dir / "lr_find.csv")
    assert not np.isfinite(curve.loss.iloc[-1]) and len(curve) < 200
    assert found["stopped_because"].startswith("loss became")
    assert found["diverged_at"] == pytest.approx(curve.learning_rate.iloc[-1])
    assert found["suggested_learning_rate"] < found["range"][1] <= curve.learning_rate.iloc[-2]
    assert _falls_around(curve[np.isfinite(curve.loss)], found["suggested_learning_rate"])
    (run,) = MlflowClient(store).search_runs(
        [MlflowClient(store).get_experiment_by_name("synthetic-dnn").experiment_id], "tags.mode = 'lr_find'"
    )
    assert run.info.status == "FINISHED"


@pytest.mark.slow
def test_a_search_with_automatic_bounds_logs_them_and_the_plot_on_its_parent_run(tmp_path, store):
    run_dir = tmp_path / "run"
    args = ["+space=conv_lstm", *TINY, *SMALL_CONV_LSTM, "space.learning_rate.range=auto", "lr_find.steps=60"]
    result = run_cli([*args, f"hydra.run.dir={run_dir}"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    low, high = summary["learning_rate_range"]["range"]
    assert f"learning_rate range {low:.3g} .. {high:.3g}" in result.stdout

    client = MlflowClient(store)
    parent, children = parent_and_children(client, summary["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert float(parent.data.params["learning_rate.min"]) == pytest.approx(low)
    assert float(parent.data.params["learning_rate.max"]) == pytest.approx(high)
    assert parent.data.params["learning_rate.range"] == "auto"
    assert {f.path for f in client.list_artifacts(parent.info.run_id, "lr_find")} == {
        "lr_find/lr_find.png",
        "lr_find/lr_find.csv",
    }

    (finder,) = [c for c in children if c.data.tags.get("mode") == "lr_find"]
    assert parent.data.tags["lr_find_run_id"] == finder.info.run_id
    trials = [c for c in children if "trial_id" in c.data.tags]
    assert len(trials) == summary["trials"]["completed"] >= 3
    assert all(low <= float(t.data.params["learning_rate"]) <= high for t in trials)

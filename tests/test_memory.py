"""A long search does not keep every finished trial's training graph alive (TensorFlow's custom-gradient registry leak)."""

import gc

import pytest
from omegaconf import OmegaConf

from data.sources import synthetic_series
from data.split import plan_layout
from search.memory import release_traced_graphs, startup_objects_frozen
from search.space import candidates, validate_space
from search.tracking import Tracker
from tests.conftest import SMALL_CONV_LSTM, TINY
from tests.test_spaces import compose_config


def live_train_graphs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "FuncGraph" and o.name == "one_step_on_data")


@pytest.mark.slow
def test_finished_trials_leave_no_training_graph_behind(tmp_path, store, monkeypatch):
    import keras

    from search.hypermodel import WindowedHyperModel
    from search.tuner import make_tuner

    # The Tracker points MLflow's globals (and so these variables) at this store: put them back afterwards.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    cfg = compose_config("+space=conv_lstm", *TINY, *SMALL_CONV_LSTM, "tuner=random", "tuner.max_trials=3", "tuner.max_epochs=1")
    specs = validate_space(OmegaConf.to_container(cfg.space, resolve=True))
    series = synthetic_series(length=cfg.data.length)
    layout = plan_layout(len(series), cfg.data.test_size, candidates(specs["split_time"]), candidates(specs["window_size"]))
    keras.utils.set_random_seed(0)
    hypermodel = WindowedHyperModel(series, layout, specs, 100, 0, 0)
    tracker = Tracker(store, "memory")
    tracker.start_parent("memory", {})
    tuner = make_tuner(cfg.tuner, hypermodel, tracker, specs, str(tmp_path), False, 0, False)
    before = live_train_graphs()
    with startup_objects_frozen():
        tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    tracker.drain()
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]

    assert len(completed) == 3
    assert live_train_graphs() - before == 0, "a finished trial's traced train step is still alive"
    assert release_traced_graphs() == 0, "the last trial's gradient functions were not released"
    assert gc.get_freeze_count() == 0, "objects left frozen after the search"

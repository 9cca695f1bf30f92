"""A long search does not keep every finished trial's training graph alive (TensorFlow's custom-gradient registry leak)."""

import gc
from pathlib import Path

import pytest

from tests.conftest import SMALL_CONV_LSTM, TINY, call_in_child, in_process_tuner


def live_train_graphs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "FuncGraph" and o.name == "one_step_on_data")


def search_and_count(directory: str, store: str) -> dict:
    """Run a 3-trial search in this process; count what it left behind (run in a child process by the test)."""
    from search.fit.memory import release_traced_graphs, startup_objects_frozen

    overrides = ["+space=conv_lstm", *TINY, *SMALL_CONV_LSTM, "tuner=random", "tuner.max_trials=3", "tuner.max_epochs=1"]
    cfg, tracker, tuner = in_process_tuner(directory, store, "memory", overrides)
    before = live_train_graphs()
    with startup_objects_frozen():
        tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    tracker.drain()
    return {
        "completed": sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values()),
        "graphs_left": live_train_graphs() - before,
        "gradients_left": release_traced_graphs(),
        "frozen_left": gc.get_freeze_count(),
    }


@pytest.mark.slow
def test_finished_trials_leave_no_training_graph_behind(tmp_path, store):
    counts, _ = call_in_child("tests.test_memory", "search_and_count", str(tmp_path), store)
    assert counts["completed"] == 3
    assert counts["graphs_left"] == 0, "a finished trial's traced train step is still alive"
    assert counts["gradients_left"] == 0, "the last trial's gradient functions were not released"
    assert counts["frozen_left"] == 0, "objects left frozen after the search"
    assert Path(tmp_path / "tuner").is_dir()

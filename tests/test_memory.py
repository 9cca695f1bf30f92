"""A long search does not keep every finished trial's training graph alive (TensorFlow's custom-gradient registry leak)."""

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SMALL_CONV_LSTM, TINY, cli_env


def live_train_graphs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "FuncGraph" and o.name == "one_step_on_data")


def search_and_count(directory: str, store: str) -> dict:
    """Run a 3-trial search in this process; count what it left behind (run in a child process by the test)."""
    import keras
    from omegaconf import OmegaConf

    from data.sources import synthetic_series
    from data.split import plan_layout
    from search.hypermodel import WindowedHyperModel
    from search.memory import release_traced_graphs, startup_objects_frozen
    from search.space import candidates, validate_space
    from search.tracking import Tracker
    from search.tuner import make_tuner
    from tests.test_spaces import compose_config

    overrides = ["tuner=random", "tuner.max_trials=3", "tuner.max_epochs=1"]
    cfg = compose_config("+space=conv_lstm", *TINY, *SMALL_CONV_LSTM, *overrides)
    specs = validate_space(OmegaConf.to_container(cfg.space, resolve=True))
    series = synthetic_series(length=cfg.data.length)
    layout = plan_layout(len(series), cfg.data.test_size, candidates(specs["split_time"]), candidates(specs["window_size"]))
    keras.utils.set_random_seed(0)
    hypermodel = WindowedHyperModel(series, layout, specs, 100, 0, 0)
    tracker = Tracker(store, "memory")
    tracker.start_parent("memory", {})
    tuner = make_tuner(cfg.tuner, hypermodel, tracker, specs, directory, False, 0, False)
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
    code = "import json, sys; from tests.test_memory import search_and_count; print(json.dumps(search_and_count(*sys.argv[1:])))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), store],
        cwd=ROOT,
        env=cli_env(None),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])

    assert counts["completed"] == 3
    assert counts["graphs_left"] == 0, "a finished trial's traced train step is still alive"
    assert counts["gradients_left"] == 0, "the last trial's gradient functions were not released"
    assert counts["frozen_left"] == 0, "objects left frozen after the search"
    assert Path(tmp_path / "tuner").is_dir()

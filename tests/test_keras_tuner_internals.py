"""The parts of Keras Tuner's private API the search relies on, each pinned here: an upgrade that renames or reshapes
one fails this file by name, not a search hours later (docs/architecture.md, "Keras Tuner internals").

Each test names the module of ours that reads the attribute and why."""

from __future__ import annotations

import inspect

import keras_tuner
import pytest


def test_save_json_is_read_by_module_attribute_where_oracle_state_is_written():
    """search/tune/tuner.py replaces `keras_tuner.src.utils.save_json` with an atomic writer: that works only while
    the oracle, the trials and the tuner call it through the `utils` module, not a name imported from it."""
    from keras_tuner.src import utils
    from keras_tuner.src.engine import oracle, stateful, trial
    from keras_tuner.src.engine import tuner as engine_tuner

    import search.tune.tuner  # noqa: F401 - installs the atomic writer

    assert utils.save_json.__name__ == "_save_json_whole"
    # The oracle and every trial save through `Stateful.save`; the tuner writes its own state file.
    assert issubclass(oracle.Oracle, stateful.Stateful) and issubclass(trial.Trial, stateful.Stateful)
    for module in (stateful, engine_tuner):
        source = inspect.getsource(module)
        assert "utils.save_json(" in source, module.__name__
        assert "import save_json" not in source, module.__name__


def test_the_oracle_lock_tables_and_synchronized_exist():
    """search/processes/oracle_guard.py (`shared_across_threads`, `reclaim`) releases a lock `synchronized` left held, and
    takes a dead worker's trial back under it."""
    from keras_tuner.src.engine import oracle as oracle_module

    assert isinstance(oracle_module.LOCKS, dict) and isinstance(oracle_module.THREADS, dict)
    assert callable(oracle_module.synchronized) and keras_tuner.synchronized is oracle_module.synchronized
    source = inspect.getsource(oracle_module.synchronized)
    assert "LOCKS[oracle]" in source and "THREADS[oracle]" in source


def test_an_oracle_has_the_fields_the_search_sets_and_reads(tmp_path):
    """`_pin_seed` sets `seed` and `_seed_state`; `reclaim` reads `tuner_ids`, `ongoing_trials`, `_retry_queue`;
    Bayesian optimisation keeps `_random_state` and builds its process with `_make_gpr`."""
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 1, 4)
    for oracle in (
        keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=3, hyperparameters=hp, seed=1),
        keras_tuner.oracles.BayesianOptimizationOracle(objective="val_loss", max_trials=2, hyperparameters=hp, seed=1),
    ):
        oracle._set_project_dir(str(tmp_path), type(oracle).__name__)
        for field in ("seed", "_seed_state", "tuner_ids", "ongoing_trials", "_retry_queue"):
            assert hasattr(oracle, field), (type(oracle).__name__, field)
        assert isinstance(oracle._retry_queue, list) and isinstance(oracle.ongoing_trials, dict)
    assert hasattr(oracle, "_random_state") and callable(oracle._make_gpr)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("keras_tuner.src.distribute.oracle_client", ["OracleClient"]),
        ("keras_tuner.src.distribute.oracle_chief", ["OracleServicer", "exit_chief"]),
        ("keras_tuner.src", ["protos"]),
        ("keras_tuner.src.engine.trial", ["Trial", "TrialStatus"]),
    ],
)
def test_the_distributed_parts_the_workers_and_the_guard_use_exist(module, names):
    """search/processes/workers.py serves the oracle to local workers with `OracleServicer` and stops it with
    `exit_chief`; search/processes/oracle_guard.py wraps the servicer and the client (`OracleClient`) with a token."""
    import importlib

    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name), f"{module}.{name}"


def test_the_hyperband_budget_we_compute_is_keras_tuners():
    """search/plan/budget.py computes Hyperband's trials per bracket and round from the config (progress lines, the
    time left) as `HyperbandOracle._get_size` and `_get_epochs` do."""
    from search.plan.budget import hyperband_schedule

    for max_epochs, factor in ((27, 3), (27, 4), (2, 2), (81, 3), (9, 3)):
        oracle = keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=max_epochs, factor=factor)
        expected = []  # each trial's epochs: from where the round before stopped to this round's
        for bracket in reversed(range(oracle._get_num_brackets())):
            for round_ in range(oracle._get_num_rounds(bracket)):
                before = oracle._get_epochs(bracket, round_ - 1) if round_ else 0
                expected += [oracle._get_epochs(bracket, round_) - before] * oracle._get_size(bracket, round_)
        assert hyperband_schedule(max_epochs, factor) == expected, (max_epochs, factor)

"""Shared fixtures: a temporary sqlite MLflow store and a way to run the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tiny import answers
from tests.forked_cli import ForkedCommand

ROOT = Path(__file__).resolve().parent.parent

# Small and fast, but the real pipeline: a 500-point course series, tiny models, tiny budgets.
TINY = [
    "data.length=500",
    "data.test_size=60",
    "data.season_length=0",
    "tuner.max_epochs=2",
    "tuner.factor=2",
    "tuner.patience=0",
    # The stages after the search (backtest, refit, blend) have their own tests; elsewhere they would only add minutes.
    "search.select.top_k=1",
    "search.refit=false",
    "search.blend=false",
    # One process (the default, auto, starts one per core): a test's search is repeatable, and tests run side by side.
    "search.workers=1",
]


# The conv_lstm space shrunk to a few seconds a trial.
SMALL_CONV_LSTM = [
    "space.window_size.min=10",
    "space.window_size.max=20",
    "space.filters.values=[4,8]",
    "space.lstm_units.min=4",
    "space.lstm_units.max=8",
    "space.lstm_units.step=4",
    "space.lstm_layers.max=1",
    "space.batch_size.values=[32]",
    "space.bidirectional.value=false",  # half the LSTM work; bidirectional builders are covered by test_models
]

# What the users asked conv_lstm to tune; also the MLflow param names of its trials.
CONV_LSTM_TUNED = (
    "window_size",
    "split_time",
    "batch_size",
    "filters",
    "kernel_size",
    "lstm_units",
    "lstm_layers",
    "bidirectional",
    "learning_rate",
)


def call_in_child(module: str, function: str, *args: str) -> tuple[dict, str]:
    """`module.function(*args)` in a process of its own (forked: `run_code`); its JSON result and the child's stderr."""
    code = f"import json, sys; from {module} import {function} as f; print(json.dumps(f(*sys.argv[1:])))"
    result = run_code(code, list(args), None, ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def in_process_tuner(directory: str, store: str, experiment: str, overrides: list[str]):
    """The config, tracker (parent run started) and tracked tuner `python -m search` would build, in this process.

    For tests that must reach inside a search (its memory, its MLflow writes). An in-process Tracker
    sets MLflow's process-wide URIs, so such tests run this in a child process.
    """
    import keras

    from data.sources import synthetic_series
    from data.split import plan_layout
    from search.fit.hypermodel import WindowedHyperModel
    from search.plan.planning import searched_space
    from search.plan.space import candidates
    from search.record.tracking import Tracker
    from search.tune.tuner import make_tuner
    from tests.test_spaces import compose_config

    cfg = compose_config(*overrides, "seed=0", "tracking.log_trial_models=false")
    specs, _ = searched_space(cfg.space, cfg.data)
    series = synthetic_series(length=cfg.data.length)
    layout = plan_layout(len(series), cfg.data.test_size, candidates(specs["split_time"]), candidates(specs["window_size"]))
    keras.utils.set_random_seed(0)
    hypermodel = WindowedHyperModel(
        series, layout, specs, shuffle_buffer=100, patience=0, seed=0, season_length=cfg.data.season_length
    )
    tracker = Tracker(store, experiment)
    tracker.start_parent(experiment, {})
    tuner = make_tuner(cfg.tuner, cfg.tracking, cfg.seed, hypermodel, tracker, specs, Path(directory), resume=False)
    return cfg, tracker, tuner


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory) -> Path:
    """A sqlite store with MLflow's tables created once per session: creating them costs each search ~1.5 s."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def store(tmp_path, _empty_store) -> str:
    """A fresh sqlite tracking URI in a temporary directory (a copy of an empty, migrated store)."""
    return store_in(tmp_path, _empty_store)


def store_in(directory: Path, empty_store: Path) -> str:
    """A copy of the empty, migrated store as `directory`/mlflow.db: its sqlite tracking URI."""
    shutil.copyfile(empty_store, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


def cli_env(tracking_uri: str | None) -> dict:
    """This environment, pointed at `tracking_uri` (or none), with the checkout importable and output unbuffered."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


ORACLE_TOKEN = {"SEARCH_ORACLE_TOKEN": "a-token-the-tests-chiefs-and-workers-share"}
"""What a distributed chief and its workers must share (`search.processes.oracle_guard`)."""


def run_cli(args: list[str], tracking_uri: str | None, cwd: Path, timeout: int = 600, extra_env: dict | None = None):
    """Run `python -m search ...` as a user would (`extra_env` added to its environment); returns the CompletedProcess.

    The command runs in a session of its own: on a timeout its whole process group is killed (its workers, a
    multirun's jobs), not the command alone, so nothing it started trains on beside the next tests.
    """
    return _completed(start_cli(args, tracking_uri, cwd, extra_env), timeout)


def run_code(code: str, args: list[str], tracking_uri: str | None, cwd: Path, timeout: int = 300, extra_env: dict | None = None):
    """`python -c code args` with the CLI's environment: a command-line run with a fault injected by `code` (e.g. a
    `kill -9` at one chosen instant) before it calls `search.__main__.cli`. Forked (`tests.forked_cli`)."""
    process = ForkedCommand("code", [code, *args], {**cli_env(tracking_uri), **(extra_env or {})}, cwd)
    _STARTED.append(process)
    return _completed(process, timeout)


def _completed(process, timeout: int) -> subprocess.CompletedProcess:
    """Wait for a started command and collect its output; on a timeout its whole process group is killed first."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


_STARTED: list = []


def start_cli(args: list[str], tracking_uri: str | None, cwd: Path, extra_env: dict | None = None, **popen_kwargs):
    """Start `python -m search ...` in the background (`extra_env` added to its environment), stdout and stderr piped,
    for tests that act mid-search.

    Forked from a warm interpreter (`tests.forked_cli`: the same code path without ~5 s of imports), unless the
    command needs a fresh one: Keras on another backend than TensorFlow, or `popen_kwargs` for `subprocess.Popen`.
    In a session of its own either way: whatever a failed test leaves running of it is killed, group and all, after
    the test (`_no_search_outlives_its_test`)."""
    env = {**cli_env(tracking_uri), **(extra_env or {})}
    if popen_kwargs or _needs_fresh_interpreter(args, env):
        process = subprocess.Popen(
            [sys.executable, "-m", "search", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **popen_kwargs,
        )
    else:
        process = ForkedCommand("module", args, env, cwd)
    _STARTED.append(process)
    return process


def _needs_fresh_interpreter(args: list[str], env: dict) -> bool:
    """Whether a command would run Keras on another backend than the forkserver's TensorFlow (a multirun's job on
    another backend starts its own interpreter anyway)."""
    if "-m" in args or "--multirun" in args:
        return False
    backends = [arg.split("=", 1)[1] for arg in args if arg.startswith("backend=")]
    return any(b not in ("tensorflow", "auto") for b in backends) or env.get("KERAS_BACKEND", "tensorflow") != "tensorflow"


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group `process` leads (it was started in a session of its own), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=60)
    for stream in (process.stdout, process.stderr):
        if stream is not None and not stream.closed:
            stream.close()


@pytest.fixture(autouse=True)
def _no_search_outlives_its_test():
    yield
    while _STARTED:  # whatever is left of each group (the command, or a worker it left behind)
        kill_group(_STARTED.pop())


def wait_for_trials(process: subprocess.Popen, count: int) -> None:
    """Read the search's progress lines until `count` trials have finished."""
    seen = 0
    for line in process.stdout:
        seen += line.startswith("trial ")
        if seen == count:
            return


def parent_and_children(client, parent_id: str):
    """A search's parent run and its trials' child runs (not the backtest, refit and ensemble fits: `stage_runs`)."""
    parent = client.get_run(parent_id)
    return parent, [run for run in _child_runs(client, parent) if "stage" not in run.data.tags]


def stage_runs(client, parent_id: str, stage: str | None = None):
    """The child runs of the fits after the search (tag `stage`: backtest, refit, ensemble)."""
    runs = [run for run in _child_runs(client, client.get_run(parent_id)) if "stage" in run.data.tags]
    return [run for run in runs if stage is None or run.data.tags["stage"] == stage]


def _child_runs(client, parent):
    filter_string = f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    return client.search_runs([parent.info.experiment_id], filter_string=filter_string, max_results=1000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tmp_path, port: int) -> subprocess.Popen:
    """`mlflow server` bound to 127.0.0.1 with a sqlite backend and proxied artifacts; waits until it answers."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if answers(port, 90):
        return server
    stop_server(server)
    pytest.fail("mlflow server did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)

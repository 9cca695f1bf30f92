"""`search.workers=N`: N trials at once in one command, one parent run, nothing lost on a crash or an interrupt."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from data.errors import UserError
from search.plan.cores import Assignment, assign, resolve_workers, threads_per_worker
from search.processes.workers import _relay, worker_environment
from search.record.report import say
from tests.conftest import TINY, cli_env, parent_and_children, run_cli, start_cli

SMALL_DNN = ["+space=dnn", *TINY, "space.window_size.max=20", "space.dense_units.max=16", "space.dense_layers.max=1"]
WORKERS = [*SMALL_DNN, "tuner.max_epochs=4", "search.workers=2"]


@pytest.mark.parametrize(
    "setting,cores,jobs,expected",
    [
        ("auto", 2, 1, 2),
        ("auto", 16, 4, 4),  # a multirun of 4 jobs side by side: each gets its share of the cores
        ("auto", 64, 1, 8),  # at most AUTO_MAX_WORKERS: each worker is a process with its own Keras
        ("auto", 2, 4, 1),
        (1, 2, 1, 1),
        (3, 2, 1, 3),  # more than the cores in one search: allowed (a note says the workers take turns)
        ("2", 8, 4, 2),
    ],
)
def test_workers_resolve_against_the_cores(setting, cores, jobs, expected):
    assert resolve_workers(setting, cores, jobs) == expected


@pytest.mark.parametrize(
    "setting,jobs,message",
    [
        (0, 1, "search.workers=0 must be >= 1"),
        ("many", 1, "search.workers='many' must be a number"),
        ("2.5", 1, "must be a number"),
        (4, 2, "search.workers=4 x 2 multirun jobs side by side would train 8 models at once on 4 CPU cores"),
    ],
)
def test_impossible_workers_are_refused_with_what_to_do(setting, jobs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_workers(setting, 4, jobs)


def test_worker_k_gets_gpu_k_mod_g_and_its_share_of_the_cores():
    assert threads_per_worker(2, 2) == 1 and threads_per_worker(4, 16) == 4 and threads_per_worker(4, 16, 2) == 2
    placed = assign(5, 3, gpus=["4", "6"])
    assert placed.gpus == ("4", "6", "4", "6", "4") and placed.worker_ids == ("w1", "w2", "w3", "w4", "w5")
    assert placed.describe() == "w1=GPU 4, w2=GPU 6, w3=GPU 4, w4=GPU 6, w5=GPU 4 (3 threads each)"
    env = worker_environment(placed, 1, 5123)
    assert env["CUDA_VISIBLE_DEVICES"] == "6" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["KERASTUNER_TUNER_ID"] == "w2" and env["KERASTUNER_ORACLE_PORT"] == "5123"
    assert env["TF_NUM_INTRAOP_THREADS"] == env["TF_NUM_INTEROP_THREADS"] == "3"
    on_cpu = Assignment(("w1", "w2"), 1, (None, None))
    assert on_cpu.describe() == "w1, w2 on CPU (1 thread each)"
    assert "CUDA_VISIBLE_DEVICES" not in worker_environment(on_cpu, 0, 5123)


def _finished_trial_runs(children) -> list[str]:
    return [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED"]


@pytest.mark.slow
def test_two_workers_log_every_trial_once_under_one_parent(tmp_path, store):
    run_dir = tmp_path / "run"
    # 35 trials (max_epochs 8): enough that w2, which starts its interpreter while the chief trains, gets some.
    # (One may diverge, SGD and MSE in this space: FAILED as in a one-process search, and logged once too.)
    after = ["search.select.top_k=2", "search.select.folds=2", "search.ensemble=2", "search.select.backtest=always"]
    after.append("search.blend=false")  # 6 fits: 4 folds, 2 members (the blend's fits share out the same way)
    result = run_cli([*WORKERS, "tuner.max_epochs=8", *after, f"hydra.run.dir={run_dir}"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    trials = summary["trials"]
    assert summary["workers"] == 2 and trials["completed"] + trials["failed"] == trials["total"] > 4
    parent, children = parent_and_children(MlflowClient(store), summary["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["workers"].startswith("w1, w2 on CPU (")
    finished = _finished_trial_runs(children)
    assert len(finished) == len(set(finished)) == trials["completed"]
    assert len(children) == len({c.data.tags["trial_id"] for c in children}) == trials["total"]
    assert sorted(c.info.status for c in children if c.info.status != "FINISHED") == ["FAILED"] * trials["failed"]
    # One progress line a trial (the chief's own, or relayed by it), naming the worker that trained it: both did.
    lines = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == trials["total"]
    assert all(" [w1] " in line or " [w2] " in line for line in lines)
    assert {c.data.tags["worker"] for c in children} == {"w1", "w2"}
    assert "Search: Running Trial" not in result.stdout  # Keras Tuner's own display stays off, as in one process
    assert "registered" in result.stdout  # the winner is evaluated and registered once, by the chief
    # The chief is worker w1: one process fewer to start; w2 is the only one with a process (and a log) of its own.
    assert {p.name for p in (run_dir / "workers").iterdir()} == {"config.yaml", "w2.log"}
    # The fits after the search are shared out the same way: each a child run, once, tagged with its trainer.
    fits = [c for c in MlflowClient(store).search_runs([parent.info.experiment_id], "tags.stage != ''")]
    assert sorted(c.data.tags["stage"] for c in fits) == ["backtest"] * 4 + ["ensemble"] * 2
    # Closed, each once: FINISHED, or FAILED where its loss turned NaN (SGD and MSE may diverge here, as trials may; a
    # diverging fit is left out of the ranking or the ensemble: tests/test_evaluation.py).
    assert len({c.info.run_name for c in fits}) == 6 and {c.info.status for c in fits} <= {"FINISHED", "FAILED"}
    assert {c.data.tags["worker"] for c in fits} <= {"w1", "w2"}  # which of them: timing (the next test makes sure)
    assert {p.name for p in (run_dir / "fits").iterdir()} == {"config.yaml", "w2.log"}  # members' files taken back


def _pids_of_worker(run_dir, worker_id: str) -> list[int]:
    pattern = f"search.command.worker_process {run_dir}/workers/config.yaml .* {worker_id}$"
    listed = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in listed.split()]


def _read_until_trials(process, count: int, seen: list[str]) -> None:
    """Read the chief's stdout into `seen` until `count` more progress lines have come."""
    for line in process.stdout:
        seen.append(line)
        count -= line.startswith("trial ")
        if count == 0:
            return


@pytest.mark.slow
def test_a_killed_worker_restarts_and_an_interrupted_search_resumes_with_nothing_lost(tmp_path, store):
    run_dir = tmp_path / "run"
    args = [*WORKERS, f"hydra.run.dir={run_dir}"]
    process = start_cli(args, store, tmp_path)
    seen: list[str] = []
    _read_until_trials(process, 2, seen)
    pids = _pids_of_worker(run_dir, "w2")
    assert pids, "worker w2's process was not found by its command line"
    for pid in pids:  # the OOM killer's way: no chance to clean up
        os.kill(pid, signal.SIGKILL)
    _read_until_trials(process, 2, seen)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)  # to the chief alone: it stops its workers
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 130, stderr[-3000:]
    assert "worker w2 ended with exit code -9: started again\n" in "".join(seen) + stdout
    assert not _pids_of_worker(run_dir, "w2")  # no worker trains on alone
    parent_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    parent, children = parent_and_children(MlflowClient(store), parent_id)
    assert parent.info.status == "KILLED"
    finished_before = set(_finished_trial_runs(children))
    assert len(finished_before) >= 2  # (a trial w2 finished just before its kill -9 may still be RUNNING: closed on resume)

    result = run_cli([*args, "search.resume=true"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    parent, children = parent_and_children(MlflowClient(store), parent_id)
    assert parent.info.status == "FINISHED"
    finished = _finished_trial_runs(children)
    trials = summary["trials"]
    assert len(finished) == len(set(finished)) == trials["completed"]
    # Every trial ended once: completed, or FAILED (SGD and MSE in this space may diverge, as in one process).
    assert trials["completed"] + trials["failed"] == trials["total"]
    assert [c.info.status for c in children if c.info.status == "FAILED"] == ["FAILED"] * trials["failed"]
    assert finished_before <= set(finished)
    assert "RUNNING" not in {c.info.status for c in children}
    for trial_id in finished_before:  # trials completed before the interrupt were not trained again
        assert f"trial {trial_id} " not in result.stdout


@pytest.mark.parametrize(
    "override,message",
    [
        ("search.workers=0", "search.workers=0 must be >= 1"),
        ("search.workers=lots", "search.workers='lots' must be a number"),
        ("search.distributed.role=chief", "search.workers starts its own workers"),
    ],
)
def test_bad_workers_settings_are_one_line_and_exit_2(tmp_path, store, override, message):
    settings = ["search.workers=2", override] if "distributed" in override else [override]
    result = run_cli([*SMALL_DNN, *settings, f"hydra.run.dir={tmp_path / 'run'}"], store, tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "workers").exists()


def test_side_by_side_multirun_jobs_may_not_oversubscribe_the_cores_with_their_workers(tmp_path, store):
    sweep = [*SMALL_DNN, "seed=0,1", "search.workers=1000", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = subprocess.run(
        [sys.executable, "-m", "search", "-m", *sweep, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "search.workers=1000 x 2 multirun jobs side by side would train 2000 models at once" in result.stderr
    assert "Traceback" not in result.stderr


def test_parallel_jobs_come_from_the_joblib_launchers_n_jobs():
    from omegaconf import OmegaConf

    from search.__main__ import parallel_jobs
    from search.plan.cores import available_cores

    assert parallel_jobs(OmegaConf.create({"launcher": {"_target_": "basic"}})) == 1
    assert parallel_jobs(OmegaConf.create({"launcher": {"n_jobs": 3}})) == 3
    assert parallel_jobs(OmegaConf.create({"launcher": {"n_jobs": -1}})) == available_cores()


def test_an_oracle_error_in_one_thread_does_not_block_the_other(tmp_path):
    """The chief trains (main thread) while it serves its workers (gRPC thread): Keras Tuner's lock, left held by
    `end_trial`'s consecutive-failures error, must not stop the other thread's next request for good."""
    import threading

    import keras_tuner
    from keras_tuner.src.engine.trial import TrialStatus

    from search.processes.workers import shared_across_threads

    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_mae", "min"), max_trials=5, max_consecutive_failed_trials=1, seed=0
    )
    oracle._set_project_dir(str(tmp_path), "tuner")
    space = keras_tuner.HyperParameters()
    space.Int("window_size", 10, 60)
    oracle.update_space(space)
    shared_across_threads(oracle)
    trial = oracle.create_trial("w1")
    trial.status = TrialStatus.FAILED
    with pytest.raises(RuntimeError, match="consecutive failures"):
        oracle.end_trial(trial)

    handed: list = []
    other = threading.Thread(target=lambda: handed.extend([oracle.create_trial("w2"), oracle.get_best_trials(1)]))
    other.start()
    other.join(10)
    assert not other.is_alive() and handed[0].status == TrialStatus.RUNNING and len(handed) == 2


def test_the_chiefs_progress_lines_and_its_workers_relayed_lines_never_merge(tmp_path, monkeypatch):
    """The chief prints its own trials' lines while a relay thread copies a worker's: with threads switching
    as often as they can, every line still comes out whole, once (a merged pair was a trial's line lost)."""
    lines = 3000
    read_end, write_end = os.pipe()
    stdout_path = tmp_path / "stdout"
    # As the chief's stdout is in the tests and under `search.workers` (PYTHONUNBUFFERED): every write a system call,
    # so the thread that writes may be switched out between the two writes of a `print`.
    captured = io.TextIOWrapper(open(stdout_path, "wb", buffering=0), write_through=True)
    monkeypatch.setattr(sys, "stdout", captured)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        relay = threading.Thread(target=_relay, args=(os.fdopen(read_end), tmp_path / "w2.log"))
        relay.start()

        def worker_prints() -> None:
            with os.fdopen(write_end, "w") as pipe:
                for k in range(lines):
                    pipe.write(f"trial {k:04d} [w2] val_mae=1\n")
                    pipe.flush()

        worker = threading.Thread(target=worker_prints)
        worker.start()
        for k in range(lines):
            say(f"trial {k:04d} [w1] val_mae=1")
        worker.join()
        relay.join()
    finally:
        sys.setswitchinterval(interval)
    captured.close()
    out = stdout_path.read_text().splitlines()
    expected = [f"trial {k:04d} [{w}] val_mae=1" for k in range(lines) for w in ("w1", "w2")]
    assert sorted(out) == sorted(expected)


def _fit_pool_setup(tmp_path, store):
    """A real config, series, tracking store and parent run, and the fit process's command, as `tuning` makes them."""
    from search.choose.selection import FitJob, Fits, Refitter
    from search.core.files import save_child_config
    from search.plan.planning import Request, RunLabels, make_plan
    from search.processes.fit_pool import fit_process_command
    from search.record.tracking import Tracker
    from search.tune.settings import Settings
    from search.tune.tuning import hypermodel_for
    from tests.test_spaces import compose_config

    cfg = compose_config(*SMALL_DNN, "space.window_size.value=10", f"tracking.uri={store}")
    plan = make_plan(Request.of(cfg))
    tracker = Tracker(store, "fit-pool")
    parent = tracker.start_parent("fit-pool", {})
    fits = Fits(Refitter(hypermodel_for(Settings.of(cfg), plan), cfg.seed), tracker)
    config_path = save_child_config(cfg, tmp_path / "fits" / "config.yaml", experiment="fit-pool")
    command = fit_process_command(config_path, tmp_path, RunLabels("dnn", "synthetic"), parent)
    values = {"model": "dnn", "window_size": 10, "split_time": 0.7, "batch_size": 32, "learning_rate": 1e-3}
    stop = plan.layout.score_start

    def job(key: str, epochs: int, keep: bool) -> FitJob:
        scored = None if keep else (stop, plan.layout.test_start)
        return FitJob("backtest", key, values, epochs, stop, 0, {"epochs": epochs}, {}, scored, keep)

    return tracker, parent, fits, command, job


def _wait_for_run(client, tracker, where: str) -> None:
    deadline = time.monotonic() + 120
    while not client.search_runs([tracker.experiment_id], where):
        assert time.monotonic() < deadline, f"no run where {where}"
        time.sleep(0.2)


def test_fits_after_the_search_are_shared_with_a_fit_process_and_come_back_in_order(tmp_path, store):
    """The pool hands fits to its fit process while this one trains: this process's first fit waits until the fit
    process has finished one of its own, so the pool must have handed it work; every outcome comes back to its job
    (a fold's MAE; a member's model, loaded here, its file removed)."""
    from search.plan.cores import assign
    from search.processes.fit_pool import FitPool

    tracker, parent, fits, command, job = _fit_pool_setup(tmp_path, store)
    jobs = [job("a", 3, False), job("b", 2, True), job("c", 1, False)]
    client = MlflowClient(store)

    def one_after_the_fit_process(job):
        _wait_for_run(client, tracker, "tags.worker = 'w2' and attributes.status = 'FINISHED'")
        return fits.one(job)

    with FitPool(command, assign(2, 1), tmp_path, {"MLFLOW_TRACKING_URI": store}) as pool:
        outcomes = pool.run(jobs, one_after_the_fit_process)
    assert [o.key for o in outcomes] == ["a", "b", "c"]
    assert all(o.error is None for o in outcomes)
    assert outcomes[0].mae > 0 and outcomes[2].mae > 0 and outcomes[1].model.input_shape[1] == 10
    runs = client.search_runs([tracker.experiment_id], "tags.stage = 'backtest'")
    assert sorted(r.info.run_name for r in runs) == ["backtest-a", "backtest-b", "backtest-c"]
    assert {r.data.tags["worker"] for r in runs} == {"w1", "w2"} and {r.info.status for r in runs} == {"FINISHED"}
    assert not list((tmp_path / "fits").glob("*.keras"))
    tracker.end(parent, "FINISHED")


def test_a_fit_process_killed_mid_fit_hands_its_fit_back(tmp_path, store, capfd):
    """kill -9 of the fit process while it trains (the OOM killer's way): its fit is trained here instead, and every
    job still gets its outcome; the killed fit's run is closed KILLED, `superseded`, when its fit starts again here."""
    from search.plan.cores import assign
    from search.processes.fit_pool import FitPool

    tracker, parent, fits, command, job = _fit_pool_setup(tmp_path, store)
    jobs = [job("a", 150, False), job("b", 150, False)]  # this process takes a, the fit process b
    client = MlflowClient(store)

    with FitPool(command, assign(2, 1), tmp_path, {"MLFLOW_TRACKING_URI": store}) as pool:

        def kill_the_fit_process_first(job):
            if job.key == "a":
                _wait_for_run(client, tracker, "tags.worker = 'w2' and attributes.status = 'RUNNING'")
                os.kill(pool.processes[0].process.pid, signal.SIGKILL)
            return fits.one(job)

        outcomes = pool.run(jobs, kill_the_fit_process_first)
    assert [o.key for o in outcomes] == ["a", "b"] and all(o.mae > 0 and o.error is None for o in outcomes)
    runs = client.search_runs([tracker.experiment_id], "tags.stage = 'backtest'")
    assert sorted((r.info.run_name, r.data.tags["worker"], r.info.status, r.data.tags.get("superseded")) for r in runs) == [
        ("backtest-a", "w1", "FINISHED", None),
        ("backtest-b", "w1", "FINISHED", None),
        ("backtest-b", "w2", "KILLED", "true"),
    ]
    assert "warning: the fit process ended (exit code -9)" in capfd.readouterr().err
    tracker.end(parent, "FINISHED")

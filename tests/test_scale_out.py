"""Scale out: Hydra multirun (sequential and joblib-parallel, one sqlite store), GPU per job, and Keras
Tuner's chief/worker mode logging through a real `mlflow server`."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hydra.errors import HydraException
from mlflow.tracking import MlflowClient

from bench.tiny import SMALL_DNN
from search.core.devices import gpu_for_job, visible_gpus
from search.processes.distributed import role_of
from tests.conftest import (
    ORACLE_TOKEN,
    ROOT,
    TINY,
    cli_env,
    free_port,
    parent_and_children,
    run_cli,
    run_code,
    start_cli,
    start_server,
    stop_server,
)
from tests.test_spaces import compose_config

LINEAR = ["+space=linear", *TINY, "space.window_size.max=20"]


@pytest.mark.parametrize(
    "job,gpus,visible,expected",
    [
        (0, None, ["0", "1"], "0"),
        (3, None, ["0", "1"], "1"),
        (2, None, ["4", "6", "7"], "7"),  # CUDA_VISIBLE_DEVICES=4,6,7: ids are mapped through it
        (5, 2, ["4", "6", "7"], "6"),  # search.gpus=2 uses the first two visible
        (3, 2, [], "1"),  # no GPU listed, N from config
        (1, None, [], None),  # no GPU: devices left alone
        (1, 0, ["0"], None),  # search.gpus=0: devices left alone
    ],
)
def test_job_k_gets_gpu_k_mod_n(job, gpus, visible, expected):
    assert gpu_for_job(job, gpus, visible) == expected


@pytest.mark.parametrize("variable,expected", [("4,6", ["4", "6"]), ("-1", []), ("", [])])
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, variable, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", variable)
    assert visible_gpus() == expected


def test_the_role_comes_from_config_or_from_keras_tuners_variables(monkeypatch):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert role_of(compose_config("+space=dnn").search.distributed) is None
    chief_cfg = compose_config("+space=dnn", "search.distributed.role=chief", "search.distributed.oracle_port=9000")
    chief = role_of(chief_cfg.search.distributed)
    assert (chief.kind, chief.tuner_id, chief.oracle) == ("chief", "chief", "127.0.0.1:9000")
    worker = role_of(compose_config("+space=dnn", "search.distributed.role=worker").search.distributed)
    assert worker.is_worker and worker.tuner_id.startswith("worker-")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner7")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.5")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    from_env = role_of(compose_config("+space=dnn").search.distributed)
    assert (from_env.kind, from_env.tuner_id, from_env.oracle) == ("worker", "tuner7", "10.0.0.5:8000")
    with pytest.raises(HydraException, match="search.distributed.role=boss"):  # an Enum: refused at composition
        compose_config("+space=dnn", "search.distributed.role=boss")


def _sweep(tmp_path, store, *overrides, timeout=900):
    return run_cli(["-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"], store, tmp_path, timeout=timeout)


def _sweep_parents(store, sweep_dir):
    client = MlflowClient(store, registry_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client, client.search_runs(experiments, filter_string=f"tags.sweep_id = '{sweep_dir}'")


@pytest.mark.slow
def test_a_sweep_runs_every_job_tags_them_and_summarises_them_even_when_one_fails(tmp_path, store):
    sweep = [*LINEAR, "seed=0,1", "data.test_size=60,5000"]  # a test tail of 5000 points is bad input
    result = _sweep(tmp_path, store, *sweep)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "data.test_size=5000" in result.stderr and "2 of 4 jobs failed" in result.stderr
    sweep_dir = tmp_path / "sweep"
    rows = {frozenset(row["overrides"].split()): row for row in json.loads((sweep_dir / "sweep_summary.json").read_text())}
    assert {" ".join(sorted(name)): (row["status"], row["exit_code"]) for name, row in rows.items()} == {
        "data.test_size=60 seed=0": ("ok", 0),
        "data.test_size=5000 seed=0": ("error", 2),
        "data.test_size=60 seed=1": ("ok", 0),
        "data.test_size=5000 seed=1": ("error", 2),
    }
    ok = [row for row in rows.values() if row["status"] == "ok"]
    assert all(row["best_val_mae"] > 0 and row["test_mae"] > 0 for row in ok)
    assert (sweep_dir / "sweep_summary.csv").read_text().startswith("job,overrides,status,best_val_mae,test_mae")
    assert "best val_mae" in result.stdout and "data.test_size=5000" in result.stdout
    # How often the verdict held across the jobs that have one (a seed sweep's spread), from their own rows.
    won = sum(row["test_mae"] < row["best_baseline_test_mae"] for row in ok)
    assert all(row["beats_every_baseline"] == (row["test_mae"] < row["best_baseline_test_mae"]) for row in ok)
    assert f"the winner beat every baseline on test in {won} of 2 jobs" in result.stdout
    assert all((sweep_dir / row["job"] / "tuner").is_dir() for row in ok)  # each job has its own Keras Tuner project

    client, parents = _sweep_parents(store, sweep_dir)
    assert sorted(p.info.run_id for p in parents) == sorted(row["mlflow_parent_run_id"] for row in ok)
    assert all(p.info.status == "FINISHED" for p in parents)
    assert not [r for r in client.search_runs([parents[0].info.experiment_id]) if r.info.status == "RUNNING"]
    # Both winners are registered; the champion is the better one, whichever finished last.
    best = min(ok, key=lambda row: row["best_val_mae"])
    champion = client.get_model_version_by_alias("synthetic-linear", "champion")
    assert champion.run_id == best["mlflow_parent_run_id"]
    assert len(client.search_model_versions("name = 'synthetic-linear'")) == 2

    again = _sweep(tmp_path, store, *sweep, "search.resume=true")  # resuming a sweep skips what finished
    assert again.returncode == 2 and again.stdout.count("already finished") == 2
    assert len(_sweep_parents(store, sweep_dir)[1]) == 2


@pytest.mark.slow
def test_two_parallel_jobs_share_one_sqlite_store_and_each_gets_its_own_gpu(tmp_path, store):
    result = _sweep(
        tmp_path,
        store,
        *LINEAR,
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "search.gpus=2",  # no GPU here: the assignment is still made, and each job runs in a fresh process
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = tmp_path / "sweep"
    rows = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert [row["status"] for row in rows] == ["ok", "ok"]

    client, parents = _sweep_parents(store, sweep_dir)
    assert sorted((p.data.tags["sweep_job"], p.data.tags["gpu"], p.data.tags["seed"]) for p in parents) == [
        ("0", "0", "0"),
        ("1", "1", "1"),
    ]
    for parent in parents:  # nothing lost to "database is locked"
        summary = json.loads((sweep_dir / parent.data.tags["sweep_job"] / "summary.json").read_text())
        _, children = parent_and_children(client, parent.info.run_id)
        assert parent.info.status == "FINISHED"
        assert len([c for c in children if c.info.status == "FINISHED"]) == summary["trials"]["completed"] >= 3
        assert client.get_metric_history(children[0].info.run_id, "val_mae")
    versions = client.search_model_versions("name = 'synthetic-linear'")
    assert sorted(v.run_id for v in versions) == sorted(p.info.run_id for p in parents)


@pytest.mark.slow
def test_a_chief_and_two_workers_log_every_trial_once_under_one_parent(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    run_dir = tmp_path / "shared-run"  # Hyperband continues trials from each other's checkpoints: one directory
    # A dense space: what is shared (the oracle, checkpoints, the store) does not depend on the model; a trial costs ~1 s.
    # Adam only: SGD with MSE may diverge here, and this test counts every trial as completed.
    args = ["+space=dnn", *TINY, *SMALL_DNN, "space.optimizer.values=[adam]", "tuner.max_epochs=4", f"hydra.run.dir={run_dir}"]
    oracle = [f"search.distributed.oracle_port={free_port()}", "search.distributed.attach_timeout_s=60"]
    processes = []
    try:
        chief = start_cli([*args, *oracle, "search.distributed.role=chief"], uri, tmp_path, ORACLE_TOKEN)
        processes.append(chief)
        for index in range(2):
            worker_args = [*args, *oracle, "search.distributed.role=worker", f"search.distributed.worker_id=worker{index}"]
            processes.append(start_cli(worker_args, uri, tmp_path, ORACLE_TOKEN))
        outputs = [process.communicate(timeout=600) for process in processes]
        for process, (_, stderr) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, stderr[-3000:]
        trained = [int(stdout.split(": trained ")[1].split()[0]) for stdout, _ in outputs[1:]]
        assert all(count >= 1 for count in trained)  # both workers took trials

        summary = json.loads((run_dir / "summary.json").read_text())
        client = MlflowClient(uri)
        chiefs = client.search_runs([summary["mlflow_experiment_id"]], filter_string="tags.distributed = 'chief'")
        assert [run.info.run_id for run in chiefs] == [summary["mlflow_parent_run_id"]]
        parent, children = parent_and_children(client, summary["mlflow_parent_run_id"])
        assert parent.info.status == "FINISHED" and summary["test_mae"] is not None
        trial_ids = [c.data.tags["trial_id"] for c in children]
        assert len(trial_ids) == len(set(trial_ids)) == summary["trials"]["completed"] == sum(trained)
        assert all(c.info.status == "FINISHED" for c in children)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        stop_server(server)


KILLED_WHILE_CLOSING_ITS_RUN = """
import os, signal, sys, time
import search.record.tracking
def killed(self, *args, **kwargs):  # the first run this worker closes: its first trial's, once the oracle has it
    time.sleep(3)
    os.kill(os.getpid(), signal.SIGKILL)
search.record.tracking.Tracker.end = killed
from search.__main__ import cli
sys.argv = ["search", *sys.argv[1:]]
cli()
"""


@pytest.mark.slow
def test_a_chief_closes_the_run_a_killed_worker_left_running(tmp_path, store):
    """A distributed worker is `kill -9`ed after its trial reached the oracle but before the trial's run was closed
    (its logging thread does that after the model upload); started again, it goes on with other trials. The chief
    closes the run left RUNNING when the search ends: nothing RUNNING, every completed trial one FINISHED run."""
    run_dir = tmp_path / "shared-run"
    args = ["+space=dnn", *TINY, "space.window_size.max=20", "tuner.max_epochs=4", f"hydra.run.dir={run_dir}"]
    oracle = [f"search.distributed.oracle_port={free_port()}", "search.distributed.attach_timeout_s=60"]
    worker_args = [*args, *oracle, "search.distributed.role=worker", "search.distributed.worker_id=worker0"]
    chief = start_cli([*args, *oracle, "search.distributed.role=chief"], store, tmp_path, ORACLE_TOKEN)
    killed = run_code(KILLED_WHILE_CLOSING_ITS_RUN, worker_args, store, tmp_path, extra_env=ORACLE_TOKEN)
    assert killed.returncode == -9, killed.stderr[-3000:]
    client = MlflowClient(store)
    parent_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    _, children = parent_and_children(client, parent_id)
    left_running = [c.info.run_id for c in children if c.info.status == "RUNNING"]
    assert left_running  # (the worker trained on while its logging thread waited to close the first one)
    again = start_cli(worker_args, store, tmp_path, ORACLE_TOKEN)
    _, stderr = chief.communicate(timeout=600)
    assert chief.returncode == 0, stderr[-3000:]
    again.communicate(timeout=120)

    summary = json.loads((run_dir / "summary.json").read_text())
    parent, children = parent_and_children(client, parent_id)
    assert parent.info.status == "FINISHED"
    assert "RUNNING" not in {c.info.status for c in children}
    assert {client.get_run(run_id).info.status for run_id in left_running} <= {"FINISHED", "KILLED"}
    finished = [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)) == summary["trials"]["completed"]


KILLED_IN_ITS_SECOND_TRIAL = """
import os, signal, sys
import keras
fit = keras.Model.fit
calls = []
def fit_then_die(self, *args, **kwargs):  # the second trial's training starts: its run is open, the oracle's trial taken
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return fit(self, *args, **kwargs)
keras.Model.fit = fit_then_die
from search.__main__ import cli
sys.argv = ["search", *sys.argv[1:]]
cli()
"""


@pytest.mark.slow
def test_a_dead_workers_trial_goes_to_a_worker_started_after_it(tmp_path, store):
    """A worker is `kill -9`ed mid-trial; another, with a new id (as a restarted worker has), starts after it. The
    chief hears nothing from the dead one for `worker_timeout_s`, gives its trial to the new one and closes the dead
    one's run KILLED, saying why: the search finishes, every trial FINISHED once, nothing RUNNING."""
    run_dir = tmp_path / "shared-run"
    args = ["+space=dnn", *TINY, *SMALL_DNN, "space.optimizer.values=[adam]", "tuner.max_epochs=4", f"hydra.run.dir={run_dir}"]
    oracle = [f"search.distributed.oracle_port={free_port()}", "search.distributed.attach_timeout_s=60"]
    oracle.append("search.distributed.worker_timeout_s=5")
    chief = start_cli([*args, *oracle, "search.distributed.role=chief"], store, tmp_path, ORACLE_TOKEN)
    try:
        dead = [*args, *oracle, "search.distributed.role=worker", "search.distributed.worker_id=worker0"]
        killed = run_code(KILLED_IN_ITS_SECOND_TRIAL, dead, store, tmp_path, extra_env=ORACLE_TOKEN)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        parent_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
        client = MlflowClient(store)
        running = [c for c in parent_and_children(client, parent_id)[1] if c.info.status == "RUNNING"]
        left = sorted(running, key=lambda c: c.info.start_time)[-1:]  # the trial it died in (the first one's run may
        assert left  # still wait for its logging thread: closed at the end as `recovered`)
        fresh = [*args, *oracle, "search.distributed.role=worker", "search.distributed.worker_id=worker1"]
        again = run_cli(fresh, store, tmp_path, timeout=300, extra_env=ORACLE_TOKEN)
        assert again.returncode == 0, again.stderr[-3000:]
        stdout, stderr = chief.communicate(timeout=300)
    finally:
        if chief.poll() is None:
            chief.kill()
    assert chief.returncode == 0, stderr[-3000:]
    dead_trial = left[0].data.tags["trial_id"]
    assert f"worker worker0: sent nothing for 5 s (search.distributed.worker_timeout_s); trial {dead_trial}" in stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    parent, children = parent_and_children(client, parent_id)
    assert parent.info.status == "FINISHED" and "RUNNING" not in {c.info.status for c in children}
    dead_run = client.get_run(left[0].info.run_id)
    assert dead_run.info.status == "KILLED" and "its worker worker0 sent nothing" in dead_run.data.tags["killed_reason"]
    finished = [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)) == summary["trials"]["completed"]
    assert dead_trial in finished  # trained again, by the new worker


@pytest.mark.parametrize("role", ["chief", "worker"])
def test_a_distributed_process_without_the_oracle_token_refuses_to_start(tmp_path, store, role):
    args = [*LINEAR, f"search.distributed.role={role}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli(args, store, tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: search.distributed.role={role}: set SEARCH_ORACLE_TOKEN")
    assert not MlflowClient(store).search_runs([e.experiment_id for e in MlflowClient(store).search_experiments()])


def test_a_worker_without_a_chief_gives_up_with_one_line(tmp_path, store):
    args = [*LINEAR, "search.distributed.role=worker", "search.distributed.attach_timeout_s=1"]
    result = run_cli([*args, f"hydra.run.dir={tmp_path / 'run'}"], store, tmp_path, timeout=120, extra_env=ORACLE_TOKEN)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: no running chief for oracle 127.0.0.1:8000")
    assert os.path.isdir(tmp_path / "run")


def test_a_worker_stops_waiting_as_soon_as_its_chief_run_ends(tmp_path, store):
    args = [*LINEAR, "search.distributed.role=worker", "search.distributed.attach_timeout_s=300"]
    client = MlflowClient(store)
    old_chief = {"oracle": "127.0.0.1:8000", "distributed": "chief"}
    experiment = client.create_experiment("synthetic-linear", artifact_location=str(tmp_path / "artifacts"))
    client.set_terminated(client.create_run(experiment, tags=old_chief).info.run_id, "FINISHED")  # an earlier search
    worker = start_cli([*args, f"hydra.run.dir={tmp_path / 'run'}"], store, tmp_path, ORACLE_TOKEN)
    try:
        for line in worker.stdout:  # the worker ignores the earlier search's chief and waits
            if line.startswith("waiting up to 300 s for the chief"):
                break
        crashed = client.create_run(experiment, tags=old_chief).info.run_id  # a chief starts, then fails
        client.set_terminated(crashed, "FAILED")
        started = time.monotonic()
        _, stderr = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 2 and time.monotonic() - started < 30
    assert stderr.strip().splitlines()[-1] == (
        f"error: the chief for oracle 127.0.0.1:8000 ended (FAILED, MLflow run {crashed}) while this worker waited: "
        "see the chief's error, restart it, then start the workers again"
    )


def _register_version(client, name: str, val_mae: float, scored_on: str, source) -> str:
    version = client.create_model_version(name, source=str(source), run_id=None).version  # source: any existing dir
    client.set_model_version_tag(name, version, "val_mae", str(val_mae))
    client.set_model_version_tag(name, version, "scored_on", scored_on)
    return version


def test_the_champion_is_the_best_version_on_the_same_points_even_after_a_stale_alias_move(store, tmp_path):
    from search.choose.registry import elect_champion

    client = MlflowClient(store, registry_uri=store)
    client.create_registered_model("m")
    worse = _register_version(client, "m", 5.0, "points A", tmp_path)
    better = _register_version(client, "m", 4.0, "points A", tmp_path)
    other_data = _register_version(client, "m", 1.0, "points B", tmp_path)
    # A slow job read the versions before `better` existed and moved the alias afterwards.
    client.set_registered_model_alias("m", "champion", worse)
    assert elect_champion(client, "m", "points A") == better
    assert client.get_model_version_by_alias("m", "champion").version == better
    # A search on other data replaces it: val_mae on other points is not comparable.
    assert elect_champion(client, "m", "points B") == other_data


def test_parallel_jobs_registering_at_once_leave_the_best_as_champion(store, tmp_path):
    import threading

    from search.choose.registry import elect_champion

    MlflowClient(store, registry_uri=store).create_registered_model("m")
    scores = [4.5, 3.0, 5.5, 3.5, 6.0, 4.0]
    barrier = threading.Barrier(len(scores))
    versions, errors = {}, []

    def job(score: float) -> None:
        client = MlflowClient(store, registry_uri=store)
        try:
            versions[score] = _register_version(client, "m", score, "points A", tmp_path)
            barrier.wait()  # every job elects at the same moment: none has seen an alias yet
            elect_champion(client, "m", "points A")
        except Exception as error:  # noqa: BLE001 - a job that fails to register fails the test
            errors.append(error)

    threads = [threading.Thread(target=job, args=(score,)) for score in scores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    champion = MlflowClient(store, registry_uri=store).get_model_version_by_alias("m", "champion")
    assert champion.version == versions[min(scores)]


def test_processes_opening_one_fresh_sqlite_store_at_once_all_get_in(tmp_path):
    """MLflow creates a fresh sqlite file's tables on first use, and two processes doing it at once race: the
    Tracker of each of three processes started together must still reach the store and the experiment."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys; from search.record.tracking import Tracker; "
        "t = Tracker(sys.argv[1], 'together'); t.start_parent('p', {}); print(t.experiment_id)"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, uri],
            cwd=ROOT,
            env=cli_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], [err[-1500:] for _, err in outputs]
    assert len({out.strip().splitlines()[-1] for out, _ in outputs}) == 1  # one experiment, found by all three

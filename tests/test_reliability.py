"""A long search survives what goes wrong: failed trials, Ctrl-C or SIGTERM then resume, reruns."""

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import (
    TINY,
    call_in_child,
    in_process_tuner,
    parent_and_children,
    run_cli,
    run_code,
    start_cli,
    wait_for_trials,
)


def runs_of(store, parent_id):
    return parent_and_children(MlflowClient(store), parent_id)


@pytest.mark.slow
def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path, store):
    run_dir = tmp_path / "run"
    args = [
        "+space=dnn",
        *TINY,
        "tuner=random",
        "tuner.max_trials=4",
        "tuner.max_epochs=2",
        "space.optimizer.value=sgd",
        "space.loss.value=mse",
        "space.learning_rate.kind=choice",
        "space.learning_rate.values=[100000.0,0.001]",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"]["failed"] >= 1 and summary["trials"]["completed"] >= 1
    assert summary["best_hyperparameters"]["learning_rate"] == 0.001
    parent, children = runs_of(store, summary["mlflow_parent_run_id"])
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(failed) == summary["trials"]["failed"]
    assert all("loss became" in c.data.tags["error"] for c in failed)
    assert "FAILED" in result.stdout


@pytest.mark.slow
def test_too_many_failures_in_a_row_end_the_search_failed(tmp_path, store):
    run_dir = tmp_path / "run"
    args = [
        "+space=linear",
        *TINY,
        "tuner=random",
        "tuner.max_trials=5",
        "tuner.max_epochs=2",
        "tuner.max_consecutive_failed_trials=2",
        "space.optimizer.value=sgd",
        "space.loss.value=mse",
        "space.learning_rate.value=100000.0",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, store, tmp_path)
    assert result.returncode == 3
    assert "tuner.max_consecutive_failed_trials=2" in result.stderr and "Traceback" not in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"]["failed"] == 2 and "error" in summary
    parent, children = runs_of(store, summary["mlflow_parent_run_id"])
    assert parent.info.status == "FAILED" and "max_consecutive_failed_trials" in parent.data.tags["error"]
    assert sorted(c.info.status for c in children) == ["FAILED", "FAILED"]


def _start(args, store, cwd):
    # As if started in the background from a non-interactive shell: SIGINT ignored until we install handlers.
    return start_cli(args, store, cwd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum,extra",
    [(signal.SIGINT, []), (signal.SIGTERM, ["space.learning_rate.range=auto", "lr_find.steps=60"])],
    ids=["SIGINT", "SIGTERM, automatic learning-rate range"],
)
def test_interrupt_then_resume_loses_and_duplicates_nothing(tmp_path, store, signum, extra):
    run_dir = tmp_path / "run"
    small_dnn = ["space.window_size.max=20", "space.dense_units.max=16"]
    args = ["+space=dnn", *TINY, *small_dnn, "tuner.max_epochs=4", *extra, f"hydra.run.dir={run_dir}"]
    process = _start(args, store, tmp_path)
    wait_for_trials(process, 2)  # then interrupt the third trial mid-training
    time.sleep(1.0)
    sent = time.monotonic()
    process.send_signal(signum)
    time.sleep(0.05)
    process.send_signal(signum)  # a second signal 50 ms later (Ctrl-C twice, a scheduler's retry): the same clean stop
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 20, stderr[-2000:]
    assert process.returncode == 130, stderr[-2000:]
    assert "search.resume=true" in stderr
    parent_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    parent, children = runs_of(store, parent_id)
    assert parent.info.status == "KILLED"
    assert "RUNNING" not in {c.info.status for c in children}
    finished_before = {c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED" and "trial_id" in c.data.tags}
    assert len(finished_before) >= 2
    lr_range_before = (run_dir / "lr_find.json").read_text() if extra else None
    # As a kill -9 right after a trial ended leaves it: completed in the oracle, its run never closed.
    stale = next(c for c in children if c.info.status == "FINISHED" and "trial_id" in c.data.tags)
    MlflowClient(store).update_run(stale.info.run_id, status="RUNNING")

    result = run_cli([*args, "search.resume=true"], store, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mlflow_parent_run_id"] == parent_id
    parent, children = runs_of(store, parent_id)
    assert parent.info.status == "FINISHED"
    finished = [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED" and "trial_id" in c.data.tags]
    assert len(finished) == len(set(finished)) == summary["trials"]["completed"]
    assert finished_before <= set(finished)
    assert "RUNNING" not in {c.info.status for c in children}
    assert MlflowClient(store).get_run(stale.info.run_id).data.tags.get("recovered") == "true"
    if extra:  # the range test ran once, and the resumed search kept its bounds
        assert len([c for c in children if c.data.tags.get("mode") == "lr_find"]) == 1
        assert (run_dir / "lr_find.json").read_text() == lr_range_before
        low, high = summary["learning_rate_range"]["range"]
        assert all(low <= float(c.data.params["learning_rate"]) <= high for c in children if "trial_id" in c.data.tags)
    # Trials completed before the interrupt were not trained again.
    for trial_id in finished_before:
        assert f"trial {trial_id} " not in result.stdout


def interrupt_mid_commit(directory: str, store: str) -> dict:
    """SIGTERM while MLflow commits the third trial's run; what the runs look like after (run in a child process)."""
    import os

    import sqlalchemy

    from search.core import interrupts

    overrides = ["+space=dnn", *TINY, "tuner=random", "tuner.max_trials=4", "tuner.max_epochs=1", "space.dense_units.max=16"]
    cfg, tracker, tuner = in_process_tuner(directory, store, "interrupt", overrides)
    interrupts.install()
    inserts, sent = [], []

    def count_run_inserts(connection, cursor, statement, *args):
        if statement.startswith("INSERT INTO runs "):
            inserts.append(time.monotonic())

    def signal_as_third_trial_run_commits(connection):
        # The run row is written and sqlite's write lock taken; the commit has not happened yet.
        if len(inserts) == 3 and not sent:
            sent.append(connection)
            os.kill(os.getpid(), signal.SIGTERM)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count_run_inserts)
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", signal_as_third_trial_run_commits)
    interrupted = False
    try:
        tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    except KeyboardInterrupt:
        interrupted = True
    tracker.drain()
    tracker.end(tracker.parent_id, "KILLED")
    closed = time.monotonic()
    _, children = parent_and_children(MlflowClient(store), tracker.parent_id)
    return {
        "interrupted": interrupted,
        "seconds_to_close": closed - inserts[2],
        "status_by_trial": {c.data.tags["trial_id"]: c.info.status for c in children},
    }


@pytest.mark.slow
def test_an_interrupt_during_an_mlflow_write_waits_for_it_and_closes_every_run(tmp_path, store):
    # Before the fix: the write was cut short holding sqlite's lock, so closing the runs waited out
    # MLflow's 20 s busy timeout, failed "database is locked", and left the trial's run RUNNING.
    outcome, stderr = call_in_child("tests.test_reliability", "interrupt_mid_commit", str(tmp_path), store)
    assert outcome["interrupted"]
    assert outcome["status_by_trial"] == {"0": "FINISHED", "1": "FINISHED", "2": "KILLED"}
    assert outcome["seconds_to_close"] < 5
    assert "database is locked" not in stderr


def interrupt_swallowed_by_a_library(directory: str, store: str) -> dict:
    """SIGTERM lands in a library's bare `except:` during the second trial, which then fails with another error
    (Keras' `ops.shape` does this: a None shape, then a TypeError); what the oracle and the runs record (child process)."""
    import os

    from search.core import interrupts

    overrides = ["+space=dnn", *TINY, "tuner=random", "tuner.max_trials=3", "tuner.max_epochs=1", "space.dense_units.max=16"]
    cfg, tracker, tuner = in_process_tuner(directory, store, "swallowed", overrides)
    interrupts.install()
    fit, calls = tuner.hypermodel.fit, []

    def fit_that_swallows_the_interrupt(hp, model, *args, **kwargs):
        calls.append(hp)
        if len(calls) == 2:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
            except:  # noqa: E722 - the library's bare except, as in Keras' ops.shape
                pass
            raise TypeError("Failed to convert elements of (None, 10, 1) to Tensor")
        return fit(hp, model, *args, **kwargs)

    tuner.hypermodel.fit = fit_that_swallows_the_interrupt
    interrupted = False
    try:
        tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    except KeyboardInterrupt:
        interrupted = True
    tracker.drain()
    _, children = parent_and_children(MlflowClient(store), tracker.parent_id)
    return {
        "interrupted": interrupted,
        "trial_status": {trial_id: trial.status for trial_id, trial in tuner.oracle.trials.items()},
        "run_status": {c.data.tags["trial_id"]: c.info.status for c in children},
    }


@pytest.mark.slow
def test_an_interrupt_a_library_swallowed_stops_the_trial_instead_of_failing_it(tmp_path, store):
    # Before the fix: Keras Tuner recorded the trial FAILED (a resume never retries it) and the search went on.
    outcome, _ = call_in_child("tests.test_reliability", "interrupt_swallowed_by_a_library", str(tmp_path), store)
    assert outcome["interrupted"]
    assert outcome["trial_status"] == {"0": "COMPLETED", "1": "RUNNING"}  # unfinished: a resume trains it again
    assert outcome["run_status"] == {"0": "FINISHED", "1": "KILLED"}


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_trials(tmp_path, store):
    summaries = []
    for name in ("first", "second"):
        run_dir = tmp_path / name
        args = [
            "+space=lstm",
            *TINY,
            "tuner=random",
            "tuner.max_trials=2",
            "tuner.max_epochs=2",
            "space.lstm_units.max=16",
            "space.window_size.max=20",
            f"hydra.run.dir={run_dir}",
        ]
        result = run_cli(args, store, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        summaries.append(json.loads((run_dir / "summary.json").read_text()))
    trials = []
    for summary in summaries:
        _, children = runs_of(store, summary["mlflow_parent_run_id"])
        trials.append(sorted((c.data.tags["trial_id"], c.data.params, c.data.metrics["best_val_mae"]) for c in children))
    for (id1, params1, mae1), (id2, params2, mae2) in zip(*trials, strict=True):
        assert (id1, params1) == (id2, params2)
        assert mae1 == pytest.approx(mae2, rel=1e-5)
    assert summaries[0]["test_mae"] == pytest.approx(summaries[1]["test_mae"], rel=1e-5)


def signals_twice_and_a_swallowed_interrupt() -> dict:
    """What `search.core.interrupts` makes of two SIGTERMs and of an interrupt a library swallows (in a child process)."""
    import os

    from search.core import interrupts

    interrupts.install()
    raised = []
    try:
        with interrupts.critical():  # both signals arrive while state is written
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
    except KeyboardInterrupt as err:
        raised.append(str(err))
    try:  # the first interrupt's clean-up, which a second signal must not cut short
        os.kill(os.getpid(), signal.SIGINT)
        cleanup_finished = True
    except KeyboardInterrupt:
        cleanup_finished = False
    try:
        interrupts.check()  # as if a bare `except:` had swallowed the first one
    except KeyboardInterrupt as err:
        raised.append(str(err))
    return {"raised": raised, "cleanup_finished": cleanup_finished}


def test_the_first_signal_decides_and_a_swallowed_interrupt_is_raised_again():
    outcome, _ = call_in_child("tests.test_reliability", "signals_twice_and_a_swallowed_interrupt")
    assert outcome == {"raised": ["SIGTERM", "SIGTERM"], "cleanup_finished": True}


@pytest.mark.slow
def test_a_run_dir_is_resumed_only_by_its_own_search_whole_and_by_one_process(tmp_path, store):
    """After a finished search: a resume reports it and changes nothing; a resume with another space is refused;
    a second process is refused while one holds the run dir; damaged state files are named, not tracebacks."""
    import fcntl

    run_dir = tmp_path / "run"
    args = ["+space=linear", *TINY, "tuner=random", "tuner.max_trials=2", "tuner.max_epochs=1", f"hydra.run.dir={run_dir}"]
    first = run_cli(args, store, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    client = MlflowClient(store, registry_uri=store)
    versions = len(client.search_model_versions(f"name = '{summary['registered_model']}'"))
    history = client.get_metric_history(summary["mlflow_parent_run_id"], "test_mae")

    # As an interrupt between writing summary.json and closing the parent leaves it: the resume closes it FINISHED.
    client.set_terminated(summary["mlflow_parent_run_id"], "KILLED")
    again = run_cli([*args, "search.resume=true"], store, tmp_path)
    assert again.returncode == 0 and "had already finished; nothing was changed" in again.stdout
    assert len(client.search_model_versions(f"name = '{summary['registered_model']}'")) == versions
    assert client.get_metric_history(summary["mlflow_parent_run_id"], "test_mae") == history
    assert client.get_run(summary["mlflow_parent_run_id"]).info.status == "FINISHED"

    def refused(extra: list[str], run_args=args) -> str:
        result = run_cli([*run_args, *extra], store, tmp_path, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
        return lines[0]

    (run_dir / "summary.json").unlink()  # as if it had been interrupted
    other_space = [a if a != "+space=linear" else "+space=dnn" for a in args]
    assert "holds a search of space=linear, not dnn" in refused(["search.resume=true"], other_space)

    with open(run_dir / ".lock", "a+") as holder:  # another search holds the run dir
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert "is in use by another search" in refused(["search.resume=true"])

    for damaged in (run_dir / "mlflow_run.json", run_dir / "tuner" / "oracle.json"):
        saved = damaged.read_text()
        damaged.write_text(saved[: len(saved) // 2])  # cut short, as a full disk or a kill -9 in a write leaves it
        assert f"{damaged} is damaged" in refused(["search.resume=true"])
        damaged.write_text(saved)
    assert client.get_run(summary["mlflow_parent_run_id"]).info.status == "FINISHED"  # nothing above touched it


@contextlib.contextmanager
def _tmpfs(tmp_path, size):
    """A tmpfs of `size` (e.g. "8m") under `tmp_path` (needs the right to mount, as root in a container): the test is
    skipped where it cannot be mounted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()[:100]}): no full disk to test on")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs."""
    with _tmpfs(tmp_path, "8m") as mount_point:
        yield mount_point


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_resume_continues_once_space_is_freed(small_disk):
    """Run dir and store on an 8 MB disk, 6.2 MB of it taken (the whole search needs ~4.5 MB): the search stops with
    one line saying the disk is full, exit 3, no traceback; after the space is freed, `search.resume=true` finishes
    it, nothing RUNNING or doubled."""
    filler = small_disk / "filler"
    filler.write_bytes(bytes(6_200_000))
    store = f"sqlite:///{small_disk / 'mlflow.db'}"
    run_dir = small_disk / "run"
    # Adam only: SGD with MSE may diverge in this space, a failed trial by design (which trials the resume draws
    # depends on where the disk ran full), and this test tells a trial the disk stopped from a failed one.
    small_dnn = ["space.window_size.max=20", "space.dense_units.max=16", "space.optimizer.values=[adam]"]
    args = ["+space=dnn", *TINY, *small_dnn, "tuner.max_epochs=4", f"hydra.run.dir={run_dir}"]
    result = run_cli(args, store, small_disk)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(errors) == 1 and "the disk is full" in errors[0] and str(run_dir) in errors[0]

    filler.unlink()
    resumed = run_cli([*args, "search.resume=true"], store, small_disk)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    client = MlflowClient(store)
    runs = client.search_runs([summary["mlflow_experiment_id"]], max_results=1000)
    assert not [run for run in runs if run.info.status == "RUNNING"]
    _, children = runs_of(store, summary["mlflow_parent_run_id"])
    finished = [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)) == summary["trials"]["completed"]
    assert summary["trials"]["failed"] == 0  # a trial the full disk stopped is run again, not recorded as failed


@pytest.mark.slow
def test_a_sweep_whose_disk_fills_ends_as_a_search_does_and_resumes_every_job(small_disk):
    """A multirun (`-m`, two jobs) on the nearly full disk: the job that fills it ends the sweep with the same one
    line and exit code as a single search (Hydra could not even save the next job's config); once space is freed,
    the same command with search.resume=true continues that job and runs the other: the sweep summary lists both,
    every trial once under its own job's parent, nothing RUNNING."""
    filler = small_disk / "filler"
    filler.write_bytes(bytes(6_400_000))
    store = f"sqlite:///{small_disk / 'mlflow.db'}"
    small_dnn = ["space.window_size.max=20", "space.dense_units.max=16", "space.optimizer.values=[adam]"]
    args = ["-m", "+space=dnn", *TINY, *small_dnn, "tuner.max_epochs=4", "seed=1,2", f"hydra.sweep.dir={small_disk / 'sweep'}"]
    result = run_cli(args, store, small_disk)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith("error: the disk is full"), result.stderr[-3000:]

    filler.unlink()
    resumed = run_cli([*args, "search.resume=true"], store, small_disk)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_every_job_finished_once(small_disk / "sweep", store, 2)


def assert_every_job_finished_once(sweep_dir, store: str, jobs: int) -> None:
    """The sweep summary lists `jobs` jobs, none failed; each job's trials are logged once under its own parent, and
    nothing in its experiment is left RUNNING."""
    rows = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert len(rows) == jobs and all(row.get("error") is None for row in rows), rows
    client = MlflowClient(store)
    for job in range(jobs):
        summary = json.loads((sweep_dir / str(job) / "summary.json").read_text())
        runs = client.search_runs([summary["mlflow_experiment_id"]], max_results=1000)
        assert not [run for run in runs if run.info.status == "RUNNING"]
        _, children = runs_of(store, summary["mlflow_parent_run_id"])
        finished = [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED"]
        assert len(finished) == len(set(finished)) == summary["trials"]["completed"] > 0


@pytest.mark.slow
def test_a_sweep_of_side_by_side_jobs_whose_disk_fills_ends_with_one_kind_of_line_and_resumes(tmp_path):
    """Three jobs, two at a time (the joblib launcher), on a disk with 1.2 MB free: each job the full disk stops says
    so in the single search's line, and so does the sweep where the launcher itself could not save a job's config
    (Hydra's traceback before); exit 3. Once space is freed, `-m ... search.resume=true` finishes all three: every
    trial once under its job's parent, nothing RUNNING."""
    with _tmpfs(tmp_path, "16m") as disk:
        filler = disk / "filler"
        filler.write_bytes(bytes(14_800_000))
        store = f"sqlite:///{disk / 'mlflow.db'}"
        small_dnn = ["space.window_size.max=20", "space.dense_units.max=16", "space.optimizer.values=[adam]"]
        side_by_side = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={disk / 'sweep'}"]
        args = ["-m", "+space=dnn", *TINY, *small_dnn, "seed=1,2,3", *side_by_side]
        result = run_cli(args, store, tmp_path)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert errors and all(line.startswith("error: the disk is full (") for line in errors), result.stderr[-3000:]
        assert all(line.endswith("then add search.resume=true to the same command") for line in errors)

        filler.unlink()
        resumed = run_cli([*args, "search.resume=true"], store, tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert_every_job_finished_once(disk / "sweep", store, 3)


def first_trials_at_seed_0(directory: str, store: str) -> dict:
    """The oracle's seed and the first trial's values of fresh tuners built twice with `seed=0` (in a child process)."""
    drawn = {}
    for tuner_name in ("hyperband", "bayesian"):
        for attempt in ("a", "b"):
            overrides = ["+space=dnn", *TINY, f"tuner={tuner_name}"]
            _, tracker, tuner = in_process_tuner(f"{directory}/{tuner_name}{attempt}", store, "seed0", overrides)
            trial = tuner.oracle.create_trial("tuner0")
            drawn[f"{tuner_name}{attempt}"] = {"seed": tuner.oracle.seed, "values": trial.hyperparameters.values}
            tracker.end(tracker.parent_id, "FINISHED")
    return drawn


def test_seed_0_is_a_seed_like_any_other(tmp_path, store):
    """Keras Tuner reads `seed=0` as no seed (`seed or random`): each run would search other trials."""
    drawn, _ = call_in_child("tests.test_reliability", "first_trials_at_seed_0", str(tmp_path), store)
    assert {d["seed"] for d in drawn.values()} == {0}
    assert drawn["hyperbanda"]["values"] == drawn["hyperbandb"]["values"]
    assert drawn["bayesiana"]["values"] == drawn["bayesianb"]["values"]


def test_a_store_the_disk_cannot_hold_is_not_created_half(small_disk):
    """A fresh sqlite store on a disk that fills up while MLflow creates its tables: one line, exit 2, and no
    half-migrated file left (every later command on one failed); once space is freed the same command runs."""
    filler = small_disk / "filler"
    filler.write_bytes(bytes(small_disk_free(small_disk) - 400_000))  # the empty store alone needs ~1 MB
    store_path = small_disk / "mlflow.db"
    run_dir = small_disk.parent / "run"  # the disk that is full is the store's
    args = ["+space=linear", *TINY, "tuner.max_epochs=1", f"hydra.run.dir={run_dir}"]
    result = run_cli(args, f"sqlite:///{store_path}", small_disk.parent, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not be created (the disk is full)" in lines[0], result.stderr
    assert not store_path.exists() and not [p for p in small_disk.iterdir() if p.name.startswith(".mlflow.db")]

    filler.unlink()
    again = run_cli(args, f"sqlite:///{store_path}", small_disk.parent, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = MlflowClient(f"sqlite:///{store_path}").search_runs(
        [json.loads((run_dir / "summary.json").read_text())["mlflow_experiment_id"]]
    )
    assert runs and not [run for run in runs if run.info.status == "RUNNING"]


def small_disk_free(mount_point) -> int:
    stats = os.statvfs(mount_point)
    return stats.f_bavail * stats.f_frsize


KILLED_BEFORE_RECORDING = """
import os, signal, sys
import search.command.runner
search.command.runner.save_parent_id = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from search.__main__ import cli
sys.argv = ["search", *sys.argv[1:]]
cli()
"""


@pytest.mark.parametrize("again", [[], ["search.resume=true"]], ids=["run-again", "resume"])
def test_a_search_killed_between_creating_its_run_and_recording_it_leaves_nothing_running(tmp_path, store, again):
    """`kill -9` at the one instant the parent run exists in MLflow but not yet in the run dir: the next command in
    that run dir (run again, or resumed as a user would) closes it KILLED and runs the search; nothing RUNNING."""
    run_dir = tmp_path / "run"
    args = ["+space=linear", *TINY, "tuner.max_epochs=1", f"hydra.run.dir={run_dir}"]
    killed = run_code(KILLED_BEFORE_RECORDING, args, store, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    client = MlflowClient(store)
    orphans = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])]
    assert [r.info.status for r in orphans] == ["RUNNING"] and not (run_dir / "mlflow_run.json").exists()

    result = run_cli([*args, *again], store, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert client.get_run(orphans[0].info.run_id).info.status == "KILLED"
    runs = client.search_runs([orphans[0].info.experiment_id], max_results=1000)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert client.get_run(json.loads((run_dir / "summary.json").read_text())["mlflow_parent_run_id"]).info.status == "FINISHED"


KILLED_AT = """
import importlib, os, signal, sys

target = {target!r}
module_name, _, attribute = target.rpartition(".")
try:
    owner = importlib.import_module(module_name)
except ModuleNotFoundError:  # a method: module.Class.method
    module_name, _, class_name = module_name.rpartition(".")
    owner = getattr(importlib.import_module(module_name), class_name)
setattr(owner, attribute, lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL))
from search.__main__ import cli
sys.argv = ["search", *sys.argv[1:]]
cli()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_at",
    [
        None,  # a run dir no search has used: a scheduler's first attempt already says resume
        "search.command.runner.connect",  # the run dir locked, nothing else saved (the store not yet opened)
        "search.record.tracking.Tracker.start_parent",  # the parent run being created (marked pending in the run dir)
        "search.tune.tuning.search_and_evaluate",  # the parent recorded, no trial yet
        "keras.Model.fit",  # the first trial training: its child run open, the oracle's trial running
    ],
    ids=["new", "locked", "creating-parent", "recorded", "first-trial"],
)
def test_a_requeued_command_with_resume_always_finishes_one_search(tmp_path, store, kill_at):
    """A job scheduler requeues the same command line, `search.resume=true` included, after a `kill -9` at any instant
    of the start-up: it ends with one finished search, every trial once, nothing RUNNING."""
    run_dir = tmp_path / "run"
    args = ["+space=linear", *TINY, "tuner.max_epochs=1", f"hydra.run.dir={run_dir}", "search.resume=true"]
    if kill_at:
        killed = run_code(KILLED_AT.format(target=kill_at), args, store, tmp_path)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    if kill_at == "keras.Model.fit":  # killed mid-trial: its child run left RUNNING
        left = MlflowClient(store).search_runs([e.experiment_id for e in MlflowClient(store).search_experiments()])
        assert [r.data.tags.get("trial_id") for r in left if r.info.status == "RUNNING" and "trial_id" in r.data.tags]
    result = run_cli(args, store, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    if kill_at in (None, "search.command.runner.connect"):
        assert "holds no search to resume: it starts now" in result.stdout
    client = MlflowClient(store)
    summary = json.loads((run_dir / "summary.json").read_text())
    runs = client.search_runs([summary["mlflow_experiment_id"]], max_results=1000)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parents = [r for r in runs if r.data.tags.get("mode") == "search" and "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parents if r.info.status == "FINISHED"] == ["FINISHED"]
    parent, children = runs_of(store, summary["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED"
    finished = [c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED" and "trial_id" in c.data.tags]
    assert len(finished) == len(set(finished)) == summary["trials"]["completed"] > 0

"""`search.workers=N`: one command trains N trials at a time, as N worker processes around one Keras Tuner oracle.

The command's own process is the chief: it holds the oracle (as in a one-process search: same run
dir, same resume), serves it over gRPC on a free port of 127.0.0.1 (Keras Tuner's own chief/worker
protocol) and is itself worker `w1`: it trains trials from its own oracle, in its main thread, while
it serves. Workers `w2`..`wN` are fresh interpreters (TensorFlow fixes its threads and devices at
import) that train the trials the oracle hands them and log each one as a child of the chief's
parent run. The chief training too saves one TensorFlow process (its import, tuner build and memory)
and the wait for it before the first trial (`bench/README.md` §9). What a user sees stays one search:
one parent run, one progress line per trial (tagged with its worker), one summary, the winner
evaluated once by the chief.

A worker's TensorFlow gets `cores // (workers x parallel jobs)` threads, so the workers do not
oversubscribe the CPU; with GPUs, worker k sees GPU k mod G only, memory allocated as needed.
A worker process that crashes (a bug, the OOM killer) is started again and takes its unfinished trial
up again; Ctrl-C reaches every worker, SIGTERM to the chief is passed on to them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from data.errors import UserError
from search.plan.cores import Assignment
from search.processes.oracle_guard import TLS_CA_ENV, TOKEN_ENV, new_token, serve_oracle, shared_across_threads
from search.record.report import say

if TYPE_CHECKING:
    import keras_tuner
    from keras_tuner.engine.trial import Trial
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    from search.plan.planning import RunLabels

POLL_S = 0.2  # how often the chief looks at its workers and the oracle
CHIEF_IDLE_WAIT_S = 0.05  # how long the chief waits to ask its own oracle again while Hyperband waits for a round
RESTARTS_PER_WORKER = 2  # a worker that keeps dying stops the search instead of looping
STOP_GRACE_S = 60  # how long stopped workers get to close their runs before they are killed
PROGRESS_PREFIX = "trial "  # a worker's progress line (`search.record.report.progress_line`), relayed to the chief's stdout
CHIEF_PID = "SEARCH_CHIEF_PID"  # in a worker's environment: the process that started it


def process_environment(assignment: Assignment, index: int) -> dict[str, str]:
    """What a child process of the chief (a worker, a fit process) runs with, as `assignment`'s process `index`: the
    chief's backend's thread pools, its device, unbuffered output and the chief's pid (`die_with_chief`)."""
    from search.core.devices import GPU_SHARING
    from search.fit.backends import thread_environment

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")  # the chief's, set by `search.fit.backends.activate`
    env = {**thread_environment(backend, assignment.threads), "PYTHONUNBUFFERED": "1", CHIEF_PID: str(os.getpid())}
    gpu = assignment.gpus[index]
    if gpu is not None:
        env.update(CUDA_VISIBLE_DEVICES=gpu, **GPU_SHARING)
    return env


def worker_environment(assignment: Assignment, index: int, port: int) -> dict[str, str]:
    """Keras Tuner's worker variables beside the environment of worker `index` (`process_environment`)."""
    return {
        "KERASTUNER_TUNER_ID": assignment.worker_ids[index],
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        **process_environment(assignment, index),
    }


@dataclass
class Worker:
    """One worker process and what the chief knows of it."""

    index: int
    worker_id: str
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    last_code: int | None = None
    relay: threading.Thread | None = field(default=None, repr=False)


class WorkerPool:
    """The chief's worker processes (every worker of `assignment` but the first, which is the chief itself): start,
    watch (restarting crashes), stop."""

    def __init__(self, command: list[str], assignment: Assignment, run_dir: Path, env: dict[str, str]) -> None:
        self.command, self.assignment, self.env = command, assignment, env
        self.log_dir = run_dir / "workers"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port: int | None = None
        self.token = ""
        ids = enumerate(assignment.worker_ids)
        self.workers = [Worker(k, wid, self.log_dir / f"{wid}.log") for k, wid in ids if k > 0]

    def start(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        for worker in self.workers:
            self._spawn(worker)

    def _spawn(self, worker: Worker) -> None:
        env = {**os.environ, **self.env, **worker_environment(self.assignment, worker.index, self.port)}
        env.update({TOKEN_ENV: self.token, TLS_CA_ENV: ""})  # the local oracle: this search's token, no TLS
        log = worker.log_path.open("a")
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} worker {worker.worker_id} started\n")
        log.flush()
        worker.process = subprocess.Popen(
            [*self.command, worker.worker_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
        )
        log.close()  # the child holds its own descriptor
        worker.relay = threading.Thread(target=_relay, args=(worker.process.stdout, worker.log_path), daemon=True)
        worker.relay.start()

    def running(self) -> list[Worker]:
        return [w for w in self.workers if w.process is not None and w.process.poll() is None]

    def exited(self) -> list[Worker]:
        """Workers that ended since the last call (their exit code in `last_code`)."""
        ended = []
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is not None:
                worker.last_code = worker.process.returncode
                if worker.relay is not None:
                    worker.relay.join(5)
                worker.process = None
                ended.append(worker)
        return ended

    def restart(self, worker: Worker) -> bool:
        """Start a worker that died again; False once it has died too often."""
        if worker.restarts >= RESTARTS_PER_WORKER:
            return False
        worker.restarts += 1
        self._spawn(worker)
        return True

    def stop(self) -> None:
        """SIGTERM every worker still running (each closes its trial's run as KILLED), then wait; kill stragglers."""
        for worker in self.running():
            worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self.exited()


def last_error(log_path: Path) -> str:
    """The line of a worker's log that says why it ended: its `error:` line, else its last line."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(empty log)"])[-1]


def _relay(stream: IO[str], log_path: Path) -> None:
    """Copy a worker's stdout into its log; its progress lines also to the chief's stdout, as they come."""
    with log_path.open("a") as log:
        for line in stream:
            log.write(line)
            log.flush()
            if line.startswith(PROGRESS_PREFIX):
                say(line)


def serve(
    oracle: keras_tuner.Oracle,
    pool: WorkerPool,
    stopped_by_failures: Callable[[keras_tuner.Oracle], str | None],
    train: Callable[[threading.Event], None],
) -> str | None:
    """Serve `oracle` to the pool's workers and `train` here (the chief's own trials) until the search is done;
    returns why it stopped early, or None.

    `train` runs in this (the main) thread, so an interrupt reaches the chief's own trial as in a one-process
    search; it returns when the oracle has no trial left for it, or soon after the event it is given is set.
    A watcher thread restarts workers that crash and sets that event when the search must stop (too many failed
    trials, a worker that keeps dying, bad input a worker found). Keras Tuner's own chief loop
    (`oracle_chief.start_server`) checks every 20 s and waits forever for a worker that died; this one checks
    every 0.2 s and knows its workers. An interrupt stops the workers (their trials' runs KILLED) and is raised
    again once they have ended.
    """
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    token = new_token()  # this search's: other users of the machine can reach 127.0.0.1 too
    server, servicer, port = serve_oracle(oracle, "127.0.0.1:0", token, tls=False)
    stop = threading.Event()
    outcome: dict = {}

    def watch() -> None:
        try:
            outcome["reason"] = _watch(oracle, pool, servicer, exit_chief, stopped_by_failures, stop)
        except BaseException as err:  # noqa: BLE001 - raised again in the main thread
            outcome["error"] = err
        if outcome.get("reason") or outcome.get("error"):
            stop.set()

    watcher = threading.Thread(target=watch, name="worker-watch", daemon=True)
    try:
        pool.start(port, token)
        watcher.start()
        train(stop)
        watcher.join()  # the other workers finish their last trials
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("reason")
    finally:
        stop.set()
        pool.stop()
        server.stop(grace=5).wait()


def _watch(
    oracle: keras_tuner.Oracle,
    pool: WorkerPool,
    servicer: OracleServicer,
    exit_chief: Callable[[keras_tuner.Oracle], bool],
    stopped_by_failures: Callable[[keras_tuner.Oracle], str | None],
    stop: threading.Event,
) -> str | None:
    while not stop.wait(POLL_S):
        for worker in pool.exited():
            code = worker.last_code
            if code == 0:
                continue
            if stopped_by_failures(oracle):
                return "failures"
            if code == 2:  # bad input the chief's checks did not catch: every worker would say the same
                raise UserError(f"worker {worker.worker_id}: {last_error(worker.log_path).removeprefix('error: ')}")
            if not pool.restart(worker):
                return (
                    f"worker {worker.worker_id} ended with exit code {code} {worker.restarts + 1} times "
                    f"({last_error(worker.log_path)}); its log: {worker.log_path}"
                )
            say(f"worker {worker.worker_id} ended with exit code {code}: started again")
        if servicer.stop_triggered and exit_chief(oracle) or not pool.running():
            return None
    return None


def train_beside_workers(tuner: keras_tuner.Tuner, epochs: int, worker_id: str, stop: threading.Event) -> None:
    """The chief's own trials, as worker `worker_id`, until the oracle has none left for it or `stop` is set.

    The oracle serves the other workers meanwhile, on the gRPC thread: Keras Tuner synchronizes the methods that
    change it across threads (`shared_across_threads` mends that for errors and for `get_best_trials`, which the
    progress lines read), and this tuner trains a copy of each trial it is handed, as a worker does. Only this
    tuner's own requests wait when there is no trial yet, and end once `stop` is set.
    """
    from keras_tuner.src.engine.trial import Trial, TrialStatus

    oracle = tuner.oracle
    shared_across_threads(oracle)
    create_trial = oracle.create_trial

    def own_create_trial(tuner_id: str) -> Trial:
        if tuner_id != worker_id:  # a worker's request, through the gRPC servicer
            return create_trial(tuner_id)
        if stop.is_set():
            return Trial(oracle.hyperparameters.copy(), status=TrialStatus.STOPPED)
        trial = create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            stop.wait(CHIEF_IDLE_WAIT_S)
        # A copy, as a worker gets it through gRPC: Keras Tuner's tuner marks its trial COMPLETED before the oracle
        # scores it (`end_trial`), and the oracle's own object in that state breaks a worker's `get_best_trials`.
        return Trial.from_proto(trial.to_proto())

    oracle.create_trial = own_create_trial
    tuner.tuner_id = worker_id
    try:
        tuner.search(epochs=epochs, verbose=0)
    finally:
        oracle.create_trial = create_trial


def worker_command(config_path: Path, run_dir: Path, labels: RunLabels, parent_id: str) -> list[str]:
    """The command line of a worker (the worker id is appended per worker)."""
    return [
        sys.executable,
        "-m",
        "search.command.worker_process",
        str(config_path),
        str(run_dir),
        json.dumps(asdict(labels)),
        parent_id,
    ]

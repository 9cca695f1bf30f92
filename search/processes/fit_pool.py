"""`search.workers=N` after the search: the backtest folds, the refit and the ensemble members are independent fits,
so this process trains them with N - 1 fit processes beside it, as it trained the trials.

Each fit is the same child run (`stage` backtest / refit / ensemble) wherever it is trained, seeded by its job,
so the ranking and the registered model do not depend on which process trained what. The longest fits are
handed out first. A fit process starts (imports Keras, rebuilds the series) while this one trains its
first fit; one that dies hands its fit back to this process, which trains it. An interrupt (Ctrl-C,
SIGTERM) ends every fit process, its run KILLED, and is raised again here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from search.choose.selection import FitJob, FitOutcome, one_after_another
from search.plan.cores import Assignment
from search.processes.workers import process_environment

if TYPE_CHECKING:
    from search.plan.planning import RunLabels

READY = "fit-ready"  # a fit process's first protocol line: it can take a job
RESULT = "fit-result "  # then one line per job: its outcome as JSON
STOP_GRACE_S = 30  # how long a fit process gets to close its run once it is told to stop


def tagged(job: FitJob, worker_id: str) -> FitJob:
    """The job with the worker that trains it as its run's tag `worker` (as the trials have)."""
    return replace(job, tags={**job.tags, "worker": worker_id})


class FitProcessDied(Exception):
    """A fit process ended before it answered: its job goes back to the queue."""


class FitProcess:
    """One fit process: jobs as JSON lines on its stdin, outcomes as lines on its stdout, the rest in its log."""

    def __init__(self, worker_id: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.worker_id, self.log_path = worker_id, log_path
        self.is_ready = False  # it said it can take jobs
        self.stopping = False  # it is being ended (an interrupt, the end of the stages)
        self.gone = False  # it died: the rest of the fits run elsewhere
        with log_path.open("a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} fit process started\n")
            log.flush()
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
            )

    def _answer(self) -> str:
        """The next protocol line; other output goes to the log. Raises `FitProcessDied` at its end."""
        with self.log_path.open("a") as log:
            for line in self.process.stdout:
                if line.startswith((READY, RESULT)):
                    return line
                log.write(line)
                log.flush()
        raise FitProcessDied(f"the fit process ended (exit code {self.process.wait()}); its log: {self.log_path}")

    def ready(self) -> bool:
        """Whether it can take jobs (waits for its first line, once)."""
        if not self.is_ready:
            try:
                self.is_ready = self._answer().startswith(READY)
            except FitProcessDied:
                return False
        return self.is_ready

    def fit(self, job: FitJob) -> FitOutcome:
        try:
            self.process.stdin.write(json.dumps(asdict(tagged(job, self.worker_id))) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise FitProcessDied(str(err)) from None
        answer = json.loads(self._answer().removeprefix(RESULT))
        return FitOutcome(
            job.key, mae=answer["mae"], model=answer["model_path"], error=answer["error"], forecasts=answer.get("forecasts")
        )

    def stop(self, interrupted: bool = False) -> None:
        """End the process: at once (SIGTERM: its run KILLED) if interrupted, else once it has no job (its stdin closed)."""
        self.stopping = True
        if self.process.poll() is None:
            if interrupted:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class FitPool:
    """Fit processes started on the first `run` with more than one job, ended by `close` (a `with` block)."""

    def __init__(self, command: list[str], assignment: Assignment, run_dir: Path, env: dict[str, str]) -> None:
        self.command, self.assignment, self.env = command, assignment, env
        self.log_dir = run_dir / "fits"
        self.processes: list[FitProcess] = []

    def __enter__(self) -> FitPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close(interrupted=kind is not None)

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(1, len(self.assignment.worker_ids)):
            env = {**os.environ, **self.env, **process_environment(self.assignment, index)}
            worker_id = self.assignment.worker_ids[index]
            self.processes.append(FitProcess(worker_id, self.command, env, self.log_dir / f"{worker_id}.log"))

    def run(self, jobs: list[FitJob], one: Callable[[FitJob], FitOutcome]) -> list[FitOutcome]:
        """Every job's outcome, in the jobs' order: `one` trains here (in this thread), the fit processes beside it."""
        if len(jobs) < 2 or len(self.assignment.worker_ids) < 2:
            return one_after_another(jobs, one)
        if not self.processes:
            self._start()
        pending = deque(sorted(range(len(jobs)), key=lambda i: -jobs[i].cost))
        lock = threading.Lock()
        outcomes: list[FitOutcome | None] = [None] * len(jobs)

        def take() -> int | None:
            with lock:
                return pending.popleft() if pending else None

        def feed(process: FitProcess) -> None:
            if process.gone:
                return
            if not process.ready():
                process.gone = True
                if not process.stopping:
                    code = process.process.wait()
                    print(
                        f"warning: fit process {process.worker_id} ended before its first fit (exit code {code}); "
                        f"the fits run here; its log: {process.log_path}",
                        file=sys.stderr,
                        flush=True,
                    )
                return
            while (index := take()) is not None:
                try:
                    outcomes[index] = process.fit(jobs[index])
                except FitProcessDied as err:
                    process.gone = True
                    if process.stopping:  # an interrupt ended it
                        return
                    print(f"warning: {err}; its fit is trained here", file=sys.stderr, flush=True)
                    with lock:
                        pending.appendleft(index)
                    return

        feeders = [threading.Thread(target=feed, args=(p,), name="fit-feed", daemon=True) for p in self.processes]
        for feeder in feeders:
            feeder.start()
        try:
            here = self.assignment.worker_ids[0]
            while (index := take()) is not None:
                outcomes[index] = one(tagged(jobs[index], here))
            for feeder in feeders:
                feeder.join()
            while (index := take()) is not None:  # what a dead fit process handed back
                outcomes[index] = one(tagged(jobs[index], here))
        except BaseException:
            self.close(interrupted=True)
            raise
        return [self._loaded(outcome) for outcome in outcomes]

    @staticmethod
    def _loaded(outcome: FitOutcome) -> FitOutcome:
        """A fit process's model comes as a `.keras` file: loaded here (in the main thread: loading draws from Keras'
        random state, as the fits here do), the file removed."""
        if isinstance(outcome.model, str):
            import keras

            path = Path(outcome.model)
            outcome.model = keras.saving.load_model(path)
            path.unlink(missing_ok=True)
        return outcome

    def close(self, interrupted: bool = False) -> None:
        for process in self.processes:
            process.stop(interrupted)
        self.processes = []


def fit_process_command(config_path: Path, run_dir: Path, labels: RunLabels, parent_id: str) -> list[str]:
    """The command line of a fit process (`search.command.fit_process`)."""
    arguments = [str(config_path), str(run_dir), json.dumps(asdict(labels)), parent_id]
    return [sys.executable, "-m", "search.command.fit_process", *arguments]

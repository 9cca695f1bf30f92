"""One Hydra job: run the search (or the LR range test), print its outcome, turn it into an exit code.

Bad input ends with one line on stderr and exit code 2; an interrupt (Ctrl-C or SIGTERM) ends the
runs as KILLED and exits 130; a search that ran but could not finish (every trial failed, a bug)
exits 3. In a multirun a failed job is written down instead (`summary.json` with `error` and
`exit_code`), so the sweep goes on; a job pinned to a GPU, on another Keras backend than this process already
imported, or beside other jobs (the joblib launcher), runs in a freshly spawned interpreter.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import UserError
from search.core import interrupts
from search.core.devices import gpu_for_job, job_environment, visible_gpus
from search.core.exits import EXIT_INTERRUPTED, EXIT_SEARCH_FAILED, EXIT_USAGE
from search.core.files import DISK_FULL, disk_full, full_disk_line
from search.core.quiet import quiet_start_up
from search.core.secrets import redact
from search.fit import backends
from search.plan.planning import RunLabels
from search.plan.run_dir import unlock_run_dir
from search.record.parent_record import load_parent_id
from search.record.summary import WorkerReport, load_finished, write_summary

if TYPE_CHECKING:
    from omegaconf import DictConfig


def leave_after_full_disk(code: int, error: str | None) -> None:
    """After a full disk, end the process at once (output flushed) instead of by `sys.exit`.

    The runs are already ended; what is left is the interpreter's teardown, where h5py frees the half-written
    checkpoint whose writes failed and crashes (SIGSEGV instead of the exit code the message promised).
    """
    if code == EXIT_SEARCH_FAILED and error and error.startswith(DISK_FULL):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_job(cfg: DictConfig, run_dir: Path, labels: RunLabels, parallel_jobs: int = 1) -> tuple[int, str | None]:
    """Run one search (or `mode=lr_find`) and print its outcome; returns the exit code and the error, if any.

    `parallel_jobs`: multirun jobs running side by side with this one (they share the cores with `search.workers`).
    """
    quiet_start_up()  # (a launcher's worker process, e.g. joblib's, did not start through `search.__main__`)
    try:
        backend = backends.resolve(cfg.get("backend"))
        backends.activate(backend)  # before anything below imports Keras
        labels = replace(labels, backend=backend)
        from search.command.runner import run_lr_find, run_search
        from search.record.report import closing_table, lr_find_lines

        if cfg.mode == "lr_find":
            print(lr_find_lines(run_lr_find(cfg, run_dir, Path.cwd(), labels)))
            return 0, None
        summary = run_search(cfg, run_dir, Path.cwd(), labels, parallel_jobs)
        if isinstance(summary, WorkerReport):
            print(f"worker {summary.tuner_id}: trained {summary.trials_run} trials; the chief evaluates the winner")
            return 0, None
        if isinstance(summary, dict):  # a resumed search that had finished: its summary.json, nothing changed
            print(closing_table(summary))
            print(f"search.resume=true: the search in {run_dir} had already finished; nothing was changed", flush=True)
            return 0, None
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE, str(err)
    except Exception as err:  # a bug, not bad input: keep the traceback, but not Hydra's exit code 1
        full = disk_full(err)
        if full:
            message = full_disk_line(full, run_dir)
            print(f"error: {message}", file=sys.stderr)
            return EXIT_SEARCH_FAILED, message
        traceback.print_exc()
        return EXIT_SEARCH_FAILED, f"{type(err).__name__}: {err}"
    except KeyboardInterrupt:
        print("interrupted: runs marked KILLED; add search.resume=true to the same command to continue", file=sys.stderr)
        return EXIT_INTERRUPTED, "interrupted"
    finally:
        unlock_run_dir(run_dir)  # a multirun's next job (same process) may be a resume of this one
    print(closing_table(summary.as_dict()))
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
        return EXIT_SEARCH_FAILED, summary.error
    return 0, None


def run_multirun_job(
    cfg: DictConfig, run_dir: Path, labels: RunLabels, job_number: int, overrides: list[str], parallel_jobs: int = 1
) -> int:
    """One job of a multirun (`-m`): skipped if a resumed sweep already finished it, on GPU `job_number mod N` if any,
    in a fresh interpreter when pinned to a GPU, on another backend, or beside other jobs (`parallel_jobs` > 1).

    A job that never started is run from the start by a resumed sweep (`search.resume=true` on the
    whole sweep). Returns the job's exit code; only an interrupt stops the sweep.
    """
    if cfg.search.resume and load_finished(run_dir) is not None:
        print(f"job {job_number}: already finished in {run_dir}; skipped", flush=True)
        return 0
    try:
        never_started = load_parent_id(run_dir) is None
    except UserError as err:  # a damaged mlflow_run.json: this job fails, the sweep goes on
        print(f"error: {err}", file=sys.stderr)
        _record_failed_job(run_dir, EXIT_USAGE, str(err), overrides)
        return EXIT_USAGE
    if cfg.search.resume and never_started:
        cfg.search.resume = False
    device = gpu_for_job(job_number, cfg.search.gpus, visible_gpus())
    if device is None and not backends.needs_fresh_process(cfg.get("backend")) and parallel_jobs == 1:
        return run_sweep_job(cfg, run_dir, labels, overrides, parallel_jobs)
    # Jobs side by side (joblib) run in fresh interpreters too: the launcher's worker runs job after job, and one job
    # that crashes it (h5py frees a checkpoint a full disk cut short: SIGSEGV) would end every job beside it.
    return run_in_fresh_process(cfg, run_dir, replace(labels, gpu=device), overrides, device, parallel_jobs)


def run_sweep_job(
    cfg: DictConfig, run_dir: Path, labels: RunLabels, overrides: list[str], parallel_jobs: int = 1, own_process: bool = False
) -> int:
    """One job of a multirun: a failure is written to the job's `summary.json` (`error`, `exit_code`), not raised.

    `own_process`: this interpreter runs this job alone (`run_in_fresh_process`), so a full disk ends it at once."""
    code, error = run_job(cfg, run_dir, labels, parallel_jobs)
    if code and code != EXIT_INTERRUPTED:
        try:
            _record_failed_job(run_dir, code, error, overrides)
        except OSError:
            if not (error or "").startswith(DISK_FULL):
                raise  # (on a full disk the job's line has said so)
        if parallel_jobs == 1 or own_process:  # a full disk ends the sweep as it ends a search: Hydra could not even
            leave_after_full_disk(code, error)  # save the next job's config; `-m` again with search.resume=true continues
    return code


def run_in_fresh_process(
    cfg: DictConfig, run_dir: Path, labels: RunLabels, overrides: list[str], device: str | None, parallel_jobs: int = 1
) -> int:
    """Run the job in a new interpreter that sees only GPU `device` (None: devices left alone); returns its exit code.

    TensorFlow fixes its devices at import, Keras its backend, and launchers reuse their worker processes, so only a
    fresh interpreter can be pinned to a card, or run a sweep's job on another backend than the one before. The
    job's config goes to it as a file in the job's directory. Ctrl-C reaches both processes; SIGTERM to this one is
    passed on.
    """
    from search.core.files import save_child_config

    config_path = save_child_config(cfg, run_dir / "job_config.yaml")  # the child gets a secret URI from its environment
    arguments = [str(config_path), str(run_dir), json.dumps(asdict(labels)), json.dumps(overrides), str(parallel_jobs)]
    command = [sys.executable, "-m", "search.command.jobs", *arguments]
    secret_uri = {"MLFLOW_TRACKING_URI": cfg.tracking.uri} if cfg.tracking.uri and "MLFLOW_TRACKING_URI" not in os.environ else {}
    pinned = job_environment(device) if device is not None else {}
    process = subprocess.Popen(command, env={**os.environ, **secret_uri, **pinned})
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()  # SIGTERM: the job ends its runs KILLED
        process.wait(60)
        return EXIT_INTERRUPTED
    killed_by = None
    if code in (-signal.SIGINT, -signal.SIGTERM):
        code = EXIT_INTERRUPTED
    elif code < 0:  # a crash or the kernel's OOM killer: this job failed, the sweep (and the jobs beside it) go on
        killed_by, code = f"the job's process was killed by {signal.Signals(-code).name}", EXIT_SEARCH_FAILED
        if nearly_full(run_dir):  # h5py crashes on a checkpoint the full disk cut short
            killed_by = full_disk_line(f"{killed_by} as it wrote", run_dir)
        else:
            killed_by += f" (run dir {run_dir})"
        print(f"error: {killed_by}", file=sys.stderr, flush=True)
    if code and code != EXIT_INTERRUPTED:
        try:
            error = _record_failed_job(run_dir, code, killed_by, overrides)  # keeps the job's own message if it wrote one
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            error = DISK_FULL  # (the job said so in its own line)
        if parallel_jobs == 1:
            leave_after_full_disk(code, error)  # a full disk ends the sweep, as in `run_sweep_job`
    return code


def nearly_full(path: Path) -> bool:
    """Whether the disk holding `path` has less than a mebibyte free (where a search's next write fails)."""
    import shutil

    try:
        return shutil.disk_usage(path if path.exists() else path.parent).free < 2**20
    except OSError:
        return False


def _job_process(config_path: str, run_dir: str, labels: str, overrides: str, parallel_jobs: str) -> None:
    """The fresh interpreter's side of `run_in_fresh_process`."""
    from omegaconf import OmegaConf

    interrupts.install()
    cfg = OmegaConf.load(config_path)
    job_labels, job_overrides = RunLabels(**json.loads(labels)), json.loads(overrides)
    sys.exit(run_sweep_job(cfg, Path(run_dir), job_labels, job_overrides, int(parallel_jobs), own_process=True))


def _record_failed_job(run_dir: Path, code: int, error: str | None, overrides: list[str]) -> str:
    """Make sure a failed job's directory says why, for the sweep summary; returns the error it records."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.setdefault("error", error or f"exit code {code}")
    summary.update(exit_code=code, overrides=[redact(override) for override in overrides])
    write_summary(path, summary)
    return summary["error"]


if __name__ == "__main__":
    _job_process(*sys.argv[1:])

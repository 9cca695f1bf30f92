"""The run directory a search works in: writable, held by this process alone (an OS file lock), and continued only
on purpose (`search.resume`), with state files a resume can read. Checked before TensorFlow is imported."""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path

from data.errors import UserError, first_line
from search.record.parent_record import PARENT_FILE, PENDING_FILE, load_parent_record


def prepare_run_dir(run_dir: Path, resume: bool, identity: dict[str, str] | None = None) -> None:
    """Make sure the run dir is writable, this process alone uses it, and a search in it is only continued on purpose.

    `identity` (space, data, tuner) must match the one the search in the run dir was started with; its state
    files must be readable. Raises `UserError` naming the field or file and what to do.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        if err.errno == errno.ENOSPC:  # not a bad directory: the job's "the disk is full" line says what to do
            raise
        raise UserError(f"hydra.run.dir={str(run_dir)!r} cannot be written ({err.strerror}); choose another directory") from None
    lock_run_dir(run_dir)
    if (run_dir / "tuner").exists() and not resume:
        raise UserError(
            f"hydra.run.dir={str(run_dir)!r} already holds a search: add search.resume=true "
            "to continue it, or choose another directory"
        )
    if not resume:
        return
    record = load_parent_record(run_dir)
    if record is None and (run_dir / PENDING_FILE).exists():
        print(
            f"note: the search in {run_dir} was stopped before it recorded its MLflow run, so nothing of it can be "
            "resumed: it starts over (the run it left is closed)",
            flush=True,
        )
        return
    if record is None and (run_dir / "tuner").exists():
        raise UserError(
            f"search.resume=true but hydra.run.dir={str(run_dir)!r} holds trials without the record of their MLflow run "
            f"({PARENT_FILE} is missing): choose another hydra.run.dir to start over"
        )
    if record is None:  # new, or stopped before it saved anything: a requeued command line starts the search
        print(f"note: hydra.run.dir={str(run_dir)!r} holds no search to resume: it starts now", flush=True)
        return
    for key, value in (identity or {}).items():
        if key in record and record[key] != value:
            raise UserError(
                f"search.resume=true: hydra.run.dir={str(run_dir)!r} holds a search of {key}={record[key]}, not {value}; "
                f"resume with the same {key}, or choose another hydra.run.dir for this one"
            )
    check_state_files(run_dir)


_LOCKS: dict[Path, int] = {}
"""Open descriptors of the run dirs this process holds: the lock lasts as long as the process, and dies with it."""


def lock_run_dir(run_dir: Path) -> None:
    """Hold `run_dir/.lock` (an OS file lock) so a second search on the same run dir is refused, not mixed in."""
    path = (run_dir / ".lock").resolve()
    if path in _LOCKS:
        return
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise UserError(f"hydra.run.dir={str(run_dir)!r}: its lock file {path} cannot be opened ({err.strerror})") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(descriptor)
        if not isinstance(err, BlockingIOError):
            message = f"hydra.run.dir={str(run_dir)!r} cannot be locked ({err.strerror}); choose another directory"
            raise UserError(message) from None
        raise UserError(
            f"hydra.run.dir={str(run_dir)!r} is in use by another search (process {holder}): "
            "wait for it to end, or choose another directory"
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, str(os.getpid()).encode(), 0)
    _LOCKS[path] = descriptor


def unlock_run_dir(run_dir: Path) -> None:
    """Let go of `run_dir` once its search is over (a multirun runs many in one process)."""
    descriptor = _LOCKS.pop((run_dir / ".lock").resolve(), None)
    if descriptor is not None:
        os.close(descriptor)


def check_state_files(run_dir: Path) -> None:
    """Every JSON state file a resume reads (Keras Tuner's oracle and trials, the LR range test) must parse."""
    paths = [run_dir / "lr_find.json", *sorted((run_dir / "tuner").rglob("*.json"))]
    for path in paths:
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise UserError(
                f"{path} is damaged ({first_line(err)}): the search in hydra.run.dir cannot be resumed; "
                "choose another hydra.run.dir to start over"
            ) from None

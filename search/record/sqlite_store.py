"""A sqlite tracking store: where its file is, and creating a fresh one whole, one process at a time.

MLflow builds a new sqlite store in some fifty migrations; two processes opening one fresh file race on them, and a
migration that fails midway leaves a file every later command fails on. `search.record.tracking.Tracker` opens a
store under `store_creation_lock` and through `create_sqlite_store_whole`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from data.errors import UserError, first_line
from search.core.files import disk_full
from search.core.secrets import redact


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///` tracking URI (query string dropped), None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


def create_sqlite_store_whole(uri: str) -> None:
    """Create a new sqlite store's tables in a file beside it, moved into place once all are made.

    MLflow builds a fresh store in some fifty migrations, each committed on its own: one that fails midway (the disk
    fills up) leaves a half-migrated file that every later command on it fails on (`_alembic_tmp_... already
    exists`). Built aside, a failure leaves no store at all, and the one line says so.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = sqlite_path(uri)
    if path is None or (path.exists() and path.stat().st_size > 0) or not path.parent.is_dir():
        return  # an existing store, or none that can be made here (the probe says why)
    building = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        SqlAlchemyStore(f"sqlite:///{building}", "./mlruns").engine.dispose()
        os.replace(building, path)
    except Exception as err:  # noqa: BLE001 - whatever stopped it, nothing is left and the user is told
        cause = "the disk is full" if disk_full(err) else redact(first_line(err))[:200]
        raise UserError(
            f"tracking store {redact(uri)} could not be created ({cause}); nothing was left at {path}: free space "
            "there (or point tracking.uri / MLFLOW_TRACKING_URI elsewhere) and run the same command again"
        ) from None
    finally:
        for leftover in (building, building.with_name(building.name + "-journal")):
            leftover.unlink(missing_ok=True)


@contextmanager
def store_creation_lock(uri: str) -> Iterator[None]:
    """Hold `<sqlite file>.lock` while MLflow opens a sqlite store: processes that open one fresh file at once
    (parallel sweep jobs, a chief and its workers) would otherwise race on creating its tables and all fail."""
    import fcntl

    path = sqlite_path(uri)
    try:
        handle = open(f"{path}.lock", "a") if path else None  # noqa: SIM115 - held for the block
    except OSError:  # a read-only directory: nothing can create the tables there anyway
        handle = None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield

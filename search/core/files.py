"""Writing the run dir's state files whole (a reader, a resume or a sweep summary, never sees half a file), the
config a child process reads (no password in it), and
knowing a full disk when an error says so."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.core import interrupts

if TYPE_CHECKING:
    from omegaconf import DictConfig


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it to disk, then rename it over `path`.

    The rename is atomic on POSIX file systems, and an interrupt waits until it is done, so `path`
    holds either the old content or the new one, never a mix.
    """
    with interrupts.critical():
        descriptor, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # unique: writers in parallel
        try:
            with open(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json(path: Path, payload: Any) -> None:
    """`payload` as indented JSON, written atomically (values JSON cannot hold are written as text)."""
    write_atomic(path, json.dumps(payload, indent=2, default=str))


DISK_FULL = "the disk is full"


def full_disk_line(where: str, directory: Path | None = None, kind: str = "run dir") -> str:
    """What a search (or a sweep) that stopped on a full disk says: where it ran full (`disk_full`), its directory if
    known, and how to go on. One wording everywhere, so that a sweep's job and a single search end alike."""
    place = f"{where}; {kind} {directory}" if directory is not None else where
    return (
        f"{DISK_FULL} ({place}): free space there and where the tracking store is, "
        "then add search.resume=true to the same command"
    )


def disk_full(err: BaseException) -> str | None:
    """Where the disk ran full, if that is what `err` (or an error it came from) says; else None.

    An `OSError` says it with ENOSPC and its file name; sqlite says it only in words, through MLflow.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            if err.filename:
                return f"writing {err.filename}"
            # h5py puts the file in its multi-line message instead: "... filename = '<path>', ... errno = 28 ..."
            named = re.search(r"filename = '([^']+)'", str(err))
            return f"writing {named.group(1)}" if named else " ".join(str(err.strerror or err).split())
        if "database or disk is full" in str(err):
            return "the tracking store's database"
        err = err.__cause__ or err.__context__
    return None


def save_child_config(cfg: DictConfig, path: Path, experiment: str | None = None) -> Path:
    """The resolved config for a fresh interpreter (a worker, a GPU-pinned multirun job), with no password in it.

    The child gets a tracking URI from its environment instead (`MLFLOW_TRACKING_URI`); `experiment`, if given,
    names the experiment it logs to.
    """
    from omegaconf import OmegaConf

    from search.core.secrets import redact

    path.parent.mkdir(parents=True, exist_ok=True)
    if experiment is not None:
        cfg = copy.deepcopy(cfg)
        cfg.tracking.uri, cfg.tracking.experiment = None, experiment
    write_atomic(path, redact(OmegaConf.to_yaml(cfg, resolve=True)))
    return path

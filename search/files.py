"""Writing the run dir's state files whole: a reader (a resume, a sweep summary) never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from search import interrupts


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

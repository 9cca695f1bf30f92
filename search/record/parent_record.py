"""The search's parent run, remembered in its run dir: what `search.resume=true` reattaches to, and the token that
finds a parent run whose process was killed before it could remember it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import UserError, first_line
from search.core.files import write_json

if TYPE_CHECKING:
    from search.record.tracking import Tracker

PARENT_FILE = "mlflow_run.json"
PENDING_FILE = "mlflow_run.pending.json"  # a parent run being created: its token, until PARENT_FILE holds its id


def save_parent_id(run_dir: Path, run_id: str, experiment_id: str, identity: Mapping[str, str] | None = None) -> None:
    """Remember the parent run in the run dir, written atomically, so `search.resume=true` reattaches.

    `identity` (space, data, tuner) is kept beside it: a resume with another space or data is refused.
    """
    write_json(run_dir / PARENT_FILE, {"run_id": run_id, "experiment_id": experiment_id, **(identity or {})})


def mark_parent_pending(run_dir: Path) -> dict[str, str]:
    """Before a parent run is created: a token in the run dir, put on the run as tag `search_token`, so a run whose
    process was killed before `save_parent_id` can still be found (`close_unrecorded_parent`). Returns the tag."""
    token = uuid.uuid4().hex
    write_json(run_dir / PENDING_FILE, {"search_token": token})
    return {"search_token": token}


def close_unrecorded_parent(tracker: Tracker, run_dir: Path) -> None:
    """Close the parent run a search in `run_dir` created but was killed (`kill -9`) before recording: without its id
    on disk no resume would find it, and it would stay RUNNING in MLflow for ever."""
    path = run_dir / PENDING_FILE
    try:
        token = json.loads(path.read_text())["search_token"]
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return
    recorded = load_parent_id(run_dir)
    for run in tracker.runs_tagged("search_token", token):
        if run.info.status == "RUNNING" and run.info.run_id != recorded:
            tracker.end(run.info.run_id, "KILLED", error="its process was killed before it recorded the run in the run dir")
    path.unlink(missing_ok=True)


def load_parent_record(run_dir: Path) -> dict | None:
    """What `save_parent_id` wrote, or None if the run dir holds no search; a damaged file is a `UserError`."""
    path = run_dir / PARENT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        record["run_id"]  # noqa: B018 - a record without it is as damaged as a cut one
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{path} is damaged ({first_line(err)}): the search in hydra.run.dir cannot be resumed; "
            "choose another hydra.run.dir to start over"
        ) from None
    return record


def load_parent_id(run_dir: Path) -> str | None:
    record = load_parent_record(run_dir)
    return record["run_id"] if record else None

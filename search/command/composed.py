"""What both entry points (`python -m search` and `search.api.run`) check or add once Hydra has composed the config."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parent.parent.parent / "conf"


def git_commit() -> str:
    """The checkout's commit (tag `git_commit` on every run), or "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CONF_DIR.parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


REQUIRED_HINTS = {"data.path": "the CSV file to read", "data.column": "the name of the column to forecast"}


def missing_setting(cfg: DictConfig, data_choice: str) -> str | None:
    """A required key left unset (`???`, e.g. `data=csv` without `data.column`): what to add, before it fails deep inside."""
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if not missing:
        return None
    key = missing[0]
    hint = REQUIRED_HINTS.get(key, "a value")
    needed_by = f" (data={data_choice} needs it)" if key.startswith("data.") and data_choice else ""
    return f"{key} is not set{needed_by}: add {key}=<{hint}>"


def data_choice_error(data_choice: str) -> str | None:
    """A schema chosen as the data set (`data=csv_schema`): the one line saying what to choose instead."""
    if data_choice.endswith("_schema"):
        return f"data={data_choice} is a schema, not a data set: use data=synthetic, data=csv, data=co2 or data=elnino"
    return None

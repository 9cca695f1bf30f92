"""A search from Python (a notebook, a script, a pipeline step): the same search as `python -m search`, its summary
back as a dict.

    from search.api import run
    summary = run("+space=conv_lstm", "data=co2", "seed=1", run_dir="outputs/co2-seed1")
    summary["test_mae"], summary["registered_model"], summary["model_uri"]

The overrides are the command line's, composed by Hydra's compose API from the same `conf/`; the progress lines and
the closing table are printed as the command prints them; MLflow is reached as the command reaches it
(`MLFLOW_TRACKING_URI`, or `tracking.uri=`). One search a call (no `-m` sweep: loop over calls, or use the command).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


class SearchFailed(RuntimeError):
    """A search that did not finish: bad input (`code` 2, the one line the command prints as the message), or a search
    that ran but could not finish (3). Its runs are closed as the command closes them."""

    def __init__(self, code: int, error: str | None) -> None:
        super().__init__(error or f"exit code {code}")
        self.code, self.error = code, error


def run(*overrides: str, run_dir: str | Path | None = None) -> dict:
    """Run one search as `python -m search *overrides` would and return its `summary.json` as a dict.

    `run_dir` is `hydra.run.dir` (an override `hydra.run.dir=` works too; default `outputs/<date>/<time>`, as the
    command's). Raises `SearchFailed`; Ctrl-C closes the runs KILLED and raises `KeyboardInterrupt`.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import open_dict

    from search.command.composed import CONF_DIR, data_choice_error, git_commit, missing_setting
    from search.command.jobs import run_job
    from search.config import register_configs
    from search.core import interrupts
    from search.core.exits import EXIT_INTERRUPTED, EXIT_USAGE
    from search.plan.planning import RunLabels

    register_configs()  # (`run_job` starts quiet, as the command does, before anything imports TensorFlow)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="search"):
            cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    except HydraException as err:
        raise SearchFailed(EXIT_USAGE, str(err).splitlines()[0]) from None
    choices = cfg.hydra.runtime.choices
    if not cfg.get("space"):
        raise SearchFailed(EXIT_USAGE, "choose a search space: run('+space=<name>', ...), a file of conf/space/")
    if cfg.mode != "search" or cfg.search.distributed.role is not None:
        raise SearchFailed(
            EXIT_USAGE, "run() runs a search and returns its summary: use the command for mode=lr_find and distributed roles"
        )
    if run_dir is None and any(o.startswith(("hydra.run.dir=", "++hydra.run.dir=")) for o in overrides):
        run_dir = cfg.hydra.run.dir
    with open_dict(cfg):
        del cfg["hydra"]
    missing = data_choice_error(choices.get("data") or "") or missing_setting(cfg, choices.get("data") or "")
    if missing:
        raise SearchFailed(EXIT_USAGE, missing)
    run_dir = Path(run_dir) if run_dir is not None else Path("outputs") / time.strftime("%Y-%m-%d") / time.strftime("%H-%M-%S")
    data_file = Path(cfg.data.path).stem if cfg.data.get("source") == "csv" else None
    labels = RunLabels(space=choices.get("space"), data=cfg.data.name, git_commit=git_commit(), data_file=data_file)
    with interrupts.installed_for_the_block():  # Ctrl-C closes the runs KILLED, as in the command
        code, error = run_job(cfg, run_dir, labels)
    if code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt(error)  # the caller's loop stops too
    if code:
        raise SearchFailed(code, error)
    return json.loads((run_dir / "summary.json").read_text())

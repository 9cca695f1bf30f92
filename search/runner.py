"""One search from a composed config: validate, track, tune, evaluate the winner, register it.

Everything that can be checked without TensorFlow (space, data, layout, output dir, tracking
store) is checked first, so bad input costs a second, not an hour.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from data.errors import UserError
from data.sources import load_series
from data.split import Layout, plan_layout
from search import distributed, interrupts
from search.lr_range import check_settings
from search.space import auto_learning_rate, candidates, fit_to_season, input_lengths, validate_space
from search.tracking import Tracker, load_parent_id, redact, resolve_uri, save_parent_id

TUNER_NAMES = ("hyperband", "random", "bayesian")
MODES = ("search", "lr_find")
ENSEMBLE_KINDS = ("seeds", "configurations")


@dataclass
class Plan:
    """What a search will run on, all checked: the series, the space and the layout."""

    series: np.ndarray
    specs: dict
    layout: Layout


def plan(cfg) -> Plan:
    """Validate space and data against each other; raises `UserError` on the first problem."""
    if not cfg.space:
        raise UserError("no search space: add +space=<name>")
    if cfg.mode not in MODES:
        raise UserError(f"mode={cfg.mode!r} is unknown: use mode=search (default) or mode=lr_find")
    if cfg.mode == "lr_find" and cfg.search.resume:
        raise UserError("search.resume applies to searches, not to mode=lr_find: drop search.resume")
    if cfg.tuner.name not in TUNER_NAMES:
        raise UserError(f"tuner.name={cfg.tuner.name!r} is unknown: use tuner=hyperband, tuner=random or tuner=bayesian")
    for field in ("max_epochs", "executions_per_trial", "max_trials"):
        if getattr(cfg.tuner, field) < 1:
            raise UserError(f"tuner.{field}={getattr(cfg.tuner, field)} must be >= 1")
    if cfg.tuner.name == "hyperband" and cfg.tuner.factor < 2:
        raise UserError(f"tuner.factor={cfg.tuner.factor} must be >= 2")
    if cfg.search.ensemble_of not in ENSEMBLE_KINDS:
        raise UserError(f"search.ensemble_of={cfg.search.ensemble_of!r} is unknown: use seeds or configurations")
    for field, low in (("select.top_k", 1), ("select.folds", 1), ("ensemble", 1)):
        value = OmegaConf.select(cfg.search, field)
        if value < low:
            raise UserError(f"search.{field}={value} must be >= {low}")
    specs = validate_space(OmegaConf.to_container(cfg.space, resolve=True))
    if cfg.mode == "lr_find" or auto_learning_rate(specs):
        check_settings(cfg.lr_find)
    specs, note = fit_to_season(specs, cfg.data.season_length)
    if note:
        print(f"note: {note}", flush=True)
    series = load_series(cfg.data)
    span = max(input_lengths(specs, cfg.data.season_length))
    layout = plan_layout(len(series), cfg.data.test_size, candidates(specs["split_time"]), candidates(specs["window_size"]), span)
    return Plan(series, specs, layout)


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Make sure the run dir is writable, and that a search in it is only continued on purpose."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"hydra.run.dir={str(run_dir)!r} cannot be written ({err.strerror}); choose another directory") from None
    if (run_dir / "tuner").exists() and not resume:
        raise UserError(
            f"hydra.run.dir={str(run_dir)!r} already holds a search: add search.resume=true "
            "to continue it, or choose another directory"
        )
    if resume and load_parent_id(run_dir) is None:
        raise UserError(f"search.resume=true but hydra.run.dir={str(run_dir)!r} holds no search to resume; drop search.resume")


def connect(cfg, launch_dir: Path, names: dict) -> Tracker:
    """The tracking store and the search's experiment (`<data>-<space>` unless tracking.experiment is set)."""
    uri = resolve_uri(cfg.tracking.uri, launch_dir)
    experiment = cfg.tracking.experiment or f"{names['data']}-{names['space']}"
    return Tracker(uri, experiment, cfg.tracking.artifact_location)


def open_parent(tracker: Tracker, cfg, run_dir: Path, names: dict, role: distributed.Role | None = None) -> None:
    """Start (or, with `search.resume`, reattach to) the parent run: `tracker.parent_id` is set on return."""
    previous = load_parent_id(run_dir) if cfg.search.resume else None
    if previous:
        tracker.resume_parent(previous)
    else:
        tags = {
            "space": names["space"],
            "data": names["data"],
            "tuner": cfg.tuner.name,
            "seed": str(cfg.seed),
            "git_commit": names.get("git_commit", "unknown"),
            "mode": "search",
        }
        tags.update({name: str(names[name]) for name in ("sweep_id", "sweep_job") if names.get(name) is not None})
        if role:  # workers find this run by these tags
            tags.update(distributed="chief", oracle=role.oracle)
        if names.get("gpu") is not None:  # what this process (which imports TensorFlow) was given
            tags["gpu"] = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        tracker.start_parent(f"{names['space']}-{run_dir.name}", tags)
        save_parent_id(run_dir, tracker.parent_id, tracker.experiment_id)
        tracker.log_text(tracker.parent_id, redact(OmegaConf.to_yaml(cfg, resolve=True)), "config.yaml")


def run_search(cfg, run_dir: Path, launch_dir: Path, names: dict) -> dict:
    """Run the whole search; returns the summary. The parent run ends FINISHED, FAILED or KILLED."""
    started = time.monotonic()
    role = distributed.role_of(cfg.search.distributed)
    checked = plan(cfg)
    if role:
        if auto_learning_rate(checked.specs):
            raise UserError(
                "space.learning_rate.range=auto is not supported with search.distributed: run mode=lr_find once and set "
                "space.learning_rate.min/max from its range"
            )
        distributed.apply(role)
        if role.is_worker:
            return run_worker(cfg, checked, run_dir, launch_dir, names, role)
    prepare_run_dir(run_dir, cfg.search.resume)
    tracker = connect(cfg, launch_dir, names)
    try:
        with interrupts.critical():  # an interrupt waits until the parent run exists and its id is kept
            open_parent(tracker, cfg, run_dir, names, role)
        if role:
            start_workers = "start workers with the same command and search.distributed.role=worker"
            print(f"chief: serving the oracle on {role.oracle}; {start_workers}")
        from search.session import search_and_evaluate

        summary = search_and_evaluate(cfg, checked, tracker, run_dir, names, started)
    except KeyboardInterrupt:
        if tracker.parent_id:
            tracker.end(tracker.parent_id, "KILLED", error="interrupted (SIGINT/SIGTERM); resume with search.resume=true")
        raise
    except BaseException as err:
        if tracker.parent_id:
            tracker.end(tracker.parent_id, "FAILED", error=f"{type(err).__name__}: {err}")
        raise
    tracker.end(tracker.parent_id, "FAILED" if summary.get("error") else "FINISHED", error=summary.get("error"))
    summary["tracking_uri"] = redact(tracker.uri)
    return summary


def run_worker(cfg, checked: Plan, run_dir: Path, launch_dir: Path, names: dict, role: distributed.Role) -> dict:
    """A distributed worker: train the chief's trials, each logged as a child of the chief's parent run.

    The parent run is the chief's to end; a worker leaves it alone, whatever happens here.
    """
    run_dir.mkdir(parents=True, exist_ok=True)  # shared with the chief: Hyperband continues other workers' trials
    tracker = connect(cfg, launch_dir, names)
    timeout = cfg.search.distributed.attach_timeout_s
    tracker.parent_id = distributed.find_chief_parent(tracker.client, tracker.experiment_id, role.oracle, timeout)
    print(f"worker {role.tuner_id}: attached to the chief's MLflow run {tracker.parent_id} (oracle {role.oracle})", flush=True)
    from search.session import work_for_chief

    summary = work_for_chief(cfg, checked, tracker, run_dir)
    return {**summary, "role": "worker", "tuner_id": role.tuner_id, "tracking_uri": redact(tracker.uri)}


def run_lr_find(cfg, run_dir: Path, launch_dir: Path, names: dict) -> dict:
    """`mode=lr_find`: only the learning-rate range test, as its own MLflow run; returns its result."""
    checked = plan(cfg)
    prepare_run_dir(run_dir, resume=False)
    tracker = connect(cfg, launch_dir, names)
    from search.lr_find import find_learning_rate
    from search.session import prepare_tensorflow

    prepare_tensorflow(cfg)
    result = find_learning_rate(cfg, checked, tracker, run_dir, names)
    result["run_dir"] = str(run_dir)
    result["ui_command"] = ui_command(tracker.uri)
    return result


def ui_command(uri: str) -> str:
    """How to open the runs of this store."""
    if uri.startswith(("http://", "https://")):
        return f"open {redact(uri)}"
    return f"mlflow ui --backend-store-uri {redact(uri)}"

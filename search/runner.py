"""One search's life in MLflow: plan it, open (or reattach to) its parent run, hand over to the tuning, close the run.

The parent run never stays RUNNING: it ends FINISHED, FAILED (the error in tag `error`) or KILLED on
an interrupt, and `search.resume=true` reattaches to it. A distributed worker logs its trials under
the chief's parent run instead, and leaves that run to the chief. TensorFlow is imported only after
`search.planning` has checked the config, the data and the run dir, and the tracking store has answered.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from omegaconf import OmegaConf

from data.errors import UserError
from search import distributed
from search.planning import Plan, RunLabels, plan, prepare_run_dir
from search.space import auto_learning_rate
from search.summary import Summary, WorkerReport, load_finished
from search.tracking import Tracker, load_parent_id, redact, resolve_uri, save_parent_id

INTERRUPTED = "interrupted (SIGINT/SIGTERM); resume with search.resume=true"


def identity(cfg, labels: RunLabels) -> dict[str, str]:
    """What a run dir's search is a search of: a resume must name the same space, data and tuner."""
    return {"space": labels.space, "data": labels.data, "tuner": str(cfg.tuner.name)}


def connect(cfg, launch_dir: Path, labels: RunLabels) -> Tracker:
    """The tracking store and the search's experiment (`<data>-<space>` unless tracking.experiment is set)."""
    uri = resolve_uri(cfg.tracking.uri, launch_dir)
    return Tracker(uri, cfg.tracking.experiment or labels.experiment, cfg.tracking.artifact_location)


def open_parent(tracker: Tracker, cfg, run_dir: Path, labels: RunLabels, role: distributed.Role | None = None) -> str:
    """Start the parent run, keep its id in the run dir and log the config (or, with `search.resume`, reattach to it).

    Called with interrupts held (`Tracker.closing`): a new run is never left without its id on disk or its config.
    """
    previous = load_parent_id(run_dir) if cfg.search.resume else None
    if previous:
        return tracker.resume_parent(previous)
    tags = {**labels.tags(), "tuner": str(cfg.tuner.name), "seed": str(cfg.seed), "mode": "search"}
    if role:  # workers find this run by these tags
        tags.update(distributed="chief", oracle=role.oracle)
    if labels.gpu is not None:  # what this process (which imports TensorFlow) was given
        tags["gpu"] = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    parent_id = tracker.start_parent(f"{labels.space}-{run_dir.name}", tags)
    try:
        save_parent_id(run_dir, parent_id, tracker.experiment_id, identity(cfg, labels))
        tracker.log_text(parent_id, redact(OmegaConf.to_yaml(cfg, resolve=True)), "config.yaml")
    except BaseException as err:
        tracker.end(parent_id, "FAILED", error=f"could not record the new search ({type(err).__name__}: {err})")
        raise
    return parent_id


def run_search(cfg, run_dir: Path, launch_dir: Path, labels: RunLabels, parallel_jobs: int = 1) -> Summary | WorkerReport | dict:
    """Run the whole search; returns its summary. The parent run ends FINISHED, FAILED or KILLED.

    A resume of a search that had finished returns that search's `summary.json` (a dict) and changes nothing.
    """
    started = time.monotonic()
    role = distributed.role_of(cfg.search.distributed)
    checked = plan(cfg, parallel_jobs)
    if role:
        if auto_learning_rate(checked.specs):
            raise UserError(
                "space.learning_rate.range=auto is not supported with search.distributed: run mode=lr_find once and set "
                "space.learning_rate.min/max from its range"
            )
        distributed.apply(role)
        if role.is_worker:
            return run_worker(cfg, checked, run_dir, launch_dir, labels, role)
    prepare_run_dir(run_dir, cfg.search.resume, identity(cfg, labels))
    tracker = connect(cfg, launch_dir, labels)
    finished = load_finished(run_dir) if cfg.search.resume else None
    if finished is not None:
        return report_finished(tracker, finished)

    def create() -> str:
        return open_parent(tracker, cfg, run_dir, labels, role)

    with tracker.closing(create, finish=False, interrupted=INTERRUPTED) as parent:
        if role:
            start_workers = "start workers with the same command and search.distributed.role=worker"
            print(f"chief: serving the oracle on {role.oracle}; {start_workers}")
        from search.tuning import search_and_evaluate

        summary = search_and_evaluate(cfg, checked, tracker, run_dir, labels, started)
    tracker.end(parent, "FAILED" if summary.error else "FINISHED", error=summary.error)
    return summary


def report_finished(tracker: Tracker, summary: dict) -> dict:
    """A resumed search that had finished: its `summary.json`, nothing trained, logged or registered again.

    Its parent run is FINISHED; if the process was stopped between writing the summary and closing
    the run (an interrupt, a kill), the run is closed now, as the summary says it ended.
    """
    parent = summary["mlflow_parent_run_id"]
    if tracker.status(parent) != "FINISHED":
        tracker.end(parent, "FINISHED")
    return summary


def run_worker(cfg, checked: Plan, run_dir: Path, launch_dir: Path, labels: RunLabels, role: distributed.Role) -> WorkerReport:
    """A distributed worker: train the chief's trials, each logged as a child of the chief's parent run.

    The parent run is the chief's to end; a worker leaves it alone, whatever happens here.
    """
    run_dir.mkdir(parents=True, exist_ok=True)  # shared with the chief: Hyperband continues other workers' trials
    tracker = connect(cfg, launch_dir, labels)
    parent = tracker.attach_parent(distributed.find_chief_parent(tracker, role.oracle, cfg.search.distributed.attach_timeout_s))
    print(f"worker {role.tuner_id}: attached to the chief's MLflow run {parent} (oracle {role.oracle})", flush=True)
    from search.tuning import work_for_chief

    trials_run = work_for_chief(cfg, checked, tracker, run_dir)
    return WorkerReport(tuner_id=role.tuner_id, trials_run=trials_run, mlflow_parent_run_id=parent)


def run_lr_find(cfg, run_dir: Path, launch_dir: Path, labels: RunLabels) -> dict:
    """`mode=lr_find`: only the learning-rate range test, as its own MLflow run; returns its result."""
    checked = plan(cfg)
    prepare_run_dir(run_dir, resume=False)
    tracker = connect(cfg, launch_dir, labels)
    from search.lr_find import find_learning_rate
    from search.tuning import prepare_tensorflow

    prepare_tensorflow(cfg)
    result = find_learning_rate(cfg, checked, tracker, run_dir, labels)
    result["run_dir"] = str(run_dir)
    result["ui_command"] = tracker.ui_command()
    return result

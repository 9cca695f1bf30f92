"""One search's life in MLflow: plan it, open (or reattach to) its parent run, hand over to the tuning, close the run.

The parent run never stays RUNNING: it ends FINISHED, FAILED (the error in tag `error`) or KILLED on
an interrupt, and `search.resume=true` reattaches to it. A distributed worker logs its trials under
the chief's parent run instead, and leaves that run to the chief. TensorFlow is imported only after
`search.plan.planning` has checked the config, the data and the run dir, and the tracking store has answered.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from data.errors import UserError
from search.core.secrets import redact
from search.plan.planning import Plan, Request, RunLabels, make_plan
from search.plan.run_dir import prepare_run_dir
from search.plan.space import auto_learning_rate, describe, tunable_names
from search.processes import distributed
from search.record.parent_record import (
    PENDING_FILE,
    close_unrecorded_parent,
    load_parent_id,
    mark_parent_pending,
    save_parent_id,
)
from search.record.summary import Summary, WorkerReport, load_finished
from search.record.tracking import Tracker, connect
from search.tune.settings import Settings

if TYPE_CHECKING:
    from omegaconf import DictConfig

INTERRUPTED = "interrupted (SIGINT/SIGTERM); resume with search.resume=true"


def identity(cfg: DictConfig, labels: RunLabels) -> dict[str, str]:
    """What a run dir's search is a search of: a resume must name the same space, data, tuner and horizon (its
    trials' models have one output per step)."""
    return {"space": labels.space, "data": labels.data, "tuner": str(cfg.tuner.name), "data.horizon": str(cfg.data.horizon)}


def run_name(labels: RunLabels) -> str:
    """The parent run's name in MLflow's UI: space, data, when it started (and its job, in a sweep)."""
    name = f"{labels.space}-{labels.data} {time.strftime('%Y-%m-%d %H:%M:%S')}"
    return f"{name} job {labels.sweep_job}" if labels.sweep_job is not None else name


def open_parent(
    tracker: Tracker, cfg: DictConfig, run_dir: Path, labels: RunLabels, plan: Plan, role: distributed.Role | None = None
) -> str:
    """Start the parent run, keep its id in the run dir and log the config (or, with `search.resume`, reattach to it).

    Called with interrupts held (`Tracker.closing`): a new run is never left without its id on disk or its config.
    """
    close_unrecorded_parent(tracker, run_dir)
    previous = load_parent_id(run_dir) if cfg.search.resume else None
    if previous:
        return tracker.resume_parent(previous)
    tags = {**labels.tags(), "tuner": str(cfg.tuner.name), "seed": str(cfg.seed), "mode": "search"}
    tags.update(mark_parent_pending(run_dir))
    if role:  # workers find this run by these tags
        tags.update(distributed="chief", oracle=role.oracle)
    if labels.gpu is not None:  # what this process (which imports TensorFlow) was given
        tags["gpu"] = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    parent_id = tracker.start_parent(run_name(labels), tags)
    try:
        save_parent_id(run_dir, parent_id, tracker.experiment_id, identity(cfg, labels))
        (run_dir / PENDING_FILE).unlink(missing_ok=True)
        tracker.log_text(parent_id, redact(OmegaConf.to_yaml(cfg, resolve=True)), "config.yaml")
        tracker.log_params(parent_id, search_settings(cfg, plan))
        tracker.share_view(tunable_names(plan.specs))
    except BaseException as err:
        tracker.end(parent_id, "FAILED", error=f"could not record the new search ({type(err).__name__}: {err})")
        raise
    return parent_id


SETTINGS = (
    "tuner.name",
    "tuner.max_epochs",
    "tuner.factor",
    "tuner.hyperband_iterations",
    "tuner.max_trials",
    "tuner.executions_per_trial",
    "tuner.patience",
    "search.select.top_k",
    "search.select.folds",
    "search.select.backtest",
    "search.refit",
    "search.ensemble",
    "search.ensemble_of",
    "search.intervals",
    "search.intervals_method",
    "data.test_size",
    "data.season_length",
    "data.horizon",
)


def search_settings(cfg: DictConfig, plan: Plan) -> dict[str, str]:
    """What the search was asked to do, as the parent run's params: the tuner and its budget, how the winner is
    chosen, the workers, and each hyperparameter's range (`space.<name>`); the winner's values come at the end
    under the names the trials use (`window_size`, ...), so the parent and its trials share columns in MLflow."""
    other_tuners = {"tuner.max_trials"} if cfg.tuner.name == "hyperband" else {"tuner.factor", "tuner.hyperband_iterations"}
    params = {key: str(OmegaConf.select(cfg, key)) for key in SETTINGS if key not in other_tuners}
    params["search.workers"] = str(plan.workers)
    params["search.select.folds"] = str(plan.folds)  # as run: lowered on a short validation stretch, 0 if no backtest
    params.update({f"space.{name}": describe(spec) for name, spec in plan.specs.items()})
    return params


def run_search(
    cfg: DictConfig, run_dir: Path, launch_dir: Path, labels: RunLabels, parallel_jobs: int = 1
) -> Summary | WorkerReport | dict:
    """Run the whole search; returns its summary. The parent run ends FINISHED, FAILED or KILLED.

    A resume of a search that had finished returns that search's `summary.json` (a dict) and changes nothing.
    """
    started = time.monotonic()
    role = distributed.role_of(cfg.search.distributed)
    plan = make_plan(Request.of(cfg), parallel_jobs)
    if role:
        from search.processes.oracle_guard import required_token

        required_token(role.kind)  # before anything starts: the oracle refuses calls without it
        if auto_learning_rate(plan.specs):
            raise UserError(
                "space.learning_rate.range=auto is not supported with search.distributed: run mode=lr_find once and set "
                "space.learning_rate.min/max from its range"
            )
        distributed.apply(role)
        if role.is_worker:
            return run_worker(cfg, plan, run_dir, launch_dir, labels, role)
    prepare_run_dir(run_dir, cfg.search.resume, identity(cfg, labels))
    tracker = connect(cfg.tracking, cfg.data, launch_dir, labels, plan.series)
    finished = load_finished(run_dir) if cfg.search.resume else None
    if finished is not None:
        return report_finished(tracker, finished)

    def create() -> str:
        return open_parent(tracker, cfg, run_dir, labels, plan, role)

    with tracker.closing(create, finish=False, interrupted=INTERRUPTED) as parent:
        if role:
            start_workers = "start workers with the same command and search.distributed.role=worker"
            print(f"chief: serving the oracle on {role.oracle}; {start_workers}")
        from search.tune.tuning import search_and_evaluate

        with tracker.system_metrics(parent, cfg.tracking.system_metrics):
            summary = search_and_evaluate(Settings.of(cfg), plan, tracker, run_dir, labels, started)
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


def run_worker(
    cfg: DictConfig, plan: Plan, run_dir: Path, launch_dir: Path, labels: RunLabels, role: distributed.Role
) -> WorkerReport:
    """A distributed worker: train the chief's trials, each logged as a child of the chief's parent run.

    The parent run is the chief's to end; a worker leaves it alone, whatever happens here.
    """
    run_dir.mkdir(parents=True, exist_ok=True)  # shared with the chief: Hyperband continues other workers' trials
    tracker = connect(cfg.tracking, cfg.data, launch_dir, labels, plan.series)
    parent = tracker.attach_parent(distributed.find_chief_parent(tracker, role.oracle, cfg.search.distributed.attach_timeout_s))
    print(f"worker {role.tuner_id}: attached to the chief's MLflow run {parent} (oracle {role.oracle})", flush=True)
    from search.tune.tuning import work_for_chief

    trials_run = work_for_chief(Settings.of(cfg), plan, tracker, run_dir)
    return WorkerReport(tuner_id=role.tuner_id, trials_run=trials_run, mlflow_parent_run_id=parent)


def run_lr_find(cfg: DictConfig, run_dir: Path, launch_dir: Path, labels: RunLabels) -> dict:
    """`mode=lr_find`: only the learning-rate range test, as its own MLflow run; returns its result."""
    plan = make_plan(Request.of(cfg))
    prepare_run_dir(run_dir, resume=False)
    tracker = connect(cfg.tracking, cfg.data, launch_dir, labels, plan.series)
    from search.tune.lr_find import find_learning_rate
    from search.tune.tuning import prepare_backend

    prepare_backend(cfg.search.deterministic, cfg.seed)
    result = find_learning_rate(cfg.lr_find, cfg.seed, cfg.data, plan, tracker, run_dir, labels)
    result["run_dir"] = str(run_dir)
    result["ui_command"] = tracker.ui_command()
    result["ui_url"] = tracker.ui_url()
    return result

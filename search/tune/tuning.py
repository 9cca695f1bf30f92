"""The training side of a search: run the tuner, then hand its completed trials to `search.choose.winner`.

Imported only after `search.plan.planning` has checked the config, the data and the run dir.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from search.core.quiet import quiet_known_noise
from search.fit.backends import device, prepare
from search.fit.hypermodel import WindowedHyperModel
from search.fit.memory import startup_objects_frozen
from search.plan.planning import Plan, RunLabels
from search.plan.space import auto_learning_rate, with_learning_rate_range
from search.processes import distributed
from search.record.summary import Summary
from search.record.tracking import Tracker
from search.tune.settings import Settings
from search.tune.tuner import failed_in_a_row, make_tuner

if TYPE_CHECKING:
    import threading

    import keras_tuner
    from keras_tuner.engine.trial import Trial
    from mlflow.entities import Run
    from omegaconf import DictConfig

    from data.split import Layout
    from search.processes.fit_pool import FitPool


def prepare_backend(deterministic: bool, seed: int) -> None:
    """Quiet known noise, and make runs repeatable: the backend's determinism (`search.deterministic`) and the seed."""
    quiet_known_noise()
    prepare(keras.backend.backend(), deterministic, seed)


def search_and_evaluate(
    settings: Settings, plan: Plan, tracker: Tracker, run_dir: Path, labels: RunLabels, started: float
) -> Summary:
    """Tune, then evaluate, log and register the winner; writes `summary.json` and logs it on the parent run."""
    prepare_backend(settings.search.deterministic, settings.seed)
    lr_range = None
    if auto_learning_rate(plan.specs):
        lr_range = _narrow_learning_rate(settings, plan, tracker, run_dir, labels)
        plan = replace(plan, specs=with_learning_rate_range(plan.specs, *lr_range["range"]))
        keras.utils.set_random_seed(settings.seed)
    hypermodel = hypermodel_for(settings, plan)
    tuner = make_tuner(
        settings.tuner,
        settings.tracking,
        settings.seed,
        hypermodel,
        tracker,
        plan.specs,
        run_dir,
        resume=settings.search.resume,
        worker_timeout_s=settings.search.distributed.worker_timeout_s,
        max_reclaims_per_trial=settings.search.distributed.max_reclaims_per_trial,
    )
    search_started = time.monotonic()
    error = _search(tuner, settings, tracker, plan, run_dir, labels)
    if distributed.role_of(settings.search.distributed) is not None:  # a chief: its workers may still be closing runs
        wait_for_workers_runs(tracker)
    close_stale_runs(tracker, tuner.oracle)
    trials = list(tuner.oracle.trials.values())
    completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    summary = _summary(settings, tracker, run_dir, labels, plan, trials, completed)
    summary.learning_rate_range = lr_range
    summary.stage_seconds = {"search": round(time.monotonic() - search_started, 1)}
    if completed:
        from search.choose.stage import AfterSearch

        if plan.panel is not None:
            from search.choose.panel_winner import evaluate_panel_winner as evaluate
        else:
            from search.choose.winner import evaluate_winner as evaluate
        with _fit_pool(settings, plan, tracker, run_dir, labels) as pool:
            stage = AfterSearch(
                tuner,
                hypermodel,
                plan,
                settings.search,
                settings.data,
                settings.seed,
                tracker,
                labels,
                run_dir,
                settings.tracking.registered_model,
                pool.run,
            )
            summary.evaluation = evaluate(stage, completed)
        summary.stage_seconds.update(summary.evaluation.stage_seconds)
    else:
        error = error or "no trial completed; see the FAILED child runs for why"
    summary.error = error
    summary.wall_time_s = round(time.monotonic() - started, 1)
    summary.write(run_dir / "summary.json")
    tracker.log_file(tracker.parent_id, run_dir / "summary.json")
    return summary


def work_for_chief(settings: Settings, plan: Plan, tracker: Tracker, run_dir: Path) -> int:
    """A distributed worker's search: the oracle is the chief's, so this trains what it is handed until told to stop.

    Returns how many trials this worker trained to the end.
    """
    prepare_backend(settings.search.deterministic, settings.seed)
    hypermodel = hypermodel_for(settings, plan)
    timeout = settings.search.distributed.worker_timeout_s
    tuner = make_tuner(settings.tuner, settings.tracking, settings.seed, hypermodel, tracker, plan.specs, run_dir, True, timeout)
    try:
        with startup_objects_frozen():
            tuner.search(epochs=settings.tuner.max_epochs, verbose=0)
    finally:
        tracker.drain()
    return tuner.trials_run


def _search(
    tuner: keras_tuner.Tuner, settings: Settings, tracker: Tracker, plan: Plan, run_dir: Path, labels: RunLabels
) -> str | None:
    """Run the tuner to the end (with `search.workers` > 1: serve its oracle to that many worker processes);
    returns why it stopped early (too many failed trials in a row, a worker that kept dying), or None."""
    try:
        with startup_objects_frozen():
            if plan.workers > 1:
                return _search_with_workers(tuner, settings, tracker, plan, run_dir, labels)
            tuner.search(epochs=settings.tuner.max_epochs, verbose=0)
    except RuntimeError:
        if not failed_in_a_row(tuner.oracle):
            raise
        return _failures_message(settings.tuner)
    finally:
        tracker.drain()  # every trial's artifacts and status are in before anything reads them
    return None


def _search_with_workers(
    tuner: keras_tuner.Tuner, settings: Settings, tracker: Tracker, plan: Plan, run_dir: Path, labels: RunLabels
) -> str | None:
    """This process serves the oracle and trains as worker `w1`; `plan.workers - 1` fresh processes train
    beside it (`search.workers`)."""
    from search.plan.cores import assign
    from search.processes.workers import WorkerPool, serve, train_beside_workers, worker_command

    assignment = assign(plan.workers, plan.worker_threads)
    tracker.set_tags(tracker.parent_id, {"workers": assignment.describe()})
    config_path = settings.child_config(run_dir / "workers" / "config.yaml", tracker.experiment_name)
    command = worker_command(config_path, run_dir, labels, tracker.parent_id)
    pool = WorkerPool(command, assignment, run_dir, {"MLFLOW_TRACKING_URI": tracker.uri})
    print(f"search.workers={plan.workers}: {assignment.describe()}; their logs in {pool.log_dir}", flush=True)
    tuner.oracle.verbose = 0  # Keras Tuner's own trial display: the workers print one line a trial instead
    tuner.save()

    def train_here(stop: threading.Event) -> None:
        train_beside_workers(tuner, settings.tuner.max_epochs, assignment.worker_ids[0], stop)

    def why_stopped(oracle: keras_tuner.Oracle) -> str | None:
        return _failures_message(settings.tuner) if failed_in_a_row(oracle) else None

    return serve(tuner.oracle, pool, why_stopped, train_here)


def _fit_pool(settings: Settings, plan: Plan, tracker: Tracker, run_dir: Path, labels: RunLabels) -> FitPool:
    """Where the fits after the search run: with `search.workers` > 1, here and in `workers - 1` fit processes (a
    distributed chief's workers are on other machines: its fits run here alone)."""
    from search.plan.cores import assign
    from search.processes.fit_pool import FitPool, fit_process_command

    workers = 1 if distributed.role_of(settings.search.distributed) is not None else plan.workers
    assignment = assign(workers, plan.worker_threads)
    command = []
    if workers > 1:
        config_path = settings.child_config(run_dir / "fits" / "config.yaml", tracker.experiment_name)
        command = fit_process_command(config_path, run_dir, labels, tracker.parent_id)
    return FitPool(command, assignment, run_dir, {"MLFLOW_TRACKING_URI": tracker.uri})


def _failures_message(tuner_settings: DictConfig) -> str:
    return (
        f"stopped after tuner.max_consecutive_failed_trials={tuner_settings.max_consecutive_failed_trials} "
        "failed trials in a row; see the FAILED child runs"
    )


def wait_for_workers_runs(tracker: Tracker, timeout_s: float = 60.0, settle_s: float = 10.0, poll_s: float = 0.5) -> None:
    """A distributed chief's search ends when every trial has ended in the oracle; its workers close the runs of
    their last trials on their own logging threads. Wait for those, but not for runs a killed worker left: one
    whose trial was run again (the restarted worker is handed it back) and that run ended, or one that nobody
    closes for `settle_s` while the others do (its worker is gone). `close_stale_runs` then closes what is left."""
    deadline = time.monotonic() + timeout_s
    left, unchanged_since = None, time.monotonic()
    while time.monotonic() < deadline:
        running = [run for run in tracker.running_children() if not _ended_elsewhere(tracker, run)]
        ids = {run.info.run_id for run in running}
        if not ids:
            return
        if ids != left:
            left, unchanged_since = ids, time.monotonic()
        elif time.monotonic() - unchanged_since >= settle_s:
            return
        time.sleep(poll_s)


def _ended_elsewhere(tracker: Tracker, run: Run) -> bool:
    trial_id = run.data.tags.get("trial_id")
    return trial_id is None or any(r.info.status != "RUNNING" for r in tracker.trial_runs(trial_id))


def close_stale_runs(tracker: Tracker, oracle: keras_tuner.Oracle) -> None:
    """Close the child runs a killed process left RUNNING (`kill -9`, a power cut): nothing of this one still runs.

    A trial the oracle recorded as completed, whose run was not closed in time, is FINISHED with the
    oracle's score (tag `recovered`); any other run is KILLED and tagged `superseded` (its trial was
    re-run, or never finished). Afterwards FINISHED trial runs = completed trials, none RUNNING.
    """
    for run in tracker.running_children():
        trial = oracle.trials.get(run.data.tags.get("trial_id", ""))
        finished = [r for r in tracker.trial_runs(trial.trial_id) if r.info.status == "FINISHED"] if trial else []
        if trial is not None and trial.status == "COMPLETED" and trial.score is not None and not finished:
            tracker.log_metrics(run.info.run_id, {"best_val_mae": float(trial.score)})
            tracker.set_tags(run.info.run_id, {"recovered": "true"})
            tracker.end(run.info.run_id, "FINISHED")
        else:
            tracker.set_tags(run.info.run_id, {"superseded": "true"})
            tracker.end(run.info.run_id, "KILLED", error="left RUNNING by a process that was killed")


def hypermodel_for(settings: Settings, plan: Plan) -> WindowedHyperModel:
    """The HyperModel of the plan: one series, or a panel's (`search.fit.panel_hypermodel`)."""
    common = dict(
        shuffle_buffer=settings.data.shuffle_buffer,
        patience=settings.tuner.patience,
        seed=settings.seed,
        season_length=settings.data.season_length,
    )
    if plan.panel is not None:
        from search.fit.panel_hypermodel import PanelHyperModel

        return PanelHyperModel(plan.panel, plan.layout, plan.specs, **common, windows_per_series=settings.data.windows_per_series)
    return WindowedHyperModel(plan.series, plan.layout, plan.specs, **common)


def _narrow_learning_rate(settings: Settings, plan: Plan, tracker: Tracker, run_dir: Path, labels: RunLabels) -> dict:
    """`space.learning_rate.range=auto`: the LR range test's bounds, logged on the parent run (reused on resume)."""
    from search.tune.lr_find import find_learning_rate, load_result

    result = load_result(run_dir)
    if result is None:
        result = find_learning_rate(
            settings.lr_find, settings.seed, settings.data, plan, tracker, run_dir, labels, parent_id=tracker.parent_id
        )
        parent = tracker.parent_id
        low, high = result["range"]
        tracker.log_params(
            parent,
            {
                "learning_rate.range": "auto",
                "learning_rate.min": low,
                "learning_rate.max": high,
                "learning_rate.suggested": result["suggested_learning_rate"],
                "learning_rate.rule": result["rule"],
            },
        )
        tracker.set_tags(parent, {"lr_find_run_id": result["mlflow_run_id"]})
        tracker.log_file(parent, run_dir / "lr_find.png", "lr_find")
        tracker.log_file(parent, run_dir / "lr_find.csv", "lr_find")
    low, high = result["range"]
    print(
        f"learning_rate range {low:.3g} .. {high:.3g} from the LR range test "
        f"(suggested {result['suggested_learning_rate']:.3g}; rule {result['rule']}; plot {run_dir / 'lr_find.png'})",
        flush=True,
    )
    return {key: result[key] for key in ("suggested_learning_rate", "range", "rule", "mlflow_run_id")}


def _panel_scored_on(layout: Layout, count: int) -> str:
    return (
        f"each of {count} series: validation the {layout.score_points} points before its test tail, test its last "
        f"{layout.test_size} points (right-aligned columns [{layout.score_start}, {layout.test_start}) and "
        f"[{layout.test_start}, {layout.length})); {layout.horizon}-step forecasts, {len(layout.val_origins)} validation and "
        f"{len(layout.test_origins)} test origin(s) per series"
    )


def _summary(
    settings: Settings,
    tracker: Tracker,
    run_dir: Path,
    labels: RunLabels,
    plan: Plan,
    trials: list[Trial],
    completed: list[Trial],
) -> Summary:
    layout = plan.layout
    failed = [t for t in trials if t.status in ("FAILED", "INVALID")]
    return Summary(
        space=labels.space,
        data=labels.data,
        tuner=str(settings.tuner.name),
        seed=settings.seed,
        trials={"total": len(trials), "completed": len(completed), "failed": len(failed)},
        scored_on=_panel_scored_on(layout, plan.panel.panel.count)
        if plan.panel is not None
        else (
            f"validation points [{layout.score_start}, {layout.test_start}) "
            f"({layout.score_points} points, common to every split_time); test tail [{layout.test_start}, "
            f"{layout.length}) ({layout.test_size} points)"
            + (
                f"; {layout.horizon}-step forecasts from every origin whose {layout.horizon} values lie in one of them "
                f"({len(layout.val_origins)} validation, {len(layout.test_origins)} test)"
                if layout.horizon > 1
                else ""
            )
        ),
        mlflow_parent_run_id=tracker.parent_id,
        mlflow_experiment_id=tracker.experiment_id,
        mlflow_experiment=tracker.experiment_name,
        summary_path=str(run_dir / "summary.json"),
        ui_command=tracker.ui_command(),
        ui_url=tracker.ui_url(),
        workers=plan.workers,
        backend=labels.backend,
        device=device(),
    )

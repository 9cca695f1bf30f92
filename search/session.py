"""The TensorFlow side of a search: tune, then evaluate and register the winner.

Imported only after the config, data and tracking store have been checked.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from data.windows import window_view
from models import forecast as batched_forecast
from search import interrupts
from search.evaluation import baseline_table, score
from search.hypermodel import WindowedHyperModel
from search.memory import startup_objects_frozen
from search.plots import forecast_figure, progress_figure, vs_baselines_figure
from search.quiet import quiet_known_noise
from search.report import write_summary
from search.runner import ui_command
from search.selection import Candidate, Refitter, backtest, best_candidates, ensemble_members, fit_final, fold_blocks
from search.space import auto_learning_rate, with_learning_rate_range
from search.tracking import Tracker
from search.tuner import make_tuner

CONSECUTIVE_FAILURES = "consecutive failures exceeded"


def prepare_tensorflow(cfg) -> None:
    """Quiet known noise, and make runs repeatable: op determinism (`search.deterministic`) and the seed."""
    import tensorflow as tf

    quiet_known_noise()
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)  # searches side by side share a card
    if cfg.search.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(cfg.seed)


def search_and_evaluate(cfg, checked, tracker: Tracker, run_dir: Path, names: dict, started: float) -> dict:
    """Tune, evaluate the best trial on the scored validation points and the test tail, log and register it."""
    prepare_tensorflow(cfg)
    lr_range = None
    if auto_learning_rate(checked.specs):
        lr_range = _narrow_learning_rate(cfg, checked, tracker, run_dir, names)
        checked = replace(checked, specs=with_learning_rate_range(checked.specs, *lr_range["range"]))
        keras.utils.set_random_seed(cfg.seed)
    hypermodel, tuner = _hypermodel_and_tuner(cfg, checked, tracker, run_dir, cfg.search.resume)
    error = None
    search_started = time.monotonic()
    try:
        with startup_objects_frozen():
            tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    except RuntimeError as err:
        if CONSECUTIVE_FAILURES not in str(err).lower():
            raise
        error = (
            f"stopped after tuner.max_consecutive_failed_trials={cfg.tuner.max_consecutive_failed_trials} "
            "failed trials in a row; see the FAILED child runs"
        )
    finally:
        tracker.drain()  # every trial's artifacts and status are in before anything reads them
    trials = list(tuner.oracle.trials.values())
    completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    summary = _base_summary(cfg, tracker, run_dir, names, checked, trials, completed)
    if lr_range:
        summary["learning_rate_range"] = lr_range
    summary["stage_seconds"] = {"search": round(time.monotonic() - search_started, 1)}
    if completed:
        summary.update(_evaluate_best(tuner, hypermodel, checked, cfg, tracker, completed))
        summary["stage_seconds"].update(summary.pop("_stage_seconds"))
    else:
        error = error or "no trial completed; see the FAILED child runs for why"
    if error:
        summary["error"] = error
    summary["wall_time_s"] = round(time.monotonic() - started, 1)
    write_summary(run_dir / "summary.json", summary)
    tracker.log_file(tracker.parent_id, run_dir / "summary.json")
    return summary


def work_for_chief(cfg, checked, tracker: Tracker, run_dir: Path) -> dict:
    """A distributed worker's search: the oracle is the chief's, so this trains what it is handed until told to stop."""
    prepare_tensorflow(cfg)
    _, tuner = _hypermodel_and_tuner(cfg, checked, tracker, run_dir, resume=True)
    try:
        with startup_objects_frozen():
            tuner.search(epochs=cfg.tuner.max_epochs, verbose=0)
    finally:
        tracker.drain()
    return {"trials_run": tuner.trials_run, "mlflow_parent_run_id": tracker.parent_id}


def _hypermodel_and_tuner(cfg, checked, tracker: Tracker, run_dir: Path, resume: bool):
    hypermodel = WindowedHyperModel(
        checked.series,
        checked.layout,
        checked.specs,
        cfg.data.shuffle_buffer,
        cfg.tuner.patience,
        cfg.seed,
        season_length=cfg.data.season_length,
    )
    tracking = cfg.tracking
    tuner = make_tuner(
        cfg.tuner,
        hypermodel,
        tracker,
        checked.specs,
        str(run_dir),
        resume,
        cfg.seed,
        tracking.log_trial_models,
        tracking.log_trial_plots,
    )
    return hypermodel, tuner


def _narrow_learning_rate(cfg, checked, tracker: Tracker, run_dir: Path, names: dict) -> dict:
    """`space.learning_rate.range=auto`: the LR range test's bounds, logged on the parent run (reused on resume)."""
    from search.lr_find import find_learning_rate, load_result

    result = load_result(run_dir)
    if result is None:
        result = find_learning_rate(cfg, checked, tracker, run_dir, names, parent_id=tracker.parent_id)
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
        tracker.client.set_tag(parent, "lr_find_run_id", result["mlflow_run_id"])
        tracker.log_file(parent, run_dir / "lr_find.png", "lr_find")
        tracker.log_file(parent, run_dir / "lr_find.csv", "lr_find")
    low, high = result["range"]
    print(
        f"learning_rate range {low:.3g} .. {high:.3g} from the LR range test "
        f"(suggested {result['suggested_learning_rate']:.3g}; rule {result['rule']}; plot {run_dir / 'lr_find.png'})",
        flush=True,
    )
    return {key: result[key] for key in ("suggested_learning_rate", "range", "rule", "mlflow_run_id")}


def _base_summary(cfg, tracker, run_dir, names, checked, trials, completed) -> dict:
    layout = checked.layout
    failed = [t for t in trials if t.status in ("FAILED", "INVALID")]
    return {
        "space": names["space"],
        "data": names["data"],
        "tuner": cfg.tuner.name,
        "seed": cfg.seed,
        "trials": {"total": len(trials), "completed": len(completed), "failed": len(failed)},
        "scored_on": (
            f"validation points [{layout.score_start}, {layout.test_start}) "
            f"({layout.score_points} points, common to every split_time); test tail [{layout.test_start}, "
            f"{layout.length}) ({layout.test_size} points)"
        ),
        "mlflow_parent_run_id": tracker.parent_id,
        "mlflow_experiment_id": tracker.experiment_id,
        "mlflow_experiment": tracker.experiment_name,
        "summary_path": str(run_dir / "summary.json"),
        "ui_command": ui_command(tracker.uri),
    }


@dataclass
class Chosen:
    """The winner after the stages: its configuration, the model the search trained, the one to register."""

    winner: Candidate
    candidates: list[Candidate]
    searched: object
    final: object
    seconds: dict


def _choose_and_train(tuner, hypermodel, layout, cfg, tracker: Tracker, completed) -> Chosen:
    """Backtest the best configurations (search.select), then refit / ensemble the winner (search.refit, search.ensemble)."""
    select = cfg.search.select
    candidates = best_candidates(completed, select.top_k)
    refitter = Refitter(hypermodel, cfg.seed)
    winner, seconds, clock = candidates[0], {}, time.monotonic()
    if len(candidates) > 1:
        print(f"backtest: {len(candidates)} best configurations x {select.folds} folds", flush=True)
        winner = backtest(refitter, candidates, fold_blocks(layout.score_start, layout.test_start, select.folds), tracker)
        seconds["backtest"] = round(time.monotonic() - clock, 1)
    searched = tuner.load_model(tuner.oracle.get_trial(winner.trial_id))
    final = searched
    ranked = sorted(candidates, key=lambda c: c.backtest_mae if c.backtest_mae is not None else c.search_val_mae)
    members = ensemble_members(winner, ranked, cfg.search.ensemble, cfg.search.ensemble_of)
    if cfg.search.refit or len(members) > 1:  # one member without a refit is the searched model itself
        train_stop = layout.test_start if cfg.search.refit else hypermodel.split_time(winner.values)
        clock = time.monotonic()
        final = fit_final(refitter, members, train_stop, tracker)
        seconds["refit" if len(members) == 1 else "ensemble"] = round(time.monotonic() - clock, 1)
    return Chosen(winner, candidates, searched, final, seconds)


def _evaluate_best(tuner, hypermodel, checked, cfg, tracker: Tracker, completed) -> dict:
    """Choose and train the winner, score it beside the baselines on the same points, log and register it."""
    layout, series = checked.layout, checked.series
    chosen = _choose_and_train(tuner, hypermodel, layout, cfg, tracker, completed)
    winner, n_val = chosen.winner, layout.score_points
    x, y = window_view(series, chosen.searched.input_shape[1], layout.score_start, layout.length)
    searched_forecast = batched_forecast(chosen.searched, x)
    # An ensemble reads as many points as its longest member: its own windows, for the same labels.
    x_final, _ = window_view(series, chosen.final.input_shape[1], layout.score_start, layout.length)
    final_forecast = searched_forecast if chosen.final is chosen.searched else batched_forecast(chosen.final, x_final)
    val_mae = float(np.mean(np.abs(y[:n_val] - searched_forecast[:n_val])))
    test_mae, unrefit_mae = None, None
    if layout.test_size:
        test_mae = float(np.mean(np.abs(y[n_val:] - final_forecast[n_val:])))
        if chosen.final is not chosen.searched:
            unrefit_mae = float(np.mean(np.abs(y[n_val:] - searched_forecast[n_val:])))
    table, ets_skipped = baseline_table(
        series, layout, cfg.data.season_length, cfg.data.ma_window, cfg.search.ets_baseline, cfg.data.ar_lags
    )
    scores = score(series, layout, val_mae, test_mae, unrefit_mae, table, ets_skipped)
    best_trial = min(completed, key=lambda t: t.score)
    parent = tracker.parent_id
    metrics = {"best_val_mae": winner.search_val_mae, "search_best_val_mae": best_trial.score, **scores.metrics()}
    if winner.backtest_mae is not None:
        metrics["backtest_mae"] = winner.backtest_mae
    tracker.log_metrics(parent, metrics)
    tracker.log_params(parent, {f"best.{k}": v for k, v in winner.values.items()})
    tracker.client.set_tag(parent, "best_trial_id", winner.trial_id)
    tracker.client.set_tag(parent, "verdict", scores.verdict)
    shown = np.concatenate([searched_forecast[:n_val], final_forecast[n_val:]])  # each split by the model it scores
    _log_figures(tracker, layout, y, shown, completed, scores)
    name = cfg.tracking.registered_model or tracker.experiment_name
    fingerprint = hashlib.sha1(np.ascontiguousarray(series, dtype=np.float32).tobytes()).hexdigest()[:12]
    scored_on = f"series sha1 {fingerprint}, validation points [{layout.score_start}, {layout.test_start})"
    registered = _register(chosen.final, x_final[:5], final_forecast[:5], tracker, name, winner.search_val_mae, scored_on, scores)
    return {
        "best_trial_id": winner.trial_id,
        "best_val_mae": winner.search_val_mae,
        "search_best_trial_id": best_trial.trial_id,
        "search_best_val_mae": best_trial.score,
        **scores.as_dict(),
        "best_hyperparameters": winner.values,
        "selection": {
            "top_k": cfg.search.select.top_k,
            "folds": cfg.search.select.folds if len(chosen.candidates) > 1 else 0,
            "candidates": [c.as_dict() for c in chosen.candidates],
        },
        "refit": bool(cfg.search.refit),
        "ensemble": cfg.search.ensemble,
        "ensemble_of": cfg.search.ensemble_of,
        "epochs": winner.epochs,
        "input_length": int(chosen.final.input_shape[1]),
        **registered,
        "_stage_seconds": chosen.seconds,
    }


def _log_figures(tracker: Tracker, layout, y, forecast, completed, scores) -> None:
    """forecast_best.png (the test boundary labelled, naive's MAE beside the winner's), vs_baselines.png, search_progress.png."""
    parent = tracker.parent_id
    naive = scores.baselines.get("naive", {})
    title = f"validation MAE {scores.winner_val_mae:.4g} (naive {naive.get('val_mae', float('nan')):.4g})"
    if scores.test_mae is not None:
        title += f", test MAE {scores.test_mae:.4g} (naive {naive.get('test_mae', float('nan')):.4g})"
    figure = forecast_figure(np.arange(layout.score_start, layout.length), y, forecast, title)
    if layout.test_size:
        axes = figure.axes[0]
        axes.axvline(layout.test_start, color="grey", linestyle="--")
        axes.annotate(
            " test tail: the registered model", (layout.test_start, 1.0), xycoords=("data", "axes fraction"), va="top", fontsize=8
        )
        axes.annotate(
            "validation: the searched model ",
            (layout.test_start, 1.0),
            xycoords=("data", "axes fraction"),
            va="top",
            ha="right",
            fontsize=8,
        )
    tracker.log_figure(parent, figure, "forecast_best.png")
    winner = {"val_mae": scores.winner_val_mae, "test_mae": scores.test_mae}
    tracker.log_figure(parent, vs_baselines_figure(winner, scores.baselines), "vs_baselines.png")
    ordered = [t.score for t in sorted(completed, key=lambda t: int(t.trial_id))]
    tracker.log_figure(parent, progress_figure(ordered, naive=naive.get("val_mae")), "search_progress.png")


def _register(model, x_example, y_example, tracker: Tracker, name: str, val_mae: float, scored_on: str, scores) -> dict:
    """Log the winner as an MLflow model (signature, pinned requirements) as a new version of `name`.

    Alias `champion` then points at the best version scored on the same points (`elect_champion`): a
    sweep over seeds registers every job's winner, and the champion is the best of them, not the last.
    """
    import mlflow
    import tensorflow as tf
    from mlflow.models import infer_signature

    signature = infer_signature(np.asarray(x_example, dtype=np.float32), np.asarray(y_example, dtype=np.float32)[:, None])
    requirements = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}", f"mlflow=={mlflow.__version__}"]
    with interrupts.critical(), mlflow.start_run(run_id=tracker.parent_id, nested=True):
        info = mlflow.keras.log_model(
            model, name="model", signature=signature, pip_requirements=requirements, registered_model_name=name
        )
    tracker.client.update_run(tracker.parent_id, status="RUNNING")
    version = str(info.registered_model_version)
    tracker.client.set_model_version_tag(name, version, "val_mae", str(val_mae))
    tracker.client.set_model_version_tag(name, version, "scored_on", scored_on)
    for tag, value in (("test_mae", scores.test_mae), ("skill_vs_naive", scores.skill_vs_naive.get("test"))):
        if value is not None:
            tracker.client.set_model_version_tag(name, version, tag, f"{value:.6g}")
    champion_version = elect_champion(tracker.client, name, scored_on)
    return {
        "registered_model": name,
        "registered_version": version,
        "champion_version": str(champion_version),
        "model_uri": f"models:/{name}/{version}",
    }


ELECTION_ATTEMPTS = 5


def elect_champion(client, name: str, scored_on: str) -> str:
    """Point alias `champion` at the best version of `name` scored on `scored_on`; returns that version.

    The best is recomputed from every version's tags rather than compared with the current champion,
    so parallel jobs registering at once agree: each elects after its own version is tagged, and
    re-reads after moving the alias, so a job that read the versions before another registered does
    not leave its stale choice in place. A champion scored on other points is replaced.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(ELECTION_ATTEMPTS):
        candidates = [
            v
            for v in client.search_model_versions(f"name = '{name}'")
            if v.tags.get("scored_on") == scored_on and "val_mae" in v.tags
        ]
        best = min(candidates, key=lambda v: (float(v.tags["val_mae"]), int(v.version)))
        if _champion_version(client, name) == best.version:
            return best.version
        try:
            client.set_registered_model_alias(name, "champion", best.version)
        except MlflowException:
            # MLflow creates a missing alias with a plain INSERT: when two jobs create it at once, one
            # gets a unique-constraint error. The alias exists now; read again and move it if needed.
            if attempt == ELECTION_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return best.version


def _champion_version(client, name: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, "champion").version
    except Exception:  # noqa: BLE001 - no champion yet
        return None

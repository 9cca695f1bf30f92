"""The winner of a search: chosen by backtest, refit or ensembled, scored beside the baselines, drawn, registered.

The stages after the search (`search.select`, `search.refit`, `search.ensemble`) are in
`search.choose.selection`; the scores in `search.scoring.evaluation`; the Model Registry in `search.choose.registry`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.windows import window_view
from models import forecast as batched_forecast
from search.choose.blend import Blend, BlendCandidates, choose_blend
from search.choose.registry import register, version_description
from search.choose.selection import (
    Candidate,
    Fits,
    Refitter,
    backtest,
    best_candidates,
    ensemble_members,
    fit_final,
    fold_blocks,
    member_count,
)
from search.choose.stage import AfterSearch
from search.record.plots import forecast_best_figure, progress_figure, vs_baselines_figure
from search.record.summary import Evaluation
from search.record.tracking import Tracker
from search.scoring.evaluation import Scores, baseline_table, score, step_maes
from search.scoring.intervals import interval_report

if TYPE_CHECKING:
    import keras
    from keras_tuner.engine.trial import Trial
    from omegaconf import DictConfig

    from data.split import Layout
    from search.fit.hypermodel import WindowedHyperModel


@dataclass
class Chosen:
    """The winner after the stages: its configuration, the model the search trained, the one to register."""

    winner: Candidate
    candidates: list[Candidate]
    searched: object
    final: object
    seconds: dict
    blend: Blend | None = None  # `search.blend`: the members, their weights and scores
    members: list = dataclasses.field(default_factory=list)  # without a blend: `(configuration, seed offset)` averaged


def choose_and_train(stage: AfterSearch, completed: list) -> Chosen:
    """Backtest the best configurations (`search.select`) over the plan's folds (0: no backtest, the search's best is
    the winner), then blend (`search.blend`: `search.choose.blend`) or refit / ensemble the winner (`refit`,
    `ensemble`, `ensemble_of`); fits seeded from the stage's seed, run by `stage.run` (one after another here, or
    shared with fit processes: `search.processes.fit_pool`)."""
    settings, hypermodel, tracker, run = stage.settings, stage.hypermodel, stage.tracker, stage.run
    layout, folds, seed = stage.plan.layout, stage.plan.folds, stage.seed
    candidates = best_candidates(completed, settings.select.top_k)
    fits = Fits(Refitter(hypermodel, seed), tracker)
    winner, seconds, clock = candidates[0], {}, time.monotonic()
    if folds > 0 and len(candidates) > 1:
        print(f"backtest: {len(candidates)} best configurations x {folds} folds", flush=True)
        winner = backtest(fits, candidates, fold_blocks(layout.score_start, layout.test_start, folds), run)
        seconds["backtest"] = round(time.monotonic() - clock, 1)
    searched = stage.load_searched(winner.trial_id)
    final = searched

    def load_searched(trial_id: str) -> keras.Model:  # the winner's model is loaded already
        return searched if trial_id == winner.trial_id else stage.load_searched(trial_id)

    ranked = sorted(candidates, key=lambda c: c.backtest_mae if c.backtest_mae is not None else c.search_val_mae)
    members = ensemble_members(winner, ranked, settings.ensemble, settings.ensemble_of)
    if hypermodel.panel and str(settings.ensemble_of) == "configurations" and len(candidates) > 1:
        from search.choose.panel_members import panel_members

        members = panel_members(load_searched, hypermodel, candidates, settings.ensemble)
    if settings.blend and not hypermodel.panel:  # a blend weighs one series' forecasts
        clock = time.monotonic()
        evidence = str(settings.blend_evidence)
        builder = BlendCandidates(
            hypermodel, stage.data, fits, run, load_searched, settings.ets_baseline, evidence != "validation"
        )
        print(f"blend: {len(members)} configurations one fold back, and the statistical forecasters", flush=True)
        offered = builder.networks(members, settings.refit) + builder.statistical()
        blend = choose_blend(offered, builder.actual, settings.blend_rounds, evidence, builder.earlier_actual)
        final = builder.registered(blend)
        seconds["blend"] = round(time.monotonic() - clock, 1)
        return Chosen(winner, candidates, searched, final, seconds, blend)
    if settings.refit or len(members) > 1:  # one member without a refit is the searched model itself
        train_stop = layout.test_start if settings.refit else hypermodel.split_time(winner.values)
        clock = time.monotonic()
        final = fit_final(fits, members, train_stop, run) or searched  # every member diverged: keep the searched
        seconds["refit" if len(members) == 1 else "ensemble"] = round(time.monotonic() - clock, 1)
    return Chosen(winner, candidates, searched, final, seconds, members=members)


def evaluate_winner(stage: AfterSearch, completed: list) -> Evaluation:
    """Choose and train the winner, score it beside the baselines on the same points, log and register it."""
    plan, settings, data, seed, tracker = stage.plan, stage.settings, stage.data, stage.seed, stage.tracker
    hypermodel = stage.hypermodel
    layout, series = plan.layout, plan.series
    chosen = choose_and_train(stage, completed)
    winner = chosen.winner
    forecasts = Forecasts.of(chosen, series, layout)
    scores = _scores(forecasts, series, layout, data, settings.ets_baseline)
    drawn = {}
    if settings.intervals:
        scores.intervals, drawn = _intervals(settings, seed, forecasts, chosen, hypermodel, tracker)
    best_trial = min(completed, key=lambda t: t.score)
    _log_on_parent(tracker, winner, best_trial.score, scores)
    if chosen.blend is not None:
        _log_blend(tracker, chosen.blend)
    _log_figures(tracker, series, layout, forecasts, completed, scores, drawn)
    name = stage.model_name or stage.labels.registered_model(tracker.experiment_name)
    example = (forecasts.final_windows[:5], forecasts.final[:5])
    description = version_description(data.name, winner.trial_id, winner.values, winner.search_val_mae, scores, chosen.blend)
    registered_val_mae = winner.search_val_mae
    if chosen.blend is not None:  # the registered model's own score: the blend's, cross-fitted where it can be
        registered_val_mae = chosen.blend.val_mae_cross_fitted or chosen.blend.val_mae
    scored_on = _scored_on(series, layout)
    registration = register(chosen.final, *example, tracker, name, registered_val_mae, scored_on, scores, description)
    return Evaluation(
        best_trial_id=winner.trial_id,
        best_val_mae=winner.search_val_mae,
        search_best_trial_id=best_trial.trial_id,
        search_best_val_mae=best_trial.score,
        scores=scores,
        best_hyperparameters=winner.values,
        selection={
            "top_k": settings.select.top_k,
            "folds": plan.folds if len(chosen.candidates) > 1 else 0,
            "backtest": str(settings.select.backtest),
            "candidates": [c.as_dict() for c in chosen.candidates],
        },
        refit=bool(settings.refit),
        ensemble=settings.ensemble,
        ensemble_members=member_count(chosen.final),
        ensemble_of=str(settings.ensemble_of),
        epochs=winner.epochs,
        input_length=int(chosen.final.input_shape[1]),
        registration=registration,
        stage_seconds=chosen.seconds,
        blend=chosen.blend.as_dict() if chosen.blend is not None else None,
        ensemble_weights=chosen.blend.weights() if chosen.blend is not None else None,
    )


@dataclass
class Forecasts:
    """Forecasts from every scored validation and test origin, by the searched and by the final model.

    Each array has one row per origin, from `layout.score_start` on: `(n,)` one step ahead, `(n, h)` over
    a horizon. With h > 1 the origins whose labels straddle the test boundary are left out
    (`val_rows`, `test_rows`).
    """

    actual: np.ndarray
    searched: np.ndarray
    final: np.ndarray
    final_windows: np.ndarray  # the final model's inputs: an ensemble reads as many points as its longest member
    val_rows: slice
    test_rows: slice
    val_blend: np.ndarray | None = None  # a blend's cross-fitted validation forecasts (weights not chosen on them)

    @classmethod
    def of(cls, chosen: Chosen, series: np.ndarray, layout: Layout) -> Forecasts:
        h = layout.horizon
        x, actual = window_view(series, chosen.searched.input_shape[1], layout.score_start, layout.length, h)
        searched = batched_forecast(chosen.searched, x)
        x_final, _ = window_view(series, chosen.final.input_shape[1], layout.score_start, layout.length, h)
        final = searched if chosen.final is chosen.searched else batched_forecast(chosen.final, x_final)
        val_rows = slice(0, len(layout.val_origins))
        test_rows = slice(layout.test_start - layout.score_start, len(actual))
        val_blend = None
        if chosen.blend is not None and chosen.blend.cross_fitted_forecasts is not None:
            val_blend = chosen.blend.cross_fitted_forecasts.reshape(actual[val_rows].shape).astype(np.float32)
        return cls(actual, searched, final, x_final, val_rows, test_rows, val_blend)

    def final_differs(self) -> bool:
        """Whether the registered model is another than the searched winner (a refit, an ensemble, a blend)."""
        return self.final is not self.searched

    def calibration(self) -> np.ndarray:
        """The validation forecasts conformal intervals are calibrated on: the blend's cross-fitted ones, else the
        searched winner's."""
        return self.val_blend if self.val_blend is not None else self.searched[self.val_rows]

    def shown(self) -> np.ndarray:
        """What the forecast plot draws: each split by the model it scores."""
        return np.concatenate([self.searched[self.val_rows], self.final[self.test_rows]])


def _scores(forecasts: Forecasts, series: np.ndarray, layout: Layout, data: DictConfig, ets_baseline: bool) -> Scores:
    """Validation MAE of the searched model, test MAE of the final one (and of the searched one, if they differ);
    each step's MAE over a horizon."""
    val, test, y = forecasts.val_rows, forecasts.test_rows, forecasts.actual
    val_mae = float(np.mean(np.abs(y[val] - forecasts.searched[val])))
    test_mae, unrefit_mae = None, None
    if layout.test_size:
        test_mae = float(np.mean(np.abs(y[test] - forecasts.final[test])))
        if forecasts.final_differs():
            unrefit_mae = float(np.mean(np.abs(y[test] - forecasts.searched[test])))
    table = baseline_table(series, layout, data.season_length, data.ma_window, ets_baseline, data.ar_lags)
    per_step = {}
    if layout.horizon > 1:
        per_step["winner"] = {"val": step_maes(y[val], forecasts.searched[val])}
        if layout.test_size:
            per_step["winner"]["test"] = step_maes(y[test], forecasts.final[test])
        per_step.update(table.per_step)
    return score(series, layout, val_mae, test_mae, unrefit_mae, table.maes, table.ets_skipped, per_step, data.season_length)


def _intervals(
    settings: DictConfig, seed: int, forecasts: Forecasts, chosen: Chosen, hypermodel: WindowedHyperModel, tracker: Tracker
) -> tuple[dict, dict]:
    """`search.intervals`: `(report, drawn)`, `drawn` being `{level: (low, high)}` aligned with `forecasts`' rows.

    `conformal` widens the point forecasts (the searched winner's on validation, the registered model's on the
    test tail); `cqr` widens the bands of a quantile head trained for the purpose (a child run `stage=intervals`).
    """
    layout, levels, method = hypermodel.layout, sorted(float(v) for v in settings.intervals), str(settings.intervals_method)
    val, test, y = forecasts.val_rows, forecasts.test_rows, forecasts.actual
    rows = {"val": (forecasts.calibration(),) * 2, "test": (forecasts.final[test],) * 2}
    bands = {split: {level: pair for level in levels} for split, pair in rows.items()}
    if method == "cqr":
        from search.choose.quantile_head import fit_quantile_head, quantile_bands

        winner, series = chosen.winner, hypermodel.series
        params = {**winner.values, "epochs": winner.epochs, "levels": str(levels)}
        with tracker.stage_run(
            "intervals", f"{winner.trial_id}-quantiles", params, {"source_trial_id": winner.trial_id}
        ) as run_id:
            head = fit_quantile_head(hypermodel, winner.values, winner.epochs, levels, seed + 200)
            with tempfile.TemporaryDirectory() as scratch:
                head.save(Path(scratch) / "quantile_head.keras")
                tracker.log_file(run_id, Path(scratch) / "quantile_head.keras")
        bands = {
            "val": quantile_bands(head, series, layout.score_start, layout.test_start, layout.horizon, levels),
            "test": quantile_bands(head, series, layout.test_start, layout.length, layout.horizon, levels),
        }
    tail = (y[test], bands["test"]) if layout.test_size else (None, None)
    report = interval_report(levels, y[val], bands["val"], *tail, method=method)
    if method == "cqr":
        for figures in report.values():
            figures["quantile_head_run_id"] = run_id
    drawn = {}
    for level in levels:
        margin = np.asarray(report[f"{level:g}"]["margin"]).reshape(y.shape[1:])  # (h,), or a scalar one step ahead
        low, high = np.full(y.shape, np.nan), np.full(y.shape, np.nan)
        for split, part in (("val", val), ("test", test)):  # the test rows are empty without a test tail
            low[part], high[part] = bands[split][level][0] - margin, bands[split][level][1] + margin
        drawn[level] = (low, high)
    return report, drawn


def _log_on_parent(tracker: Tracker, winner: Candidate, search_best_val_mae: float, scores: Scores) -> None:
    """The winner's metrics, hyperparameters (as `<name>` and `best.<name>`) and verdict on the parent run."""
    metrics = {"best_val_mae": winner.search_val_mae, "search_best_val_mae": search_best_val_mae, **scores.metrics()}
    if winner.backtest_mae is not None:
        metrics["backtest_mae"] = winner.backtest_mae
    tracker.log_metrics(tracker.parent_id, metrics)
    # The trials' own param names (their columns in MLflow's runs table), and `best.<name>` as before.
    tracker.log_params(tracker.parent_id, {**winner.values, **{f"best.{k}": v for k, v in winner.values.items()}})
    tracker.set_tags(
        tracker.parent_id, {"best_trial_id": winner.trial_id, "verdict": scores.verdict, "mlflow.note.content": _note(scores)}
    )


def _log_blend(tracker: Tracker, blend: Blend) -> None:
    """The blend on the parent run: `blend.json` (every candidate, its weight and its own validation MAE),
    `blend_forecasts.json` (every candidate's validation forecasts, from which its weight was chosen), a param
    `ensemble_weight.<member>` per member with a weight, metrics `blend_val_mae` and `blend_val_mae_cross_fitted`."""
    tracker.log_json(tracker.parent_id, blend.as_dict(), "blend.json")
    tracker.log_json(tracker.parent_id, blend.forecasts(), "blend_forecasts.json")
    weights = {f"ensemble_weight.{name.replace(' ', '_')}": str(w) for name, w in blend.weights().items()}
    logged = tracker.params(tracker.parent_id)  # a resumed search's earlier attempt may have logged some (immutable)
    tracker.log_params(tracker.parent_id, {k: v for k, v in weights.items() if k not in logged})
    if any(logged.get(k, v) != v for k, v in weights.items()):
        print("note: the parent run keeps an earlier attempt's ensemble_weight params; blend.json holds this one's", flush=True)
    metrics = {"blend_val_mae": blend.val_mae}
    if blend.val_mae_cross_fitted is not None:
        metrics["blend_val_mae_cross_fitted"] = blend.val_mae_cross_fitted
    tracker.log_metrics(tracker.parent_id, metrics)


def _note(scores: Scores) -> str:
    """The parent run's description in MLflow's UI (its first field): the verdict and the MAE table it rests on."""
    rows = [("**winner**", scores.winner_val_mae, scores.test_mae)]
    rows += [(name, maes.get("val_mae"), maes.get("test_mae")) for name, maes in scores.baselines.items()]
    rows.sort(key=lambda row: (row[2] is None, row[2] or 0.0))

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    table = "\n".join(f"| {name} | {cell(val)} | {cell(test)} |" for name, val, test in rows)
    return f"**Verdict:** {scores.verdict}\n\n| forecaster | validation MAE | test MAE |\n|---|---:|---:|\n{table}\n"


def _scored_on(series: np.ndarray, layout: Layout) -> str:
    """Which points a val_mae was scored on (the series' fingerprint and the range): versions compare only on the same."""
    fingerprint = hashlib.sha1(np.ascontiguousarray(series, dtype=np.float32).tobytes()).hexdigest()[:12]
    return f"series sha1 {fingerprint}, validation points [{layout.score_start}, {layout.test_start})"


def _log_figures(
    tracker: Tracker,
    series: np.ndarray,
    layout: Layout,
    forecasts: Forecasts,
    completed: list[Trial],
    scores: Scores,
    drawn: dict,
) -> None:
    """forecast_best.png (the test boundary labelled, naive's MAE beside the winner's, the intervals shaded;
    h-step paths from a few origins over a horizon), vs_baselines.png, search_progress.png."""
    parent = tracker.parent_id
    naive = scores.baselines.get("naive", {})
    title = f"validation MAE {scores.winner_val_mae:.4g} (naive {naive.get('val_mae', float('nan')):.4g})"
    if scores.test_mae is not None:
        title += f", test MAE {scores.test_mae:.4g} (naive {naive.get('test_mae', float('nan')):.4g})"
    bands = []
    for level in sorted(drawn, reverse=True):  # the widest first, drawn the palest
        figures = scores.intervals[f"{level:g}"]
        label = f"{level:.0%} interval" + (
            f" (test coverage {figures['coverage']:.0%})" if figures["coverage"] is not None else ""
        )
        bands.append((label, *drawn[level]))
    figure = forecast_best_figure(
        series,
        layout,
        forecasts.actual,
        forecasts.shown(),
        (forecasts.val_rows, forecasts.test_rows),
        (forecasts.searched, forecasts.final),
        title,
        bands,
    )
    tracker.log_figure(parent, figure, "forecast_best.png")
    winner = {"val_mae": scores.winner_val_mae, "test_mae": scores.test_mae}
    tracker.log_figure(parent, vs_baselines_figure(winner, scores.baselines), "vs_baselines.png")
    ordered = sorted(completed, key=lambda t: int(t.trial_id))
    figure = progress_figure([t.score for t in ordered], naive=naive.get("val_mae"), trial_ids=[t.trial_id for t in ordered])
    tracker.log_figure(parent, figure, "search_progress.png")

"""After a panel search: train the winner, score it per series beside the classical forecasters, log and register it.

Every series is scored on its own scale (`data.panel_scores`): the validation figures divide each series' MAE by
its in-sample seasonal-naive MAE before the validation block (the search's objective), the test figures by that of
every point before its test tail (MASE as forecasting competitions compute it). The panel's figures are the mean
and the median over series, and the share of series where the winner beats seasonal naive and ETS. Each series'
figures go to `per_series.csv`, an artifact of the parent run.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.panel import ScaledPanel, panel_frame
from data.panel_scores import panel_baselines, panel_scales, per_series_mae
from data.panel_windows import panel_window_view
from models import forecast as batched_forecast
from search.choose.registry import register
from search.choose.selection import member_count
from search.choose.stage import AfterSearch
from search.choose.winner import _log_on_parent, choose_and_train
from search.plan.cores import available_cores
from search.record.summary import Evaluation
from search.record.tracking import Tracker
from search.scoring.evaluation import Scores
from search.scoring.intervals import interval_report

if TYPE_CHECKING:
    import keras

    from data.panel import Panel
    from data.split import Layout

COMPARED = ("seasonal_naive", "ets", "theta")
"""The forecasters the report counts the winner's wins against, series by series."""


def evaluate_panel_winner(stage: AfterSearch, completed: list) -> Evaluation:
    """`search.choose.winner.evaluate_winner` for a panel: choose and train (refit and average, no blend), score per
    series, write `per_series.csv` in the run dir, log, register."""
    plan, settings, data, tracker, run_dir = stage.plan, stage.settings, stage.data, stage.tracker, stage.run_dir
    layout, scaled = plan.layout, plan.panel
    panel, horizon = scaled.panel, layout.horizon
    chosen = choose_and_train(stage, completed)
    val_points, test_points = range(layout.score_start, layout.test_start), range(layout.test_start, layout.length)
    test_scales = panel_scales(panel, layout.test_start, data.season_length)

    # On test, each series is scaled as the served model scales it: by its MASE scale from every point it has before
    # the test tail (`models.panel_pyfunc`); on validation as the search scored it.
    served = {"val": scaled, "test": ScaledPanel.of(panel, test_scales)}

    def network(model: keras.Model, points: range, split: str) -> tuple[np.ndarray, np.ndarray]:
        length, inputs = int(model.input_shape[1]), served[split]
        x, _, rows, _ = panel_window_view(inputs.values, length, points.start, points.stop, horizon)
        return batched_forecast(model, x).reshape(len(x), horizon) * inputs.scales[rows, None], rows

    per_series, figures = {}, {}
    for split, points, scales in (("val", val_points, scaled.scales), ("test", test_points, test_scales)):
        if not len(points):
            continue
        forecasts, actual, rows, _ = panel_baselines(
            panel, points.start, points.stop, horizon, data.season_length, settings.ets_baseline, available_cores()
        )
        models = {"winner": chosen.searched if split == "val" else chosen.final}
        if split == "test" and chosen.final is not chosen.searched:
            models["searched"] = chosen.searched
        for name, model in models.items():
            predicted, model_rows = network(model, points, split)
            assert np.array_equal(model_rows, rows)  # both series after series, origins in time order
            forecasts = {name: predicted, **forecasts}
        for name, predicted in forecasts.items():
            mae = per_series_mae(predicted, actual, rows, panel.count)
            per_series.setdefault(name, {})[f"{split}_mae"] = mae
            per_series[name][f"{split}_mase"] = mae / scales
        figures[split] = (forecasts, actual, rows)
    table = _panel_table(per_series)
    scores = _scores(per_series, table, horizon)
    split_scales = {"val": scaled.scales, "test": test_scales}
    if settings.intervals:
        scores.intervals = panel_intervals(settings.intervals, figures, split_scales)
    csv_path = _write_per_series(run_dir / "per_series.csv", panel, test_scales, per_series)
    tracker.log_file(tracker.parent_id, csv_path)
    best_trial = min(completed, key=lambda t: t.score)
    _log_on_parent(tracker, chosen.winner, best_trial.score, scores)
    tracker.log_metrics(
        tracker.parent_id,
        {f"panel_{name}_{key}": value for name, row in table.items() for key, value in row.items() if value is not None},
    )
    _log_panel_figure(tracker, panel, layout, figures.get("test") or figures["val"], per_series, scores.intervals, split_scales)
    fingerprint = hashlib.sha1(np.ascontiguousarray(np.nan_to_num(panel.values), dtype=np.float32).tobytes()).hexdigest()[:12]
    scored_on = f"panel sha1 {fingerprint} ({panel.count} series), validation points [{layout.score_start}, {layout.test_start})"
    name = stage.model_name or stage.labels.registered_model(tracker.experiment_name)
    description = (
        f"{chosen.winner.values.get('model', 'model')} trained on the {panel.count} series of {data.name} at once; "
        f"mean test MASE {scores.mase.get('test') or float('nan'):.4g}. A pyfunc: give it a long DataFrame (unique_id, ds, "
        f"y) with each series' whole history (its last {int(chosen.final.input_shape[1])} values are read, all of them "
        f"set its scale), get unique_id, ds, forecast for the next {horizon} steps"
    )
    for level, figures in scores.intervals.items():
        percent = f"{float(level) * 100:g}"
        covered = figures.get("coverage")
        description += f", forecast-lo-{percent} and forecast-hi-{percent}"
        description += f" (test coverage {covered:.1%})" if covered is not None else ""
    description += "."

    def log_version() -> str:
        return _log_panel_model(tracker, chosen.final, panel, data.season_length, horizon, name, scores.intervals)

    registration = register(
        chosen.final, None, None, tracker, name, scores.winner_val_mae, scored_on, scores, description, log_version
    )
    return Evaluation(
        best_trial_id=chosen.winner.trial_id,
        best_val_mae=chosen.winner.search_val_mae,
        search_best_trial_id=best_trial.trial_id,
        search_best_val_mae=best_trial.score,
        scores=scores,
        best_hyperparameters=chosen.winner.values,
        selection={
            "top_k": settings.select.top_k,
            "folds": 0,
            "backtest": "never (a panel)",
            "candidates": [c.as_dict() for c in chosen.candidates],
            "members": _member_counts(chosen.members),
        },
        refit=bool(settings.refit),
        ensemble=settings.ensemble,
        ensemble_members=member_count(chosen.final),
        ensemble_of=str(settings.ensemble_of),
        epochs=chosen.winner.epochs,
        input_length=int(chosen.final.input_shape[1]),
        registration=registration,
        stage_seconds=chosen.seconds,
        series=panel.count,
        per_series_csv=str(csv_path),
        panel=table,
    )


def panel_intervals(levels: Sequence[float], figures: dict, scales: dict) -> dict:
    """`search.intervals` on a panel: split conformal over the series (`search.scoring.intervals`).

    Each series' validation errors of the searched winner, divided by its scale, are one calibration sample of a
    step ahead's error in MASE units; the series are the exchangeable units (not one series' neighbouring origins),
    so the margin per step is the `ceil((n + 1) a)`-th smallest of n series' scaled errors, and a series' interval is
    `forecast +- margin * scale` with its own scale (the served model's: every point before the forecast). Coverage
    and `mean_width` are measured on the test tails in the same MASE units (`units`)."""

    def scaled(split: str) -> tuple[np.ndarray, np.ndarray]:
        forecasts, actual, rows = figures[split]
        divide = np.asarray(scales[split], dtype=np.float64)[rows, None]
        winner, actual = forecasts["winner"] / divide, actual / divide
        kept = np.isfinite(winner).all(axis=1) & np.isfinite(actual).all(axis=1)
        return winner[kept], actual[kept]

    val_forecast, val_actual = scaled("val")
    tail = (None, None)
    if "test" in figures:
        test_forecast, test_actual = scaled("test")
        tail = (test_actual, {float(level): (test_forecast, test_forecast) for level in levels})
    report = interval_report(levels, val_actual, {float(level): (val_forecast, val_forecast) for level in levels}, *tail)
    for level_figures in report.values():
        level_figures["units"] = "each series' MASE scale"
    return report


def _panel_table(per_series: dict) -> dict:
    """For each forecaster: mean and median MASE over series on validation and test; for the winner, the share of
    series where it beats each of `COMPARED` on test (validation where there is no test tail)."""
    table = {}
    for name, figures in per_series.items():
        row = {}
        for split in ("val", "test"):
            mase = figures.get(f"{split}_mase")
            if mase is not None and np.isfinite(mase).any():
                row[f"{split}_mean"] = float(np.nanmean(mase))
                row[f"{split}_median"] = float(np.nanmedian(mase))
        table[name] = row
    split = "test" if "test_mase" in per_series["winner"] else "val"
    for other in COMPARED:
        if other in per_series:
            ours, theirs = per_series["winner"][f"{split}_mase"], per_series[other][f"{split}_mase"]
            seen = np.isfinite(ours) & np.isfinite(theirs)
            table["winner"][f"beats_{other}"] = float(np.mean(ours[seen] < theirs[seen])) if seen.any() else None
    return table


def _scores(per_series: dict, table: dict, horizon: int) -> Scores:
    """The panel's figures in the single-series record: MAEs are means over series (in each series' own units),
    `mase` the winner's mean MASE; the verdict from the means of MASE."""

    def mean(name: str, key: str) -> float | None:
        values = per_series.get(name, {}).get(key)
        return float(np.nanmean(values)) if values is not None and np.isfinite(values).any() else None

    baselines = {
        n: {"val_mae": mean(n, "val_mae"), "test_mae": mean(n, "test_mae")} for n in per_series if n not in ("winner", "searched")
    }
    split = "test" if table["winner"].get("test_mean") is not None else "val"
    ranked = sorted(
        (row[f"{split}_mean"], n) for n, row in table.items() if n not in ("winner", "searched") and f"{split}_mean" in row
    )
    best = {
        s: {"name": n, "mae": mean(n, f"{s}_mae"), "mase": table[n].get(f"{s}_mean")}
        for s in ("val", "test")
        for _, n in ranked[:1]
    }
    ours = table["winner"].get(f"{split}_mean")
    if ranked and ours is not None:
        their, who = ranked[0]
        verdict = (
            f"the winner beats every baseline on {split} (mean MASE {ours:.4g} vs {who} {their:.4g})"
            if ours < their
            else f"{who} beats the winner on {split} (mean MASE {their:.4g} vs {ours:.4g}): use {who} for this panel"
        )
    else:
        verdict = "no baseline to compare with"
    return Scores(
        winner_val_mae=table["winner"].get("val_mean", float("nan")),
        test_mae=mean("winner", "test_mae"),
        test_mae_without_refit=mean("searched", "test_mae") if "searched" in per_series else None,
        baselines=baselines,
        skill_vs_naive={},
        mase={"val": table["winner"].get("val_mean"), "test": table["winner"].get("test_mean")},
        best_baseline=best,
        verdict=verdict,
        horizon=horizon,
        mase_scale="each series' in-sample seasonal naive (naive without a season)",
    )


def _write_per_series(path: Path, panel: Panel, scales: np.ndarray, per_series: dict) -> Path:
    """`unique_id, points, scale` and `<forecaster>_val_mae, _test_mae, _test_mase` for the winner and each baseline."""
    names = list(per_series)
    header = ["unique_id", "points", "scale"]
    for name in names:
        header += [f"{name}_{key}" for key in ("val_mae", "test_mae", "test_mase") if f"{key}" in per_series[name]]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for i, uid in enumerate(panel.ids):
            row = [uid, int(panel.lengths[i]), f"{scales[i]:.6g}"]
            for name in names:
                row += [
                    f"{per_series[name][key][i]:.6g}" for key in ("val_mae", "test_mae", "test_mase") if key in per_series[name]
                ]
            writer.writerow(row)
    return path


def _log_panel_figure(
    tracker: Tracker, panel: Panel, layout: Layout, scored: tuple, per_series: dict, intervals: dict, scales: dict
) -> None:
    """`forecast_series.png`: the best, the median and the worst series by the winner's MASE, with the winner's,
    seasonal naive's and ETS's forecasts, and the widest interval around the winner's."""
    from search.record.plots import panel_figure

    forecasts, _, rows = scored
    split = "test" if "test_mase" in per_series["winner"] else "val"
    mase = per_series["winner"][f"{split}_mase"]
    order = np.argsort(np.where(np.isfinite(mase), mase, np.inf))
    finite = int(np.isfinite(mase).sum())
    if finite == 0:
        return
    picked = [int(order[0]), int(order[finite // 2]), int(order[finite - 1])]
    shown = {name: forecasts[name] for name in ("winner", *COMPARED) if name in forecasts}
    origin = layout.test_start if split == "test" else layout.score_start
    band = None
    if intervals:
        level = max(intervals, key=float)
        half = np.asarray(intervals[level]["margin"])[None, :] * scales[split][rows, None]
        band = (f"{float(level):.0%} interval", forecasts["winner"] - half, forecasts["winner"] + half)
    figure = panel_figure(panel, layout, picked, rows, shown, mase, origin, f"{split}, ", band)
    tracker.log_figure(tracker.parent_id, figure, "forecast_series.png")


def _log_panel_model(
    tracker: Tracker, model: keras.Model, panel: Panel, season_length: int, horizon: int, name: str, intervals: dict
) -> str:
    """The panel's registered form (`models.panel_pyfunc`): the Keras model as an artifact, its input length, horizon,
    season and interval margins (MASE units per step, by level) as the pyfunc's config, a signature from a few of the
    panel's series."""
    import tempfile

    import keras
    from mlflow.models import ModelSignature, infer_signature

    import models.panel_pyfunc as panel_pyfunc
    from search.fit.backends import requirements

    config = {"input_length": int(model.input_shape[1]), "horizon": horizon, "season_length": season_length}
    config["frequency"] = _frequency(panel.step)
    config["interval_margins"] = {level: figures["margin"] for level, figures in intervals.items()}
    with tempfile.TemporaryDirectory(prefix="panel-model-") as folder:
        path = Path(folder) / "model.keras"
        served = keras.models.clone_model(model)  # uncompiled: no optimizer state to save, nor to skip when loading
        served.set_weights(model.get_weights())
        served.save(path)
        example = panel_frame(panel).groupby("unique_id").tail(4 * config["input_length"]).head(8 * config["input_length"])
        forecaster = panel_pyfunc.PanelForecaster()
        forecaster.model, forecaster.input_length, forecaster.horizon = model, config["input_length"], horizon
        forecaster.season_length, forecaster.frequency = season_length, config["frequency"]
        forecaster.interval_margins = config["interval_margins"]
        # The output's schema only: the input is checked and converted by `predict` itself, so integer values or
        # times, and ids of any type, are taken as `data=panel` reads them.
        signature = ModelSignature(inputs=None, outputs=infer_signature(example, forecaster.predict(None, example)).outputs)
        return tracker.log_pyfunc_to_parent(
            Path(panel_pyfunc.__file__), {"keras_model": str(path)}, config, signature, requirements(), name
        )


def _frequency(step: object) -> float | str | None:
    """The panel's time step for the served model's config: a pandas frequency string for dates, a number for a time
    index, None without one."""
    import pandas as pd

    if step is None:
        return None
    if isinstance(step, (int, float, np.integer, np.floating)):
        return float(step)
    try:
        return pd.tseries.frequencies.to_offset(step).freqstr
    except (TypeError, ValueError):
        return None


def _member_counts(members: list) -> dict[str, int]:
    """How many members (seeds) of each configuration the registered model averages, by trial id."""
    counts: dict[str, int] = {}
    for candidate, _ in members:
        counts[candidate.trial_id] = counts.get(candidate.trial_id, 0) + 1
    return counts

"""The winner against the baselines, on the same points: MAE, skill over naive, MASE, and one verdict line.

Validation figures are the searched model's (the points it was chosen on, never trained on); test
figures are the registered forecaster's (refit and ensemble included), on the tail no step of the
search has seen. Every baseline is scored on exactly the same points. With `data.horizon` h > 1 a
split's points are its origins whose h labels lie in it, an MAE is over all h steps, and the MAE of
each step ahead is kept beside it (`per_step`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data.baselines import ar_changes, baseline_forecasts, exponential_smoothing, naive_scale, scale_name, targets, theta
from data.split import Layout
from search.scoring.intervals import level_name


@dataclass
class Scores:
    """What the summary, the closing table, the parent run and the registered version report."""

    winner_val_mae: float
    test_mae: float | None
    test_mae_without_refit: float | None
    baselines: dict  # {name: {val_mae, test_mae}}
    skill_vs_naive: dict  # {val, test}
    mase: dict  # {val, test}
    best_baseline: dict  # {val: {name, mae}, test: {name, mae}}
    verdict: str
    ets_skipped: str | None = None
    horizon: int = 1
    per_step: dict = field(default_factory=dict)  # h > 1: {forecaster: {val: [MAE of step 1..h], test: [...]}}
    intervals: dict = field(default_factory=dict)  # search.intervals: {level: {coverage, mean_width, ...}}
    mase_scale: str = "naive (lag 1)"  # the in-sample forecast MASE divides by (`data.baselines.naive_scale`)

    def as_dict(self) -> dict:
        out = {
            "winner_val_mae": self.winner_val_mae,
            "test_mae": self.test_mae,
            "test_mae_without_refit": self.test_mae_without_refit,
            "baselines": self.baselines,
            "skill_vs_naive": self.skill_vs_naive,
            "mase": self.mase,
            "mase_scale": self.mase_scale,
            "best_baseline": self.best_baseline,
            "verdict": self.verdict,
        }
        if self.ets_skipped:
            out["ets_skipped"] = self.ets_skipped
        out["horizon"] = self.horizon
        if self.per_step:
            out["per_step"] = self.per_step
        if self.intervals:
            out["intervals"] = self.intervals
        return out

    def metrics(self) -> dict[str, float]:
        """Parent-run metrics (names kept from earlier releases: `winner_val_mae`, `test_mae`, `baseline_<name>_<split>`)."""
        metrics = {"winner_val_mae": self.winner_val_mae}
        for name, value in (("test_mae", self.test_mae), ("test_mae_without_refit", self.test_mae_without_refit)):
            if value is not None:
                metrics[name] = value
        for name, maes in self.baselines.items():
            metrics.update({f"baseline_{name}_{split}": value for split, value in maes.items() if value is not None})
        for split in ("val", "test"):
            for prefix, values in (("skill_vs_naive", self.skill_vs_naive), ("mase", self.mase)):
                if values.get(split) is not None:
                    metrics[f"{prefix}_{split}"] = values[split]
        for split, maes in self.per_step.get("winner", {}).items():
            metrics.update({f"{split}_mae_h{step}": mae for step, mae in enumerate(maes, start=1)})
        for level, figures in self.intervals.items():
            name = level_name(level)
            metrics.update({f"{name}_{key}": figures[key] for key in ("coverage", "mean_width") if figures.get(key) is not None})
        return metrics


@dataclass
class BaselineTable:
    """Every baseline on the scored and test origins: `maes` `{name: {val_mae, test_mae}}`, `per_step`
    `{name: {val: [...], test: [...]}}` (h > 1 only), and why `ets` was skipped (or None)."""

    maes: dict
    per_step: dict
    ets_skipped: str | None


def baseline_table(
    series: np.ndarray, layout: Layout, season_length: int, ma_window: int, ets: bool, ar_lags: int = 0
) -> BaselineTable:
    """Every baseline scored on the same origins as the winner (`layout.val_origins`, `layout.test_origins`).

    The fitted baselines (`ets`, `theta`, `ar_changes`) are fitted twice, like a forecaster would: on the points
    before the scored validation points for the validation figures, on every point before the test
    tail for the test figures; each forecast uses only the points before its origin.
    """
    horizon = layout.horizon
    splits = {"val": layout.val_origins, "test": layout.test_origins}
    skipped = None if ets else "search.ets_baseline=false"
    forecasts = {}
    for split, points in splits.items():
        if not len(points):
            continue
        smoothing = exponential_smoothing(series, points.start, season_length, horizon) if ets else None
        if ets and smoothing is None:
            skipped = "statsmodels is not installed, or the series is too short to fit it"
        autoregression = ar_changes(series, points.start, ar_lags, horizon=horizon) if ar_lags > 0 else None
        theta_method = theta(series, points.start, season_length, horizon) if ets else None
        forecasts[split] = baseline_forecasts(
            series, points, season_length, ma_window, smoothing, autoregression, horizon, theta_method
        )
    maes, per_step = {}, {}
    for name in forecasts["val"]:
        maes[name] = {}
        for split, points in splits.items():
            forecast = forecasts.get(split, {}).get(name)
            actual = targets(series, points, horizon)
            maes[name][f"{split}_mae"] = _mae(actual, forecast) if forecast is not None else None
            if horizon > 1 and forecast is not None:
                per_step.setdefault(name, {})[split] = step_maes(actual, forecast)
    return BaselineTable(maes, per_step, skipped)


def step_maes(actual: np.ndarray, forecast: np.ndarray) -> list[float]:
    """The MAE of each step ahead, over the origins (rows of `(n, h)` arrays)."""
    errors = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64))
    return [float(v) for v in errors.mean(axis=0)]


def score(
    series: np.ndarray,
    layout: Layout,
    winner_val_mae: float,
    test_mae: float | None,
    test_mae_without_refit: float | None,
    baselines: dict,
    ets_skipped: str | None,
    per_step: dict | None = None,
    season_length: int = 0,
) -> Scores:
    """Skill over naive, MASE (scaled by the in-sample MAE over the pre-test points of naive, or of seasonal naive
    with `season_length`) and the verdict.

    `per_step` (h > 1): each step's MAE, `{forecaster: {val: [...], test: [...]}}`, the winner's under `winner`.
    """
    scale = naive_scale(series, layout.test_start, season_length)
    naive = baselines.get("naive", {})
    skill, mase = {}, {}
    for split, mae in (("val", winner_val_mae), ("test", test_mae)):
        reference = naive.get(f"{split}_mae")
        skill[split] = 1.0 - mae / reference if mae is not None and reference else None
        mase[split] = mae / scale if mae is not None and scale > 0 else None
    best = {}
    for split in ("val", "test"):
        ranked = sorted((maes[f"{split}_mae"], name) for name, maes in baselines.items() if maes.get(f"{split}_mae") is not None)
        if ranked:
            best[split] = {"name": ranked[0][1], "mae": ranked[0][0]}
    return Scores(
        winner_val_mae,
        test_mae,
        test_mae_without_refit,
        baselines,
        skill,
        mase,
        best,
        verdict(winner_val_mae, test_mae, best, baselines, per_step or {}),
        ets_skipped,
        layout.horizon,
        per_step or {},
        mase_scale=scale_name(layout.test_start, season_length),
    )


def verdict(winner_val_mae: float, test_mae: float | None, best: dict, baselines: dict, per_step: dict | None = None) -> str:
    """One line: which baseline is best, and whether the winner beats it on validation and on test (and, over a
    horizon, naive and seasonal naive at every step ahead on test)."""
    parts = []
    for split, mae in (("validation", winner_val_mae), ("test", test_mae)):
        key = "val" if split == "validation" else "test"
        if mae is None or key not in best:
            continue
        name, reference = best[key]["name"], best[key]["mae"]
        beats = "beats" if mae < reference else "does NOT beat"
        parts.append(f"on {split} the winner ({mae:.4g}) {beats} the best baseline, {name} ({reference:.4g})")
    if test_mae is not None:
        simple = [n for n in ("naive", "seasonal_naive") if baselines.get(n, {}).get("test_mae") is not None]
        lost = [n for n in simple if test_mae >= baselines[n]["test_mae"]]
        parts.append(f"it beats {' and '.join(simple)} on test" if not lost else f"it does NOT beat {' and '.join(lost)} on test")
        steps = (per_step or {}).get("winner", {}).get("test")
        if steps:
            behind = {
                name: [
                    k
                    for k, (ours, theirs) in enumerate(zip(steps, per_step[name]["test"], strict=True), start=1)
                    if ours >= theirs
                ]
                for name in simple
                if per_step.get(name, {}).get("test")
            }
            behind = {name: ks for name, ks in behind.items() if ks}
            parts.append(
                f"at every one of the {len(steps)} steps ahead too"
                if not behind
                else "step by step it does NOT beat "
                + " nor ".join(f"{name} at {', '.join(f'h{k}' for k in ks)}" for name, ks in behind.items())
            )
    return "; ".join(parts)


def _mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64))))

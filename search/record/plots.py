"""Figures logged to MLflow.

Built with Matplotlib's object API (`Figure`, no pyplot): no global figure registry and no GUI
backend, so a figure can be drawn and saved on the background thread that logs artifacts while
the next trial trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from data.panel import Panel
    from data.split import Layout


def forecast_figure(
    time: np.ndarray,
    actual: np.ndarray,
    forecast: np.ndarray,
    title: str,
    bands: Sequence[tuple[str, np.ndarray, np.ndarray]] = (),
) -> Figure:
    """Forecast against actual values over the given time indices (the course's plot_series); `bands`:
    `(label, low, high)` intervals over the same times, shaded, widest first."""
    figure = Figure(figsize=(9, 4))
    axes = figure.subplots()
    axes.plot(time, actual, label="actual", linewidth=1)
    axes.plot(time, forecast, label="forecast", linewidth=1)
    for (label, low, high), alpha in zip(bands, (0.15, 0.25, 0.35, 0.45), strict=False):
        axes.fill_between(time, low, high, color="tab:orange", alpha=alpha, linewidth=0, label=label)
    axes.set(xlabel="time", ylabel="value", title=title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def paths_figure(
    time: np.ndarray,
    actual: np.ndarray,
    origins: Sequence[int],
    paths: np.ndarray,
    title: str,
    bands: Sequence[tuple[str, Sequence[np.ndarray], Sequence[np.ndarray]]] = (),
) -> Figure:
    """Multi-step forecasts: the actual values over `time`, and from each origin `t` in `origins` its path
    `paths[i]` over `t .. t + h - 1` (a dot marks where it starts); `bands`: `(label, lows, highs)`, the
    interval of each path (one row per origin), shaded, widest first."""
    figure = Figure(figsize=(9, 4))
    axes = figure.subplots()
    axes.plot(time, actual, label="actual", linewidth=1, color="tab:blue")
    for index, (origin, path) in enumerate(zip(origins, paths, strict=True)):
        steps = np.arange(origin, origin + len(path))
        first = index == 0
        for (label, lows, highs), alpha in zip(bands, (0.15, 0.25, 0.35, 0.45), strict=False):
            axes.fill_between(
                steps, lows[index], highs[index], color="tab:orange", alpha=alpha, linewidth=0, label=label if first else None
            )
        axes.plot(steps, path, color="tab:orange", linewidth=1.5, label=f"{len(path)}-step forecast" if first else None)
        axes.plot(steps[:1], path[:1], "o", color="tab:orange", markersize=3)
    axes.set(xlabel="time", ylabel="value", title=title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def spread_origins(origins: range, count: int, horizon: int) -> list[int]:
    """`count` origins spread over `origins`, paths not overlapping where there is room (for `paths_figure`)."""
    if not len(origins):
        return []
    chosen = np.linspace(origins.start, origins.stop - 1, max(1, min(count, len(origins) // max(horizon, 1) or 1)))
    return sorted({int(round(t)) for t in chosen})


def progress_figure(
    scores: list[float], objective: str = "val_mae", naive: float | None = None, trial_ids: Sequence[str] | None = None
) -> Figure:
    """Each completed trial's score and the best so far, by trial id (the ids of the child runs); the naive
    forecast's level for reference; a log axis when one trial diverged."""
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    trials = np.asarray([int(t) for t in trial_ids]) if trial_ids is not None else np.arange(1, len(scores) + 1)
    axes.plot(trials, scores, "o", alpha=0.5, label=objective)
    axes.step(trials, np.minimum.accumulate(scores), where="post", label=f"best {objective} so far")
    if naive is not None:
        axes.axhline(naive, color="grey", linestyle=":", label=f"naive {naive:.4g}")
    if len(scores) and max(scores) > 20 * min(scores) > 0:
        axes.set_yscale("log")  # one diverged trial would flatten the rest
    axes.set(xlabel="trial id" if trial_ids is not None else "completed trial", ylabel=objective, title="Search progress")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def vs_baselines_figure(winner: dict, baselines: dict) -> Figure:
    """Validation and test MAE of the winner beside every baseline (`{name: {val_mae, test_mae}}`), lowest first."""
    rows = sorted(
        {"winner": winner, **baselines}.items(), key=lambda item: (item[1].get("test_mae") is None, item[1].get("test_mae") or 0)
    )
    names = [name for name, _ in rows]
    figure = Figure(figsize=(8, 0.5 * len(rows) + 1.8))
    axes = figure.subplots()
    position = np.arange(len(rows))
    for offset, split, colour in ((-0.2, "val_mae", "tab:blue"), (0.2, "test_mae", "tab:orange")):
        values = [maes.get(split) or 0.0 for _, maes in rows]
        bars = axes.barh(
            position + offset,
            values,
            height=0.4,
            color=colour,
            label=split.replace("_mae", "idation" if split == "val_mae" else ""),
        )
        axes.bar_label(bars, labels=[f"{v:.4g}" if v else "-" for v in values], fontsize=8, padding=2)
    axes.set_yticks(position, names)
    axes.get_yticklabels()[names.index("winner")].set_fontweight("bold")
    axes.invert_yaxis()
    axes.set(xlabel="MAE, same points for every row (winner: validation by the searched model,\ntest by the registered one)")
    axes.set_title("Winner vs baselines")
    axes.set_xlim(0, axes.get_xlim()[1] * 1.12)  # room for the labels
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    return figure


def lr_figure(learning_rates: np.ndarray, losses: np.ndarray, suggestion: Any) -> Figure:  # a search.plan.lr_range.Suggestion
    """The course's loss-vs-LR plot (`semilogx`), smoothed, with the suggestion and the search range marked."""
    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots()
    read = len(suggestion.smoothed)
    axes.semilogx(learning_rates[: suggestion.finite], losses[: suggestion.finite], alpha=0.35, linewidth=1, label="loss")
    axes.semilogx(learning_rates[:read], suggestion.smoothed, linewidth=2, label="smoothed loss")
    axes.axvspan(suggestion.low, suggestion.high, color="tab:green", alpha=0.12, label="search range")
    axes.axvline(suggestion.learning_rate, color="tab:green", linestyle="--", label=f"suggested {suggestion.learning_rate:.2g}")
    if suggestion.diverged_at:
        axes.axvline(
            suggestion.diverged_at, color="tab:red", linestyle=":", label=f"loss not finite at {suggestion.diverged_at:.2g}"
        )
    lowest = int(np.argmin(suggestion.smoothed))
    top = max(suggestion.smoothed[: lowest + 1].max(), suggestion.smoothed[0]) * 1.15
    bottom = min(float(np.min(losses[:read])), float(suggestion.smoothed.min()))
    axes.set_ylim(max(0.0, bottom - 0.05 * (top - bottom)), top)
    axes.set(xlabel="learning rate (log scale)", ylabel="training loss", title="Learning-rate range test")
    axes.legend()
    axes.grid(alpha=0.3, which="both")
    figure.tight_layout()
    return figure


PATHS_PER_SPLIT = 4
"""Multi-step paths drawn on forecast_best.png from each of validation and test."""


def forecast_best_figure(
    series: np.ndarray,
    layout: Layout,
    actual: np.ndarray,
    shown: np.ndarray,
    rows: tuple,
    models: tuple,
    title: str,
    bands: list,
) -> Figure:
    """forecast_best.png: the winner's forecasts over the scored points (`shown`, one step ahead; or, over a horizon,
    `PATHS_PER_SPLIT` h-step paths from spread origins of each split, from `models` = (searched, registered)
    forecasts), the intervals (`bands`: `(label, low, high)` aligned with the rows) shaded, and the test boundary
    labelled with which model each side shows. `rows` = (validation rows, test rows) of the forecasts."""
    val_rows, test_rows = rows
    time = np.arange(layout.score_start, layout.length)
    if layout.horizon == 1:
        shown_bands = [
            (label, np.concatenate([low[r] for r in rows]), np.concatenate([high[r] for r in rows])) for label, low, high in bands
        ]
        figure = forecast_figure(time, actual, shown, title, shown_bands)
    else:
        origins, paths, shown_bands = [], [], [(label, [], []) for label, _, _ in bands]
        for split_rows, model_paths, points in (
            (val_rows, models[0], layout.val_origins),
            (test_rows, models[1], layout.test_origins),
        ):
            for origin in spread_origins(points, PATHS_PER_SPLIT, layout.horizon):
                row = split_rows.start + origin - points.start
                origins.append(origin)
                paths.append(model_paths[row])
                for (_, lows, highs), (_, low, high) in zip(shown_bands, bands, strict=True):
                    lows.append(low[row])
                    highs.append(high[row])
        figure = paths_figure(time, series[layout.score_start :], origins, paths, title, shown_bands)
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
    return figure


def panel_figure(
    panel: Panel,
    layout: Layout,
    picked: list[int],
    rows: np.ndarray,
    forecasts: dict,
    mase: np.ndarray,
    origin: int,
    title: str = "",
    band: tuple | None = None,
) -> Figure:
    """One panel per picked series (the best, the median and the worst by the winner's MASE): its last points and,
    from `origin`, each forecaster's path (`forecasts`: name -> `(origins, horizon)` in `rows` order), and `band`
    (`(label, low, high)`, arrays as the forecasts) shaded."""
    figure = Figure(figsize=(10, 2.6 * len(picked)))
    axes_list = figure.subplots(len(picked), 1, squeeze=False)[:, 0]
    for axes, row, label in zip(axes_list, picked, ("best", "median", "worst"), strict=False):
        first = int(np.flatnonzero(rows == row)[0])
        start = max(int(panel.starts()[row]), origin - 4 * layout.horizon)
        time = np.arange(start, origin + layout.horizon)
        axes.plot(time, panel.values[row, start : origin + layout.horizon], label="actual", linewidth=1, color="black")
        steps = np.arange(origin, origin + layout.horizon)
        if band is not None:
            axes.fill_between(steps, band[1][first], band[2][first], alpha=0.2, label=band[0])
        for name, paths in forecasts.items():
            axes.plot(steps, paths[first], label=name, linewidth=1)
        axes.axvline(origin, color="grey", linewidth=0.8, linestyle=":")
        axes.set_title(f"{title}{label}: {panel.ids[row]} (scaled MAE {mase[row]:.3g})", fontsize=9)
        axes.grid(alpha=0.3)
    axes_list[0].legend(fontsize=8)
    figure.tight_layout()
    return figure

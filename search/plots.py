"""Figures logged to MLflow.

Built with Matplotlib's object API (`Figure`, no pyplot): no global figure registry and no GUI
backend, so a figure can be drawn and saved on the background thread that logs artifacts while
the next trial trains.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def forecast_figure(time: np.ndarray, actual: np.ndarray, forecast: np.ndarray, title: str):
    """Forecast against actual values over the given time indices (the course's plot_series)."""
    figure = Figure(figsize=(9, 4))
    axes = figure.subplots()
    axes.plot(time, actual, label="actual", linewidth=1)
    axes.plot(time, forecast, label="forecast", linewidth=1)
    axes.set(xlabel="time", ylabel="value", title=title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def progress_figure(scores: list[float], objective: str = "val_mae"):
    """Each completed trial's score and the best so far, in trial order."""
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    trials = np.arange(1, len(scores) + 1)
    axes.plot(trials, scores, "o", alpha=0.5, label=objective)
    axes.step(trials, np.minimum.accumulate(scores), where="post", label=f"best {objective} so far")
    axes.set(xlabel="completed trial", ylabel=objective, title="Search progress")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def lr_figure(learning_rates: np.ndarray, losses: np.ndarray, suggestion):
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

"""Figures logged to MLflow, drawn with the non-interactive Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def forecast_figure(time: np.ndarray, actual: np.ndarray, forecast: np.ndarray, title: str):
    """Forecast against actual values over the given time indices (the course's plot_series)."""
    figure, axes = plt.subplots(figsize=(9, 4))
    axes.plot(time, actual, label="actual", linewidth=1)
    axes.plot(time, forecast, label="forecast", linewidth=1)
    axes.set(xlabel="time", ylabel="value", title=title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def progress_figure(scores: list[float], objective: str = "val_mae"):
    """Each completed trial's score and the best so far, in trial order."""
    figure, axes = plt.subplots(figsize=(7, 4))
    trials = np.arange(1, len(scores) + 1)
    axes.plot(trials, scores, "o", alpha=0.5, label=objective)
    axes.step(trials, np.minimum.accumulate(scores), where="post", label=f"best {objective} so far")
    axes.set(xlabel="completed trial", ylabel=objective, title="Search progress")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure

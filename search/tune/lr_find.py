"""The course's learning-rate sweep as a tool: train one reference configuration while the learning
rate grows geometrically, record (learning rate, loss), read the suggestion off the smoothed curve.

Keras does the sweep (`LearningRateScheduler`, one step per epoch as in the course); for the default
per-batch sweep each "epoch" is a single batch of an endless stream of training windows, so the whole
test takes seconds. Results go to the run directory (`lr_find.csv`, `lr_find.png`, `lr_find.json`)
and to an MLflow run tagged `mode=lr_find`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pandas as pd

from search.core.files import write_json
from search.fit.hypermodel import WindowedHyperModel
from search.plan.lr_range import Suggestion, geometric_schedule, suggest
from search.plan.planning import RunLabels
from search.plan.space import reference_values
from search.record.plots import lr_figure
from search.record.tracking import Tracker

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from search.plan.planning import Plan

RESULT_FILE = "lr_find.json"


class RangeRecorder(keras.callbacks.Callback):
    """Records each step's learning rate and loss; stops once the loss is not finite or has clearly diverged."""

    def __init__(self, smoothing: float, stop_factor: float) -> None:
        super().__init__()
        self.smoothing, self.stop_factor = smoothing, stop_factor
        self.learning_rates: list[float] = []
        self.losses: list[float] = []
        self.stopped_because: str | None = None
        self._average, self._lowest = 0.0, float("inf")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", float("nan")))
        self.learning_rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        self.losses.append(loss)
        if not np.isfinite(loss):
            self.stopped_because = f"loss became {loss} at lr={self.learning_rates[-1]:.3g}"
            self.model.stop_training = True
            return
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** len(self.losses))
        self._lowest = min(self._lowest, smoothed)
        if self.stop_factor and smoothed > self.stop_factor * self._lowest:
            self.stopped_because = f"smoothed loss above {self.stop_factor:g}x its lowest at lr={self.learning_rates[-1]:.3g}"
            self.model.stop_training = True


def sweep(hypermodel: WindowedHyperModel, values: dict, settings: DictConfig) -> RangeRecorder:
    """Train `values`' model once with the learning rate following `settings` (`lr_find` config); returns the record."""
    rates = geometric_schedule(settings.start, settings.end, settings.steps)
    model = hypermodel.model_for({**values, "learning_rate": float(rates[0])})
    recorder = RangeRecorder(settings.smoothing, settings.stop_factor)
    schedule = keras.callbacks.LearningRateScheduler(lambda step, _: float(rates[step]))
    data = hypermodel.training_windows(values)
    per_batch = settings.per == "batch"
    model.fit(
        data.repeat() if per_batch else data,
        epochs=settings.steps,
        steps_per_epoch=1 if per_batch else None,
        callbacks=[schedule, recorder],
        shuffle=False,
        verbose=0,
    )
    return recorder


def find_learning_rate(
    settings: DictConfig,
    seed: int,
    data: DictConfig,
    plan: Plan,
    tracker: Tracker,
    run_dir: Path,
    labels: RunLabels,
    parent_id: str | None = None,
) -> dict:
    """Run the range test as its own MLflow run (nested under `parent_id` if given); returns the result.

    `settings` is the config's `lr_find`; `data` its data settings (the windows' shuffle buffer, the season).
    """
    values = {k: v for k, v in reference_values(plan.specs).items() if k != "learning_rate"}
    # Not the sweep's tags: `tags.sweep_id` finds a sweep's parent runs, and this is not one.
    tags = {"mode": "lr_find", "space": labels.space, "data": labels.data, "seed": str(seed), "git_commit": labels.git_commit}
    start_run = functools.partial(tracker.start_run, f"lr_find-{labels.space}", tags, parent_id)
    with tracker.closing(start_run, interrupted="interrupted (SIGINT/SIGTERM)") as run_id:
        tracker.log_params(run_id, {**values, **{f"lr_find.{k}": v for k, v in settings.items()}})
        hypermodel = WindowedHyperModel(
            plan.series,
            plan.layout,
            plan.specs,
            shuffle_buffer=data.shuffle_buffer,
            patience=0,
            seed=seed,
            season_length=data.season_length,
        )
        keras.utils.set_random_seed(seed)
        record = sweep(hypermodel, values, settings)
        rates, losses = np.array(record.learning_rates), np.array(record.losses)
        found = suggest(rates, losses, settings.smoothing, settings.low_factor, settings.high_factor, settings.stop_factor or 4.0)
        result = {
            **found.as_dict(),
            "rule": f"[suggestion * {settings.low_factor:g}, suggestion * {settings.high_factor:g}]",
            "steps_run": len(rates),
            "stopped_because": record.stopped_because or "swept to lr_find.end",
            "reference": values,
            "mlflow_run_id": run_id,
        }
        _write_and_log(tracker, run_id, run_dir, rates, losses, found, result)
    return result


def _write_and_log(
    tracker: Tracker, run_id: str, run_dir: Path, rates: np.ndarray, losses: np.ndarray, found: Suggestion, result: dict
) -> None:
    """The curve as CSV and per-step metrics, the plot as PNG, the reading as JSON: on disk and in the run."""
    smoothed = np.full(len(losses), np.nan)
    smoothed[: len(found.smoothed)] = found.smoothed
    table = pd.DataFrame({"step": np.arange(len(rates)), "learning_rate": rates, "loss": losses, "smoothed_loss": smoothed})
    table.to_csv(run_dir / "lr_find.csv", index=False)
    figure = lr_figure(rates, losses, found)
    figure.savefig(run_dir / "lr_find.png", dpi=100)
    tracker.log_figure(run_id, figure, "lr_find.png")
    tracker.log_file(run_id, run_dir / "lr_find.csv")
    steps = [
        (step, {"learning_rate": rate, "loss": loss, "smoothed_loss": smooth_loss})
        for step, (rate, loss, smooth_loss) in enumerate(zip(rates, losses, smoothed, strict=True))
        if np.isfinite(loss)
    ]
    tracker.log_steps(run_id, steps)
    tracker.log_metrics(
        run_id, {"suggested_learning_rate": found.learning_rate, "range_low": found.low, "range_high": found.high}
    )
    write_json(run_dir / RESULT_FILE, result)


def load_result(run_dir: Path) -> dict | None:
    """The range test already run for this search (on `search.resume`), if any."""
    path = run_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None

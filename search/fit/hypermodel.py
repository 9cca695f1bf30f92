"""The Keras Tuner HyperModel: builds a model from a trial's hyperparameters and fits it on the
windows that trial's `window_size`, `split_time` and `batch_size` call for."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import keras_tuner
import numpy as np

from data.split import Layout, resolve_split_time
from data.windows import window_view, windowed_dataset
from models import BUILDER_ARGUMENTS, BUILDERS, compile_model
from models.common import FORECAST_CHUNK
from models.framing import SEASONAL_SCALINGS, Framing, input_length
from models.profile import seasonal_profile
from search.core import interrupts
from search.plan.space import declare


class StopOnNaN(keras.callbacks.Callback):
    """Fail the trial the moment the loss stops being finite, instead of training on; and stop at the next batch
    after an interrupt that a library swallowed (`interrupts.check`)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        interrupts.check()
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise keras_tuner.errors.FailedTrialError(f"loss became {float(loss)} at batch {batch}: lower learning_rate")


class StepMAE(keras.callbacks.Callback):
    """Per-step validation MAE of a multi-step model (`data.horizon` > 1), added to each epoch's logs as
    `val_mae_h1 .. val_mae_h<h>` (Keras' `val_mae` is their mean): one forward pass over the scored windows."""

    def __init__(self, windows: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        self.windows, self.labels = np.ascontiguousarray(windows, dtype=np.float32), np.asarray(labels, dtype=np.float64)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        chunks = range(0, len(self.windows), FORECAST_CHUNK)  # a long validation split in pieces of bounded memory
        predicted = np.concatenate(
            [keras.ops.convert_to_numpy(self.model(self.windows[i : i + FORECAST_CHUNK], training=False)) for i in chunks]
        )
        for step, mae in enumerate(np.mean(np.abs(self.labels - predicted), axis=0), start=1):
            logs[f"val_mae_h{step}"] = float(mae)


class WindowedHyperModel(keras_tuner.HyperModel):
    """Builds and fits one candidate on one series.

    Args:
        series: float32 array of shape `(n,)`, the whole series (test tail included, never trained on).
        layout: where train, scored validation points and the test tail lie (`data.split.plan_layout`).
        specs: the validated search space.
        shuffle_buffer: the training windows' shuffle buffer.
        patience: epochs without val_mae improvement before a trial stops early (0: never).
        seed: shuffle seed.
        season_length: the data's season (`data.season_length`), for the `seasons` context.
    """

    panel = False  # one model over many series (`search.fit.panel_hypermodel`)

    def __init__(
        self,
        series: np.ndarray,
        layout: Layout,
        specs: dict,
        shuffle_buffer: int,
        patience: int,
        seed: int,
        season_length: int = 0,
    ) -> None:
        super().__init__(name="windowed")
        self.series, self.layout, self.specs = series, layout, specs
        self.shuffle_buffer, self.patience, self.seed = shuffle_buffer, patience, seed
        self.season_length = season_length

    def split_time(self, values: dict) -> int:
        return resolve_split_time(values["split_time"], self.layout.test_start)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return self.model_for(declare(hp, self.specs))

    def framing(self, values: dict, train_stop: int | None = None) -> Framing:
        """Scaling and seasonal context of a configuration, with statistics of `[:train_stop]` (default: its split)."""
        train = self.series[: self.split_time(values) if train_stop is None else train_stop].astype(np.float64)
        season = self.season_length
        if values["scaling"] in SEASONAL_SCALINGS and season <= 0:
            raise ValueError(
                f"scaling={values['scaling']} needs data.season_length > 0: set the data's season or drop it from space.scaling"
            )
        seasonal_changes = train[season:] - train[:-season] if 0 < season < len(train) - 1 else np.zeros(0)
        profile, profile_std = seasonal_profile(train, season) if values["scaling"] == "profile" else ((), 1.0)
        return Framing(
            window_size=values["window_size"],
            scaling=values["scaling"],
            seasons=self.seasons(values),
            season_halfwidth=values["season_halfwidth"],
            season_length=self.season_length,
            mean=float(train.mean()),
            std=float(train.std()),
            step_std=float(np.diff(train).std()) or 1.0,
            horizon=self.layout.horizon,
            ar_skip=values["ar_skip"],
            season_std=(float(seasonal_changes.std()) or 1.0) if len(seasonal_changes) else 1.0,
            profile=profile,
            profile_std=profile_std,
        )

    def model_for(self, values: dict, train_stop: int | None = None, output_blocks: int = 1) -> keras.Model:
        """The compiled model for one configuration (trial values, or the LR range test's reference); `output_blocks`
        forecasts of the horizon side by side, each restored like one (a quantile head: `search.choose.quantile_head`)."""
        architecture = {name: values[name] for name in BUILDER_ARGUMENTS[values["model"]] if name in values}
        framing = dataclasses.replace(self.framing(values, train_stop), output_blocks=output_blocks)
        model = BUILDERS[values["model"]](framing=framing, **architecture)
        return compile_model(model, values["loss"], values["optimizer"], values["learning_rate"], values["momentum"])

    def input_length(self, values: dict) -> int:
        """Raw points each window of this configuration holds (its `window_size`, or more with seasonal context, a
        longer `ar_skip` or `seasonal` scaling)."""
        return input_length(
            values["window_size"],
            self.seasons(values),
            values["season_halfwidth"],
            self.season_length,
            values["scaling"],
            values["ar_skip"],
        )

    def seasons(self, values: dict) -> int:
        """Past seasons of context: none for a series without a season (planning narrows such a space to 0 too)."""
        return values["seasons"] if self.season_length > 0 else 0

    def training_windows(self, values: dict, train_stop: int | None = None, seed: int | None = None, label_copies: int = 1):
        """Shuffled `(window, next values)` batches of `[:split_time]` (or `[:train_stop]`), every label before it:
        what a fit trains on (`label_copies`: `data.windows.windowed_dataset`'s)."""
        length = self.input_length(values)
        return windowed_dataset(
            self.series[: self.split_time(values) if train_stop is None else train_stop],
            length,
            values["batch_size"],
            self.shuffle_buffer,
            label_start=length,
            seed=self.seed if seed is None else seed,
            horizon=self.layout.horizon,
            label_copies=label_copies,
        )

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model: keras.Model,
        *args: Any,
        callbacks: list[keras.callbacks.Callback] | None = None,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Train on windows of `[:split_time]`, validate on the points every trial is scored on."""
        values = declare(hp, self.specs)
        valid = self.validation_windows(values)
        callbacks = list(callbacks or []) + [StopOnNaN()]
        if self.layout.horizon > 1:  # first, so the tuner's epoch logger sees the per-step figures
            callbacks.insert(0, StepMAE(*self.scored_windows(self.input_length(values))))
        if self.patience:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_mae", patience=self.patience))
        kwargs.setdefault("verbose", 0)
        kwargs["shuffle"] = False  # the dataset shuffles itself
        return model.fit(self.training_windows(values), *args, validation_data=valid, callbacks=callbacks, **kwargs)

    def validation_windows(self, values: dict):
        """The scored validation origins' `(window, next values)` batches, in time order."""
        return windowed_dataset(
            self.series,
            self.input_length(values),
            max(values["batch_size"], 256),
            0,
            label_start=self.layout.score_start,
            label_stop=self.layout.test_start,
            horizon=self.layout.horizon,
        )

    def scored_windows(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (`length` raw points each) and labels (`(n,)`, or `(n, horizon)`) of the scored validation origins."""
        return self.origin_windows(length, range(self.layout.score_start, self.layout.test_start))

    def origin_windows(self, length: int, points: range) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (`length` raw points each) and labels of every origin whose `horizon` labels lie in `points`."""
        return window_view(self.series, length, points.start, points.stop, self.layout.horizon)

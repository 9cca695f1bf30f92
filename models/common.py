"""Pieces every builder shares: the framing around the network, recurrent stacks, compiling, forecasting.

Scaling and seasonal context live inside the model (`models.framing`, Keras' own layers, never
`Lambda`), so a saved model maps raw windows to raw forecasts and loads with `safe_mode=True`.
"""

from __future__ import annotations

import keras
import numpy as np

from models.framing import framed_input


def framed_model(framing, body, name: str, sequence: bool):
    """A model from raw windows to raw forecasts: `framing`'s scaling and seasonal context around `body`.

    `body(x)` maps the scaled features (a sequence with `sequence=True`) to a hidden tensor; one
    linear unit per horizon step reads it (a direct multi-output forecast) and `framing` turns those
    units into the forecast.
    """
    inputs, x, restore = framed_input(framing, sequence)
    y = keras.layers.Dense(framing.outputs, name="forecast_scaled")(body(x))
    return keras.Model(inputs, restore(y), name=name)


def recurrent_stack(x, layer_cls, units: int, layers: int, bidirectional: bool, dropout: float = 0.0):
    """`layers` recurrent layers of `units` each; all but the last return sequences."""
    for index in range(layers):
        layer = layer_cls(units, return_sequences=index < layers - 1, dropout=dropout)
        x = keras.layers.Bidirectional(layer)(x) if bidirectional else layer(x)
    return x


def compile_model(model, loss: str = "huber", optimizer: str = "adam", learning_rate: float = 1e-3, momentum: float = 0.9):
    """Compile with the named loss and optimizer and the `mae` metric; returns the model."""
    losses = {"huber": keras.losses.Huber(), "mse": "mse", "mae": "mae"}
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(learning_rate=learning_rate),
        "sgd": lambda: keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=learning_rate),
        "adagrad": lambda: keras.optimizers.Adagrad(learning_rate=learning_rate),
    }
    model.compile(loss=losses[loss], optimizer=optimizers[optimizer](), metrics=["mae"])
    return model


FORECAST_CHUNK = 4096
"""Windows per forward pass in `forecast`: a few MB of activations for these models."""


def forecast(model, windows, chunk: int = FORECAST_CHUNK):
    """Forecasts for every row of `windows` (shape `(n, window_size)`): shape `(n,)` from a one-step model,
    `(n, horizon)` from a model with `horizon` outputs.

    Each chunk is one call of the model's compiled predict step (`predict_on_batch`). `predict`
    would also build a tf.data pipeline and an epoch iterator per call, which for the few hundred
    windows of a validation split cost more than the forward pass itself (`python -m bench.forecast`).
    """
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    horizon = int(model.output_shape[-1])
    starts = range(0, len(windows), chunk)
    parts = [np.asarray(model.predict_on_batch(windows[start : start + chunk])).reshape(-1, horizon) for start in starts]
    out = np.concatenate(parts) if parts else np.zeros((0, horizon), dtype=np.float32)
    return out.ravel() if horizon == 1 else out

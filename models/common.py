"""Pieces every builder shares: scaling in and out of the model, and compiling it.

Scaling lives inside the model, with training-split statistics, using Keras' own serializable
`Normalization` and `Rescaling` layers (never `Lambda`), so a saved model maps raw windows to raw
forecasts and loads with `safe_mode=True`.
"""

from __future__ import annotations


def scaled_input(window_size: int, mean: float, std: float, sequence: bool):
    """`(inputs, x)`: a raw-window `Input` of shape `(window_size,)` and its standardised tensor.

    With `sequence=True` the tensor is reshaped to `(window_size, 1)` for recurrent and conv layers.
    """
    import keras

    inputs = keras.Input(shape=(window_size,), name="window")
    x = keras.layers.Normalization(mean=mean, variance=std**2, name="standardize")(inputs)
    if sequence:
        x = keras.layers.Reshape((window_size, 1), name="as_sequence")(x)
    return inputs, x


def scaled_output(inputs, x, mean: float, std: float, name: str):
    """Close a model: one linear unit, scaled back to the series' units."""
    import keras

    x = keras.layers.Dense(1, name="forecast_scaled")(x)
    outputs = keras.layers.Rescaling(scale=std, offset=mean, name="forecast")(x)
    return keras.Model(inputs, outputs, name=name)


def recurrent_stack(x, layer_cls, units: int, layers: int, bidirectional: bool, dropout: float = 0.0):
    """`layers` recurrent layers of `units` each; all but the last return sequences."""
    import keras

    for index in range(layers):
        layer = layer_cls(units, return_sequences=index < layers - 1, dropout=dropout)
        x = keras.layers.Bidirectional(layer)(x) if bidirectional else layer(x)
    return x


def compile_model(model, loss: str = "huber", optimizer: str = "adam", learning_rate: float = 1e-3, momentum: float = 0.9):
    """Compile with the named loss and optimizer and the `mae` metric; returns the model."""
    import keras

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
    """One-step forecasts for every row of `windows` (shape `(n, window_size)`), shape `(n,)`.

    Each chunk is one call of the model's compiled predict step (`predict_on_batch`). `predict`
    would also build a tf.data pipeline and an epoch iterator per call, which for the few hundred
    windows of a validation split cost more than the forward pass itself (`python -m bench.forecast`).
    """
    import numpy as np

    windows = np.ascontiguousarray(windows, dtype=np.float32)
    starts = range(0, len(windows), chunk)
    parts = [np.asarray(model.predict_on_batch(windows[start : start + chunk])).ravel() for start in starts]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

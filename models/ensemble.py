"""Several forecasters as ONE Keras model that maps a raw window to the raw forecast, and loads with `safe_mode=True`.

`average_model` is the mean of trained networks (`search.blend=false`); `weighted_model` is a blend: networks
scaled by their weights (`Rescaling`) plus the statistical forecasters, which are fixed linear maps of the window
(`data.linear_forecasts`) and, weighted and summed, one `Dense` layer with fixed weights. Both read the longest
input any member needs; a member that reads fewer points gets the most recent ones (a `Cropping1D`).
"""

from __future__ import annotations

import keras
import numpy as np


def _members(inputs, length: int, members: list) -> list:
    """Each member's output on the most recent values of `inputs` (a `(length,)` window), as submodel `member_<i>`."""
    sequence = keras.layers.Reshape((length, 1), name="window_sequence")(inputs)
    outputs = []
    for index, member in enumerate(members):
        own = member.input_shape[1]
        x = inputs
        if own < length:
            cropped = keras.layers.Cropping1D((length - own, 0), name=f"recent_{index}")(sequence)
            x = keras.layers.Reshape((own,), name=f"recent_{index}_flat")(cropped)
        outputs.append(keras.Model(member.input, member.output, name=f"member_{index}")(x))
    return outputs


def average_model(members: list):
    """One Keras model whose forecast is the mean of `members`' forecasts."""
    length = max(m.input_shape[1] for m in members)
    inputs = keras.Input(shape=(length,), name="window")
    outputs = _members(inputs, length, members)
    model = keras.Model(inputs, keras.layers.Average(name="forecast_mean")(outputs), name="ensemble")
    model.compile(loss="huber", metrics=["mae"])
    return model


def weighted_model(networks: list, weights: list[float], kernel: np.ndarray | None, bias: np.ndarray | None, horizon: int):
    """`sum_i weights[i] * networks[i](x) + x[-len(kernel):] @ kernel + bias`: a blend of networks (with their
    weights) and the statistical forecasters (`kernel`, `bias`: their weighted sum, None if none is in the blend)."""
    length = max([m.input_shape[1] for m in networks] + ([len(kernel)] if kernel is not None else []))
    inputs = keras.Input(shape=(length,), name="window")
    outputs = [
        keras.layers.Rescaling(float(weight), name=f"weight_{index}")(out)
        for index, (out, weight) in enumerate(zip(_members(inputs, length, networks), weights, strict=True))
    ]
    if kernel is not None:
        padded = np.zeros((length, horizon), dtype=np.float32)
        padded[length - len(kernel) :] = kernel
        statistical = keras.layers.Dense(horizon, trainable=False, name="statistical")
        outputs.append(statistical(inputs))
        statistical.set_weights([padded, np.asarray(bias, dtype=np.float32)])
    forecast = outputs[0] if len(outputs) == 1 else keras.layers.Add(name="forecast_blend")(outputs)
    model = keras.Model(inputs, forecast, name="blend")
    model.compile(loss="huber", metrics=["mae"])
    return model

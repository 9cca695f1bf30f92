"""A quantile head's loss: the pinball loss of every output unit at its own quantile.

A model with `len(quantiles)` outputs per window is trained to forecast each of those quantiles of
the values ahead (unit `k` forecasts quantile `quantiles[k]`). Registered serializable, so a model
saved with it loads with `safe_mode=True` (no Lambda, no custom object to pass).
"""

from __future__ import annotations

import keras


def interval_quantiles(levels) -> list[float]:
    """The quantiles that bound central intervals: `(1 - a) / 2` and `(1 + a) / 2` for each level `a`, in that order."""
    return [q for level in levels for q in ((1.0 - float(level)) / 2.0, (1.0 + float(level)) / 2.0)]


@keras.saving.register_keras_serializable(package="ts_hypersearch")
class Pinball(keras.losses.Loss):
    """Mean over output units of `max(q (y - f), (q - 1)(y - f))`, unit `k` at quantile `quantiles[k]`; `y` holds
    each unit's target (the labels repeated once per quantile)."""

    def __init__(self, quantiles, name: str = "pinball", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        q = keras.ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = keras.ops.cast(y_true, y_pred.dtype) - y_pred
        return keras.ops.mean(keras.ops.maximum(q * error, (q - 1.0) * error), axis=-1)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}

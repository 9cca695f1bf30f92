"""A stack of (bidirectional) GRU layers."""

import keras

from models.common import framed_model, recurrent_stack


def build(*, framing, gru_units: int = 32, gru_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0):
    """`gru_layers` GRU layers of `gru_units`, each wrapped in `Bidirectional` when asked."""

    def body(x):
        return recurrent_stack(x, keras.layers.GRU, gru_units, gru_layers, bidirectional, dropout)

    return framed_model(framing, body, name="gru", sequence=True)

"""A stack of (bidirectional) LSTM layers (the course's Bidirectional(LSTM(32)))."""

import keras

from models.common import framed_model, recurrent_stack


def build(*, framing, lstm_units: int = 32, lstm_layers: int = 1, bidirectional: bool = True, dropout: float = 0.0):
    """`lstm_layers` LSTM layers of `lstm_units`, each wrapped in `Bidirectional` when asked."""

    def body(x):
        return recurrent_stack(x, keras.layers.LSTM, lstm_units, lstm_layers, bidirectional, dropout)

    return framed_model(framing, body, name="lstm", sequence=True)

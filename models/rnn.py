"""A stack of SimpleRNN layers (the course's 40-40 RNN, sized by the space)."""

import keras

from models.common import framed_model, recurrent_stack


def build(*, framing, rnn_units: int = 40, rnn_layers: int = 2):
    """`rnn_layers` SimpleRNN layers of `rnn_units`, then one linear unit."""

    def body(x):
        return recurrent_stack(x, keras.layers.SimpleRNN, rnn_units, rnn_layers, bidirectional=False)

    return framed_model(framing, body, name="rnn", sequence=True)

"""The course's best model: a causal Conv1D feeding a (bidirectional) LSTM stack and a Dense head."""

import keras

from models.common import framed_model, recurrent_stack


def build(
    *,
    framing,
    filters: int = 32,
    kernel_size: int = 5,
    lstm_units: int = 32,
    lstm_layers: int = 2,
    bidirectional: bool = False,
    dense_units: int = 0,
):
    """Conv1D(`filters`, `kernel_size`, padding=causal, relu) -> LSTM stack -> optional Dense(`dense_units`) -> 1."""

    def body(x):
        x = keras.layers.Conv1D(filters, kernel_size, strides=1, padding="causal", activation="relu")(x)
        x = recurrent_stack(x, keras.layers.LSTM, lstm_units, lstm_layers, bidirectional)
        if dense_units:
            x = keras.layers.Dense(dense_units, activation="relu")(x)
        return x

    return framed_model(framing, body, name="conv_lstm", sequence=True)

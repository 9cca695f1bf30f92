"""The course's best model: a causal Conv1D feeding a (bidirectional) LSTM stack and a Dense head."""

from models.common import recurrent_stack, scaled_input, scaled_output


def build(
    *,
    window_size: int,
    filters: int = 32,
    kernel_size: int = 5,
    lstm_units: int = 32,
    lstm_layers: int = 2,
    bidirectional: bool = False,
    dense_units: int = 0,
    mean: float = 0.0,
    std: float = 1.0,
):
    """Conv1D(`filters`, `kernel_size`, padding=causal, relu) -> LSTM stack -> optional Dense(`dense_units`) -> 1."""
    import keras

    inputs, x = scaled_input(window_size, mean, std, sequence=True)
    x = keras.layers.Conv1D(filters, kernel_size, strides=1, padding="causal", activation="relu")(x)
    x = recurrent_stack(x, keras.layers.LSTM, lstm_units, lstm_layers, bidirectional)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu")(x)
    return scaled_output(inputs, x, mean, std, name="conv_lstm")

"""A stack of (bidirectional) LSTM layers (the course's Bidirectional(LSTM(32)))."""

from models.common import recurrent_stack, scaled_input, scaled_output


def build(
    *,
    window_size: int,
    lstm_units: int = 32,
    lstm_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
    mean: float = 0.0,
    std: float = 1.0,
):
    """`lstm_layers` LSTM layers of `lstm_units`, each wrapped in `Bidirectional` when asked."""
    import keras

    inputs, x = scaled_input(window_size, mean, std, sequence=True)
    x = recurrent_stack(x, keras.layers.LSTM, lstm_units, lstm_layers, bidirectional, dropout)
    return scaled_output(inputs, x, mean, std, name="lstm")

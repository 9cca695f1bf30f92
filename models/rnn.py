"""A stack of SimpleRNN layers (the course's 40-40 RNN, sized by the space)."""

from models.common import recurrent_stack, scaled_input, scaled_output


def build(*, window_size: int, rnn_units: int = 40, rnn_layers: int = 2, mean: float = 0.0, std: float = 1.0):
    """`rnn_layers` SimpleRNN layers of `rnn_units`, then one linear unit."""
    import keras

    inputs, x = scaled_input(window_size, mean, std, sequence=True)
    x = recurrent_stack(x, keras.layers.SimpleRNN, rnn_units, rnn_layers, bidirectional=False)
    return scaled_output(inputs, x, mean, std, name="rnn")

"""A stack of (bidirectional) GRU layers."""

from models.common import recurrent_stack, scaled_input, scaled_output


def build(
    *,
    window_size: int,
    gru_units: int = 32,
    gru_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    mean: float = 0.0,
    std: float = 1.0,
):
    """`gru_layers` GRU layers of `gru_units`, each wrapped in `Bidirectional` when asked."""
    import keras

    inputs, x = scaled_input(window_size, mean, std, sequence=True)
    x = recurrent_stack(x, keras.layers.GRU, gru_units, gru_layers, bidirectional, dropout)
    return scaled_output(inputs, x, mean, std, name="gru")

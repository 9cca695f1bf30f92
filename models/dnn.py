"""A stack of Dense layers over the window (the course's 10-10-1 DNN, sized by the space)."""

from models.common import scaled_input, scaled_output


def build(
    *,
    window_size: int,
    dense_units: int = 10,
    dense_layers: int = 2,
    activation: str = "relu",
    dropout: float = 0.0,
    mean: float = 0.0,
    std: float = 1.0,
):
    """`dense_layers` Dense layers of `dense_units`, each followed by optional dropout."""
    import keras

    inputs, x = scaled_input(window_size, mean, std, sequence=False)
    for _ in range(dense_layers):
        x = keras.layers.Dense(dense_units, activation=activation)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return scaled_output(inputs, x, mean, std, name="dnn")

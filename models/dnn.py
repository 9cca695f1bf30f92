"""A stack of Dense layers over the window (the course's 10-10-1 DNN, sized by the space)."""

import keras

from models.common import framed_model


def build(*, framing, dense_units: int = 10, dense_layers: int = 2, activation: str = "relu", dropout: float = 0.0):
    """`dense_layers` Dense layers of `dense_units`, each followed by optional dropout."""

    def body(x):
        for _ in range(dense_layers):
            x = keras.layers.Dense(dense_units, activation=activation)(x)
            if dropout:
                x = keras.layers.Dropout(dropout)(x)
        return x

    return framed_model(framing, body, name="dnn", sequence=False)

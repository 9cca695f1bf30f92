"""Builder names, their tunable arguments, losses and optimizers, importable without TensorFlow.

Config validation reads these at start-up, before TensorFlow is imported.
"""

LOSSES = ("huber", "mse", "mae")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")

BUILDER_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "linear": (),
    "dnn": ("dense_units", "dense_layers", "activation", "dropout"),
    "rnn": ("rnn_units", "rnn_layers"),
    "lstm": ("lstm_units", "lstm_layers", "bidirectional", "dropout"),
    "gru": ("gru_units", "gru_layers", "bidirectional", "dropout"),
    "conv_lstm": ("filters", "kernel_size", "lstm_units", "lstm_layers", "bidirectional", "dense_units"),
}

"""Model builders, one per architecture, registered by the name a search space uses.

Importing this package does not import TensorFlow: builders import Keras when called.
"""

from __future__ import annotations

from collections.abc import Callable

from models import conv_lstm, dnn, gru, linear, lstm, rnn
from models.common import compile_model, forecast
from models.names import BUILDER_ARGUMENTS, LOSSES, OPTIMIZERS

BUILDERS: dict[str, Callable] = {
    "linear": linear.build,
    "dnn": dnn.build,
    "rnn": rnn.build,
    "lstm": lstm.build,
    "gru": gru.build,
    "conv_lstm": conv_lstm.build,
}

__all__ = ["BUILDERS", "BUILDER_ARGUMENTS", "LOSSES", "OPTIMIZERS", "compile_model", "forecast"]

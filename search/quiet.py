"""Precise silencing of known, harmless messages that would bury the one-line-per-trial progress."""

from __future__ import annotations

import logging
import warnings


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def quiet_known_noise() -> None:
    """Drop Keras Tuner's failed-trial tracebacks, TF's retracing notice (each trial is a new model)
    and Keras' optimizer-restore notice.

    Hyperband continues a trial from its predecessor's checkpoint; the checkpoint holds optimizer
    slots the fresh optimizer has not built yet, which Keras reports but handles.
    """
    from keras_tuner.src import config as keras_tuner_config

    # Keras Tuner prints the traceback of every failed trial; ours goes to the trial's MLflow run instead.
    keras_tuner_config.DEBUG = False
    logging.getLogger("tensorflow").addFilter(_DropMessages("triggered tf.function retracing"))
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # JAX's probe for a TPU on every start
    warnings.filterwarnings("ignore", message=r"Skipping variable loading for optimizer", category=UserWarning)

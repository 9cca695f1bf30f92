"""Precise silencing of known, harmless messages that would bury the one-line-per-trial progress."""

from __future__ import annotations

import logging
import sys
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
    if not getattr(sys.unraisablehook, "drops_full_disk_cleanup", False):
        sys.unraisablehook = _without_full_disk_cleanup(sys.unraisablehook, lambda u: (u.exc_value, u.exc_traceback))
        sys.excepthook = _without_full_disk_cleanup(sys.excepthook, lambda *exc: (exc[1], exc[2]))


def _without_full_disk_cleanup(previous, error_of):
    """A `sys.unraisablehook` / `sys.excepthook` that drops h5py's complaints, while freeing a half-written
    checkpoint, that the disk is full; anything else goes to `previous`.

    On a full disk h5py cannot raise from a checkpoint object's finaliser, so Cython prints the error through both
    hooks; the search already says the disk is full in one line (and how to resume), and these would bury it.
    """

    def hook(*args) -> None:
        error, traceback = error_of(*args)
        text = str(error)
        frames = []
        while traceback is not None:
            frames.append(traceback.tb_frame.f_code.co_filename)
            traceback = traceback.tb_next
        if any("h5py" in frame for frame in frames) and ("errno = 28" in text or "No space left on device" in text):
            return
        previous(*args)

    hook.drops_full_disk_cleanup = True
    return hook

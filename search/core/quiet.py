"""Precise silencing of known, harmless messages that would bury the one-line-per-trial progress."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

TENSORFLOW_START_UP = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "TF-TRT Warning: Could not find TensorRT",
)
"""What TensorFlow's C++ libraries write to stderr as they load, before any of its log settings apply
(`TF_CPP_MIN_LOG_LEVEL` does not reach absl's pre-initialisation lines): facts about the build and the machine,
nothing a user can act on. On a GPU machine TensorFlow's device lines come later and are kept."""

MLFLOW_REGISTRATION = ("Successfully registered model '", "Created version '", "already exists. Creating a new version")
"""MLflow's own lines as a model version is registered: the closing table names the registered model and version."""


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str) -> None:
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
        unraisable = _without_full_disk_cleanup(sys.unraisablehook, lambda u: (u.exc_value, u.exc_traceback), interrupts=True)
        sys.unraisablehook = unraisable
        sys.excepthook = _without_full_disk_cleanup(sys.excepthook, lambda *exc: (exc[1], exc[2]), interrupts=False)


def _without_full_disk_cleanup(
    previous: Callable[..., object],
    error_of: Callable[..., tuple[BaseException | None, TracebackType | None]],
    interrupts: bool,
) -> Callable[..., None]:
    """A `sys.unraisablehook` / `sys.excepthook` that drops h5py's complaints, while freeing a half-written
    checkpoint, that the disk is full, and (`interrupts`: the unraisable hook only) a Ctrl-C that landed in a finaliser
    (a `WeakKeyDictionary` callback, say); anything else goes to `previous`.

    On a full disk h5py cannot raise from a checkpoint object's finaliser, so Cython prints the error through both
    hooks; the search already says the disk is full in one line (and how to resume), and these would bury it.
    """

    def hook(*args: Any) -> None:  # the arguments `previous` takes: one UnraisableHookArgs, or (type, value, traceback)
        error, traceback = error_of(*args)
        text = str(error)
        frames = []
        while traceback is not None:
            frames.append(traceback.tb_frame.f_code.co_filename)
            traceback = traceback.tb_next
        if any("h5py" in frame for frame in frames) and ("errno = 28" in text or "No space left on device" in text):
            return
        if interrupts and isinstance(error, KeyboardInterrupt):  # raised inside a finaliser ("Exception ignored in"): the
            return  # interrupt itself is handled, and reported in one line, by the command
        previous(*args)

    hook.drops_full_disk_cleanup = True
    return hook


@contextlib.contextmanager
def filtered_fd2(fragments: tuple[str, ...]) -> Iterator[None]:
    """Everything written to file descriptor 2 (C and C++ libraries, and Python's `sys.stderr`) inside the block, kept
    aside and written back to stderr afterwards without the lines holding one of `fragments`. An error a library
    reports while loading still reaches the user, after the block."""
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no stderr to filter (closed): nothing to hide either
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if not _any_in(line, fragments)]
            if kept and sys.stderr is not None:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _LinesWithout(io.TextIOBase):
    """A text stream passing whole lines on to `target`, except those holding one of `fragments`."""

    def __init__(self, target: TextIO, fragments: tuple[str, ...]) -> None:
        self.target, self.fragments, self.pending = target, fragments, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if not _any_in(line, self.fragments):
                self.target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def finish(self) -> None:
        if self.pending and not _any_in(self.pending, self.fragments):
            self.target.write(self.pending)
        self.pending = ""
        self.target.flush()


@contextlib.contextmanager
def stderr_without(fragments: tuple[str, ...]) -> Iterator[None]:
    """Python's `sys.stderr` inside the block without the lines holding one of `fragments` (e.g. MLflow's registration
    lines, which it prints rather than logs); every other line passes."""
    stream = _LinesWithout(sys.stderr, fragments)
    try:
        with contextlib.redirect_stderr(stream):
            yield
    finally:
        stream.finish()


def _any_in(line: str, fragments: tuple[str, ...]) -> bool:
    return any(fragment in line for fragment in fragments)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Loads `tensorflow`, the first time anything imports it, inside `filtered_fd2(TENSORFLOW_START_UP)`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module: ModuleType) -> None:
            with filtered_fd2(TENSORFLOW_START_UP):
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


def quiet_start_up() -> None:
    """Drop the lines libraries write as they start: TensorFlow's (`TENSORFLOW_START_UP`) wherever this process first
    imports it, and MLflow's INFO lines as it creates a new store's tables ("Creating initial MLflow database
    tables...", "Updating database tables") or waits for a model version ("Waiting up to 300 seconds ..."). Call before
    either is imported (the command does, first thing);
    TensorFlow's part is a no-op once it is loaded. Sets (where unset) the variables that keep the rest quiet and the
    tracking URI unprinted."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF/XLA C++ chatter after start-up (CUDA probes on CPUs)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # search.workers: gRPC's notices (forking beside its threads)
    # MLflow prints "View run ... at: <tracking URI>" as each run ends on a server: the URI may hold a password,
    # and the closing table says where the runs are.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.model_registry.abstract_store").setLevel(logging.WARNING)  # "Waiting up to 300 s"
    # The series' file logged as a dataset input (before any training): two of MLflow's resolvers claim a local path.
    warnings.filterwarnings("ignore", message=r"The specified dataset source can be interpreted in multiple ways")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())

"""The libraries every search imports before its first trial, imported once per test worker by the forkserver that
`tests.forked_cli` forks each command from (`python -X importtime -m search ...`: ~5 s of a command's start)."""

import os

# What `search/__main__.py` sets before anything imports TensorFlow: set here before the imports below.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ["KERAS_BACKEND"] = "tensorflow"  # what a command without `backend=` runs on; others get a fresh interpreter

import hydra  # noqa: E402, F401
import keras  # noqa: E402, F401
import keras_tuner  # noqa: E402, F401
import mlflow  # noqa: E402, F401
import pandas  # noqa: E402, F401
import tensorflow  # noqa: E402, F401
from mlflow.tracking import MlflowClient  # noqa: E402, F401

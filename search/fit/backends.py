"""Which Keras backend a search trains on (`backend=tensorflow|jax|torch|auto`), chosen before Keras is imported.

Keras 3 runs the same models on TensorFlow, JAX and PyTorch; Keras fixes its backend when it is first
imported (`KERAS_BACKEND`), so a job sets it before anything imports Keras, and a process that already
imported Keras with another backend cannot switch (a multirun over backends runs each job in a fresh process).
The per-backend settings (memory shared between searches on one GPU, determinism, threads) live here too, so
the rest of the code never asks which backend it runs on.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys

from data.errors import UserError

BACKENDS = ("tensorflow", "jax", "torch")
PACKAGES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
"""The distributions a backend needs: checked before the search, pinned in the registered model's requirements."""

AUTO_ORDER = ("jax", "tensorflow", "torch")
"""`backend=auto`: the first of these that is installed, on a CPU or a GPU alike. On 2 cores, the default command one
run each (bench/README §11): JAX 770 s, TensorFlow 841 s (its first epoch costs more, its later epochs 3-5x less);
PyTorch's later epochs are the slowest (0.8 s against JAX's 0.1 s). On a GPU JAX is the only backend measured here
(bench/README §11, `bench/gpu_check.sh`). Should the measurements ever differ by device, this splits in two."""


def installed(backend: str) -> bool:
    """Whether the backend's packages can be imported here (without importing them; JAX too where `activate` hid it
    from a TensorFlow process)."""
    return all(importlib.machinery.PathFinder.find_spec(package) is not None for package in PACKAGES[backend])


def resolve(setting: str | None) -> str:
    """The backend for `backend=<setting>` (null: `$KERAS_BACKEND`, else tensorflow); raises UserError naming the extra
    to install when its package is missing, or for an unknown name in `KERAS_BACKEND`."""
    from_environment = setting in (None, "")
    choice = str(os.environ.get("KERAS_BACKEND") or "tensorflow") if from_environment else str(setting)
    where = f"KERAS_BACKEND={choice}" if from_environment else f"backend={choice}"
    if choice == "auto":
        return auto()
    if choice not in BACKENDS:
        raise UserError(f"{where} is not a Keras backend this tool runs on: use backend=tensorflow, jax, torch or auto")
    if not installed(choice):
        extra = "" if choice == "tensorflow" else f"[{choice}]"
        raise UserError(f'{where}: the {choice} package is not installed here; install it with pip install -e ".{extra}"')
    return choice


def auto() -> str:
    """`backend=auto`: the fastest installed backend (`AUTO_ORDER`, by bench/README §11's measurements)."""
    for backend in AUTO_ORDER:
        if installed(backend):
            return backend
    raise UserError('backend=auto: none of tensorflow, jax, torch is installed; pip install -e . (TensorFlow) or -e ".[jax]"')


def needs_fresh_process(setting: str | None) -> bool:
    """Whether a multirun job with `backend=<setting>` must run in a fresh interpreter: this one already imported Keras
    with another backend (the sweep's job before, in the same process)."""
    keras = sys.modules.get("keras")
    if keras is None:
        return False
    try:
        return resolve(setting) != keras.backend.backend()
    except UserError:  # the job itself says so, as one line in its summary
        return False


def activate(backend: str) -> None:
    """Make `backend` the one Keras imports, with its settings for sharing a GPU; before Keras is imported.

    A process that already imported Keras with another backend (a joblib multirun's reused worker) cannot
    switch: that is one line for the user, not a search on the wrong backend.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        current = keras.backend.backend()
        if current != backend:
            raise UserError(f"backend={backend}: this process already runs Keras on {current}; run one backend per command")
    from search.core.devices import GPU_SHARING

    os.environ["KERAS_BACKEND"] = backend
    for name, value in GPU_SHARING.items():
        os.environ.setdefault(name, value)
    if backend == "tensorflow" and "jax" not in sys.modules:
        # TensorFlow's TFLite helpers import JAX whenever it is installed (`try: from jax import jit`): 1.3 s and its
        # memory in every TensorFlow process for nothing. Marked absent here, that import fails as if JAX were missing.
        sys.modules["jax"] = None


def thread_environment(backend: str, threads: int) -> dict[str, str]:
    """Variables that hold a worker process of this backend to `threads` CPU threads (search.workers on CPU cores).

    JAX has no setting that XLA accepts on every version (an unknown `XLA_FLAGS` entry aborts it): its
    workers share the cores as the OS schedules them."""
    count = str(threads)
    env = {"OMP_NUM_THREADS": count}
    if backend == "tensorflow":
        env.update(TF_NUM_INTRAOP_THREADS=count, TF_NUM_INTEROP_THREADS=count)
    return env


def prepare(backend: str, deterministic: bool, seed: int) -> None:
    """Per backend, once Keras is imported: GPU memory shared with other searches, repeatable runs (`search.deterministic`),
    the seed."""
    import keras

    if backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)  # searches side by side share a card
        if deterministic:
            tf.config.experimental.enable_op_determinism()
    else:
        keep_tensorflow_unloaded()
    if backend == "torch" and deterministic:
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS' repeatable mode; read when CUDA starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    # JAX: XLA runs the same trials twice on CPU; on a GPU its reductions may differ in the last digits (no flag is
    # set for that: an XLA_FLAGS entry a version does not know aborts it).
    keras.utils.set_random_seed(seed)


def keep_tensorflow_unloaded() -> None:
    """On JAX and PyTorch, stop Keras from importing TensorFlow where it only checks whether it could (its
    `set_random_seed` seeds TensorFlow too "if installed": 2 s and ~0.6 GB for nothing, and tf.data beside JAX)."""
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and getattr(lazy, "module", None) is None:
        lazy._available = False


def requirements() -> list[str]:
    """The registered model's pinned requirements: the running backend's packages, Keras and MLflow."""
    from importlib.metadata import PackageNotFoundError, version

    import keras
    import mlflow

    pins = []
    for package in PACKAGES[keras.backend.backend()]:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # a package found on the path without its metadata
            pins.append(package)
    return [*pins, f"keras=={keras.__version__}", f"mlflow=={mlflow.__version__}"]


def device() -> str:
    """Where the running backend puts the models: `gpu` or `cpu` (summary.json's `device`, the closing table)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"

"""Keeping a long search's memory and garbage-collection cost flat from its first trial to its last.

Keras Tuner runs a full `gc.collect()` twice before every trial (its `_try_build` and Keras'
`clear_session`). Two things made those passes cost more than a short trial's training here, and
grow with every trial: the ~480k long-lived objects of TensorFlow, MLflow and Matplotlib (scanned
on every pass: 0.4-0.5 s), and every earlier trial's traced training graph, which TensorFlow never
frees (measured: ~25k more live objects after each trial). `python -m bench.tracking_overhead`
measures the effect.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Leave the objects that exist now out of the collector's scans while the trials run.

    Unfrozen on the way out, so a process that runs several searches (a joblib sweep worker) can
    free each one's leftovers.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_traced_graphs() -> int:
    """Drop the gradient functions TensorFlow registered while tracing the trial that just ended; returns how many.

    Every traced Keras train step goes through `tf.custom_gradient` (the optimizer's all-reduce of
    the gradients), which registers a `CustomGradient-<n>` entry in TensorFlow's global gradient
    registry and never removes it; the entry's closure holds the whole training graph (TensorFlow
    issues 80895 and 97697, keras-team/tf-keras PR 898). A gradient function is only looked up
    while a graph that uses it is differentiated, which for a train step happens during its own
    trace; once the trial has ended no graph of it is traced again, so the entries are dead weight.
    """
    import sys

    if "tensorflow" not in sys.modules:
        return 0  # JAX and PyTorch keep no such registry
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        return 0  # a TensorFlow without this registry has nothing to release
    stale = [name for name in registry if name.startswith("CustomGradient-")]
    for name in stale:
        del registry[name]
    return len(stale)

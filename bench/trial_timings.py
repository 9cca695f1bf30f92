"""Where a tracking-overhead search spends its time, call by call and thread by thread.

    python -m bench.trial_timings bare          # or bare_memory, tracked, tracked_lean
    python -m bench.trial_timings tracked --tiny

Runs one variant of `bench.tracking_overhead` in this process with timers wrapped around the
calls that matter (Keras Tuner's build and its two garbage collections, `Model.fit`, `Model.save`,
the tracker's logging calls) and prints the total seconds of each, split into the training
("main") and logging ("bg") threads. The figures behind `search/fit/memory.py` and section 4 of
bench/README.md come from it. A profile, not a benchmark: the timers change nothing measurable,
but one run is one sample on a noisy machine.
"""

from __future__ import annotations

import argparse
import collections
import gc
import tempfile
import threading
import time
import types
from pathlib import Path

from bench.tracking_overhead import VARIANTS, build, one_search

SECONDS: collections.defaultdict = collections.defaultdict(float)
CALLS: collections.Counter = collections.Counter()


def timed(owner, name: str, label: str) -> None:
    """Replace `owner.name` by a wrapper that adds its wall time to SECONDS[(thread, label)]."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            thread = "main" if threading.current_thread() is threading.main_thread() else "bg"
            SECONDS[(thread, label)] += time.perf_counter() - started
            CALLS[(thread, label)] += 1

    setattr(owner, name, wrapper)


def instrument() -> None:
    import keras
    import keras_tuner
    import keras_tuner.src.engine.tuner as tuner_module

    from search.record.tracking import Tracker

    for name in ("start_trial", "log_metrics", "log_json", "log_figure", "log_file", "end"):
        timed(Tracker, name, f"Tracker.{name}")
    timed(keras_tuner.Tuner, "run_trial", "KerasTuner.run_trial")
    timed(keras_tuner.Tuner, "_try_build", "KerasTuner._try_build (clear, collect, build)")
    timed(keras_tuner.Tuner, "_build_hypermodel", "KerasTuner._build_hypermodel")
    timed(tuner_module.keras.backend, "clear_session", "keras clear_session (collects)")
    collector = types.SimpleNamespace(collect=gc.collect)
    timed(collector, "collect", "KerasTuner gc.collect")
    tuner_module.gc = collector
    timed(keras.Model, "fit", "Model.fit")
    timed(keras.Model, "save", "Model.save")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", nargs="?", default="tracked", choices=VARIANTS)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    instrument()
    cfg, specs, series, layout = build(*((2, 3, 400) if args.tiny else (9, 3, 1461)), tiny=args.tiny)
    seconds, trials = one_search(args.variant, cfg, specs, series, layout, Path(tempfile.mkdtemp()))
    print(f"variant={args.variant} trials={trials} total={seconds:.1f}s")
    for (thread, label), total in sorted(SECONDS.items(), key=lambda item: -item[1]):
        calls = CALLS[(thread, label)]
        print(f"{thread:<5} {label:<48} {total:8.2f}s  calls={calls:<4} {1000 * total / calls:7.0f} ms/call")


if __name__ == "__main__":
    main()

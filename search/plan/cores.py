"""How many trials a search trains at once (`search.workers`), and where: the cores this process may use, shared
out among the workers (and among multirun jobs side by side), worker k on GPU k mod G."""

from __future__ import annotations

import os
from dataclasses import dataclass

from data.errors import UserError
from search.core.devices import visible_gpus


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, as a container or `taskset` sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


AUTO_MAX_WORKERS = 8
"""`auto`'s ceiling: each worker is a process with its own Keras (~0.6 GB), and Hyperband's later rounds hold a few
trials each; more than 4 workers were never measured faster (`bench/README.md` §9)."""


def is_auto(setting: object) -> bool:
    return isinstance(setting, str) and setting.strip().lower() == "auto"


def resolve_workers(setting: int | float | str, cores: int, parallel_jobs: int = 1) -> int:
    """How many trials train at once: `search.workers` (a number, or `auto`), checked against the cores.

    `auto` (the default) is one worker per core this job may use (`cores // parallel_jobs`, at most
    `AUTO_MAX_WORKERS`; `bench/README.md` §9 measures it). A number above that is allowed for one search (it
    only slows each trial down) but not in a multirun whose jobs run side by side: their workers together may
    not exceed the cores.
    """
    share = max(1, cores // max(1, parallel_jobs))
    if is_auto(setting):
        return min(share, AUTO_MAX_WORKERS)
    try:
        workers = int(setting)
        if not isinstance(setting, int) and str(setting).strip() != str(workers):
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"search.workers={setting!r} must be a number of trials trained at once (>= 1), or auto") from None
    if workers < 1:
        raise UserError(f"search.workers={workers} must be >= 1 (or auto)")
    if workers > 1 and parallel_jobs > 1 and workers * parallel_jobs > cores:
        raise UserError(
            f"search.workers={workers} x {parallel_jobs} multirun jobs side by side would train {workers * parallel_jobs} "
            f"models at once on {cores} CPU cores: use search.workers={share} (or auto), or fewer jobs (hydra.launcher.n_jobs)"
        )
    return workers


def threads_per_worker(workers: int, cores: int, parallel_jobs: int = 1) -> int:
    """TensorFlow threads for each worker: the cores shared out, at least one."""
    return max(1, cores // max(1, workers * parallel_jobs))


@dataclass(frozen=True)
class Assignment:
    """Where each worker runs: its id, its TensorFlow threads, its GPU (None: CPU, or every visible GPU)."""

    worker_ids: tuple[str, ...]
    threads: int
    gpus: tuple[str | None, ...]

    def describe(self) -> str:
        """`w1=GPU 0, w2=GPU 1 (2 threads each)` or `w1, w2 on CPU (1 thread each)`: the parent run's `workers` tag."""
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''} each"
        if all(gpu is None for gpu in self.gpus):
            return f"{', '.join(self.worker_ids)} on CPU ({threads})"
        placed = ", ".join(f"{wid}=GPU {gpu}" for wid, gpu in zip(self.worker_ids, self.gpus, strict=True))
        return f"{placed} ({threads})"


def assign(workers: int, threads: int, gpus: list[str] | None = None) -> Assignment:
    """Worker k (`w1`..`wN`) gets GPU k mod G of the visible ones (none without a GPU) and `threads` threads.

    Ids are stable, so a resumed search's worker `w2` is the one Keras Tuner kept `w2`'s trial for.
    """
    visible = visible_gpus() if gpus is None else gpus
    ids = tuple(f"w{k + 1}" for k in range(workers))
    placed = tuple(visible[k % len(visible)] if visible else None for k in range(workers))
    return Assignment(ids, threads, placed)

"""A `search.workers` worker: a fresh interpreter the chief starts (`python -m search.command.worker_process ...`) that
trains what the chief's oracle hands it, each trial a child run of the chief's parent run."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import UserError
from search.processes.workers import CHIEF_PID

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from search.plan.planning import Plan, RunLabels
    from search.record.tracking import Tracker


def die_with_chief() -> None:
    """In the worker, first thing: SIGTERM when the chief dies (even by `kill -9`), so no worker trains on alone.

    Set by the worker itself, not between fork and exec (`preexec_fn`): the chief's gRPC threads make
    running Python code in a forked child abort it (seen: SIGABRT from gRPC's epoll poller on restarts).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers notice the chief is gone at their next oracle call
        return
    if str(os.getppid()) != os.environ.get(CHIEF_PID, str(os.getppid())):  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def child_main(
    work: Callable[[DictConfig, Path, RunLabels, str], int], config_path: str, run_dir: str, labels: str, parent_id: str
) -> None:
    """A child process of the chief (a worker, a fit process) from start to exit code: it dies with the chief, reads
    the chief's config (as one process of its workers) and backend, then `work(cfg, run_dir, labels, parent_id)`.
    Bad input exits 2 (the chief says why), an interrupt 130, a bug 3 with its traceback in the process's log."""
    from omegaconf import OmegaConf

    from search.core import interrupts
    from search.core.exits import EXIT_INTERRUPTED, EXIT_SEARCH_FAILED, EXIT_USAGE
    from search.plan.planning import RunLabels

    interrupts.install()
    try:
        die_with_chief()
        cfg = OmegaConf.load(config_path)
        cfg.search.workers = 1  # this process is one of them
        run_labels = RunLabels(**json.loads(labels))
        from search.fit.backends import activate

        activate(run_labels.backend)  # the chief's backend, before Keras is imported
        code = work(cfg, Path(run_dir), run_labels, parent_id)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception:  # a bug: the traceback goes to the process's log; the chief restarts a worker, takes a fit back
        import traceback

        traceback.print_exc()
        code = EXIT_SEARCH_FAILED
    sys.stderr.flush()
    sys.exit(code)


def planned_and_attached(cfg: DictConfig, labels: RunLabels, parent_id: str) -> tuple[Plan, Tracker]:
    """The chief's search planned again here, and a tracker logging under the chief's parent run."""
    from search.plan.planning import Request, make_plan
    from search.record.tracking import connect

    plan = make_plan(Request.of(cfg))
    tracker = connect(cfg.tracking, cfg.data, Path.cwd(), labels, plan.series)
    tracker.attach_parent(parent_id)
    return plan, tracker


def _work(cfg: DictConfig, run_dir: Path, labels: RunLabels, parent_id: str) -> int:
    """A worker's side: train what the chief's oracle hands out, each trial a child of the chief's parent run."""
    from dataclasses import replace

    from search.plan.space import auto_learning_rate, with_learning_rate_range
    from search.tune.lr_find import load_result
    from search.tune.settings import Settings
    from search.tune.tuning import work_for_chief

    plan, tracker = planned_and_attached(cfg, labels, parent_id)
    if auto_learning_rate(plan.specs):  # the chief ran the LR range test before it started the workers
        low, high = load_result(run_dir)["range"]
        plan = replace(plan, specs=with_learning_rate_range(plan.specs, low, high))
    work_for_chief(Settings.of(cfg), plan, tracker, run_dir)
    return 0


if __name__ == "__main__":
    config_path, run_dir, labels, parent_id, worker_id = sys.argv[1:]  # worker_id: for the chief's `pgrep` only
    child_main(_work, config_path, run_dir, labels, parent_id)

"""A fit process (`python -m search.command.fit_process ...`, started by `search.processes.fit_pool`): trains the fits it is
handed on stdin after the search (backtest folds, refit, ensemble members), each a child run of the search's parent
run, and answers each on stdout; a final member's model comes back as a `.keras` file in `<run dir>/fits`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from search.command.worker_process import child_main, planned_and_attached

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from search.plan.planning import RunLabels


def _serve(cfg: DictConfig, run_dir: Path, labels: RunLabels, parent_id: str) -> int:
    from search.choose.selection import FitJob, Fits, Refitter
    from search.processes.fit_pool import READY, RESULT
    from search.tune.settings import Settings
    from search.tune.tuning import hypermodel_for, prepare_backend

    plan, tracker = planned_and_attached(cfg, labels, parent_id)
    settings = Settings.of(cfg)
    prepare_backend(settings.search.deterministic, settings.seed)
    fits = Fits(Refitter(hypermodel_for(settings, plan), settings.seed), tracker)
    print(READY, flush=True)
    for line in sys.stdin:
        job = FitJob(**json.loads(line))
        if job.scored is not None:
            job = replace(job, scored=tuple(job.scored))
        outcome = fits.one(job)
        path = None
        if outcome.model is not None:
            path = run_dir / "fits" / f"{job.key}.keras"
            outcome.model.save(path)
        tracker.drain()
        answer = {"mae": outcome.mae, "error": outcome.error, "model_path": path and str(path), "forecasts": outcome.forecasts}
        print(RESULT + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    child_main(_serve, *sys.argv[1:])

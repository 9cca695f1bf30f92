"""A fit process (`python -m search.tune.fit_process ...`, started by `search.tune.fit_pool`): trains the fits it is
handed on stdin after the search (backtest folds, refit, ensemble members), each a child run of the search's parent
run, and answers each on stdout; a final member's model comes back as a `.keras` file in `<run dir>/fits`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from data.errors import UserError


def _serve(config_path: str, run_dir: str, labels: str, parent_id: str) -> int:
    from omegaconf import OmegaConf

    from search.fit.backends import activate
    from search.plan.planning import RunLabels

    cfg = OmegaConf.load(config_path)
    cfg.search.workers = 1  # this process is one of them
    run_labels = RunLabels(**json.loads(labels))
    activate(run_labels.backend)  # the chief's backend, before Keras is imported
    from search.choose.selection import FitJob, Fits, Refitter
    from search.plan.planning import plan
    from search.record.tracking import connect
    from search.tune.fit_pool import READY, RESULT
    from search.tune.settings import Settings
    from search.tune.tuning import hypermodel_for, prepare_backend

    checked = plan(cfg)
    tracker = connect(cfg.tracking, cfg.data, Path.cwd(), run_labels, checked.series)
    tracker.attach_parent(parent_id)
    settings = Settings.of(cfg)
    prepare_backend(settings.search.deterministic, settings.seed)
    fits = Fits(Refitter(hypermodel_for(settings, checked), settings.seed), tracker)
    models = Path(run_dir) / "fits"
    print(READY, flush=True)
    for line in sys.stdin:
        job = FitJob(**json.loads(line))
        if job.scored is not None:
            job = replace(job, scored=tuple(job.scored))
        outcome = fits.one(job)
        path = None
        if outcome.model is not None:
            path = models / f"{job.key}.keras"
            outcome.model.save(path)
        tracker.drain()
        print(RESULT + json.dumps({"mae": outcome.mae, "error": outcome.error, "model_path": path and str(path)}), flush=True)
    return 0


def main(*arguments: str) -> None:
    from search.core import interrupts
    from search.core.exits import EXIT_INTERRUPTED, EXIT_SEARCH_FAILED, EXIT_USAGE
    from search.tune.worker_process import die_with_chief

    interrupts.install()
    try:
        die_with_chief()
        code = _serve(*arguments)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception:  # a bug: the traceback goes to the log, the chief trains the fit itself
        import traceback

        traceback.print_exc()
        code = EXIT_SEARCH_FAILED
    sys.stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    main(*sys.argv[1:])

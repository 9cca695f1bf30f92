"""What the stage after the search works with, in one object: the stages before hand it on whole instead of eleven
positional arguments (`search.tune.tuning.search_and_evaluate` builds it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.choose.selection import FitRunner, one_after_another
from search.plan.planning import Plan, RunLabels
from search.record.tracking import Tracker

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class AfterSearch:
    """The search's tuner and hypermodel, the plan it ran, the config's parts this stage reads and where it records.

    `settings` is the config's `search` (selection, refit, ensemble, blend, intervals, the ets baseline), `data` the
    config's `data` (the baselines' settings, the data's name); `model_name` is `tracking.registered_model` (None:
    named after the data and the space); `run` runs the fits after the search (one after another here, or shared with
    fit processes: `search.processes.fit_pool`); `run_dir` holds the files written beside MLflow (a panel's
    `per_series.csv`)."""

    tuner: Any  # a Keras Tuner of `search.tune.tuner`: its oracle's trials and their saved models
    hypermodel: Any  # `search.fit.hypermodel.WindowedHyperModel` (or its panel form)
    plan: Plan
    settings: Any
    data: Any
    seed: int
    tracker: Tracker
    labels: RunLabels
    run_dir: Path
    model_name: str | None = None
    run: FitRunner = one_after_another

    def load_searched(self, trial_id: str) -> keras.Model:
        """The model trial `trial_id` trained in the search, as Keras Tuner saved it."""
        return self.tuner.load_model(self.tuner.oracle.get_trial(trial_id))

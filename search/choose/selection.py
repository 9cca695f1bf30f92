"""After the search: pick a winner that carries to unseen points, retrain it on every pre-test point,
and average a few of it.

- Backtest (`search.select.top_k` > 1): the best configurations by search score are each retrained
  on `search.select.folds` expanding windows over the scored validation points (fold i trains on
  everything before its block, for the epochs its trial found best) and the winner is the lowest
  mean fold MAE. One score on one stretch of points rewards the configuration Hyperband trained
  longest; several origins reward the one that fits.
- Refit (`search.refit`): the winner is retrained on every point before the test tail, so the
  registered model has seen the most recent data.
- Ensemble (`search.ensemble` = k): k such fits with different seeds, averaged inside ONE Keras model
  (shared input, `Average` of the members), which loads like any winner.

Every fit is a child run of the search's parent run, tagged `stage` (backtest, refit, ensemble).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from models import forecast as batched_forecast
from models.ensemble import average_model
from search.fit.hypermodel import StopOnNaN, WindowedHyperModel
from search.plan.space import DEFAULTS
from search.record.tracking import Tracker


@dataclass
class Candidate:
    """One configuration the search trained: its best trial, score and epoch count."""

    trial_id: str
    values: dict
    search_val_mae: float
    epochs: int
    fold_maes: list[float] = field(default_factory=list)

    @property
    def backtest_mae(self) -> float | None:
        return float(np.mean(self.fold_maes)) if self.fold_maes else None

    def as_dict(self) -> dict:
        return {
            "trial_id": self.trial_id,
            "search_val_mae": self.search_val_mae,
            "epochs": self.epochs,
            "fold_maes": self.fold_maes,
            "backtest_mae": self.backtest_mae,
        }


def best_candidates(completed: list, top_k: int) -> list[Candidate]:
    """The `top_k` best distinct configurations among completed trials (a Hyperband continuation is the same one)."""
    best: dict[tuple, Candidate] = {}
    for trial in sorted(completed, key=lambda t: (t.score, t.trial_id)):
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        key = tuple(sorted((k, str(v)) for k, v in values.items()))
        if key not in best:
            epochs = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0)) + int(trial.best_step or 0) + 1
            best[key] = Candidate(trial.trial_id, values, float(trial.score), epochs)
    return list(best.values())[:top_k]


def fold_blocks(score_start: int, test_start: int, folds: int) -> list[range]:
    """`folds` consecutive blocks of the scored validation points, the last ending at the test tail."""
    edges = np.linspace(score_start, test_start, folds + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


class Refitter:
    """Trains one configuration outside the tuner: on `[:train_stop]`, for a fixed epoch count, seeded."""

    def __init__(self, hypermodel: WindowedHyperModel, seed: int) -> None:
        self.hypermodel, self.seed = hypermodel, seed

    def fit(self, values: dict, epochs: int, train_stop: int, seed_offset: int = 0) -> keras.Model:
        seed = (self.seed + seed_offset) % 2**32  # NumPy takes seeds below 2**32 only
        keras.utils.set_random_seed(seed)
        values = {**DEFAULTS, **values}  # a trial records only the names its space declares
        model = self.hypermodel.model_for(values, train_stop=train_stop)
        data = self.hypermodel.training_windows(values, train_stop=train_stop, seed=seed)
        model.fit(data, epochs=epochs, verbose=0, shuffle=False, callbacks=[StopOnNaN()])
        return model

    def mae(self, model: keras.Model, points: range) -> float:
        """MAE over the origins whose labels (all `horizon` of them) lie in `points`."""
        horizon = self.hypermodel.layout.horizon
        x, y = self.hypermodel.origin_windows(model.input_shape[1], points)
        return float(
            np.mean(np.abs(np.asarray(y).reshape(len(x), horizon) - batched_forecast(model, x).reshape(len(x), horizon)))
        )

    def forecasts(self, model: keras.Model, points: range) -> np.ndarray:
        """`(n, horizon)` forecasts from the origins whose labels (all `horizon` of them) lie in `points`."""
        horizon = self.hypermodel.layout.horizon
        x, _ = self.hypermodel.origin_windows(model.input_shape[1], points)
        return batched_forecast(model, x).reshape(len(x), horizon)


@dataclass(frozen=True)
class FitJob:
    """One fit after the search, as a child run `stage` (backtest, refit, ensemble) keyed `key`: `values` trained
    on `[:train_stop]` for `epochs`, seeded `seed + seed_offset`; a backtest fold is scored on `scored` (start,
    stop) or, with `forecasts`, forecasts from there; a final member's model is kept (`keep_model`). Plain data, so a
    fit process can be handed it."""

    stage: str
    key: str
    values: dict
    epochs: int
    train_stop: int
    seed_offset: int
    params: dict
    tags: dict
    scored: tuple[int, int] | None = None
    keep_model: bool = False
    forecasts: bool = False

    @property
    def cost(self) -> int:
        """Roughly how long the fit takes (epochs x points): the longest are handed out first."""
        return self.epochs * self.train_stop


@dataclass
class FitOutcome:
    """What a fit gave: the fold's MAE (backtest), its forecasts on the scored points (`(n, horizon)` nested lists: a
    blend's candidate), the model (final members), or why it failed (a NaN loss)."""

    key: str
    mae: float | None = None
    model: object = None
    error: str | None = None
    forecasts: list | None = None


class Fits:
    """Runs fit jobs in this process, each as its child run (`Tracker.stage_run`): FINISHED, or FAILED with the
    reason when its loss turns NaN."""

    def __init__(self, refitter: Refitter, tracker: Tracker) -> None:
        self.refitter, self.tracker = refitter, tracker

    def one(self, job: FitJob) -> FitOutcome:
        import keras_tuner

        try:
            with self.tracker.stage_run(job.stage, job.key, job.params, job.tags) as run_id:
                model = self.refitter.fit(job.values, job.epochs, train_stop=job.train_stop, seed_offset=job.seed_offset)
                mae, forecasts = None, None
                if job.scored is not None and job.forecasts:
                    forecasts = self.refitter.forecasts(model, range(*job.scored)).tolist()
                elif job.scored is not None:
                    mae = self.refitter.mae(model, range(*job.scored))
                    self.tracker.log_metrics(run_id, {"fold_mae": mae})
        except keras_tuner.errors.FailedTrialError as err:  # its run is FAILED, with the reason
            return FitOutcome(job.key, error=str(err))
        return FitOutcome(job.key, mae=mae, model=model if job.keep_model else None, forecasts=forecasts)


FitRunner = Callable[[list[FitJob], Callable[[FitJob], FitOutcome]], list[FitOutcome]]
"""Runs jobs with the given in-process `one` (and wherever else it can), returns their outcomes in the jobs' order."""


def one_after_another(jobs: list[FitJob], one: Callable[[FitJob], FitOutcome]) -> list[FitOutcome]:
    """The fits in this process, in order (`search.workers=1`)."""
    return [one(job) for job in jobs]


def backtest(fits: Fits, candidates: list[Candidate], blocks: list[range], run: FitRunner = one_after_another) -> Candidate:
    """Score every candidate on every fold (a child run per fit, tag `stage=backtest`); returns the winner.

    A candidate with a fold whose fit fails (a NaN loss) is dropped from the ranking, that run FAILED.
    """
    jobs = [
        FitJob(
            stage="backtest",
            key=f"{candidate.trial_id}-fold{index}",
            values=candidate.values,
            epochs=candidate.epochs,
            train_stop=block.start,
            seed_offset=index,
            params={**candidate.values, "fold": index, "train_stop": block.start, "epochs": candidate.epochs},
            tags={"source_trial_id": candidate.trial_id, "fold": str(index)},
            scored=(block.start, block.stop),
        )
        for candidate in candidates
        for index, block in enumerate(blocks)
    ]
    outcomes = iter(run(jobs, fits.one))
    scored = []
    for candidate in candidates:
        folds = [next(outcomes) for _ in blocks]
        candidate.fold_maes = [] if any(o.error for o in folds) else [o.mae for o in folds]
        if candidate.fold_maes:
            scored.append(candidate)
    if not scored:
        return candidates[0]
    return min(scored, key=lambda c: (c.backtest_mae, c.search_val_mae))


def ensemble_members(winner: Candidate, ranked: list[Candidate], size: int, of: str) -> list[tuple[Candidate, int]]:
    """`(configuration, seed offset)` of each member: `size` seeds of the winner, or the `size` best configurations."""
    if of == "configurations":
        return [(candidate, 100) for candidate in ranked[:size]]
    return [(winner, 100 + index) for index in range(size)]


def fit_final(
    fits: Fits, members: list[tuple[Candidate, int]], train_stop: int, run: FitRunner = one_after_another
) -> keras.Model | None:
    """The forecaster to register: each member retrained on `[:train_stop]`, and averaged when there are several.

    A member whose retraining diverges (a NaN loss) is left out, its run FAILED with the reason; if
    every member diverges this returns None, and the caller keeps the model the search trained.
    """
    stage = "refit" if len(members) == 1 else "ensemble"
    jobs = [
        FitJob(
            stage=stage,
            key=f"{candidate.trial_id}-m{index}",
            values=candidate.values,
            epochs=candidate.epochs,
            train_stop=train_stop,
            seed_offset=seed_offset,
            params={**candidate.values, "train_stop": train_stop, "epochs": candidate.epochs, "member": index},
            tags={"source_trial_id": candidate.trial_id},
            keep_model=True,
        )
        for index, (candidate, seed_offset) in enumerate(members)
    ]
    models = []
    for index, ((candidate, _), outcome) in enumerate(zip(members, run(jobs, fits.one), strict=True)):
        if outcome.error:
            print(f"warning: {stage} of trial {candidate.trial_id} (member {index}) left out: {outcome.error}", flush=True)
        else:
            models.append(outcome.model)
    if not models:
        return None
    return models[0] if len(models) == 1 else average_model(models)


def member_count(model: keras.Model) -> int:
    """How many models the registered `model` averages: its `member_<i>` submodels (`average_model`), or 1."""
    return sum(1 for layer in model.layers if layer.name.startswith("member_")) or 1

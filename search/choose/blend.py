"""The registered forecaster as a weighted blend, every part of it earning its place out of sample (`search.blend`).

Candidates, each with forecasts from the validation origins that its training did not see:
- each of the best configurations **refit** (`search.refit`), one fold back: trained on every point before the
  validation points, as the refit is trained on every point before the test tail; and their equal-weight average;
- the winner **as searched** (trained up to its split time, for the epochs its trial found best), run one fold
  back: trained on the points up to `validation_points` before its split time, so it forecasts the validation
  points across the same gap the searched model forecasts the test tail (every configuration so without refit);
- the **statistical forecasters** of the closing table (naive, seasonal naive, moving average, drift,
  `ar_changes`, Holt-Winters), fitted on the points before the validation points and computed from the window
  alone (`data.linear_forecasts`), as the served model computes them.

Greedy forward selection with replacement (Caruana et al. 2004) on those forecasts picks non-negative weights
summing to 1 that minimise the validation MAE, bagged over block-bootstrap resamples of the validation origins so
that no member takes the whole weight for being luckiest on them: whether to refit, how many networks and which
classical forecasters are decided by the same out-of-sample evidence. The blend's own validation score is
cross-fitted (weights chosen on one half of the validation origins, scored on the other, and the other way round),
since the weights were chosen on those points. The registered model is the
blend with each member retrained as its recipe says (a refit on every point before the test tail; the searched
model as the search trained it; the statistical ones fitted on every point before the test tail).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from data.linear_forecasts import LinearForecaster, statistical_forecasters
from data.windows import window_view
from models.ensemble import weighted_model
from search.choose.selection import Candidate, FitJob, FitRunner, Fits

if TYPE_CHECKING:
    import keras
    from omegaconf import DictConfig

    from search.fit.hypermodel import WindowedHyperModel

MIN_TRAINING_WINDOWS = 30
"""A configuration run one fold back needs at least this many training windows, else its searched form is scored
by the search's own validation forecasts (chosen on them: noted in the summary)."""


@dataclass
class Member:
    """One candidate of the blend: a network (`searched` or `refit`) or a statistical forecaster, with its forecasts
    from the validation origins (`(n, horizon)`) and their MAE; `weight` once the blend is chosen."""

    name: str
    kind: str  # searched | refit | statistical | average (of `parts`, with equal weights)
    val_forecasts: np.ndarray
    val_mae: float
    candidate: Candidate | None = None
    seed_offset: int = 0
    linear: LinearForecaster | None = None
    scored: str = "one fold back"  # or "in the search" (a searched model too short to run one fold back)
    weight: float = 0.0
    parts: list[Member] = field(default_factory=list)  # an average's members
    earlier_forecasts: np.ndarray | None = None  # the same recipe one more block back, on the earlier origins

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "trial_id": self.candidate.trial_id if self.candidate else None,
            "weight": self.weight,
            "val_mae": self.val_mae,
            "scored": self.scored,
            **({"parts": [part.name for part in self.parts]} if self.parts else {}),
        }


def greedy_weights(forecasts: np.ndarray, actual: np.ndarray, rounds: int) -> np.ndarray:
    """Caruana's forward selection with replacement: `rounds` times, add the member (a row of `forecasts`,
    `(k, n, ...)`) whose addition gives the lowest MAE of the running mean; weights are the counts / `rounds`.
    Ties go to the earlier member."""
    counts, total = np.zeros(len(forecasts)), np.zeros_like(actual, dtype=np.float64)
    axes = tuple(range(1, forecasts.ndim))
    for step in range(1, rounds + 1):
        errors = np.mean(np.abs(actual - (total + forecasts) / step), axis=axes)
        best = int(np.argmin(errors))
        counts[best] += 1
        total += forecasts[best]
    return counts / rounds


BAGS = 30
"""Resamples of the validation origins the selection runs on; their weights are averaged (bagged ensemble selection)."""

BLOCKS = 10
"""Contiguous blocks of validation origins a resample draws from, with replacement (errors are autocorrelated)."""


MAX_ERROR_RATIO = 2.0
"""A member whose validation MAE is above this multiple of the best member's takes no part in the selection."""


def eligible(forecasts: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Which members (rows of `forecasts`) may take weight: those within `MAX_ERROR_RATIO` of the best member's MAE on
    these origins. A member that far behind can only lower the blend's error by cancelling another's bias, and on a
    short validation window that cancellation is luck: on a 300-point monthly series (bench §14) a moving average with
    5x the best member's error took a tenth of the weight and cost the blend 0.44 of test MAE (4.54 against 4.10)."""
    errors = np.mean(np.abs(actual - forecasts), axis=tuple(range(1, forecasts.ndim)))
    return errors <= MAX_ERROR_RATIO * errors.min()


def bagged_weights(forecasts: np.ndarray, actual: np.ndarray, rounds: int, seed: int = 0) -> np.ndarray:
    """`greedy_weights` over the `eligible` members on `BAGS` block-bootstrap resamples of the origins, averaged
    (Caruana et al. 2004, bagged ensemble selection). One greedy run on all origins hands the whole weight to
    whichever member was luckiest on them where members are close; a member that wins only some resamples keeps only
    a share. With fewer origins than `BLOCKS`, one greedy run on all of them."""
    n, weights = len(actual), np.zeros(len(forecasts))
    kept = eligible(forecasts, actual)
    forecasts = forecasts[kept]
    if n < BLOCKS:
        weights[kept] = greedy_weights(forecasts, actual, rounds)
        return weights
    blocks = np.array_split(np.arange(n), BLOCKS)
    rng, total = np.random.default_rng(seed), np.zeros(len(forecasts))
    for _ in range(BAGS):
        drawn = np.concatenate([blocks[j] for j in rng.integers(0, BLOCKS, BLOCKS)])
        total += greedy_weights(forecasts[:, drawn], actual[drawn], rounds)
    weights[kept] = total / BAGS
    return weights


def cross_fitted(forecasts: np.ndarray, actual: np.ndarray, rounds: int) -> np.ndarray | None:
    """The blend's forecasts on each half of the origins with the weights chosen (`bagged_weights`) on the other
    half (None with fewer than 4 origins): a score of the blend recipe on points its weights did not see."""
    n = len(actual)
    if n < 4:
        return None
    halves = (slice(0, n // 2), slice(n // 2, n))
    out = np.empty_like(actual, dtype=np.float64)
    for chosen_on, scored_on in (halves, halves[::-1]):
        weights = bagged_weights(forecasts[:, chosen_on], actual[chosen_on], rounds)
        out[scored_on] = np.tensordot(weights, forecasts[:, scored_on], axes=1)
    return out


@dataclass
class Blend:
    """The chosen blend: its members (weights set, zero for those left out), its validation MAE with the chosen
    weights (in-sample for them) and cross-fitted (`None` with too few origins), and those forecasts."""

    members: list[Member]
    val_mae: float
    val_mae_cross_fitted: float | None
    cross_fitted_forecasts: np.ndarray | None
    rounds: int
    actual: np.ndarray  # what the members forecast on the validation origins, `(n, horizon)`
    evidence: str = "validation"  # the origins the weights were chosen on (`search.blend_evidence`)
    earlier_actual: np.ndarray | None = None  # what the members forecast on the earlier block, where it was run

    @property
    def chosen(self) -> list[Member]:
        return [m for m in self.members if m.weight > 0]

    def as_dict(self) -> dict:
        return {
            "members": [m.as_dict() for m in sorted(self.members, key=lambda m: (-m.weight, m.val_mae))],
            "val_mae": self.val_mae,
            "val_mae_cross_fitted": self.val_mae_cross_fitted,
            "rounds": self.rounds,
            "evidence": self.evidence,
            "method": "greedy forward selection with replacement (Caruana), bagged over block-bootstrap resamples of "
            "the out-of-sample validation forecasts; val_mae_cross_fitted: weights chosen on one half of the validation "
            "origins, scored on the other",
        }

    def forecasts(self) -> dict:
        """Every candidate's validation forecasts (`(n, horizon)` lists, by name) and what they forecast: the evidence
        the weights were chosen on, to check or to try another rule on (`bench.blend_vs_average`)."""
        found = {"actual": self.actual.tolist(), "members": {m.name: np.asarray(m.val_forecasts).tolist() for m in self.members}}
        if self.earlier_actual is not None:
            ran = [m for m in self.members if m.earlier_forecasts is not None]
            earlier = {m.name: m.earlier_forecasts.tolist() for m in ran}
            found["earlier"] = {"actual": self.earlier_actual.tolist(), "members": earlier}
        return found

    def weights(self) -> dict[str, float]:
        """`ensemble_weights` in summary.json: every member with a weight, by name."""
        return {m.name: m.weight for m in sorted(self.chosen, key=lambda m: -m.weight)}


def _stacked(forecasts: list[np.ndarray], shape: tuple) -> np.ndarray:
    return np.stack([np.asarray(f, dtype=np.float64).reshape(shape) for f in forecasts])


def choose_blend(
    members: list[Member], actual: np.ndarray, rounds: int, evidence: str = "validation", earlier_actual: np.ndarray | None = None
) -> Blend:
    """Weights for `members` from their out-of-sample forecasts: `bagged_weights` with `rounds` greedy rounds a
    resample, and the blend's validation MAE on forecasts its weights were not chosen on.

    `evidence` names the origins the weights are chosen on (`search.blend_evidence`): `validation` (`actual`: what
    the members forecast there; the score cross-fitted over its halves); `earlier` (`earlier_actual`: the block of
    origins before the validation points, which the search did not choose its configurations on; scored on the
    validation origins); `both` (the two blocks one after the other; cross-fitted over its halves, the validation
    half reported). With `earlier` or `both`, a member without forecasts on the earlier block (too few points to
    train one more block back) takes no weight; where no network has them, the weights come from validation."""
    with_earlier = [m for m in members if m.earlier_forecasts is not None]
    if evidence == "validation" or earlier_actual is None or not any(m.kind != "statistical" for m in with_earlier):
        stacked = _stacked([m.val_forecasts for m in members], actual.shape)
        weights = bagged_weights(stacked, actual, rounds)
        for member, weight in zip(members, weights, strict=True):
            member.weight = float(weight)
        blended = np.tensordot(weights, stacked, axes=1)
        honest = cross_fitted(stacked, actual, rounds)
        honest_mae = float(np.mean(np.abs(actual - honest))) if honest is not None else None
        used = "validation" if evidence == "validation" else "validation (no network could train a block earlier)"
        return Blend(members, float(np.mean(np.abs(actual - blended))), honest_mae, honest, rounds, actual, used, earlier_actual)
    val = _stacked([m.val_forecasts for m in with_earlier], actual.shape)
    early = _stacked([m.earlier_forecasts for m in with_earlier], earlier_actual.shape)
    for member in members:
        member.weight = 0.0
    if evidence == "earlier":
        weights = bagged_weights(early, earlier_actual, rounds)
        blended = honest = np.tensordot(weights, val, axes=1)
    else:
        both, both_actual = np.concatenate([early, val], axis=1), np.concatenate([earlier_actual, actual])
        weights = bagged_weights(both, both_actual, rounds)
        blended = np.tensordot(weights, val, axes=1)
        crossed = cross_fitted(both, both_actual, rounds)
        honest = crossed[len(earlier_actual) :] if crossed is not None else None
    for member, weight in zip(with_earlier, weights, strict=True):
        member.weight = float(weight)
    honest_mae = float(np.mean(np.abs(actual - honest))) if honest is not None else None
    return Blend(members, float(np.mean(np.abs(actual - blended))), honest_mae, honest, rounds, actual, evidence, earlier_actual)


def averages(networks: list[Member], actual: np.ndarray) -> list[Member]:
    """The equal-weight average of the refit networks, and of the searched ones (where there are two or more): the
    ensemble that `search.blend=false` registers, offered as one candidate, kept where its forecasts earn it."""
    found = []
    for kind, label in (("refit", "refits"), ("searched", "searched models")):
        parts = [m for m in networks if m.kind == kind]
        if len(parts) > 1:
            forecasts = np.mean([m.val_forecasts for m in parts], axis=0)
            mae = float(np.mean(np.abs(actual - forecasts)))
            scored = "one fold back" if all(m.scored == "one fold back" for m in parts) else "in the search"
            early = None
            if all(m.earlier_forecasts is not None for m in parts):
                early = np.mean([m.earlier_forecasts for m in parts], axis=0)
            name = f"average of {len(parts)} {label}"
            found.append(Member(name, "average", forecasts, mae, scored=scored, parts=parts, earlier_forecasts=early))
    return found


def atoms(chosen: list[Member]) -> list[Member]:
    """The chosen members with every average split into its parts (each `weight / parts`), weights of the same
    member added: what the registered model holds."""
    weights: dict[str, float] = {}
    by_name: dict[str, Member] = {}
    for member in chosen:
        for part, weight in [(p, member.weight / len(member.parts)) for p in member.parts] or [(member, member.weight)]:
            weights[part.name] = weights.get(part.name, 0.0) + weight
            by_name[part.name] = part
    return [dataclasses.replace(by_name[name], weight=weight) for name, weight in weights.items()]


class BlendCandidates:
    """Builds the candidates' out-of-sample forecasts on the validation origins, and the registered blend.

    `hypermodel` holds the series and layout; `data` the config's `data` (season, baselines' settings); `fits` and
    `run` train the networks (child runs `stage=blend_candidate` one fold back, `stage=refit` for the registered
    members); `load_searched(trial_id)` gives a trial's model as the search trained it.
    """

    def __init__(
        self,
        hypermodel: WindowedHyperModel,
        data: DictConfig,
        fits: Fits,
        run: FitRunner,
        load_searched: Callable[[str], keras.Model],
        ets: bool = True,
        earlier: bool = False,
    ) -> None:
        self.hypermodel, self.data, self.fits, self.run = hypermodel, data, fits, run
        self.load_searched, self.ets = load_searched, ets
        self.layout, self.series = hypermodel.layout, hypermodel.series
        self.validation = range(self.layout.score_start, self.layout.test_start)
        self.actual = self._actual(self.validation)  # what every candidate forecasts
        self.gap = self.layout.test_start - self.layout.score_start
        # `search.blend_evidence` earlier | both: every recipe run one more block back, on the points before validation
        self.earlier = None
        if earlier and self.layout.score_start - self.gap > self.layout.horizon:
            self.earlier = range(self.layout.score_start - self.gap, self.layout.score_start)
        self.earlier_actual = self._actual(self.earlier) if self.earlier is not None else None

    def _actual(self, points: range) -> np.ndarray:
        _, y = window_view(self.series, 1, points.start, points.stop, self.layout.horizon)
        return np.asarray(y, dtype=np.float64).reshape(-1, self.layout.horizon)

    def _trainable(self, values: dict, stop: int | None) -> int | None:
        """`stop` where training on `[:stop]` leaves `MIN_TRAINING_WINDOWS` windows for `values`, else None."""
        needed = self.hypermodel.input_length(values) + self.layout.horizon + MIN_TRAINING_WINDOWS
        if values.get("scaling") == "profile":  # the season's profile needs a change at every phase
            needed = max(needed, self.hypermodel.season_length + 2)
        return stop if stop is not None and stop >= needed else None

    def _one_fold_back(self, candidate: Candidate) -> int | None:
        """Where the searched recipe's training stops one fold back, or None where too few windows are left."""
        return self._trainable(candidate.values, self.hypermodel.split_time(candidate.values) - self.gap)

    def networks(self, pool: list[tuple[Candidate, int]], refit: bool) -> list[Member]:
        """Each configuration of `pool` (`(candidate, seed offset)`, the winner first) refit one fold back, with `refit`;
        as searched, one fold back, the winner (every configuration without `refit`). A fit that diverges is left out
        (its run FAILED).

        The searched form of the others is not offered: one fold back it trains on the fewest points of all, its
        forecasts are the weakest of the candidates on the series measured (`bench.blend_vs_average`), and its five
        fits would cost as much as the refits."""
        jobs, plans, searched_seen = [], [], set()
        for candidate, offset in pool:
            recipes = []
            if candidate.trial_id not in searched_seen and (not refit or not searched_seen):
                searched_seen.add(candidate.trial_id)
                recipes.append(("searched", self._one_fold_back(candidate)))
            if refit:
                recipes.append(("refit", self.layout.score_start))
            for recipe, stop in recipes:
                early_stop = self._trainable(candidate.values, stop - self.gap) if self.earlier and stop else None
                plans.append((candidate, offset, recipe, stop, early_stop))
                for block, train_stop, suffix in ((self.validation, stop, ""), (self.earlier, early_stop, "-earlier")):
                    if train_stop is None:
                        continue
                    jobs.append(
                        FitJob(
                            stage="blend_candidate",
                            key=f"{candidate.trial_id}-{recipe}-m{offset}{suffix}",
                            values=candidate.values,
                            epochs=candidate.epochs,
                            train_stop=train_stop,
                            seed_offset=offset,
                            params={**candidate.values, "recipe": recipe, "train_stop": train_stop, "epochs": candidate.epochs},
                            tags={"source_trial_id": candidate.trial_id, "recipe": recipe, "block": suffix[1:] or "validation"},
                            scored=(block.start, block.stop),
                            forecasts=True,
                        )
                    )
        outcomes = iter(self.run(jobs, self.fits.one))
        members, actual = [], self.actual
        for candidate, offset, recipe, stop, early_stop in plans:
            early = None
            if stop is None:
                model = self.load_searched(candidate.trial_id)
                forecasts, scored = self.fits.refitter.forecasts(model, self.validation), "in the search"
            else:
                outcome = next(outcomes)
                early_outcome = next(outcomes) if early_stop is not None else None
                if outcome.error:
                    print(f"warning: trial {candidate.trial_id} {recipe} left out of the blend: {outcome.error}", flush=True)
                    continue
                forecasts, scored = np.asarray(outcome.forecasts, dtype=np.float64), "one fold back"
                if early_outcome is not None and not early_outcome.error:
                    early = np.asarray(early_outcome.forecasts, dtype=np.float64)
            name = f"trial {candidate.trial_id}" + (" refit" if recipe == "refit" else "")
            if sum(1 for c, _ in pool if c.trial_id == candidate.trial_id) > 1 and recipe == "refit":
                name += f" seed {offset}"
            mae = float(np.mean(np.abs(actual - forecasts)))
            members.append(Member(name, recipe, forecasts, mae, candidate, offset, scored=scored, earlier_forecasts=early))
        return members + averages(members, actual)

    def _statistical(self, fit_stop: int, available: int | None = None) -> list[LinearForecaster]:
        data = self.data
        return statistical_forecasters(
            self.series,
            fit_stop,
            available or self.layout.score_start,  # every validation origin has this much history: the same windows at test
            self.layout.horizon,
            data.season_length,
            data.ma_window,
            data.ar_lags,
            with_ets=self.ets,
        )

    def statistical(self) -> list[Member]:
        """The classical forecasters fitted on the points before the validation points, on the validation origins."""
        layout, actual, members = self.layout, self.actual, []
        for forecaster in self._statistical(layout.score_start):
            x, _ = window_view(self.series, forecaster.length, layout.score_start, layout.test_start, layout.horizon)
            forecasts = forecaster.forecast(x)
            if np.all(np.isfinite(forecasts)):
                mae = float(np.mean(np.abs(actual - forecasts)))
                members.append(Member(forecaster.name, "statistical", forecasts, mae, linear=forecaster))
        if self.earlier is not None:  # fitted one block further back, on the earlier origins
            earlier = {f.name: f for f in self._statistical(self.earlier.start, self.earlier.start)}
            for member in members:
                forecaster = earlier.get(member.name)
                if forecaster is not None:
                    x, _ = window_view(self.series, forecaster.length, self.earlier.start, self.earlier.stop, layout.horizon)
                    forecasts = forecaster.forecast(x)
                    if np.all(np.isfinite(forecasts)):
                        member.earlier_forecasts = forecasts
        return members

    def registered(self, blend: Blend) -> keras.Model:
        """The blend as one Keras model: refit members retrained on every point before the test tail (child runs
        `stage=refit`; one that diverges is replaced by its searched model), searched ones as the search trained
        them, the statistical ones refitted on the same points; an average's weight shared by its parts."""
        layout, networks, chosen = self.layout, [], atoms(blend.chosen)
        refits = [m for m in chosen if m.kind == "refit"]
        jobs = [
            FitJob(
                stage="refit",
                key=f"{m.candidate.trial_id}-blend-m{m.seed_offset}",
                values=m.candidate.values,
                epochs=m.candidate.epochs,
                train_stop=layout.test_start,
                seed_offset=m.seed_offset,
                params={**m.candidate.values, "train_stop": layout.test_start, "epochs": m.candidate.epochs, "weight": m.weight},
                tags={"source_trial_id": m.candidate.trial_id},
                keep_model=True,
            )
            for m in refits
        ]
        refit_models = dict(zip((m.name for m in refits), self.run(jobs, self.fits.one), strict=True))
        for member in chosen:
            if member.kind == "statistical":
                continue
            outcome = refit_models.get(member.name)
            if outcome is not None and not outcome.error:
                networks.append((outcome.model, member.weight))
                continue
            if outcome is not None:
                print(f"warning: refit of {member.name} diverged: its searched model takes its weight", flush=True)
            networks.append((self.load_searched(member.candidate.trial_id), member.weight))
        statistical = [m for m in chosen if m.kind == "statistical"]
        kernel = bias = None
        if statistical:
            refitted = {f.name: f for f in self._statistical(layout.test_start)}
            length = max(m.linear.length for m in statistical)
            kernel, bias = np.zeros((length, layout.horizon)), np.zeros(layout.horizon)
            for member in statistical:
                forecaster = refitted.get(member.name)
                if forecaster is None or forecaster.length != member.linear.length:
                    forecaster = member.linear  # not refittable on the longer history: as fitted one fold back
                padded_kernel, member_bias = forecaster.padded(length)
                kernel += member.weight * padded_kernel
                bias += member.weight * member_bias
        models = [model for model, _ in networks]
        return weighted_model(models, [weight for _, weight in networks], kernel, bias, layout.horizon)

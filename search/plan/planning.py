"""What a search will run on, checked before TensorFlow is imported: config, space, data, layout.

Bad input costs a second here, not an hour of training: everything that can be checked from the
config and the data is checked in `make_plan` (and `search.plan.run_dir.prepare_run_dir` refuses a run dir
that cannot be written or that holds a search the user did not ask to continue). Nothing here imports TensorFlow
(`tests/test_planning.py` holds that rule).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import OmegaConf

from data.baselines import naive, seasonal_naive, targets
from data.errors import UserError
from data.panel import ScaledPanel
from data.sources import load_series
from data.split import Layout, plan_layout
from models.framing import SEASONAL_SCALINGS
from models.profile import profile_path, seasonal_profile
from search.plan.cores import AUTO_MAX_WORKERS, available_cores, is_auto, resolve_workers, threads_per_worker
from search.plan.lr_range import check_settings
from search.plan.panel_planning import is_panel, padded_note, panel_plan
from search.plan.space import auto_learning_rate, candidates, in_points, input_lengths, narrowed_to_season, validate_space
from search.scoring.intervals import calibration_limit

if TYPE_CHECKING:
    from omegaconf import DictConfig


@dataclass(frozen=True)
class RunLabels:
    """What a search's runs are labelled with, beside its config: names, provenance, its place in a sweep."""

    space: str
    data: str
    git_commit: str = "unknown"
    sweep_id: str | None = None
    sweep_job: str | None = None
    gpu: str | None = None  # the GPU a multirun job was pinned to (the job runs in a fresh process)
    backend: str = "tensorflow"  # the Keras backend (`backend=`, resolved by `search.fit.backends`)
    data_file: str | None = None  # a CSV's file name without its suffix (`data=csv`); None for other sources

    @property
    def experiment(self) -> str:
        """The default MLflow experiment name: `<data>-<space>`."""
        return f"{self.data}-{self.space}"

    def registered_model(self, experiment: str) -> str:
        """The default Model Registry name: a CSV's `<file stem>-<space>`, so two CSVs searched into one store do not
        become versions of one model; else the experiment's name."""
        return f"{self.data_file}-{self.space}" if self.data_file else experiment

    def tags(self) -> dict[str, str]:
        """The MLflow tags every run of the search carries."""
        tags = {"space": self.space, "data": self.data, "git_commit": self.git_commit, "backend": self.backend}
        tags.update({name: value for name in ("sweep_id", "sweep_job") if (value := getattr(self, name)) is not None})
        return tags


@dataclass
class Plan:
    """What a search will run on, all checked: the series, the space and the layout."""

    series: np.ndarray  # one series `(n,)`; a panel's scaled values `(series, length)` (`panel` holds the rest)
    specs: dict
    layout: Layout
    workers: int = 1  # trials trained at once (`search.workers`, resolved)
    worker_threads: int = 0  # TensorFlow threads of each worker process (0: TensorFlow's default, one process)
    folds: int = 3  # the backtest's folds (`search.select.folds`, lowered to what the validation points hold; 0: none)
    panel: ScaledPanel | None = None  # many series in one search (`data=panel`, `data=synthetic_panel`)


@dataclass(frozen=True)
class Request:
    """The parts of a search's config that planning checks against each other: every part but where its runs are
    tracked (`tracking`, the Tracker's) and which Keras backend trains it (`backend`, set before Keras is imported).

    The space against the data (`space`, `data`), the budget (`tuner`), the stages after the search and the workers
    against the cores (`search`), the LR range test's settings (`lr_find`), the seed and the mode.
    """

    space: Any
    data: Any
    tuner: Any
    search: Any
    lr_find: Any
    seed: int
    mode: str

    @classmethod
    def of(cls, cfg: DictConfig) -> Request:
        """Split a composed config (the command's, or a child process's own) into what planning reads."""
        return cls(cfg.space, cfg.data, cfg.tuner, cfg.search, cfg.lr_find, cfg.seed, cfg.mode)


def make_plan(request: Request, parallel_jobs: int = 1) -> Plan:
    """Validate space and data against each other; raises `UserError` on the first problem.

    `parallel_jobs` is how many multirun jobs run side by side with this one: `search.workers` shares the cores with them.

    Fixed sets of values (tuner, mode, policies) are Enums in `search.config`: Hydra has refused
    bad ones at composition already.
    """
    if not request.space:
        raise UserError("no search space: add +space=<name>")
    _check_budget(request)
    workers, cores = _workers(request.search, request.mode, parallel_jobs)
    data = request.data
    specs, note = searched_space(request.space, data)
    if is_panel(data):
        return _panel_plan(request, specs, note, workers, cores, parallel_jobs)
    if request.mode == "lr_find" or auto_learning_rate(specs):
        check_settings(request.lr_find)
    series = load_series(data)
    specs, series_note = narrowed_to_series(specs, series, data.season_length, data.horizon, data.test_size)
    note = "; ".join(filter(None, (note, series_note)))
    if note:
        print(f"note: {note}", flush=True)
    longest_input = max(input_lengths(specs, data.season_length))
    layout = plan_layout(
        len(series),
        data.test_size,
        candidates(specs["split_time"]),
        candidates(specs["window_size"]),
        longest_input,
        data.horizon,
        longest_input_field(specs, data.season_length, longest_input),
    )
    folds, note = backtest_folds(request.search, layout)
    if note:
        print(f"note: {note}", flush=True)
    _check_scoring(request.search, layout)
    threads = threads_per_worker(workers, cores, parallel_jobs) if workers > 1 else 0
    return Plan(series, specs, layout, workers, threads, folds)


def _panel_plan(request: Request, specs: dict, note: str | None, workers: int, cores: int, parallel_jobs: int) -> Plan:
    """`make_plan` for a panel (`search.plan.panel_planning`): no backtest, no blend (they weigh one series' origins)."""
    data = request.data
    if request.search.intervals_method != "conformal":
        raise UserError(
            f"search.intervals_method={request.search.intervals_method}: a panel's intervals are conformal over its "
            "series; use search.intervals_method=conformal"
        )
    specs, scaled, layout, panel_note = panel_plan(specs, data, request.mode)
    _check_scoring(request.search, layout, origins=scaled.panel.count * len(layout.val_origins), what="series' validation")
    longest = max(input_lengths(specs, data.season_length))
    notes = [note, panel_note, padded_note(scaled, layout, longest)]
    if request.search.blend:
        notes.append("search.blend weighs one series' forecasts: a panel registers the refit average (search.blend=false)")
    if any(notes):
        print(f"note: {'; '.join(filter(None, notes))}", flush=True)
    if longest + data.horizon >= layout.score_start:
        raise UserError(
            f"space.window_size: the longest input ({longest} points) leaves no training window in the longest series "
            f"({layout.length} points); lower space.window_size (or space.seasons, space.ar_skip)"
        )
    threads = threads_per_worker(workers, cores, parallel_jobs) if workers > 1 else 0
    return Plan(scaled.values, specs, layout, workers, threads, folds=0, panel=scaled)


def _check_budget(request: Request) -> None:
    """The seed, the tuner's budget and the stages' sizes: numbers Hydra's types cannot bound."""
    if not 0 <= request.seed < 2**32:
        raise UserError(f"seed={request.seed} must be in [0, 2**32): NumPy, TensorFlow and Keras Tuner take no other")
    if request.mode == "lr_find" and request.search.resume:
        raise UserError("search.resume applies to searches, not to mode=lr_find: drop search.resume")
    tuner = request.tuner
    for field in ("max_epochs", "executions_per_trial", "max_trials"):
        if getattr(tuner, field) < 1:
            raise UserError(f"tuner.{field}={getattr(tuner, field)} must be >= 1")
    if tuner.name == "hyperband" and tuner.factor < 2:
        raise UserError(f"tuner.factor={tuner.factor} must be >= 2")
    for field, low in (("select.top_k", 1), ("select.folds", 1), ("ensemble", 1), ("blend_rounds", 1)):
        value = OmegaConf.select(request.search, field)
        if value < low:
            raise UserError(f"search.{field}={value} must be >= {low}")


def _workers(search: DictConfig, mode: str, parallel_jobs: int) -> tuple[int, int]:
    """`search.workers` resolved against the cores and the multirun jobs beside this one; and the cores."""
    cores = available_cores()
    distributed = search.distributed.role is not None or bool(os.environ.get("KERASTUNER_TUNER_ID"))
    if is_auto(search.workers) and (distributed or mode != "search"):
        workers = 1  # a distributed role's workers are commands of their own; lr_find trains one model
    else:
        workers = resolve_workers(search.workers, cores, parallel_jobs)
    if workers > cores and mode == "search":
        auto = min(cores, AUTO_MAX_WORKERS)
        print(f"note: search.workers={workers} on {cores} CPU cores: the workers take turns on them (auto: {auto})", flush=True)
    if workers > 1 and distributed:
        raise UserError(
            "search.workers starts its own workers; with search.distributed.role each worker is a command of its own: "
            "drop one of them"
        )
    return workers, cores


def longest_input_field(specs: dict[str, dict], season_length: int, longest_input: int) -> str:
    """The setting that makes a trial read `longest_input` points back, further than its window, as a message names it
    first: the season the user gave (`data.season_length`, with the seasonal context that counts in it), else the
    AR skip's lags."""
    if longest_input > max(input_lengths(specs, 0)):
        uses = []
        if "seasons" in specs and max(candidates(specs["seasons"])) > 0:
            uses.append("space.seasons")
        if "scaling" in specs and "seasonal" in candidates(specs["scaling"]):
            uses.append("space.scaling=seasonal")
        return f"data.season_length={season_length}" + (f" (through {' and '.join(uses)})" if uses else "")
    if max(candidates(specs.get("ar_skip", {"value": 0}))) > max(candidates(specs["window_size"])):
        return "space.ar_skip"
    return "space.seasons"


def searched_space(space: DictConfig, data: DictConfig) -> tuple[dict[str, dict], str | None]:
    """The space a search draws from (`space`, the config's): validated, `per: horizon` / `per: season` bounds in
    points, and fitted to the data's season (what a series without one cannot use dropped); with a note on what was
    dropped."""
    specs = in_points(validate_space(OmegaConf.to_container(space, resolve=True)), data.horizon, data.season_length)
    return narrowed_to_season(specs, data.season_length)


def narrowed_to_series(
    specs: dict[str, dict], series: np.ndarray, season_length: int, horizon: int, test_size: int
) -> tuple[dict[str, dict], str | None]:
    """The space with `seasonal` or `profile` scaling left out of a `scaling` choice where the series says it cannot
    pay; a note.

    `seasonal` makes a network that outputs 0 the seasonal naive forecast. Where seasonal naive forecasts the points
    before the test tail worse than naive does (at `data.horizon`), that start is worse than `last_value`'s, each
    input is the difference of two noisy points a season apart, and each window needs a season more of history:
    on the synthetic default series (seasonal naive ~3x naive) the choice only spent trials. `profile` makes a
    network that outputs 0 the last value plus the season's average change (`models.profile.seasonal_profile`):
    it is left out where that forecast, the profile taken from the first 80 % of the points before the test tail,
    is no better than naive on the rest (a random walk with a season claimed: each phase's average change is noise;
    a long season's profile is smoothed first, `models.profile`, which is what keeps it on the synthetic series).
    A pinned `space.scaling.value=...` is kept: the user asked for it.
    """
    scalings = candidates(specs["scaling"]) if "scaling" in specs else []
    history = np.asarray(series[: len(series) - test_size], dtype=np.float64)
    if len(scalings) <= 1 or season_length <= 0 or not set(SEASONAL_SCALINGS) & set(scalings):
        return specs, None
    reasons = {}
    origins = range(season_length, len(history) - horizon + 1)
    if "seasonal" in scalings and len(origins) >= 1:
        actual = targets(history, origins, horizon)
        naive_mae = float(np.mean(np.abs(actual - naive(history, origins, horizon))))
        seasonal_mae = float(np.mean(np.abs(actual - seasonal_naive(history, origins, season_length, horizon))))
        if seasonal_mae >= naive_mae:
            reasons["seasonal"] = (
                f"before the test tail seasonal naive's MAE at horizon {horizon} ({seasonal_mae:.4g}) is no lower than "
                f"naive's ({naive_mae:.4g})"
            )
    if "profile" in scalings:
        reasons.update(_profile_reason(history, season_length, horizon))
    kept = [value for value in scalings if value not in reasons]
    if not reasons or not kept:
        return specs, None
    specs = {**specs, "scaling": {"kind": "choice", "values": kept}}
    return specs, "; ".join(
        f"space.scaling: {name} left out: {reason}; space.scaling.value={name} searches it anyway"
        for name, reason in reasons.items()
    )


def _profile_reason(history: np.ndarray, season_length: int, horizon: int) -> dict[str, str]:
    """`{"profile": why}` where the season's average change, from the first 80 % of `history`, forecasts the rest no
    better than naive at `horizon` (the phase known: this asks whether the profile itself holds anything); else `{}`."""
    cut = int(len(history) * 0.8)
    origins = range(cut, len(history) - horizon + 1)
    if cut <= season_length + 1 or len(origins) < 1:
        return {"profile": f"the {len(history)} points before the test tail are too few to learn a season's profile"}
    path = profile_path(seasonal_profile(history[:cut], season_length)[0], np.asarray(origins), horizon)
    actual = targets(history, origins, horizon).reshape(len(origins), horizon)
    last = naive(history, origins, horizon).reshape(len(origins), -1)
    naive_mae = float(np.mean(np.abs(actual - last)))
    profile_mae = float(np.mean(np.abs(actual - (last[:, :1] + path))))
    if profile_mae < naive_mae:
        return {}
    return {
        "profile": (
            f"the season's average change (from the first 80 % of the points before the test tail) forecasts the rest "
            f"no better than naive at horizon {horizon} ({profile_mae:.4g} vs {naive_mae:.4g})"
        )
    }


def backtest_folds(search: DictConfig, layout: Layout) -> tuple[int, str | None]:
    """The backtest's fold count (0: no backtest), and a note when it was skipped or its folds lowered.

    `search.select.backtest=auto` skips it when its ranking cannot change the registered model: an ensemble of
    configurations that averages (or, with `search.blend`, weighs) every one of the `top_k` it would rank (each
    member is seeded the same whatever its rank). It would only choose which searched model is shown as the winner
    beside the baselines.
    """
    select = search.select
    if select.top_k <= 1 or select.backtest == "never":
        return 0, None
    if select.backtest == "auto" and search.ensemble_of == "configurations" and search.ensemble >= select.top_k:
        return 0, (
            f"no backtest: the registered model {'weighs' if search.blend else 'averages'} all {select.top_k} best "
            f"configurations (search.ensemble="
            f"{search.ensemble} >= search.select.top_k={select.top_k}), so ranking them would change nothing; "
            "search.select.backtest=always scores them anyway"
        )
    return folds_that_fit(select.folds, select.top_k, layout)


def folds_that_fit(folds: int, top_k: int, layout: Layout) -> tuple[int, str | None]:
    """The backtest's fold count, and a note when it had to be lowered.

    Each fold scores `data.horizon`-step forecasts on its own block of the scored validation points, so a
    block shorter than the horizon has no origin: on a short series (300 monthly points, `data.horizon=24`)
    the folds are lowered to as many blocks of `horizon` points as the validation holds, at least one.
    """
    if top_k <= 1 or layout.score_points // folds >= layout.horizon:
        return folds, None
    fitted = max(1, layout.score_points // layout.horizon)
    return fitted, (
        f"search.select.folds={folds} lowered to {fitted}: the {layout.score_points} scored validation points hold "
        f"{fitted} block{'s' if fitted > 1 else ''} of data.horizon={layout.horizon} (set search.select.folds to choose)"
    )


def _check_scoring(search: DictConfig, layout: Layout, origins: int | None = None, what: str = "scored validation") -> None:
    """The conformal intervals (`search.intervals`) need enough calibration origins: the layout's scored validation
    origins, or `origins` (a panel's: every series' validation origins together)."""
    if search.intervals_method != "conformal" and not search.intervals:
        raise UserError(f"search.intervals_method={search.intervals_method} needs levels: set search.intervals, e.g. [0.8,0.95]")
    for level in search.intervals:
        if not 0 < level < 1:
            raise UserError(f"search.intervals: {level} is not a level in (0, 1): use e.g. search.intervals=[0.8,0.95]")
        needed, have = calibration_limit(level), len(layout.val_origins) if origins is None else origins
        if have < needed:
            more = "more series" if origins is not None else "lower space.split_time for more validation points"
            raise UserError(
                f"search.intervals: a {level:g} interval needs at least {needed} {what} origins, this layout has "
                f"{have}: lower the level, or {more}"
            )

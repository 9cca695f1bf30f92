"""Keras Tuner classes with MLflow tracking wrapped around `run_trial`, and the factory that picks one.

Each trial runs inside its own nested MLflow run: params and tags at the start, per-epoch metrics
from a Keras callback, forecast plot, history and model at the end. An exception closes the run
as FAILED (KILLED on interrupt) before Keras Tuner records the trial, so no run is left RUNNING.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
import numpy as np

from search.core import interrupts
from search.core.files import disk_full, write_atomic
from search.fit.memory import release_traced_graphs
from search.plan.budget import Progress, trial_schedule
from search.plan.space import tunable_names
from search.processes.oracle_guard import guard_client, required_token, serve_until_done
from search.record.plots import forecast_figure, paths_figure, spread_origins
from search.record.report import progress_line, say
from search.record.tracking import Tracker

if TYPE_CHECKING:
    from keras_tuner.engine.trial import Trial
    from keras_tuner.src.distribute.oracle_client import OracleClient
    from matplotlib.figure import Figure
    from omegaconf import DictConfig

    from search.fit.hypermodel import WindowedHyperModel
    from search.fit.panel_hypermodel import PanelHyperModel

TUNER_TAGS = {"tuner/bracket": "bracket", "tuner/round": "round", "tuner/trial_id": "continues"}
METRIC_NAMES = {"loss": "train_loss", "mae": "train_mae"}
"""Keras' names for the training metrics, as logged: `loss` is also a hyperparameter (the loss function's name),
and MLflow's runs table would show both under one heading."""


def _save_json_whole(path: str | Path, obj: Any) -> str:
    """Keras Tuner's `utils.save_json`, written atomically: a kill or a full disk mid-write leaves the previous
    `oracle.json` / `trial.json` whole, so a resume can read it (Keras Tuner writes them in place)."""
    text = json.dumps(obj)
    write_atomic(Path(path), text)
    return text


keras_tuner.src.utils.save_json = _save_json_whole  # read by module attribute in its oracle, trials and tuner


class EpochLogger(keras.callbacks.Callback):
    """Sends each epoch's metrics and duration to the trial's MLflow run, one call per epoch, off the training thread.

    Keras Tuner deep-copies callbacks; this one is shared instead, so the tracker sees what it logged.
    """

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        super().__init__()
        self.tracker, self.run_id = tracker, run_id
        self.history: dict[str, list[float]] = {}
        self.fit_seconds = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> EpochLogger:
        return self

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._fit_started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {name: float(value) for name, value in (logs or {}).items()}
        logs["epoch_seconds"] = time.perf_counter() - self._epoch_started
        for name, value in logs.items():
            self.history.setdefault(name, []).append(value)
        # best_val_mae (the trial's score so far) goes first: MLflow's compare page plots a run's first metric by default.
        scores = self.history.get("val_mae")
        metrics = {"best_val_mae": min(scores)} if scores else {}
        metrics.update({METRIC_NAMES.get(name, name): value for name, value in logs.items()})
        self.tracker.in_background(functools.partial(self.tracker.log_metrics, self.run_id, metrics, step=epoch))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.fit_seconds = time.perf_counter() - self._fit_started


class DiskFull(keras_tuner.errors.FatalError):
    """The disk or the tracking store ran full during a trial: Keras Tuner lets a `FatalError` end the search,
    the trial stays unfinished in its oracle, and a resume runs it again (`search.command.jobs` says what to do)."""


def _trial_figure(hypermodel: WindowedHyperModel, model: keras.Model, trial_id: str, scores: list[float]) -> Figure:
    """A trial's forecast of the scored validation points (h-step paths from a few origins over a horizon),
    titled with its MAE, its best epoch's and the naive forecast's."""
    from data.baselines import naive

    layout = hypermodel.layout
    if hypermodel.panel:
        return _panel_trial_figure(hypermodel, model, trial_id)
    x, actual = hypermodel.scored_windows(model.input_shape[1])
    # One direct call on every window: no predict-function tracing for a model used once.
    # convert_to_numpy: a PyTorch output still holds its autograd graph, which np.asarray refuses
    predicted = keras.ops.convert_to_numpy(model(np.ascontiguousarray(x), training=False)).reshape(actual.shape)
    origins = layout.val_origins
    naive_mae = np.mean(np.abs(naive(hypermodel.series, origins, layout.horizon) - actual))
    title = f"trial {trial_id}: validation forecast"
    if scores:
        title += f", MAE {np.mean(np.abs(predicted - actual)):.4g} (best epoch {min(scores):.4g}; naive {naive_mae:.4g})"
    if layout.horizon == 1:
        return forecast_figure(origins, actual, predicted, title)
    shown = spread_origins(origins, 6, layout.horizon)
    time = np.arange(layout.score_start, layout.test_start)
    return paths_figure(time, hypermodel.series[time], shown, [predicted[t - origins.start] for t in shown], title)


def _panel_trial_figure(hypermodel: PanelHyperModel, model: keras.Model, trial_id: str) -> Figure:
    """A panel trial's validation forecasts of its best, median and worst series (in each series' scaled units)."""
    import dataclasses

    from search.record.plots import panel_figure

    layout = hypermodel.layout
    x, actual = hypermodel.scored_windows(model.input_shape[1])
    rows, _ = hypermodel.origin_rows(model.input_shape[1], range(layout.score_start, layout.test_start))
    predicted = keras.ops.convert_to_numpy(model(np.ascontiguousarray(x), training=False)).reshape(actual.shape)
    count = hypermodel.scaled.panel.count
    errors = np.bincount(rows, np.abs(predicted - actual).mean(axis=1), count) / np.maximum(np.bincount(rows, minlength=count), 1)
    order = np.argsort(errors)
    picked = [int(order[0]), int(order[count // 2]), int(order[-1])]
    scaled = dataclasses.replace(hypermodel.scaled.panel, values=hypermodel.series)
    return panel_figure(scaled, layout, picked, rows, {"trial": predicted}, errors, layout.score_start, f"trial {trial_id}, ")


class TrackingMixin:
    """Mixed in before a Keras Tuner class: one MLflow child run per trial, one line of progress."""

    tracker: Tracker
    specs: dict
    log_trial_models: bool = True
    log_trial_plots: bool = True
    trials_run: int = 0  # trained to the end by this process (a distributed worker reports it)
    worker_timeout_s: float = 120.0  # a distributed chief: silence after which a worker is presumed dead
    max_reclaims_per_trial: int = 2  # a distributed chief: dead workers a trial may outlive before it is ended FAILED

    @property
    def worker_id(self) -> str | None:
        """This process's id among several workers (`search.workers`, a distributed worker); None in a one-process
        search (Keras Tuner's id `tuner0`)."""
        return None if self.tuner_id == "tuner0" else self.tuner_id

    def search(self, *args: Any, **kwargs: Any) -> None:
        """Keras Tuner's search, except on a distributed chief: there the oracle is served behind the search's token
        (`search.processes.oracle_guard`) until every trial has ended, as Keras Tuner's own (unguarded) server would."""
        address = _chief_oracle_address()
        if address is None:
            return super().search(*args, **kwargs)
        self.oracle.verbose = kwargs.get("verbose", self.oracle.verbose)
        self.save()
        token = required_token("chief")
        served = serve_until_done(
            self.oracle,
            address,
            token,
            self.worker_timeout_s,
            self._worker_presumed_dead,
            failed_in_a_row,
            max_reclaims_per_trial=self.max_reclaims_per_trial,
        )
        if not served:
            raise RuntimeError("too many failed trials in a row")  # as Keras Tuner's oracle says it (`tuning._search`)
        return None

    def _worker_presumed_dead(self, worker_id: str, trial: Trial | None) -> None:
        """A worker sent nothing for `worker_timeout_s`: its trial went back to the oracle; close the run it left."""
        why = f"its worker {worker_id} sent nothing for {self.worker_timeout_s:g} s (search.distributed.worker_timeout_s)"
        if trial is None:
            say(f"worker {worker_id}: {why.removeprefix(f'its worker {worker_id} ')}; it held no trial")
            return
        failed = trial.status == "FAILED"  # its workers went silent too often (`oracle_guard.reclaim`)
        outcome = f"it failed: {trial.message}" if failed else "goes to another"
        say(f"worker {worker_id}: {why.removeprefix(f'its worker {worker_id} ')}; trial {trial.trial_id} {outcome}")
        fate = f"the trial failed: {trial.message}" if failed else "the trial went to another worker"
        try:  # its own run only: the next worker may already have opened one for the trial
            for run in self.tracker.trial_runs(trial.trial_id):
                if run.info.status == "RUNNING" and run.data.tags.get("worker") == worker_id:
                    self.tracker.set_tags(run.info.run_id, {"killed_reason": f"{why}: {fate}"})
                    self.tracker.end(run.info.run_id, "KILLED")
        except Exception as err:  # noqa: BLE001 - the store unreachable now: closed at the end (`close_stale_runs`)
            say(f"warning: the run worker {worker_id} left could not be closed now ({type(err).__name__}); it will be at the end")

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> list[keras.callbacks.History]:
        values = trial.hyperparameters.values
        tags = {tag: str(values[key]) for key, tag in TUNER_TAGS.items() if key in values}
        if self.worker_id:
            tags["worker"] = self.worker_id
        self._trial_started = started = time.perf_counter()
        # An exception closes the run FAILED (KILLED on an interrupt) before Keras Tuner records the trial.
        name = f"trial-{trial.trial_id}" + (f" (continues {tags['continues']})" if "continues" in tags else "")
        start_run = functools.partial(self.tracker.start_trial, trial.trial_id, values, tags, name)
        with self.tracker.closing(start_run, finish=False) as run_id:
            logger = EpochLogger(self.tracker, run_id)
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [logger]
            try:
                results = super().run_trial(trial, *args, **kwargs)
            except Exception:
                # An interrupt that a library swallowed comes back as another error (Keras' `ops.shape` has a bare
                # `except:`, and leaves a None shape that fails later): the trial was stopped, not failed. It stays
                # unfinished in the oracle and its run KILLED, so a resume trains it again.
                interrupts.check()
                raise
        timing = {"trial_seconds": time.perf_counter() - started, "fit_seconds": logger.fit_seconds}
        self._finish_trial(trial, run_id, logger, timing)
        return results

    def _finish_trial(self, trial: Trial, run_id: str, logger: EpochLogger, timing: dict) -> None:
        """Final score, timing, history, forecast plot and model of a trial that trained to the end.

        All of it happens on the tracker's logging thread while the next trial trains: the trained
        model is handed over (Keras Tuner builds a new one for the next trial) and forecast, drawn,
        saved and uploaded there.
        """
        tracker, history, model, hypermodel = self.tracker, logger.history, logger.model, self.hypermodel
        log_model, log_plot = self.log_trial_models, self.log_trial_plots

        def log_and_close() -> None:
            model_dir = Path(tempfile.mkdtemp(prefix="trial-model-")) if log_model else None
            try:
                scores = history.get("val_mae", [])
                final = {"best_val_mae": min(scores)} if scores else {}
                if scores and "val_mae_h1" in history:  # over a horizon: each step's MAE at the best epoch
                    best = int(np.argmin(scores))
                    final.update({name: values[best] for name, values in history.items() if name.startswith("val_mae_h")})
                tracker.log_metrics(run_id, {**timing, **final}, step=len(scores))
                tracker.log_json(run_id, history, "history.json")
                if log_plot:
                    tracker.log_figure(
                        run_id, _trial_figure(hypermodel, model, trial.trial_id, scores), "forecast_validation.png"
                    )
                if model_dir:
                    model.save(model_dir / "model.keras")
                    tracker.log_file(run_id, model_dir / "model.keras")
            finally:
                if model_dir:
                    shutil.rmtree(model_dir, ignore_errors=True)
                tracker.end(run_id, "FINISHED")

        tracker.in_background(log_and_close)
        self.trials_run += 1
        scores = logger.history.get("val_mae")
        self._keep_for_continuation(trial, model, min(scores) if scores else None)  # the trial's score, as the oracle's

    def _keep_for_continuation(self, trial: Trial, model: keras.Model, score: float | None) -> None:
        """Tuners that continue trials (Hyperband) keep the trained model for that."""

    def _run_and_update_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> None:
        """A full disk (or tracking store) stops the search instead of failing the trial: Keras Tuner records any
        other error as a failed trial, which a resume never retries, while this trial did nothing wrong."""
        try:
            return super()._run_and_update_trial(trial, *args, **kwargs)
        except Exception as err:
            if disk_full(err):
                raise DiskFull(f"{type(err).__name__}: {err}") from err
            raise

    def _try_build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Keras Tuner's build step with one full garbage collection instead of two: its own `gc.collect()` follows
        Keras' `clear_session()`, which collects too; a full collection costs a good part of a short trial."""
        clear_session = keras.backend.clear_session
        keras.backend.clear_session = functools.partial(clear_session, free_memory=False)
        try:
            return super()._try_build(hp)
        finally:
            keras.backend.clear_session = clear_session

    def on_trial_end(self, trial: Trial) -> None:
        with interrupts.critical():
            super().on_trial_end(trial)
        release_traced_graphs()
        seconds = time.perf_counter() - getattr(self, "_trial_started", time.perf_counter())
        best = self.oracle.get_best_trials(1)
        if self.worker_id:  # the chief's oracle scored the trial; this process's copy of it has no score
            trial = self.oracle.get_trial(trial.trial_id)
        progress = getattr(self, "progress", None)
        budget = progress.line(trial.trial_id, time.perf_counter()) if progress else ""
        line = progress_line(trial, tunable_names(self.specs), best[0].score if best else None, seconds, self.worker_id, budget)
        say(line)
        interrupts.check()  # an interrupt swallowed during the trial stops the search here, its state saved


class TrainedModels:
    """Compiled models of this process's trials that Hyperband may continue in a later round, by trial id.

    Keras Tuner continues a trial by building a fresh model and loading the best checkpoint into it,
    so each continuation traced its train and validation steps anew: seconds for an LSTM, most of a
    1-3 epoch trial (`bench/README.md` §5). A continuation trains the same configuration, so the
    model that trial left, its traced functions included, is reused instead: its best checkpoint is
    loaded into it and its optimizer's variables set to those of a fresh optimizer (step 0).

    Only the models Hyperband will continue are kept: as many of the best of each bracket's round as
    its next round holds (`continued`). Every model kept alive is scanned by each full garbage
    collection (a traced LSTM graph is ~25k objects), which costs more than its tracing would if
    every candidate is kept (`bench/README.md` §9).
    """

    def __init__(self, tracker: Tracker, max_epochs: int, factor: int) -> None:
        self.tracker, self.max_epochs, self.factor = tracker, max_epochs, factor
        self._models: dict[str, keras.Model] = {}
        self._rounds: dict[tuple, list[tuple[float, str]]] = collections.defaultdict(list)  # (score, id) of each round

    def continued(self, bracket: int, round_: int) -> int:
        """How many trials of `round_` Hyperband continues: the size of the next round (Keras Tuner's
        `HyperbandOracle._get_size`, which a distributed worker's oracle client does not offer)."""
        last_round_size = math.ceil(1 + math.log(self.max_epochs, self.factor)) / (bracket + 1)
        return math.ceil(last_round_size * self.factor ** (bracket - round_ - 1))

    def keep(self, trial_id: str, model: keras.Model, group: tuple, score: float) -> None:
        """Keep `model` if its score is among the best its (bracket, round) sends on; drop one that fell out."""
        seen = self._rounds[group]
        seen.append((score, trial_id))
        seen.sort()
        self._models[trial_id] = model
        for _, dropped in seen[self.continued(*group) :]:  # a fixed number: a model out of it never comes back in
            self._models.pop(dropped, None)

    def take(self, trial_id: str | None) -> keras.Model | None:
        """The model `trial_id` left, or None; the caller loads its weights, then calls `restart_optimizer`."""
        model = self._models.pop(trial_id, None) if trial_id else None
        if model is not None:
            self.tracker.drain()  # the logging thread may still be saving this model from its last trial
        return model

    def __len__(self) -> int:
        return len(self._models)


def restart_optimizer(model: keras.Model) -> bool:
    """Put the model's optimizer at step 0 with its slots as initialised, as a new model's starts; False if it cannot.

    Loading a checkpoint restores the optimizer's state too once the optimizer is built (a fresh model's
    is not, so Keras Tuner's continuations start from a fresh optimizer): this undoes that.
    """
    optimizer = model.optimizer
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(model.trainable_variables)
    if len(fresh.variables) != len(optimizer.variables):  # not built alike: leave it to a fresh model
        return False
    for variable, start in zip(optimizer.variables, fresh.variables, strict=True):
        variable.assign(start)
    return True


class TrackedHyperband(TrackingMixin, keras_tuner.Hyperband):
    """Hyperband with MLflow tracking; a trial that continues one this process trained reuses its compiled model."""

    trained_models: TrainedModels | None = None

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        previous = hp.values.get("tuner/trial_id")
        model = self.trained_models.take(previous) if self.trained_models is not None else None
        if model is None:
            return super()._build_hypermodel(hp)
        model.load_weights(self._get_checkpoint_fname(previous))  # its best epoch, as Keras Tuner loads it
        return model if restart_optimizer(model) else super()._build_hypermodel(hp)

    def _keep_for_continuation(self, trial: Trial, model: keras.Model, score: float | None) -> None:
        values = trial.hyperparameters.values
        bracket, round_ = values.get("tuner/bracket", 0), values.get("tuner/round", 0)
        if self.trained_models is not None and score is not None and round_ < bracket:  # a last round is never continued
            self.trained_models.keep(trial.trial_id, model, (bracket, round_), score)


class TrackedRandomSearch(TrackingMixin, keras_tuner.RandomSearch):
    """Random search with MLflow tracking."""


class TrackedBayesianOptimization(TrackingMixin, keras_tuner.BayesianOptimization):
    """Bayesian optimisation with MLflow tracking."""


TUNERS = {"hyperband": TrackedHyperband, "random": TrackedRandomSearch, "bayesian": TrackedBayesianOptimization}


def make_tuner(
    tuner_cfg: DictConfig,
    tracking_cfg: DictConfig,
    seed: int,
    hypermodel: WindowedHyperModel,
    tracker: Tracker,
    specs: dict,
    run_dir: Path,
    resume: bool,
    worker_timeout_s: float = 120.0,
    max_reclaims_per_trial: int = 2,
) -> TrackedHyperband | TrackedRandomSearch | TrackedBayesianOptimization:
    """The tuner `tuner_cfg` (the config's `tuner`) names, tracked by `tracker` as `tracking_cfg` says (what each
    trial logs); its project in `run_dir/tuner`, its oracle seeded with `seed`.

    `resume` reloads the project instead of starting over. `worker_timeout_s` (`search.distributed.worker_timeout_s`):
    a distributed chief gives the trial of a worker silent that long to another (at most `max_reclaims_per_trial`
    times a trial, `search.distributed.max_reclaims_per_trial`: then it is ended FAILED); a worker sends a heartbeat
    five times as often.
    """
    common = dict(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective("val_mae", direction="min"),
        executions_per_trial=tuner_cfg.executions_per_trial,
        max_retries_per_trial=tuner_cfg.max_retries_per_trial,
        max_consecutive_failed_trials=tuner_cfg.max_consecutive_failed_trials,
        seed=seed,
        directory=str(run_dir),
        project_name="tuner",
        overwrite=not resume,
    )
    if tuner_cfg.name == "hyperband":
        extra = dict(
            max_epochs=tuner_cfg.max_epochs, factor=tuner_cfg.factor, hyperband_iterations=tuner_cfg.hyperband_iterations
        )
    else:
        extra = dict(max_trials=tuner_cfg.max_trials)
    reloaded = resume and (run_dir / "tuner" / "oracle.json").exists()
    tuner = TUNERS[str(tuner_cfg.name)](**common, **extra)
    if not reloaded and not tuner._is_worker():
        _pin_seed(tuner.oracle, seed)
    tuner.tracker, tuner.specs = tracker, specs
    tuner.log_trial_models, tuner.log_trial_plots = tracking_cfg.log_trial_models, tracking_cfg.log_trial_plots
    if tuner_cfg.name == "hyperband" and tuner_cfg.reuse_models:
        tuner.trained_models = TrainedModels(tracker, tuner_cfg.max_epochs, tuner_cfg.factor)
    tuner.worker_timeout_s, tuner.max_reclaims_per_trial = worker_timeout_s, max_reclaims_per_trial
    tuner.progress = Progress(trial_schedule(tuner_cfg), time.perf_counter())
    if tuner._is_worker():  # its oracle is a client of the chief's: every call carries the search's token
        heartbeat_s = min(worker_timeout_s / 5, HEARTBEAT_S)
        guard_client(tuner.oracle, _oracle_address(), required_token("worker"), tuner.tuner_id, heartbeat_s)
    _guard_create_trial(tuner.oracle, idle_wait_s=0.2 if tuner._is_worker() else 0.0)
    return tuner


HEARTBEAT_S = 10.0
"""A distributed worker's heartbeat to the chief, at most this far apart (a fifth of the timeout where shorter): the
chief's `search.distributed.worker_timeout_s` may be set shorter than the worker's."""


def failed_in_a_row(oracle: keras_tuner.Oracle) -> bool:
    """Whether `max_consecutive_failed_trials` trials failed in a row anywhere in the oracle's history: the rule by
    which Keras Tuner raises (`Oracle._check_consecutive_failures`), so its RuntimeError means that and nothing else."""
    in_a_row = 0
    for trial_id in oracle.end_order:
        in_a_row = in_a_row + 1 if oracle.trials[trial_id].status == "FAILED" else 0
        if in_a_row >= oracle.max_consecutive_failed_trials:
            return True
    return False


def _oracle_address() -> str:
    return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"


def _chief_oracle_address() -> str | None:
    """The address a distributed chief serves its oracle on (Keras Tuner's variables), or None in any other process."""
    has_oracle = "KERASTUNER_ORACLE_IP" in os.environ and "KERASTUNER_ORACLE_PORT" in os.environ
    return _oracle_address() if has_oracle and os.environ.get("KERASTUNER_TUNER_ID") == "chief" else None


def _pin_seed(oracle: keras_tuner.Oracle, seed: int) -> None:
    """Keras Tuner's oracle takes `seed or random.randint(1, 10000)`: `seed=0` would draw other trials on every run.
    Its seed is set again here, with what it seeded at construction (a reloaded oracle keeps the seed it saved)."""
    if oracle.seed == seed:
        return
    oracle.seed = oracle._seed_state = seed
    if hasattr(oracle, "_random_state"):  # Bayesian optimisation: its own NumPy state and Gaussian process
        oracle._random_state = np.random.RandomState(seed)
        oracle.gpr = oracle._make_gpr()


def _guard_create_trial(oracle: keras_tuner.Oracle | OracleClient, idle_wait_s: float) -> None:
    """Keras Tuner writes its oracle state in place when it hands out a trial: hold interrupts meanwhile. A worker
    (`idle_wait_s` > 0) whose chief has no trial to hand out yet (Hyperband waiting for a round to finish) waits
    that long before it asks again: Keras Tuner's loop asks again at once, keeping a core busy."""
    create_trial = oracle.create_trial

    def guarded_create_trial(*args: Any, **kwargs: Any) -> Trial:
        with interrupts.critical():
            trial = create_trial(*args, **kwargs)
        if idle_wait_s and trial.status == "IDLE":
            time.sleep(idle_wait_s)
        return trial

    oracle.create_trial = guarded_create_trial

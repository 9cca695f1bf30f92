"""Typed configuration (Hydra structured configs): a typo, a wrong type or a value outside a fixed set
fails at composition, before TensorFlow is imported. The YAML files in `conf/` fill these schemas in.

Each default lives in one place: here, unless a `conf/` file is the choice itself (a data set's
name and split, a tuner's budget). The synthetic series' shape comes from `data.sources.CourseSeries`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from data.sources import CourseSeries


class Choice(str, Enum):
    """A value from a fixed set: Hydra refuses any other at composition; compares, prints and logs as its string."""

    def __str__(self) -> str:
        return self.value


class Mode(Choice):
    search = "search"
    lr_find = "lr_find"


class TunerName(Choice):
    hyperband = "hyperband"
    random = "random"
    bayesian = "bayesian"


class GapPolicy(Choice):
    error = "error"
    interpolate = "interpolate"
    drop = "drop"


class Role(Choice):
    chief = "chief"
    worker = "worker"


class EnsembleOf(Choice):
    configurations = "configurations"
    seeds = "seeds"


class Backtest(Choice):
    auto = "auto"
    always = "always"
    never = "never"


class BlendEvidence(Choice):
    validation = "validation"
    earlier = "earlier"
    both = "both"


class IntervalMethod(Choice):
    conformal = "conformal"
    cqr = "cqr"


class BackendName(Choice):
    auto = "auto"
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


class SweepStep(Choice):
    batch = "batch"
    epoch = "epoch"


@dataclass
class DataCommon:
    """Fields every data source has: how the series is split and windowed."""

    name: str = MISSING
    test_size: int = 0
    season_length: int = 0
    ma_window: int = 30
    ar_lags: int = 24
    shuffle_buffer: int = 1000
    horizon: int = 1  # values forecast from each origin (direct multi-output); 1: one step ahead


@dataclass
class SyntheticData(CourseSeries, DataCommon):
    """The TF course's synthetic series: `length`, `baseline`, `slope`, `period`, `amplitude`, `noise_level`,
    `noise_seed`, with the course's values as defaults (`data.sources.CourseSeries`)."""

    source: str = "synthetic"


@dataclass
class ColumnData(DataCommon):
    """One numeric column of a CSV file, optionally indexed by a time column (see `data.sources.csv_series`)."""

    column: str = MISSING
    time_column: Optional[str] = None
    gaps: GapPolicy = GapPolicy.error


@dataclass
class CsvData(ColumnData):
    """A CSV file of the user's: `data.path`."""

    source: str = "csv"
    path: str = MISSING


@dataclass
class BundledData(ColumnData):
    """A real series shipped with the project in `data/series/` (see `data/series/export.py` for its source)."""

    source: str = "bundled"
    file: str = MISSING


@dataclass
class PanelCommon(DataCommon):
    """Fields of a panel (many series in one search, `data.panel`): the last `test_size` points of every series are
    its test tail; `windows_per_series`: each series' latest training windows kept (0: all of them)."""

    windows_per_series: int = 16


@dataclass
class PanelData(PanelCommon):
    """A long CSV of many series: one row per series and time (`data.panel.read_panel`)."""

    source: str = "panel"
    path: str = MISSING
    id_column: str = "unique_id"
    time_column: str = "ds"
    column: str = "y"


@dataclass
class SyntheticPanelData(PanelCommon):
    """The embedded panel of short seasonal series (`data.panel.synthetic_panel`): `count`, `min_length`,
    `max_length`, `season_length`, `seed`."""

    source: str = "synthetic_panel"
    count: int = 300
    min_length: int = 60
    max_length: int = 240
    seed: int = 0


@dataclass
class HyperparameterSpec:
    """One entry of a search space. Setting `value` pins it, whatever its kind."""

    kind: str = "fixed"
    min: Any = None
    max: Any = None
    step: Any = None
    log: bool = False
    values: Optional[List[Any]] = None
    value: Any = None
    default: Any = None
    range: Optional[str] = None  # learning_rate only: "auto" narrows min/max with the LR range test first
    per: Optional[str] = None  # window_size only: "horizon" reads its values as multiples of data.horizon


@dataclass
class TunerConfig:
    """Keras Tuner settings; `name` picks hyperband, random or bayesian."""

    name: TunerName = TunerName.hyperband
    max_epochs: int = 27  # hyperband: the most epochs a trial trains; random/bayesian: every trial's epochs
    factor: int = 4  # hyperband: how many trials each round keeps one of (4: 44 trials at max_epochs 27; 3: 70, ~1.8x the time)
    hyperband_iterations: int = 1
    max_trials: int = 10  # random and bayesian only
    executions_per_trial: int = 1
    patience: int = 5  # early stopping on val_mae inside each trial (0: never)
    max_consecutive_failed_trials: int = 3  # the search stops after this many failed trials in a row
    max_retries_per_trial: int = 0
    reuse_models: bool = True  # hyperband: a continued trial reuses its predecessor's compiled model (no new tracing)


@dataclass
class TrackingConfig:
    """Where MLflow writes. `uri: null` means `MLFLOW_TRACKING_URI`, else `sqlite:///<launch dir>/mlflow.db`."""

    uri: Optional[str] = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<launch dir>/mlflow.db
    experiment: Optional[str] = None  # null: "<data.name>-<space>"
    artifact_location: Optional[str] = None  # null: <dir of the sqlite file>/mlartifacts (a server: its default)
    registered_model: Optional[str] = None  # null: "<data.name>-<space>"; the best version gets alias "champion"
    log_trial_models: bool = True  # each trial's .keras model as an artifact of its child run
    log_trial_plots: bool = True  # each trial's validation forecast plot (one forward pass and a figure a trial)
    system_metrics: bool = True  # CPU, memory (GPU with nvidia-ml-py) of the machine on the parent run, every 10 s


@dataclass
class DistributedConfig:
    """Keras Tuner's chief/worker mode: `role` chief serves the oracle, workers train its trials.

    Equivalent to Keras Tuner's variables KERASTUNER_TUNER_ID (chief, or the worker's id),
    KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, which are used when `role` is null.
    """

    role: Optional[Role] = None  # null (one process) | chief (serves the oracle) | worker (trains trials)
    oracle_ip: str = "127.0.0.1"  # the chief's address, as workers reach it
    oracle_port: int = 8000
    worker_id: Optional[str] = None  # a worker's tuner id; null: worker-<host>-<pid>
    attach_timeout_s: int = 300  # how long a worker waits for the chief's MLflow parent run
    worker_timeout_s: float = 120.0  # a worker silent this long (heartbeat: every fifth of it) loses its trial to another
    max_reclaims_per_trial: int = 2  # a trial whose workers went silent more often than this is ended FAILED


@dataclass
class SelectConfig:
    """How the winner is chosen after the search: a rolling-origin backtest of the `top_k` best configurations
    over `folds` expanding windows (`top_k: 1` keeps the search's best trial, with no backtest).

    `backtest: auto` runs it only when its ranking can change the registered model: not when that model averages
    every one of the `top_k` configurations (`search.ensemble` >= `top_k`, the default), where the 15 fits would
    only rename the winner shown beside the baselines.
    """

    top_k: int = 5  # the best distinct configurations: what the backtest ranks, the ensemble draws from (1: the search's best)
    folds: int = 3  # expanding-window folds over the scored validation points
    backtest: Backtest = Backtest.auto  # auto: when it can change the registered model | always | never: rank by search score


@dataclass
class SearchConfig:
    """How this search runs: `resume` continues the tuner project and MLflow run in hydra.run.dir."""

    resume: bool = False  # true: continue the search in hydra.run.dir (same tuner project, same MLflow run)
    deterministic: bool = True  # TF op determinism: the same command twice gives the same trials on CPU
    workers: Any = "auto"  # trials (and fits after the search) trained at once: N processes | auto: one per CPU core, <= 8
    gpus: Optional[int] = None  # multirun: job k gets GPU k mod N; N = this, or null: every visible GPU (0: none)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    blend: bool = True  # weigh networks and statistical forecasters on out-of-sample forecasts (false: refit + average)
    blend_rounds: int = 25  # the blend's greedy selection rounds on each resample of the validation origins
    blend_evidence: BlendEvidence = BlendEvidence.validation  # origins the weights are chosen on: validation | earlier | both
    refit: bool = True  # retrain on every point before the test tail (blend: a candidate, kept where it earns it)
    ensemble: int = 5  # the networks offered: k configurations (blend: weighed; else k > 1 averages them); 1: the winner
    ensemble_of: EnsembleOf = EnsembleOf.configurations  # the k best of the backtest | seeds: k seeds of the winner
    ets_baseline: bool = True  # the statsmodels baselines (and blend members): Holt-Winters (ets) and Theta
    intervals: List[float] = field(default_factory=list)  # conformal interval levels, e.g. [0.8, 0.95] ([]: none)
    intervals_method: IntervalMethod = IntervalMethod.conformal  # around the forecast | cqr: a quantile head's bands


@dataclass
class LrFindConfig:
    """The learning-rate range test (`mode=lr_find`, or `space.learning_rate.range=auto` before a search).

    The learning rate grows geometrically from `start` towards `end` (exclusive) over `steps` steps, a
    step being one batch (`per: batch`) or one epoch (`per: epoch`, as the course does).
    """

    start: float = 1e-7
    end: float = 1.0
    steps: int = 200  # learning rates tried
    per: SweepStep = SweepStep.batch  # batch: one batch per rate (seconds); epoch: one epoch per rate (the course's)
    smoothing: float = 0.9  # EMA factor for the loss curve (0: raw losses)
    stop_factor: float = 4.0  # stop once the smoothed loss exceeds this times its lowest (0: only on NaN/inf)
    low_factor: float = 0.1  # automatic range: [suggestion * low_factor, suggestion * high_factor]
    high_factor: float = 3.0


@dataclass
class Config:
    """The whole configuration; `space` comes from `+space=<name>` (a file in `conf/space/`)."""

    seed: int = 42
    mode: Mode = Mode.search  # search | lr_find (the learning-rate range test alone, no search)
    backend: Optional[BackendName] = None  # Keras backend: tensorflow | jax | torch | auto; null: $KERAS_BACKEND, else tensorflow
    data: Any = MISSING
    tuner: TunerConfig = field(default_factory=TunerConfig)
    space: Dict[str, HyperparameterSpec] = field(default_factory=dict)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    lr_find: LrFindConfig = field(default_factory=LrFindConfig)


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore, where `conf/*.yaml` files name them in their defaults."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    store.store(group="data", name="synthetic_schema", node=SyntheticData)
    store.store(group="data", name="csv_schema", node=CsvData)
    store.store(group="data", name="bundled_schema", node=BundledData)
    store.store(group="data", name="panel_schema", node=PanelData)
    store.store(group="data", name="synthetic_panel_schema", node=SyntheticPanelData)

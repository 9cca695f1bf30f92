"""Typed configuration (Hydra structured configs): a typo or a wrong type fails at composition,
before TensorFlow is imported. The YAML files in `conf/` fill these schemas in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DataCommon:
    """Fields every data source has: how the series is split and windowed."""

    name: str = MISSING
    test_size: int = 0
    season_length: int = 0
    ma_window: int = 30
    ar_lags: int = 24
    shuffle_buffer: int = 1000


@dataclass
class SyntheticData(DataCommon):
    """The TF course's synthetic series (see `data.sources.synthetic_series`)."""

    source: str = "synthetic"
    length: int = 4 * 365 + 1
    baseline: float = 10.0
    slope: float = 0.05
    period: int = 365
    amplitude: float = 40.0
    noise_level: float = 5.0
    noise_seed: int = 42


@dataclass
class ColumnData(DataCommon):
    """One numeric column of a CSV file, optionally indexed by a time column (see `data.sources.csv_series`)."""

    column: str = MISSING
    time_column: Optional[str] = None
    gaps: str = "error"


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


@dataclass
class TunerConfig:
    """Keras Tuner settings; `name` picks hyperband, random or bayesian."""

    name: str = "hyperband"
    max_epochs: int = 27
    factor: int = 3
    hyperband_iterations: int = 1
    max_trials: int = 10
    executions_per_trial: int = 1
    patience: int = 5
    max_consecutive_failed_trials: int = 3
    max_retries_per_trial: int = 0


@dataclass
class TrackingConfig:
    """Where MLflow writes. `uri: null` means `MLFLOW_TRACKING_URI`, else `sqlite:///<launch dir>/mlflow.db`."""

    uri: Optional[str] = None
    experiment: Optional[str] = None
    artifact_location: Optional[str] = None
    registered_model: Optional[str] = None
    log_trial_models: bool = True
    log_trial_plots: bool = True


@dataclass
class DistributedConfig:
    """Keras Tuner's chief/worker mode: `role` chief serves the oracle, workers train its trials.

    Equivalent to Keras Tuner's variables KERASTUNER_TUNER_ID (chief, or the worker's id),
    KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, which are used when `role` is null.
    """

    role: Optional[str] = None
    oracle_ip: str = "127.0.0.1"
    oracle_port: int = 8000
    worker_id: Optional[str] = None
    attach_timeout_s: int = 300


@dataclass
class SelectConfig:
    """How the winner is chosen after the search: a rolling-origin backtest of the `top_k` best configurations
    over `folds` expanding windows (`top_k: 1` keeps the search's best trial, with no backtest)."""

    top_k: int = 5
    folds: int = 3


@dataclass
class SearchConfig:
    """How this search runs: `resume` continues the tuner project and MLflow run in hydra.run.dir."""

    resume: bool = False
    deterministic: bool = True
    gpus: Optional[int] = None
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    refit: bool = True
    ensemble: int = 3
    ensemble_of: str = "configurations"
    ets_baseline: bool = True


@dataclass
class LrFindConfig:
    """The learning-rate range test (`mode=lr_find`, or `space.learning_rate.range=auto` before a search).

    The learning rate grows geometrically from `start` towards `end` (exclusive) over `steps` steps, a
    step being one batch (`per: batch`) or one epoch (`per: epoch`, as the course does).
    """

    start: float = 1e-7
    end: float = 1.0
    steps: int = 200
    per: str = "batch"
    smoothing: float = 0.9
    stop_factor: float = 4.0
    low_factor: float = 0.1
    high_factor: float = 3.0


@dataclass
class Config:
    """The whole configuration; `space` comes from `+space=<name>` (a file in `conf/space/`)."""

    seed: int = 42
    mode: str = "search"
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

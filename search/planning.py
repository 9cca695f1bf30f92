"""What a search will run on, checked before TensorFlow is imported: config, space, data, layout, run dir.

Bad input costs a second here, not an hour of training: everything that can be checked from the
config and the data is checked in `plan`, and `prepare_run_dir` refuses a run dir that cannot be
written or that holds a search the user did not ask to continue. Nothing here imports TensorFlow
(`tests/test_planning.py` holds that rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import OmegaConf

from data.errors import UserError
from data.sources import load_series
from data.split import Layout, plan_layout
from search.lr_range import check_settings
from search.space import auto_learning_rate, candidates, fit_to_season, input_lengths, validate_space
from search.tracking import load_parent_id


@dataclass(frozen=True)
class RunLabels:
    """What a search's runs are labelled with, beside its config: names, provenance, its place in a sweep."""

    space: str
    data: str
    git_commit: str = "unknown"
    sweep_id: str | None = None
    sweep_job: str | None = None
    gpu: str | None = None  # the GPU a multirun job was pinned to (the job runs in a fresh process)

    @property
    def experiment(self) -> str:
        """The default MLflow experiment (and registered model) name: `<data>-<space>`."""
        return f"{self.data}-{self.space}"

    def tags(self) -> dict[str, str]:
        """The MLflow tags every run of the search carries."""
        tags = {"space": self.space, "data": self.data, "git_commit": self.git_commit}
        tags.update({name: value for name in ("sweep_id", "sweep_job") if (value := getattr(self, name)) is not None})
        return tags


@dataclass
class Plan:
    """What a search will run on, all checked: the series, the space and the layout."""

    series: np.ndarray
    specs: dict
    layout: Layout


def plan(cfg) -> Plan:
    """Validate space and data against each other; raises `UserError` on the first problem.

    Fixed sets of values (tuner, mode, policies) are Enums in `search.config`: Hydra has refused
    bad ones at composition already.
    """
    if not cfg.space:
        raise UserError("no search space: add +space=<name>")
    if cfg.mode == "lr_find" and cfg.search.resume:
        raise UserError("search.resume applies to searches, not to mode=lr_find: drop search.resume")
    for field in ("max_epochs", "executions_per_trial", "max_trials"):
        if getattr(cfg.tuner, field) < 1:
            raise UserError(f"tuner.{field}={getattr(cfg.tuner, field)} must be >= 1")
    if cfg.tuner.name == "hyperband" and cfg.tuner.factor < 2:
        raise UserError(f"tuner.factor={cfg.tuner.factor} must be >= 2")
    for field, low in (("select.top_k", 1), ("select.folds", 1), ("ensemble", 1)):
        value = OmegaConf.select(cfg.search, field)
        if value < low:
            raise UserError(f"search.{field}={value} must be >= {low}")
    specs = validate_space(OmegaConf.to_container(cfg.space, resolve=True))
    if cfg.mode == "lr_find" or auto_learning_rate(specs):
        check_settings(cfg.lr_find)
    specs, note = fit_to_season(specs, cfg.data.season_length)
    if note:
        print(f"note: {note}", flush=True)
    series = load_series(cfg.data)
    span = max(input_lengths(specs, cfg.data.season_length))
    layout = plan_layout(len(series), cfg.data.test_size, candidates(specs["split_time"]), candidates(specs["window_size"]), span)
    return Plan(series, specs, layout)


def prepare_run_dir(run_dir, resume: bool) -> None:
    """Make sure the run dir is writable, and that a search in it is only continued on purpose."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"hydra.run.dir={str(run_dir)!r} cannot be written ({err.strerror}); choose another directory") from None
    if (run_dir / "tuner").exists() and not resume:
        raise UserError(
            f"hydra.run.dir={str(run_dir)!r} already holds a search: add search.resume=true "
            "to continue it, or choose another directory"
        )
    if resume and load_parent_id(run_dir) is None:
        raise UserError(f"search.resume=true but hydra.run.dir={str(run_dir)!r} holds no search to resume; drop search.resume")

"""A finished search reloaded in this process, for studies that fit more models from its trials
(`selection_variants`, `member_count`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ReloadedSearch:
    cfg: Any  # the composed Hydra config
    plan: Any  # its `search.plan.planning.Plan`: series, layout, specs
    hypermodel: Any
    tracker: Any  # a started parent run in the study's own store
    tuner: Any
    completed: list  # the oracle's completed trials that have a score


def reload_search(space: str, overrides: list[str], run_dir: Path, store: Path, name: str) -> ReloadedSearch:
    """The search of `run_dir` (composed again from `+space=space` and `overrides`, which must match it) with its
    tuner project reloaded; trials' models and plots are not logged again; fits go to the sqlite `store`, parent
    run `name`."""
    from hydra import compose, initialize_config_dir

    from search.config import register_configs
    from search.fit.hypermodel import WindowedHyperModel
    from search.plan.planning import Request, make_plan
    from search.record.tracking import Tracker
    from search.tune.tuner import make_tuner
    from search.tune.tuning import prepare_backend

    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parent.parent / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+space={space}", *overrides])
    plan = make_plan(Request.of(cfg))
    prepare_backend(cfg.search.deterministic, cfg.seed)
    hypermodel = WindowedHyperModel(
        plan.series,
        plan.layout,
        plan.specs,
        cfg.data.shuffle_buffer,
        cfg.tuner.patience,
        cfg.seed,
        season_length=cfg.data.season_length,
    )
    tracker = Tracker(f"sqlite:///{store}", name)
    tracker.start_parent(name, {"mode": "bench"})
    cfg.tracking.log_trial_models = cfg.tracking.log_trial_plots = False
    tuner = make_tuner(cfg.tuner, cfg.tracking, cfg.seed, hypermodel, tracker, plan.specs, run_dir, resume=True)
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
    return ReloadedSearch(cfg, plan, hypermodel, tracker, tuner, completed)

"""How well a finished search's conformal intervals fit its test tail, and why: `python -m bench.interval_study <run dir>`.

    python -m bench.interval_study /path/to/run     # a run dir of `python -m search ... search.intervals=[...]`
    python -m bench.interval_study --tiny           # CI: a tiny horizon search first, then the study

Rebuilds the search's two forecasters from its run dir (the searched winner from the Keras Tuner
project, the registered model from the tracking store), forecasts every scored validation and test
origin, and prints:

- MAE by quarter of the validation origins and of the test origins (is the tail like validation?);
- per level: the split-conformal coverage the search reported (validation errors of the searched
  winner, test errors of the registered model), the same intervals around the searched winner's own
  test forecasts, the 'oracle' half-width (the test errors' own quantile) beside the calibrated one;
- variants measured against it, none of them the product's method: recency-weighted conformal
  (weights rho^age, Barber et al. 2023), calibration on the second half of validation only, and
  adaptive conformal inference over the test tail (Gibbs & Candes 2021; each origin's feedback once
  all its values are seen, i.e. `horizon` origins later) at a few step sizes gamma.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from bench.tiny import ROOT, SMALL_DNN, TINY_SEASONAL, search_env, timed_search
from search.scoring.intervals import half_widths

GAMMAS = (0.005, 0.01, 0.02, 0.05)
RHOS = (0.99, 0.95)


def load_run(run_dir: Path):
    """`(cfg, plan, summary, hypermodel)` of a finished search, composed again from its run dir's overrides."""
    import yaml
    from hydra import compose, initialize_config_dir

    from search.config import register_configs
    from search.plan.planning import Request, make_plan
    from search.tune.settings import Settings
    from search.tune.tuning import hypermodel_for, prepare_backend

    register_configs()
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=[o for o in overrides if not o.startswith("hydra.")])
    plan = make_plan(Request.of(cfg))
    prepare_backend(cfg.search.deterministic, cfg.seed)
    summary = json.loads((run_dir / "summary.json").read_text())
    return cfg, plan, summary, hypermodel_for(Settings.of(cfg), plan)


def forecasts(run_dir: Path) -> tuple[dict, int]:
    """`{searched|final}_{val|test}_{y|f}` arrays from a finished run dir, and its horizon."""
    import mlflow

    from data.windows import window_view
    from models import forecast
    from search.record.tracking import Tracker
    from search.tune.tuner import make_tuner

    cfg, plan, summary, hypermodel = load_run(run_dir)
    uri = cfg.tracking.uri or f"sqlite:///{run_dir.parent / 'mlflow.db'}"
    tracker = Tracker(uri, summary["mlflow_experiment"])
    tuner = make_tuner(cfg.tuner, cfg.tracking, cfg.seed, hypermodel, tracker, plan.specs, run_dir, True)
    searched = tuner.load_model(tuner.oracle.get_trial(summary["best_trial_id"]))
    mlflow.set_tracking_uri(uri)
    final = mlflow.keras.load_model(summary["model_uri"])
    layout, out = plan.layout, {}
    for name, model in (("searched", searched), ("final", final)):
        for split, (start, stop) in (
            ("val", (layout.score_start, layout.test_start)),
            ("test", (layout.test_start, layout.length)),
        ):
            x, y = window_view(plan.series, model.input_shape[1], start, stop, layout.horizon)
            out[f"{name}_{split}_y"], out[f"{name}_{split}_f"] = y.reshape(len(y), -1), forecast(model, x).reshape(len(y), -1)
    return out, layout.horizon


def weighted_widths(errors: np.ndarray, level: float, weights: np.ndarray) -> np.ndarray:
    """Per-step weighted conformal quantile (the unseen point weighs 1): nexCP's half-widths."""
    total, widths = weights.sum() + 1.0, []
    for column in errors.T:
        order = np.argsort(column)
        reached = np.searchsorted(np.cumsum(weights[order]) / total, level)
        widths.append(column[order][reached] if reached < len(column) else np.inf)
    return np.asarray(widths)


def adaptive_coverage(calibration: np.ndarray, test: np.ndarray, level: float, gamma: float, horizon: int) -> float:
    """Adaptive conformal inference over the test origins: each step's miscoverage target moves by gamma * (alpha -
    missed) once an origin's values are all seen (`horizon` origins later); the quantile comes from the calibration
    errors."""
    alpha = 1.0 - level
    target = np.full(test.shape[1], alpha)
    ranked, n = np.sort(calibration, axis=0), len(calibration)
    hits = []
    for t in range(len(test)):
        widths = []
        for step, a in enumerate(target):
            rank = math.ceil((n + 1) * min(max(1.0 - a, 0.0), 1.0))
            widths.append(np.inf if rank > n else ranked[max(rank, 1) - 1, step])
        hits.append(test[t] <= np.asarray(widths))
        if t - horizon + 1 >= 0:
            seen = hits[t - horizon + 1]
            target = target + gamma * (alpha - (~seen).astype(float))
    return float(np.mean(hits))


def study(data: dict, horizon: int, levels: list[float]) -> None:
    val_errors = np.abs(data["searched_val_y"] - data["searched_val_f"])
    test_errors = np.abs(data["final_test_y"] - data["final_test_f"])
    searched_test_errors = np.abs(data["searched_test_y"] - data["searched_test_f"])
    quarters = lambda e: " / ".join(f"{q.mean():.4g}" for q in np.array_split(e, 4))  # noqa: E731
    print(f"horizon {horizon}: {len(val_errors)} calibration origins, {len(test_errors)} test origins")
    print(f"MAE by quarter of origins: validation (searched winner) {quarters(val_errors)}")
    print(f"                           test (registered model)      {quarters(test_errors)}")
    zero = np.zeros_like
    for level in levels:
        widths = half_widths(val_errors, zero(val_errors), level)
        rows = [
            ("split conformal (the search's)", np.mean(test_errors <= widths)),
            (
                "  same intervals, searched winner's test forecasts",
                np.mean(searched_test_errors <= widths),
            ),
        ]
        n = len(val_errors)
        for rho in RHOS:
            weighted = weighted_widths(val_errors, level, rho ** np.arange(n)[::-1])
            rows.append((f"recency-weighted conformal, rho {rho}", np.mean(test_errors <= weighted)))
        half = half_widths(val_errors[n // 2 :], zero(val_errors[n // 2 :]), level)
        rows.append(("calibrated on the second half of validation", np.mean(test_errors <= half)))
        for gamma in GAMMAS:
            rows.append(
                (
                    f"adaptive conformal over the tail, gamma {gamma}",
                    adaptive_coverage(val_errors, test_errors, level, gamma, horizon),
                )
            )
        oracle = np.quantile(test_errors, level, axis=0)
        print(
            f"level {level:g}: mean half-width calibrated {widths.mean():.4g}, the test errors' own quantile {oracle.mean():.4g}"
        )
        for name, value in rows:
            print(f"  {name:52} coverage {value:.1%}")


def tiny_run(directory: Path) -> Path:
    """A tiny horizon search with intervals (CI): its run dir."""
    run_dir = directory / "run"
    args = ["+space=dnn", *TINY_SEASONAL, *SMALL_DNN, "data.horizon=3", "search.intervals=[0.8,0.95]", "search.ensemble=1"]
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    args += [f"hydra.run.dir={run_dir}", f"tracking.uri={uri}"]
    timed_search(args, run_dir, search_env(uri), directory)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="a finished search's hydra.run.dir")
    parser.add_argument("--tiny", action="store_true", help="run a tiny horizon search first (CI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = tiny_run(Path(scratch)) if args.tiny else args.run_dir
        if run_dir is None:
            parser.error("give a run dir, or --tiny")
        summary = json.loads((run_dir / "summary.json").read_text())
        levels = [float(level) for level in summary.get("intervals", {})] or [0.8, 0.95]
        data, horizon = forecasts(run_dir.resolve())
        study(data, horizon, levels)


if __name__ == "__main__":
    main()

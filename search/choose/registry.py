"""The Model Registry: the winner as a new version of a registered model, and the election of alias `champion`.

A version carries the tags a reader compares versions by (`val_mae`, `scored_on`, `test_mae`,
`skill_vs_naive`); `champion` points at the best version scored on the same points, so a sweep of
seeds registers every job's winner and the champion is the best of them, not the last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from search.record.summary import Registration
from search.record.tracking import Tracker
from search.scoring.evaluation import Scores
from search.scoring.intervals import level_name

if TYPE_CHECKING:
    import keras
    from mlflow.tracking import MlflowClient

    from search.choose.blend import Blend
    from search.record.tracking import UninterruptedClient


def register(
    model: keras.Model,
    x_example: np.ndarray | None,
    y_example: np.ndarray | None,
    tracker: Tracker,
    name: str,
    val_mae: float,
    scored_on: str,
    scores: Scores,
    description: str = "",
    log_version: Callable[[], str] | None = None,
) -> Registration:
    """Log the winner as an MLflow model (signature, pinned requirements) as a new version of `name`, with
    `description` (what it is and how it scored: `version_description`) as the version's description.

    Alias `champion` then points at the best version scored on the same points (`elect_champion`): a
    sweep over seeds registers every job's winner, and the champion is the best of them, not the last.
    """
    from mlflow.models import infer_signature

    from search.fit.backends import requirements

    if log_version is not None:  # another form than the Keras model (a panel's pyfunc): it logs and registers itself
        version = log_version()
    else:
        outputs = np.asarray(y_example, dtype=np.float32)
        # One column per step ahead: (n, 1) for one-step forecasts, (n, horizon) over a horizon.
        signature = infer_signature(np.asarray(x_example, dtype=np.float32), outputs.reshape(len(outputs), -1))
        version = tracker.log_model_to_parent(model, signature, requirements(), name)
    client = tracker.registry_client
    tags = {"val_mae": str(val_mae), "scored_on": scored_on}
    for tag, value in (("test_mae", scores.test_mae), ("skill_vs_naive", scores.skill_vs_naive.get("test"))):
        if value is not None:
            tags[tag] = f"{value:.6g}"
    tags.update(interval_tags(scores))
    for tag, value in tags.items():
        client.set_model_version_tag(name, version, tag, value)
    if description:
        client.update_model_version(name, version, description=description)
    champion = elect_champion(client, name, scored_on)
    return Registration(name, version, str(champion), f"models:/{name}/{version}")


def interval_tags(scores: Scores) -> dict[str, str]:
    """What a consumer of the registered model needs to draw its intervals: `horizon`, `interval_method`, and per level
    `interval_<level>_half_width` (conformal: forecast +- it) or `interval_<level>_margin` (cqr: the quantile head's
    band, logged by run `interval_quantile_run_id`, widened by it), one value per step ahead, comma-separated; on a
    panel `interval_units` says they are in MASE units (the served pyfunc returns each series' bounds itself)."""
    tags = {"horizon": str(scores.horizon)}
    for level, figures in scores.intervals.items():
        cqr = figures["method"] == "cqr"
        tags["interval_method"] = figures["method"]
        tags[f"{level_name(level)}_{'margin' if cqr else 'half_width'}"] = ",".join(f"{m:.6g}" for m in figures["margin"])
        if cqr:
            tags["interval_quantile_run_id"] = figures["quantile_head_run_id"]
        if figures.get("units"):  # a panel's: the margins are in MASE units, times each series' scale
            tags["interval_units"] = figures["units"]
    return tags


ELECTION_ATTEMPTS = 5


def elect_champion(client: MlflowClient | UninterruptedClient, name: str, scored_on: str) -> str:
    """Point alias `champion` at the best version of `name` scored on `scored_on`; returns that version.

    The best is recomputed from every version's tags rather than compared with the current champion,
    so parallel jobs registering at once agree: each elects after its own version is tagged, and
    re-reads after moving the alias, so a job that read the versions before another registered does
    not leave its stale choice in place. A champion scored on other points is replaced.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(ELECTION_ATTEMPTS):
        candidates = [
            v
            for v in client.search_model_versions(f"name = '{name}'")
            if v.tags.get("scored_on") == scored_on and "val_mae" in v.tags
        ]
        best = min(candidates, key=lambda v: (float(v.tags["val_mae"]), int(v.version)))
        if _champion_version(client, name) == best.version:
            return best.version
        try:
            client.set_registered_model_alias(name, "champion", best.version)
        except MlflowException:
            # MLflow creates a missing alias with a plain INSERT: when two jobs create it at once, one
            # gets a unique-constraint error. The alias exists now; read again and move it if needed.
            if attempt == ELECTION_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return best.version


def _champion_version(client: MlflowClient | UninterruptedClient, name: str) -> str | None:
    """The version alias `champion` points at, or None while it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion").version
    except MlflowException:  # RESOURCE_DOES_NOT_EXIST: no champion yet
        return None


def version_description(
    data: str, trial_id: str, values: dict, val_mae: float, scores: Scores, blend: Blend | None = None
) -> str:
    """What a registered version is, for the Model Registry page: model, data, hyperparameters, scores, best baseline,
    and a blend's members with their weights (`search.choose.blend.Blend`, or None)."""
    hyperparameters = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items() if k != "model")
    lines = [
        f"{values.get('model', 'model')} on {data}, from trial {trial_id}: {hyperparameters}.",
        f"Validation MAE {val_mae:.4g}",
    ]
    if scores.test_mae is not None:
        lines[-1] += f", test MAE {scores.test_mae:.4g}"
        best = scores.best_baseline.get("test")
        if best:
            lines[-1] += f" (best baseline on test: {best['name']} {best['mae']:.4g})"
        skill = scores.skill_vs_naive.get("test")
        if skill is not None:
            lines[-1] += f", skill vs naive on test {skill:+.1%}"
    lines[-1] += "."
    if blend is not None:
        members = ", ".join(f"{name} {weight:.3f}" for name, weight in blend.weights().items())
        honest = f", cross-fitted validation MAE {blend.val_mae_cross_fitted:.4g}" if blend.val_mae_cross_fitted else ""
        lines.append(f"A weighted blend of {members}{honest} (the test MAE above is the blend's).")
    if scores.horizon > 1:
        lines.append(
            f"Forecasts {scores.horizon} steps ahead from each window (one output column per step); MAEs are over all steps."
        )
    for level, figures in scores.intervals.items():
        covered = figures.get("coverage")
        first = " (step 1; every step's in summary.json)" if scores.horizon > 1 else ""
        if figures["method"] == "cqr":
            what = (
                f"the quantile head's band (run {figures['quantile_head_run_id']}) widened by {figures['margin'][0]:.4g}{first}"
            )
        else:
            what = f"forecast +- {figures['margin'][0]:.4g}{first}"
        lines.append(
            f"{float(level):.0%} conformal interval: {what}" + (f", test coverage {covered:.1%}." if covered is not None else ".")
        )
    if scores.verdict:
        lines.append(scores.verdict[0].upper() + scores.verdict[1:] + ".")
    return "\n\n".join(lines)

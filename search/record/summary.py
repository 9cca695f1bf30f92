"""What a search reports: typed records, written as `summary.json` (a contract with users' scripts).

`Summary` is the whole search (counts, where its runs are, how long each stage took), `Evaluation`
the winner beside the baselines, `Registration` the registered model version. `as_dict` gives the
`summary.json` form: the evaluation's and registration's fields sit at the top level, as they always have.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search.core.files import write_json
from search.scoring.evaluation import Scores


@dataclass
class Registration:
    """The winner as a registered model version, and which version holds alias `champion`."""

    registered_model: str
    registered_version: str
    champion_version: str
    model_uri: str


@dataclass
class Evaluation:
    """The chosen winner, its scores beside the baselines, and how it was chosen and trained."""

    best_trial_id: str
    best_val_mae: float
    search_best_trial_id: str
    search_best_val_mae: float
    scores: Scores
    best_hyperparameters: dict[str, Any]
    selection: dict[str, Any]  # top_k, folds, candidates
    refit: bool
    ensemble: int  # the setting (`search.ensemble`)
    ensemble_members: int  # the models the registered one averages: fewer than `ensemble` if a member diverged or top_k < k
    ensemble_of: str
    epochs: int
    input_length: int
    registration: Registration
    stage_seconds: dict[str, float] = field(default_factory=dict)
    blend: dict[str, Any] | None = None  # `search.blend`: members, weights, validation MAEs (search.choose.blend)
    ensemble_weights: dict[str, float] | None = None  # the blend's members with a weight, by name
    series: int | None = None  # a panel: how many series were searched and scored
    per_series_csv: str | None = None  # a panel: each series' figures (`search.choose.panel_winner`)
    panel: dict[str, Any] | None = None  # a panel: each forecaster's mean / median MASE over series, the winner's wins

    def as_dict(self) -> dict[str, Any]:
        head = {
            "best_trial_id": self.best_trial_id,
            "best_val_mae": self.best_val_mae,
            "search_best_trial_id": self.search_best_trial_id,
            "search_best_val_mae": self.search_best_val_mae,
        }
        tail = {
            "best_hyperparameters": self.best_hyperparameters,
            "selection": self.selection,
            "refit": self.refit,
            "ensemble": self.ensemble,
            "ensemble_members": self.ensemble_members,
            "ensemble_of": str(self.ensemble_of),
            "epochs": self.epochs,
            "input_length": self.input_length,
        }
        if self.blend is not None:
            tail["blend"] = self.blend
            tail["ensemble_weights"] = self.ensemble_weights
        if self.panel is not None:
            tail.update(series=self.series, per_series_csv=self.per_series_csv, panel=self.panel)
        return {**head, **self.scores.as_dict(), **tail, **asdict(self.registration)}


@dataclass
class Summary:
    """One search, as `summary.json`, the closing table and a sweep's row read it."""

    space: str
    data: str
    tuner: str
    seed: int
    trials: dict[str, int]  # total, completed, failed
    scored_on: str
    mlflow_parent_run_id: str
    mlflow_experiment_id: str
    mlflow_experiment: str
    summary_path: str
    ui_command: str
    ui_url: str = ""
    workers: int = 1
    backend: str = "tensorflow"  # the Keras backend the search trained on
    device: str = "cpu"  # where that backend put the models: cpu | gpu
    stage_seconds: dict[str, float] = field(default_factory=dict)
    learning_rate_range: dict[str, Any] | None = None
    evaluation: Evaluation | None = None
    error: str | None = None
    wall_time_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The `summary.json` form; optional parts that are absent are left out, not written as null."""
        out: dict[str, Any] = {
            "space": self.space,
            "data": self.data,
            "tuner": str(self.tuner),
            "seed": self.seed,
            "workers": self.workers,
            "backend": self.backend,
            "device": self.device,
            "trials": self.trials,
            "scored_on": self.scored_on,
            "mlflow_parent_run_id": self.mlflow_parent_run_id,
            "mlflow_experiment_id": self.mlflow_experiment_id,
            "mlflow_experiment": self.mlflow_experiment,
            "summary_path": self.summary_path,
            "ui_command": self.ui_command,
            "ui_url": self.ui_url,
        }
        if self.learning_rate_range:
            out["learning_rate_range"] = self.learning_rate_range
        out["stage_seconds"] = self.stage_seconds
        if self.evaluation:
            out.update(self.evaluation.as_dict())
        if self.error:
            out["error"] = self.error
        out["wall_time_s"] = self.wall_time_s
        return out

    def write(self, path: Path) -> None:
        write_summary(path, self.as_dict())


@dataclass
class WorkerReport:
    """What a distributed worker reports: the chief evaluates the winner."""

    tuner_id: str
    trials_run: int
    mlflow_parent_run_id: str


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write a `summary.json` dict atomically, so an interrupted write never leaves half a file."""
    write_json(path, summary)


def load_finished(run_dir: Path) -> dict[str, Any] | None:
    """The `summary.json` of a search in `run_dir` that ended without error, or None (not finished, failed, damaged)."""
    import json

    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text()) if path.is_file() else None
    except (ValueError, UnicodeDecodeError):  # damaged: a resume's own checks say what to do
        return None
    finished = isinstance(summary, dict) and "error" not in summary and "mlflow_parent_run_id" in summary
    return summary if finished else None

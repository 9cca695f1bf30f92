"""A Hydra multirun's closing summary: one row per job (its best val/test MAE), written and printed.

`SweepSummary` is a Hydra callback (`hydra.callbacks.sweep_summary` in `conf/config.yaml`). It runs
in the launching process, so it sees every job whatever the launcher: before the jobs it creates
the tracking store once (parallel jobs must not race to create a fresh sqlite file's tables), after
them it reads each job's `summary.json` and writes `sweep_summary.json` and `sweep_summary.csv` in
the sweep directory.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback

from search.core.exits import EXIT_SEARCH_FAILED
from search.core.files import disk_full, full_disk_line

if TYPE_CHECKING:
    from omegaconf import DictConfig

COLUMNS = (
    "job",
    "overrides",
    "status",
    "best_val_mae",
    "test_mae",
    "naive_test_mae",
    "best_baseline",
    "best_baseline_test_mae",
    "beats_every_baseline",
    "trials_completed",
    "trials_failed",
    "wall_time_s",
    "mlflow_parent_run_id",
    "exit_code",
    "error",
)


def job_row(job_dir: Path, summary: dict) -> dict:
    """One job's row: what it searched (its overrides) and how it ended."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = summary.get("overrides")
    if overrides is None and overrides_file.is_file():
        from omegaconf import OmegaConf

        overrides = list(OmegaConf.load(overrides_file))
    trials = summary.get("trials", {})
    naive = summary.get("baselines", {}).get("naive", {})
    best = (summary.get("best_baseline") or {}).get("test") or {}
    test_mae = summary.get("test_mae")
    beats = None if test_mae is None or best.get("mae") is None else bool(test_mae < best["mae"])
    return {
        "job": job_dir.name,
        "overrides": list(overrides or []),
        "status": "error" if summary.get("error") else "ok",
        "best_val_mae": summary.get("best_val_mae"),
        "test_mae": summary.get("test_mae"),
        "naive_test_mae": naive.get("test_mae"),
        "best_baseline": best.get("name"),
        "best_baseline_test_mae": best.get("mae"),
        "beats_every_baseline": beats,
        "trials_completed": trials.get("completed"),
        "trials_failed": trials.get("failed"),
        "wall_time_s": summary.get("wall_time_s"),
        "mlflow_parent_run_id": summary.get("mlflow_parent_run_id"),
        "exit_code": summary.get("exit_code", 3 if summary.get("error") else 0),
        "error": summary.get("error"),
    }


def collect(sweep_dir: Path) -> list[dict]:
    """Rows for every job directory under `sweep_dir` holding a `summary.json`, in job order.

    A row's `overrides` are those that tell the jobs apart (the ones every job shares are dropped).
    """
    rows = [job_row(path.parent, json.loads(path.read_text())) for path in sweep_dir.glob("**/summary.json")]
    shared = set.intersection(*(set(row["overrides"]) for row in rows)) if len(rows) > 1 else set()
    for row in rows:
        row["overrides"] = " ".join(item for item in row["overrides"] if item not in shared)
    return sorted(rows, key=lambda row: (len(row["job"]), row["job"]))


def table(rows: list[dict]) -> str:
    """The printed table: job, overrides, best val_mae, test_mae, naive test MAE, status."""

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [("job", "overrides", "best val_mae", "test_mae", "naive test", "status")]
    for row in rows:
        status = row["status"] if row["status"] == "ok" else f"error: {(row['error'] or '')[:80]}"
        lines.append(
            (row["job"], row["overrides"], fmt(row["best_val_mae"]), fmt(row["test_mae"]), fmt(row["naive_test_mae"]), status)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines)


def verdicts(rows: list[dict]) -> str | None:
    """How often the winner beat every baseline on test across the jobs (a seed sweep: how often one seed's verdict
    holds), and which baseline stayed ahead when it did not; None without a test tail."""
    judged = [row for row in rows if row["beats_every_baseline"] is not None]
    if not judged:
        return None
    won = sum(row["beats_every_baseline"] for row in judged)
    ahead: dict[str, int] = {}
    for row in judged:
        if not row["beats_every_baseline"]:
            ahead[row["best_baseline"]] = ahead.get(row["best_baseline"], 0) + 1
    line = f"the winner beat every baseline on test in {won} of {len(judged)} jobs"
    if ahead:
        line += " (ahead of it: " + ", ".join(f"{name} in {count}" for name, count in sorted(ahead.items())) + ")"
    return line


def write(sweep_dir: Path, rows: list[dict]) -> None:
    (sweep_dir / "sweep_summary.json").write_text(json.dumps(rows, indent=2, default=str))
    with open(sweep_dir / "sweep_summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


class SweepSummary(Callback):
    """Prepares the tracking store before a multirun and summarises its jobs after it."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from search.command.hydra_errors import HELD

        HELD.release()  # the sweep's config composed: stderr flows again (launchers may never call `main` here)
        # A launcher that fails itself (joblib's workers cannot save a job's config on a full disk) raises out of
        # Hydra's multirun; without this Hydra prints the traceback and exits 1 before `search.__main__.cli` can
        # turn it into the one line a single search prints (`full_disk_line`).
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")
        uri = _tracking_uri(config)
        if uri.startswith("sqlite:"):
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates the tables, once

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = collect(sweep_dir)
        try:
            write(sweep_dir, rows)
        except OSError as err:
            if not disk_full(err):
                raise
            print(f"error: {full_disk_line(disk_full(err), sweep_dir, 'sweep dir')}", file=sys.stderr)
            sys.exit(EXIT_SEARCH_FAILED)
        print(f"\nsweep {sweep_dir}: {len(rows)} jobs (sweep_summary.json, sweep_summary.csv; MLflow tag sweep_id)")
        print(table(rows))
        line = verdicts(rows)
        if line:
            print(line)
        failed = [row for row in rows if row["status"] != "ok"]
        if failed:
            codes = {row["exit_code"] for row in failed}
            print(f"error: {len(failed)} of {len(rows)} jobs failed; see the table", file=sys.stderr)
            sys.exit(2 if codes == {2} else 3)


def _tracking_uri(config: DictConfig) -> str:
    from search.record.tracking import resolve_uri

    return resolve_uri(config.tracking.uri, Path.cwd())

"""What the user reads: one progress line per trial, the closing table, and `summary.json`."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keras_tuner.engine.trial import Trial

_STDOUT_LOCK = threading.Lock()


def say(line: str) -> None:
    """Write `line` and its newline to stdout in one piece, flushed.

    A chief with `search.workers` prints its own trials' lines while a relay thread copies its workers' lines to
    the same stdout: `print` writes the text and the newline in two calls, so another thread's line could land
    between them and two progress lines become one (a trial's line lost to anyone counting lines).
    """
    with _STDOUT_LOCK:
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def progress_line(
    trial: Trial, names: list[str], best: float | None, seconds: float, worker: str | None = None, budget: str = ""
) -> str:
    """`trial 0007 b1 r0 ep 3-9 window_size=30 ... val_mae=5.12 best=4.98 12.3s [8/44 trials, ~3m10s left]` (or FAILED
    with the reason); `trial 0007 [w2] ...` when worker `w2` of several trained it; `budget`: where the search is
    (`search.plan.budget.Progress`)."""
    values = trial.hyperparameters.values
    parts = [f"trial {trial.trial_id}"] + ([f"[{worker}]"] if worker else [])
    if "tuner/bracket" in values:
        parts.append(
            f"b{values['tuner/bracket']} r{values['tuner/round']} ep {values['tuner/initial_epoch']}-{values['tuner/epochs']}"
        )
    parts += [f"{name}={_short(values[name])}" for name in names if name in values]
    status = getattr(trial.status, "value", trial.status)
    if status == "COMPLETED":
        parts.append(f"val_mae={trial.score:.4g}" if trial.score is not None else "val_mae=?")
    else:
        reason = (trial.message or "").strip().splitlines()
        last = reason[-1].split("Error: ", 1)[-1] if reason else ""
        parts.append(f"{status}: {last[:120]}")
    parts.append(f"best={best:.4g}" if best is not None else "best=-")
    parts.append(f"{seconds:.1f}s")
    if budget:
        parts.append(f"[{budget}]")
    return " ".join(parts)


def closing_table(summary: dict) -> str:
    """The short table printed when a search ends, from the search's `summary.json` form (`Summary.as_dict`)."""
    rows = [("best val_mae", _fmt(summary.get("best_val_mae")))]
    if summary.get("search_best_trial_id") not in (None, summary.get("best_trial_id")):
        rows[0] = (
            "best val_mae",
            f"{_fmt(summary.get('best_val_mae'))}  (backtest winner, trial {summary['best_trial_id']}; "
            f"the search's lowest: {_fmt(summary.get('search_best_val_mae'))}, trial {summary['search_best_trial_id']})",
        )
    registered = "  (the registered blend)" if summary.get("blend") else ""
    if summary.get("panel"):
        registered = "  (mean over series of each one's MAE, in its own units)"
    rows.append(("test_mae", _fmt(summary.get("test_mae")) + registered))
    if summary.get("test_mae_without_refit") is not None:
        rows.append(("  searched best alone", _fmt(summary["test_mae_without_refit"])))  # the registered one differs
    rows += _blend_rows(summary.get("blend"))
    rows += _panel_rows(summary)
    skill, mase = summary.get("skill_vs_naive", {}), summary.get("mase", {})
    if skill:
        rows.append(("skill vs naive", f"val {_pct(skill.get('val'))}  test {_pct(skill.get('test'))}"))
        scale = summary.get("mase_scale", "naive (lag 1)")
        rows.append(("MASE", f"val {_fmt(mase.get('val'))}  test {_fmt(mase.get('test'))}  (scaled by in-sample {scale})"))
    for name, maes in summary.get("baselines", {}).items() if not summary.get("panel") else ():
        rows.append((f"baseline {name}", f"val {_fmt(maes.get('val_mae'))}  test {_fmt(maes.get('test_mae'))}"))
    if summary.get("ets_skipped"):
        rows.append(("baseline ets", f"skipped: {summary['ets_skipped']}"))
    rows += _per_step_rows(summary.get("per_step", {}))
    for level, figures in summary.get("intervals", {}).items():
        covered = figures.get("coverage")
        on_test = f"test coverage {covered:.1%}" if covered is not None else "no test tail to measure coverage on"
        rows.append(
            (
                f"interval {float(level):.0%}",
                f"{on_test}, mean width {figures['mean_width']:.4g}{' MASE' if figures.get('units') else ''} "
                f"({'conformalized quantile head' if figures.get('method') == 'cqr' else 'conformal'}, "
                f"{figures['calibration_origins']} {'series' if figures.get('units') else 'validation origins'})",
            )
        )
    if summary.get("verdict"):
        rows.append(("verdict", summary["verdict"]))
        spread = "how often it holds: the same command with -m and seed=1,2,3,4,5"
        rows.append(("  of one seed", f"seed {summary['seed']}'s; {spread}"))
    rows.append(("trials", f"{summary['trials']['completed']} completed, {summary['trials']['failed']} failed"))
    rows += [(f"  {name}", _short(value)) for name, value in summary.get("best_hyperparameters", {}).items()]
    if summary.get("backend"):
        rows.append(("backend", f"{summary['backend']} on {summary.get('device', 'cpu').upper()}"))
    rows.append(("scored on", summary.get("scored_on", "")))
    rows.append(("MLflow run", f"{summary['mlflow_parent_run_id']} (experiment {summary['mlflow_experiment']})"))
    if summary.get("registered_model"):
        version, champion = summary["registered_version"], summary.get("champion_version", summary["registered_version"])
        note = "@champion" if champion == version else f"(champion stays v{champion}: better val_mae on the same points)"
        rows.append(("registered", f"{summary['registered_model']} v{version} {note}"))
    rows.append(("summary", summary.get("summary_path", "")))
    rows.append(("compare runs", summary.get("ui_command", "")))
    if summary.get("ui_url"):
        rows.append(("  then open", summary["ui_url"]))
    return _aligned(rows)


def _panel_rows(summary: dict) -> list[tuple[str, str]]:
    """A panel's figures: each forecaster's mean and median MASE over series, and how often the winner beats seasonal
    naive and ETS series by series; where each series' figures are."""
    panel = summary.get("panel")
    if not panel:
        return []
    rows = [("MASE over series", f"mean / median, {summary.get('series')} series, each scaled by its in-sample seasonal naive")]
    rank = {"winner": 0, "searched": 1}
    order = sorted(panel, key=lambda name: (rank.get(name, 2), panel[name].get("test_mean", panel[name].get("val_mean", 0))))
    for name in order:
        figures = panel[name]
        cells = [
            f"{split} {_fmt(figures.get(f'{split}_mean'))} / {_fmt(figures.get(f'{split}_median'))}"
            for split in ("val", "test")
            if figures.get(f"{split}_mean") is not None
        ]
        label = {"winner": "registered model", "searched": "  searched best alone"}.get(name, f"baseline {name}")
        rows.append((label, "  ".join(cells)))
    wins = [
        f"{name} on {figures:.0%}"
        for name, figures in ((k[6:], v) for k, v in panel["winner"].items() if k.startswith("beats_"))
        if figures is not None
    ]
    if wins:
        rows.append(("winner beats", ", ".join(wins) + " of the series"))
    members = summary.get("selection", {}).get("members")
    if members:
        total = sum(members.values())
        picked = ", ".join(f"trial {trial} x{count}" for trial, count in sorted(members.items(), key=lambda m: -m[1]))
        rows.append(("averaged", f"{total} refits: {picked} (picked on the series' validation forecasts)"))
    rows.append(("per series", summary.get("per_series_csv", "")))
    return rows


def _blend_rows(blend: dict | None) -> list[tuple[str, str]]:
    """The blend's validation MAE (cross-fitted: weights chosen on the other half of the validation origins) and each
    member with a weight: `  0.600  trial 0034 refit  val 4.33 (one fold back)`."""
    if not blend:
        return []
    honest = blend.get("val_mae_cross_fitted")
    head = (
        f"val {_fmt(honest)} cross-fitted (weights chosen on the other half of the validation origins); "
        if honest is not None
        else "val (too few origins to cross-fit); "
    )
    rows = [("blend", head + f"{_fmt(blend['val_mae'])} with the weights chosen on all of them")]
    for member in blend["members"]:
        if member["weight"] > 0:
            rows.append((f"  {member['weight']:.3f}", f"{member['name']}  val {_fmt(member['val_mae'])} ({member['scored']})"))
    return rows


PER_STEP_ROWS = ("winner", "naive", "seasonal_naive")
"""Whose MAE by step ahead the closing table shows over a horizon (summary.json has every baseline's)."""


def _per_step_rows(per_step: dict) -> list[tuple[str, str]]:
    """`test MAE by step` and one row each for the winner and the simple baselines, over a horizon."""
    split = "test" if per_step.get("winner", {}).get("test") else "val"
    rows = [
        (f"  {name}", "  ".join(f"{mae:.4g}" for mae in per_step[name][split]))
        for name in PER_STEP_ROWS
        if per_step.get(name, {}).get(split)
    ]
    if not rows:
        return []
    steps = len(per_step["winner"][split])
    return [(f"{split} MAE by step", f"h1 .. h{steps}")] + rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def lr_find_lines(result: dict) -> str:
    """What `mode=lr_find` prints: the suggestion, the range a search would use, and where the curve is."""
    low, high = result["range"]
    rows = [
        ("suggested learning_rate", f"{result['suggested_learning_rate']:.3g}"),
        ("range for a search", f"{low:.3g} .. {high:.3g}  (rule {result['rule']}; use space.learning_rate.range=auto)"),
        ("lowest loss at", f"lr={result['min_loss_learning_rate']:.3g}"),
        ("sweep", f"{result['steps_run']} steps, stopped: {result['stopped_because']}"),
        ("reference", " ".join(f"{name}={_short(value)}" for name, value in result["reference"].items())),
        ("plot", f"{result['run_dir']}/lr_find.png (curve: lr_find.csv)"),
        ("MLflow run", f"{result['mlflow_run_id']} (tag mode=lr_find)"),
        ("compare runs", result["ui_command"]),
        ("  then open", result.get("ui_url", "")),
    ]
    if result.get("warning"):
        rows.append(("warning", result["warning"]))
    return _aligned(rows)


def _aligned(rows: list[tuple[str, str]]) -> str:
    """Two columns, names padded to the longest."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

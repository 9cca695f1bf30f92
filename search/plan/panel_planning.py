"""What a panel search (`data=panel`, `data=synthetic_panel`) runs on, checked: the panel, scaled, and its layout.

The panel is right-aligned (`data.panel`): one layout serves every series. Each series' last `data.test_size`
points are its test tail, and the `data.horizon` points before them its validation block: one origin per series,
the last one before the tail, as the M competitions score. Training takes every window before the validation block,
so `space.split_time` is set to that column (the series are too short to leave a fraction out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from data.errors import UserError
from data.panel import ScaledPanel, load_panel
from data.panel_scores import panel_scales
from data.split import Layout
from search.plan.space import effective_kind

if TYPE_CHECKING:
    from omegaconf import DictConfig

PANEL_SOURCES = ("panel", "synthetic_panel")
UNSUPPORTED_SCALINGS = ("profile",)
"""Scalings a panel search leaves out: `profile` matches each window to one series' seasonal profile."""


def is_panel(data: DictConfig) -> bool:
    return data.get("source") in PANEL_SOURCES


def panel_plan(specs: dict, data: DictConfig, mode: str) -> tuple[dict, ScaledPanel, Layout, str | None]:
    """The space fitted to a panel, the scaled panel, its layout and a note; raises `UserError` naming the key."""
    if mode != "search":
        raise UserError(f"mode={mode} runs on one series; a panel (data={data.name}) is searched with mode=search")
    if specs["learning_rate"].get("range") == "auto":
        raise UserError(
            "space.learning_rate.range=auto runs the LR range test on one series; with a panel give space.learning_rate bounds"
        )
    horizon, test_size = data.horizon, data.test_size
    if test_size < horizon:
        raise UserError(f"data.test_size={test_size} is shorter than data.horizon={horizon}: raise data.test_size")
    if data.windows_per_series < 0:
        raise UserError(f"data.windows_per_series={data.windows_per_series} must be >= 0 (0: every window)")
    panel = load_panel(data)
    needed = test_size + horizon + 2
    short = panel.lengths < needed
    notes = []
    if short.all():
        raise UserError(
            f"data: every series of {data.name} is shorter than the {needed} points a panel search needs (data.test_size="
            f"{test_size} + data.horizon={horizon} + 2 to fit on); the longest has {int(panel.lengths.max())}: lower "
            "data.test_size or data.horizon"
        )
    if short.any():
        keep = np.flatnonzero(~short)
        notes.append(f"{int(short.sum())} series shorter than {needed} points left out (data.test_size + data.horizon + 2)")
        panel = type(panel)(
            panel.values[keep][:, -int(panel.lengths[keep].max()) :],
            [panel.ids[i] for i in keep],
            panel.lengths[keep],
            [panel.last_times[i] for i in keep] if panel.last_times is not None else None,
            panel.step,
        )
    specs = {name: dict(spec) for name, spec in specs.items()}
    scaling = specs.get("scaling", {})
    if effective_kind(scaling) == "fixed" and scaling.get("value") in UNSUPPORTED_SCALINGS:
        raise UserError(
            f"space.scaling={scaling['value']} matches one series' seasonal profile: choose another scaling for a panel"
        )
    if effective_kind(scaling) == "choice":
        kept = [v for v in scaling["values"] if v not in UNSUPPORTED_SCALINGS]
        if len(kept) < len(scaling["values"]):
            scaling["values"] = kept
            notes.append("space.scaling: profile left out (it matches one series' seasonal profile)")
    length = panel.length
    test_start = length - test_size
    score_start = test_start - horizon
    specs["split_time"] = {"kind": "fixed", "value": score_start}
    layout = Layout(length=length, test_start=test_start, score_start=score_start, horizon=horizon)
    scaled = ScaledPanel.of(panel, panel_scales(panel, score_start, data.season_length))
    return specs, scaled, layout, "; ".join(notes) or None


def padded_note(scaled: ScaledPanel, layout: Layout, longest: int) -> str | None:
    """How many series have fewer points before their validation origin than the longest input of the space."""
    padded = scaled.padded(longest, layout.score_start)
    if not padded:
        return None
    return (
        f"{padded} of {scaled.panel.count} series hold fewer than the {longest} points the longest input reads before "
        "their validation origin: their inputs are padded with their first value"
    )

"""The HyperModel of a panel search: one network trained on windows drawn from every series at once.

The panel arrives scaled (`data.panel.ScaledPanel`: each series over its MASE scale, padded before its first point),
so the plain MAE Keras reports on the validation windows, one origin per series, is the mean over series of the
scaled MAE: the search's objective, scale-free. Training windows come from every series in one dataset
(`data.panel_windows.panel_window_starts` over the flattened panel), never from the padding.
"""

from __future__ import annotations

import numpy as np

from data.panel import ScaledPanel
from data.panel_windows import panel_window_starts, panel_window_view
from data.split import Layout
from data.windows import windowed_dataset
from models.framing import SEASONAL_SCALINGS, Framing
from search.fit.hypermodel import WindowedHyperModel


class PanelHyperModel(WindowedHyperModel):
    """`WindowedHyperModel` over a `ScaledPanel`: `series` is the panel's scaled values `(series, length)`;
    `windows_per_series` caps each series' training windows an epoch (0: all)."""

    panel = True

    def __init__(
        self,
        scaled: ScaledPanel,
        layout: Layout,
        specs: dict,
        shuffle_buffer: int,
        patience: int,
        seed: int,
        season_length: int = 0,
        windows_per_series: int = 0,
    ) -> None:
        super().__init__(scaled.values, layout, specs, shuffle_buffer, patience, seed, season_length)
        self.scaled, self.windows_per_series = scaled, windows_per_series
        self.first_points = scaled.panel.starts()

    def _real(self, stop: int) -> list[np.ndarray]:
        """Each series' own points before column `stop` (no padding)."""
        return [self.series[i, first:stop].astype(np.float64) for i, first in enumerate(self.first_points) if stop - first > 1]

    def framing(self, values: dict, train_stop: int | None = None) -> Framing:
        """Scaling statistics from every series' points before the split, pooled (the series share one scale)."""
        if values["scaling"] == "profile":
            raise ValueError("scaling=profile matches one series' seasonal profile: a panel search leaves it out")
        stop = self.split_time(values) if train_stop is None else train_stop
        rows, season = self._real(stop), self.season_length
        if values["scaling"] in SEASONAL_SCALINGS and season <= 0:
            raise ValueError("scaling=seasonal needs data.season_length > 0")
        pooled = np.concatenate(rows)
        steps = np.concatenate([np.diff(r) for r in rows])
        seasonal = [r[season:] - r[:-season] for r in rows if 0 < season < len(r) - 1]
        seasonal_changes = np.concatenate(seasonal) if seasonal else np.zeros(0)
        return Framing(
            window_size=values["window_size"],
            scaling=values["scaling"],
            seasons=self.seasons(values),
            season_halfwidth=values["season_halfwidth"],
            season_length=season,
            mean=float(pooled.mean()),
            std=float(pooled.std()) or 1.0,
            step_std=float(steps.std()) or 1.0,
            horizon=self.layout.horizon,
            ar_skip=values["ar_skip"],
            season_std=(float(seasonal_changes.std()) or 1.0) if len(seasonal_changes) else 1.0,
        )

    def training_windows(self, values: dict, train_stop: int | None = None, seed: int | None = None, label_copies: int = 1):
        """Shuffled batches of every series' windows with all labels before the split (or `train_stop`)."""
        length = self.input_length(values)
        stop = self.split_time(values) if train_stop is None else train_stop
        seed = self.seed if seed is None else seed
        starts = panel_window_starts(
            self.first_points, self.layout.length, length, 0, stop, self.layout.horizon, self.windows_per_series
        )
        # Series after series as built: a shuffle buffer smaller than the panel would walk the series in id order.
        starts = np.random.default_rng(seed).permutation(starts)
        if len(starts) == 0:
            raise ValueError(
                f"window_size: no series holds a {length}-point input and its {self.layout.horizon} labels before {stop}"
            )
        return windowed_dataset(
            self.series.ravel(),
            length,
            values["batch_size"],
            self.shuffle_buffer,
            seed=seed,
            horizon=self.layout.horizon,
            label_copies=label_copies,
            starts=starts,
        )

    def validation_windows(self, values: dict):
        """The validation origins of every series, in order (padded inputs where a series is shorter)."""
        length = self.input_length(values)
        origins = np.arange(self.layout.score_start, self.layout.test_start - self.layout.horizon + 1)
        rows = np.arange(self.scaled.panel.count)
        starts = (rows[:, None] * self.layout.length + origins[None, :] - length).ravel()
        return windowed_dataset(
            self.series.ravel(), length, max(values["batch_size"], 256), 0, horizon=self.layout.horizon, starts=starts
        )

    def origin_windows(self, length: int, points: range) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of every series' origins whose labels lie in `points`, series after series."""
        x, y, _, _ = panel_window_view(self.series, length, points.start, points.stop, self.layout.horizon)
        return x, y

    def origin_rows(self, length: int, points: range) -> tuple[np.ndarray, np.ndarray]:
        """The series (row) and column of each origin `origin_windows` gives."""
        _, _, rows, origins = panel_window_view(self.series, length, points.start, points.stop, self.layout.horizon)
        return rows, origins

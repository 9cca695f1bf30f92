"""Many series in one array: a panel, right-aligned on a common timeline.

A panel of N series of different lengths is held as one `(N, length)` float32 array whose row i holds series i in
its last `lengths[i]` columns and NaN before them: every series ends at the last column, as the M competitions and
NeuralForecast align them. Index `t` then means "`length - t` points before the end" in every row, so one test tail
(the last `test_size` columns), one validation block before it and one `split_time` serve every series, and the
single-series `data.split.Layout` is the panel's too. A window is valid for a row where it holds no NaN.

Read from a long CSV (one row per series and time: `unique_id`, `ds`, `y` by default, the statsforecast and
NeuralForecast convention), or generated (`synthetic_panel`, the embedded default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.csv_files import read_csv_file
from data.errors import UserError


@dataclass
class Panel:
    """`values` `(N, length)` right-aligned (NaN before each series' first point), `ids` the series' names, `lengths`
    their point counts; `last_times` each series' last timestamp and `step` the panel's time step (None for a panel
    without times), so forecasts can be dated."""

    values: np.ndarray
    ids: list[str]
    lengths: np.ndarray
    last_times: list | None = None
    step: object = None

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def length(self) -> int:
        return self.values.shape[1]

    def starts(self) -> np.ndarray:
        """Each row's first column holding a point."""
        return self.length - self.lengths

    def row(self, i: int) -> np.ndarray:
        """Series i alone, `(lengths[i],)`."""
        return self.values[i, self.length - self.lengths[i] :]


def right_aligned(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The `(N, longest)` right-aligned array of `series` (NaN before each one's first point) and their lengths."""
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    values = np.full((len(series), int(lengths.max(initial=0))), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        if len(s):
            values[i, values.shape[1] - len(s) :] = s
    return values, lengths


def read_panel(path: str, id_column: str = "unique_id", time_column: str = "ds", column: str = "y") -> Panel:
    """A long CSV as a `Panel`: one row per series and time; rows sorted by time within each series.

    Raises `UserError` (one line naming the key to change) for a missing file or column, a value that is not a number,
    an empty value, or a timestamp that appears twice within one series.
    """
    import pandas as pd

    frame = read_csv_file(path, "a long CSV (one row per series and time)")
    for field, name in (("data.id_column", id_column), ("data.time_column", time_column), ("data.column", column)):
        if name not in frame.columns:
            raise UserError(
                f"{field}={name!r} is not a column of {path}; columns are: {', '.join(map(str, frame.columns))} "
                f"(set {field} to the column that holds it)"
            )
    if frame.empty:
        raise UserError(f"data.path={path!r} holds no rows")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(bad.idxmax())
        raise UserError(
            f"data.column={column!r} has a non-numeric value {frame[column][row]!r} at row {row + 2} of {path}; fix it"
        )
    if values.isna().any():
        row = int(values.isna().idxmax())
        raise UserError(
            f"data.column={column!r} is empty at row {row + 2} of {path} (series {frame[id_column][row]!r}); fill or drop it"
        )
    if pd.api.types.is_numeric_dtype(frame[time_column]):  # a time index: numbers order the rows as they are
        times = frame[time_column]
    else:
        times = pd.to_datetime(frame[time_column], errors="coerce")
        if times.isna().any():
            row = int(times.isna().idxmax())
            raise UserError(
                f"data.time_column={time_column!r} has an unreadable time {frame[time_column][row]!r} at row {row + 2} of {path}"
            )
    long = pd.DataFrame({"id": frame[id_column].astype(str), "t": times, "y": values.astype(np.float64)})
    duplicated = long.duplicated(["id", "t"])
    if duplicated.any():
        row = int(duplicated.idxmax())
        raise UserError(
            f"data.time_column={time_column!r}: series {long['id'][row]!r} has the time {frame[time_column][row]} twice "
            f"(row {row + 2} of {path}); keep one row per series and time"
        )
    long = long.sort_values(["id", "t"], kind="stable")
    groups = long.groupby("id", sort=False)
    ids = list(groups.groups)
    array, lengths = right_aligned([group["y"].to_numpy(np.float32) for _, group in groups])
    last_times = [group["t"].iloc[-1] for _, group in groups]
    longest = max((group["t"] for _, group in groups), key=len)
    return Panel(array, ids, lengths, last_times, time_step(longest.reset_index(drop=True)))


def time_step(times):
    """The step between a series' times: a calendar frequency for dates where pandas can infer one (month starts
    stay month starts), else the most common difference; None for fewer than two times."""
    import pandas as pd

    if len(times) < 2:
        return None
    if pd.api.types.is_datetime64_any_dtype(times) and len(times) >= 3:
        # models/panel_pyfunc.py infers a series' frequency the same way: the served file loads without this project.
        try:  # pandas >= 3.1 returns an offset with this option, and warns without it
            with pd.option_context("future.infer_freq_returns_offset", True):
                frequency = pd.infer_freq(pd.DatetimeIndex(times))
        except (KeyError, pd.errors.OptionError):
            frequency = pd.infer_freq(pd.DatetimeIndex(times))
        if frequency is not None:
            return pd.tseries.frequencies.to_offset(frequency)
    return times.diff().dropna().mode().iloc[0]


@dataclass
class SyntheticPanel:
    """The shape of `data=synthetic_panel`: `count` short seasonal series of `min_length`..`max_length` points, each
    with its own level, trend, seasonal amplitude and phase, noise and (for some) a level shift, from `seed`."""

    count: int = 300
    min_length: int = 60
    max_length: int = 240
    season_length: int = 12
    seed: int = 0


def synthetic_panel(**shape) -> Panel:
    """A panel of short monthly-like series (`SyntheticPanel`; `shape` overrides its fields): levels from 10 to 10,000
    (log-uniform), trends of either sign (a fall of at most half the level), a seasonal shape of two
    harmonics with its own amplitude and phase, noise
    from 2 to 15 % of the seasonal swing, and a level shift in a quarter of them. Timestamps are month starts,
    every series ending at the same month."""
    import pandas as pd

    spec = SyntheticPanel(**shape)
    rng = np.random.default_rng(spec.seed)
    series = []
    for _ in range(spec.count):
        n = int(rng.integers(spec.min_length, spec.max_length + 1))
        t = np.arange(n, dtype=np.float64)
        level = 10 ** rng.uniform(1, 4)
        swing = level * rng.uniform(0.05, 0.4)
        phase = rng.uniform(0, 2 * np.pi)
        angle = 2 * np.pi * t / spec.season_length + phase
        season = np.sin(angle) + rng.uniform(0, 0.6) * np.sin(2 * angle + rng.uniform(0, 2 * np.pi))
        trend = level * rng.uniform(-0.002, 0.004) * t  # at most half the level lost over the longest series
        noise = rng.normal(0, swing * rng.uniform(0.02, 0.15), n)
        shift = np.where(t >= rng.integers(n // 3, n), level * rng.normal(0, 0.1), 0.0) if rng.random() < 0.25 else 0.0
        series.append(np.maximum(level + trend + swing * season / 2 + noise + shift, 0.0).astype(np.float32))
    values, lengths = right_aligned(series)
    ids = [f"S{i:04d}" for i in range(spec.count)]
    end = pd.Timestamp("2020-12-01")
    return Panel(values, ids, lengths, [end] * spec.count, pd.DateOffset(months=1))


def panel_frame(panel: Panel):
    """The panel as a long DataFrame (`unique_id`, `ds`, `y`), the format `read_panel` reads and the served model takes."""
    import pandas as pd

    frames = []
    for i, name in enumerate(panel.ids):
        row = panel.row(i)
        if panel.last_times is not None and panel.step is not None:
            last = panel.last_times[i]
            times = [last - panel.step * k for k in range(len(row) - 1, -1, -1)]
        else:
            times = list(range(len(row)))
        frames.append(pd.DataFrame({"unique_id": name, "ds": times, "y": row.astype(np.float64)}))
    return pd.concat(frames, ignore_index=True)


@dataclass
class ScaledPanel:
    """What a panel search trains and scores on: every series divided by its MASE scale (`scales`, from its points
    before the validation block: `data.panel_scores.panel_scales`), so series of any level share one network and
    the plain MAE over the panel's windows is the mean over series of the scaled MAE; the columns before each series'
    first point hold its first (scaled) value, so a series shorter than a trial's input still gets a forecast
    (`padded`: how many series need it at the validation block). Training windows never reach into the padding
    (`data.panel_windows.panel_window_starts` starts at each series' first point)."""

    panel: Panel
    scales: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, panel: Panel, scales: np.ndarray) -> ScaledPanel:
        scaled = panel.values / scales[:, None].astype(np.float32)
        first = panel.starts()
        firsts = scaled[np.arange(panel.count), np.minimum(first, panel.length - 1)]
        padded = np.where(np.isnan(scaled), firsts[:, None], scaled).astype(np.float32)
        return cls(panel, scales, padded)

    def padded(self, input_length: int, origin: int) -> int:
        """How many series have fewer than `input_length` points before column `origin`."""
        return int(np.sum(origin - self.panel.starts() < input_length))


def load_panel(cfg) -> Panel:
    """The panel a data config names (`cfg.source`: panel | synthetic_panel), checked to be finite."""
    if cfg.source == "synthetic_panel":
        panel = synthetic_panel(**{name: cfg[name] for name in SyntheticPanel.__dataclass_fields__})
    else:
        panel = read_panel(cfg.path, cfg.id_column, cfg.time_column, cfg.column)
    if not np.all(np.isfinite(panel.values[~np.isnan(panel.values)])):
        raise UserError(f"data.column={cfg.get('column', 'y')!r} holds an infinite value; fix the data")
    return panel

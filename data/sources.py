"""Series sources: the TF course's synthetic series, a column of a CSV file, and the real series shipped in `data/series/`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.csv_files import read_csv_file
from data.errors import UserError

GAP_POLICIES = ("error", "interpolate", "drop")
BUNDLED_DIR = Path(__file__).resolve().parent / "series"
"""Real series shipped with the project (`data=co2`, `data=elnino`); `data/series/export.py` says where each comes from."""


@dataclass
class CourseSeries:
    """The shape of the TF course's synthetic series, with the course's values: 4 years of daily points,
    trend + yearly seasonality + Gaussian noise. `data=synthetic` takes its defaults from here."""

    length: int = 4 * 365 + 1
    baseline: float = 10.0
    slope: float = 0.05
    period: int = 365
    amplitude: float = 40.0
    noise_level: float = 5.0
    noise_seed: int = 42


def synthetic_series(**shape) -> np.ndarray:
    """The course's series, shape `(length,)`; `shape` overrides fields of `CourseSeries` (e.g. `length=500`).

    The seasonal pattern is `cos(2*pi*s)` for `s < 0.4` and `exp(-3*s)` otherwise, where `s` is the
    phase within the period, exactly as in the TensorFlow time-series course.
    """
    course = CourseSeries(**shape)
    time = np.arange(course.length, dtype=np.float32)
    season_time = ((time + 0) % course.period) / course.period
    pattern = np.where(season_time < 0.4, np.cos(season_time * 2 * np.pi), 1 / np.exp(3 * season_time))
    noise = np.random.RandomState(course.noise_seed).randn(course.length) * course.noise_level
    series = course.baseline + course.slope * time + course.amplitude * pattern + noise
    return series.astype(np.float32)


def csv_series(path: str, column: str, time_column: str | None = None, gaps: str = "error") -> np.ndarray:
    """Read one numeric column of a CSV file as a float32 series, shape `(n,)`.

    With `time_column`, rows are sorted by time and missing timestamps on the series' regular step
    count as gaps, like empty cells. `gaps` says what to do with them: `error`, `interpolate`
    (linear in time) or `drop`.
    """
    import pandas as pd

    if gaps not in GAP_POLICIES:
        raise UserError(f"data.gaps={gaps!r} is not a gap policy: use one of {', '.join(GAP_POLICIES)}")
    frame = read_csv_file(path, "a CSV file")
    for field, name in (("data.column", column), ("data.time_column", time_column)):
        if name is not None and name not in frame.columns:
            raise UserError(f"{field}={name!r} is not a column of {path}; columns are: {', '.join(map(str, frame.columns))}")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(bad.idxmax())
        raise UserError(
            f"data.column={column!r} has a non-numeric value {frame[column][row]!r} at row {row + 2} of {path}; fix or remove it"
        )
    if time_column is not None:
        values = _regular_time_index(values, frame[time_column], path, time_column)
    return _fill_gaps(values, gaps, column).to_numpy(dtype=np.float32)


def _regular_time_index(values, times, path: str, time_column: str):
    """Index `values` by parsed time on a regular grid, so missing timestamps show up as NaN.

    Times with UTC offsets (local time across a daylight-saving switch) are put on one UTC axis; a
    series whose step is a day or more is read on the local calendar instead (local midnights are
    23 or 25 hours apart across a switch). Times off the grid are an error, never silently dropped.
    """
    import pandas as pd

    stamps = pd.to_datetime(times, errors="coerce", utc=True)
    if stamps.isna().any():
        row = int(stamps.isna().idxmax())
        raise UserError(f"data.time_column={time_column!r} has an unreadable time {times[row]!r} at row {row + 2} of {path}")
    index = pd.DatetimeIndex(stamps)
    if len(index) >= 3 and index.sort_values().to_series().diff().mode().iloc[0] >= pd.Timedelta(days=1):
        local = times.astype(str).str.strip().str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "", regex=True)
        index = pd.DatetimeIndex(pd.to_datetime(local, errors="coerce"))
    series = pd.Series(values.to_numpy(), index=index).sort_index()
    if series.index.has_duplicates:
        raise UserError(f"data.time_column={time_column!r} has duplicate times in {path}; keep one row per time")
    if len(series) < 3:
        return series
    step = series.index.to_series().diff().mode().iloc[0]
    grid = pd.date_range(series.index[0], series.index[-1], freq=step)
    if len(grid) <= len(series):
        return series
    if not series.index.isin(grid).all():
        raise UserError(
            f"data.time_column={time_column!r}: the times in {path} are not on one regular step ({step}), so gaps "
            "cannot be told apart; resample the file to a regular step"
        )
    return series.reindex(grid)


def _fill_gaps(values, gaps: str, column: str):
    """Apply the gap policy to a pandas Series that marks gaps as NaN."""
    missing = int(values.isna().sum())
    if missing == 0:
        return values
    if gaps == "error":
        raise UserError(
            f"data.column={column!r} has {missing} gap(s) (empty values or missing times); "
            "set data.gaps=interpolate or data.gaps=drop"
        )
    if gaps == "interpolate":
        method = "time" if hasattr(values.index, "freq") and values.index.dtype.kind == "M" else "linear"
        return values.interpolate(method=method, limit_direction="both")
    return values.dropna()


def series_source(cfg) -> str:
    """Where a data config's series comes from, for the record: a file's absolute path, or the synthetic series' shape."""
    if cfg.source == "csv":
        return str(Path(cfg.path).expanduser().resolve())
    if cfg.source == "bundled":
        return str(BUNDLED_DIR / cfg.file)
    if cfg.source == "panel":
        return str(Path(cfg.path).expanduser().resolve())
    if cfg.source == "synthetic_panel":
        from data.panel import SyntheticPanel

        return (
            "data.panel.synthetic_panel(" + ", ".join(f"{name}={cfg[name]}" for name in SyntheticPanel.__dataclass_fields__) + ")"
        )
    shape = ", ".join(f"{name}={cfg[name]}" for name in CourseSeries.__dataclass_fields__)
    return f"data.sources.synthetic_series({shape})"


def load_series(cfg) -> np.ndarray:
    """The series a data config names (`cfg.source`: synthetic | csv), checked to be finite and not constant."""
    if cfg.source == "synthetic":
        series = synthetic_series(**{name: cfg[name] for name in CourseSeries.__dataclass_fields__})
    elif cfg.source == "csv":
        series = csv_series(cfg.path, cfg.column, cfg.time_column, cfg.gaps)
    elif cfg.source == "bundled":
        series = csv_series(str(BUNDLED_DIR / cfg.file), cfg.column, cfg.time_column, cfg.gaps)
    else:
        raise UserError(f"data.source={cfg.source!r} is unknown: use data=synthetic, data=csv or a bundled series (data=co2)")
    if not np.all(np.isfinite(series)):
        raise UserError(f"data: the {cfg.name} series has non-finite values; fix the data or set data.gaps")
    if len(series) == 0 or float(np.ptp(series)) == 0.0:
        raise UserError(f"data: the {cfg.name} series is constant (or empty); there is nothing to forecast")
    return series

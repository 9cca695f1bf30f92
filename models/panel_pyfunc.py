"""The served form of a panel search's model: an MLflow pyfunc that forecasts a long DataFrame of many series.

Input: one row per series and time, columns `unique_id`, `ds`, `y` (the training convention), sorted or not. For each
series the model reads its last `input_length` values (a shorter series is padded with its first value, as in
training), divides them by the series' MASE scale (the in-sample MAE of its seasonal naive forecast, naive where it
holds less than a season and one point: the scale it was trained in; so give it each series' whole history, not only
its last input-length values), forecasts `horizon` values and scales them back.
Output: one row per series and step, `unique_id`, `ds` (the next timestamps on the series' own step; 1, 2, ... after
the last `ds` when `ds` is a number) and `forecast`; with intervals (`search.intervals`), `forecast-lo-<level>` and
`forecast-hi-<level>` per level in percent (`forecast-lo-80`, as statsforecast and NeuralForecast name them): the
forecast -+ the level's conformal margin for that step, in MASE units, times the series' scale.

Logged as a model from code (`mlflow.pyfunc.log_model(python_model=<this file>)`): nothing is pickled; the Keras
model is an artifact, loaded with Keras' default `safe_mode=True`.
"""

from __future__ import annotations

import mlflow
import numpy as np


def series_scale(values: np.ndarray, season_length: int) -> float:
    """MASE's scale of one series' history: seasonal naive's in-sample MAE (lag `season_length` when the history is
    longer than it), else naive's; for a flat or one-point history its mean absolute value (1 where that is 0), as
    training scales such a series (`data.panel_scores.panel_scales`)."""
    lag = season_length if 0 < season_length < len(values) else 1
    if len(values) > lag:
        scale = float(np.mean(np.abs(values[lag:] - values[:-lag])))
        if scale > 0:
            return scale
    level = float(np.mean(np.abs(values))) if len(values) else 0.0
    return level if level > 0 else 1.0


def next_times(stamps, horizon: int, frequency=None, uid=None) -> list:
    """The `horizon` timestamps after a series' last: on its own calendar frequency where pandas infers one from three
    stamps or more (month starts stay month starts), else on `frequency` (the training panel's: a pandas frequency
    string for dates, a number for a time index), else on its most common step."""
    import pandas as pd

    last = stamps.iloc[-1]
    dated = isinstance(last, pd.Timestamp)
    if dated and len(stamps) >= 3:
        try:  # pandas >= 3.1 returns an offset with this option, and warns without it
            with pd.option_context("future.infer_freq_returns_offset", True):
                inferred = pd.infer_freq(pd.DatetimeIndex(stamps))
        except (KeyError, pd.errors.OptionError):
            inferred = pd.infer_freq(pd.DatetimeIndex(stamps))
        if inferred is not None:
            return list(pd.date_range(last, periods=horizon + 1, freq=inferred)[1:])
    if dated and isinstance(frequency, str):
        return list(pd.date_range(last, periods=horizon + 1, freq=frequency)[1:])
    if not dated and isinstance(frequency, (int, float)) and len(stamps) < 2:
        step = int(frequency) if float(frequency).is_integer() else frequency
        return [last + step * k for k in range(1, horizon + 1)]
    steps = stamps.diff().dropna()
    if len(steps) == 0:
        raise ValueError(f"series {uid!r}: one point and no known time step; give it two points or more")
    step = steps.mode().iloc[0]
    if pd.api.types.is_integer_dtype(stamps):
        step = int(step)
    return [last + step * k for k in range(1, horizon + 1)]


class PanelForecaster(mlflow.pyfunc.PythonModel):
    """Forecasts every series of a long DataFrame with one Keras model (the module docstring says how)."""

    # No type-hint validation of `predict` (MLflow would warn that it has none): the signature is logged with the model.
    _skip_type_hint_validation = True

    def load_context(self, context):
        import keras

        self.model = keras.saving.load_model(context.artifacts["keras_model"])  # safe_mode=True, Keras' default
        config = context.model_config
        self.input_length, self.horizon = int(config["input_length"]), int(config["horizon"])
        self.season_length = int(config.get("season_length", 0))
        self.frequency = config.get("frequency")
        self.interval_margins = config.get("interval_margins") or {}

    def predict(self, context, model_input, params=None):
        import pandas as pd

        frame = pd.DataFrame(model_input)
        missing = [c for c in ("unique_id", "ds", "y") if c not in frame.columns]
        if missing:
            raise ValueError(f"the input needs columns unique_id, ds, y (missing: {', '.join(missing)})")
        frame = frame.assign(y=pd.to_numeric(frame["y"], errors="raise").astype("float64"))
        times = pd.to_datetime(frame["ds"], errors="coerce")
        if times.notna().all() and not pd.api.types.is_numeric_dtype(frame["ds"]):
            frame = frame.assign(ds=times)
        windows, scales, ids, stamps = [], [], [], []
        for uid, group in frame.sort_values(["unique_id", "ds"], kind="stable").groupby("unique_id", sort=False):
            values = group["y"].to_numpy(np.float64)
            if len(values) == 0 or not np.all(np.isfinite(values)):
                raise ValueError(f"series {uid!r}: y must hold finite numbers")
            window = values[-self.input_length :]
            if len(window) < self.input_length:
                window = np.concatenate([np.full(self.input_length - len(window), window[0]), window])
            windows.append(window)
            scales.append(series_scale(values, self.season_length))
            ids.append(uid)
            stamps.append(group["ds"].reset_index(drop=True))
        scales = np.asarray(scales)
        x = (np.asarray(windows) / scales[:, None]).astype(np.float32)
        forecasts = np.asarray(self.model.predict(x, verbose=0)).reshape(len(x), -1)[:, : self.horizon] * scales[:, None]
        columns, bounds = ["unique_id", "ds", "forecast"], []
        for level, margin in sorted(getattr(self, "interval_margins", {}).items(), key=lambda item: float(item[0])):
            name = f"{float(level) * 100:g}"
            half = np.asarray(margin, dtype=np.float64)[None, : self.horizon] * scales[:, None]
            columns += [f"forecast-lo-{name}", f"forecast-hi-{name}"]
            bounds += [forecasts - half, forecasts + half]
        rows = []
        for i, uid in enumerate(ids):
            times = next_times(stamps[i], self.horizon, getattr(self, "frequency", None), uid)
            for step, ds in enumerate(times):
                rows.append((uid, ds, float(forecasts[i, step]), *(float(bound[i, step]) for bound in bounds)))
        return pd.DataFrame(rows, columns=columns)


mlflow.models.set_model(PanelForecaster())

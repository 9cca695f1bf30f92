"""The served form of a panel search's model: an MLflow pyfunc that forecasts a long DataFrame of many series.

Input: one row per series and time, columns `unique_id`, `ds`, `y` (the training convention), sorted or not. For each
series the model reads its last `input_length` values (a shorter series is padded with its first value, as in
training), divides them by the series' MASE scale (the in-sample MAE of its seasonal naive forecast, naive where it
holds less than a season and one point: the scale it was trained in), forecasts `horizon` values and scales them back.
Output: one row per series and step, `unique_id`, `ds` (the next timestamps on the series' own step; 1, 2, ... after
the last `ds` when `ds` is a number) and `forecast`.

Logged as a model from code (`mlflow.pyfunc.log_model(python_model=<this file>)`): nothing is pickled; the Keras
model is an artifact, loaded with Keras' default `safe_mode=True`.
"""

from __future__ import annotations

import mlflow
import numpy as np


def series_scale(values: np.ndarray, season_length: int) -> float:
    """MASE's scale of one series' history: seasonal naive's in-sample MAE (lag `season_length` when the history is
    longer than it), else naive's; NaN when it cannot be computed or is 0 (the caller falls back)."""
    lag = season_length if 0 < season_length < len(values) else 1
    if len(values) <= lag:
        return float("nan")
    scale = float(np.mean(np.abs(values[lag:] - values[:-lag])))
    return scale if scale > 0 else float("nan")


def next_times(stamps, horizon: int) -> list:
    """The `horizon` timestamps after a series' last: on its calendar frequency (month starts stay month starts),
    else its most common step; numbers count on by that step (1 for a single point)."""
    import pandas as pd

    last = stamps.iloc[-1]
    if isinstance(last, pd.Timestamp) and len(stamps) >= 3:
        try:  # pandas >= 3.1 returns an offset with this option, and warns without it
            with pd.option_context("future.infer_freq_returns_offset", True):
                frequency = pd.infer_freq(pd.DatetimeIndex(stamps))
        except (KeyError, pd.errors.OptionError):
            frequency = pd.infer_freq(pd.DatetimeIndex(stamps))
        if frequency is not None:
            return list(pd.date_range(last, periods=horizon + 1, freq=frequency)[1:])
    steps = stamps.diff().dropna()
    step = steps.mode().iloc[0] if len(steps) else 1
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
        usable = np.isfinite(scales)
        scales = np.where(usable, scales, np.median(scales[usable]) if usable.any() else 1.0)
        x = (np.asarray(windows) / scales[:, None]).astype(np.float32)
        forecasts = np.asarray(self.model.predict(x, verbose=0)).reshape(len(x), -1)[:, : self.horizon] * scales[:, None]
        rows = []
        for i, uid in enumerate(ids):
            for ds, value in zip(next_times(stamps[i], self.horizon), forecasts[i], strict=True):
                rows.append((uid, ds, float(value)))
        return pd.DataFrame(rows, columns=["unique_id", "ds", "forecast"])


mlflow.models.set_model(PanelForecaster())

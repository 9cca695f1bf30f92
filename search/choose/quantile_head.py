"""`search.intervals_method=cqr`: the winner's configuration trained again as a quantile head, whose bands
`search.intervals` then conformalizes (`search.scoring.intervals.interval_report`).

The head is the winner's architecture and framing with one output unit per (quantile, step ahead),
quantile-major (unit `k * h + s` is quantile `k`, step `s + 1`), trained under the pinball loss
(`models.quantiles.Pinball`) for the winner's epochs on the points before the winner's `split_time`,
as the searched model was: the scored validation origins stay unseen, so they can calibrate it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

from data.windows import window_view
from models import forecast
from models.quantiles import Pinball, interval_quantiles
from search.fit.hypermodel import StopOnNaN
from search.plan.space import DEFAULTS

if TYPE_CHECKING:
    from search.fit.hypermodel import WindowedHyperModel


def fit_quantile_head(
    hypermodel: WindowedHyperModel, values: dict, epochs: int, levels: Sequence[float], seed: int, train_stop: int | None = None
) -> keras.Model:
    """The winner's architecture with a quantile per level bound and step, trained on `[:split_time]` (or
    `[:train_stop]`: `bench.quantile_head` also measures a head trained on every point before the test tail)."""
    keras.utils.set_random_seed(seed % 2**32)
    values = {**DEFAULTS, **values}
    horizon = hypermodel.layout.horizon
    quantiles = interval_quantiles(sorted(float(v) for v in levels))  # the order quantile_bands reads
    train_stop = hypermodel.split_time(values) if train_stop is None else train_stop
    model = hypermodel.model_for(values, train_stop, output_blocks=len(quantiles))
    model.compile(loss=Pinball(np.repeat(quantiles, horizon)), optimizer=model.optimizer)  # the trial's optimizer
    data = hypermodel.training_windows(values, train_stop=train_stop, seed=seed % 2**32, label_copies=len(quantiles))
    model.fit(data, epochs=epochs, verbose=0, shuffle=False, callbacks=[StopOnNaN()])
    return model


def quantile_bands(model: keras.Model, series: np.ndarray, start: int, stop: int, horizon: int, levels: Sequence[float]) -> dict:
    """`{level: (low, high)}` of the head on the origins whose labels lie in `[start, stop)`, shaped like their
    labels (`(n,)` one step ahead, `(n, horizon)` over a horizon)."""
    x, _ = window_view(series, model.input_shape[1], start, stop, horizon)
    out = forecast(model, x).reshape(len(x), 2 * len(levels), horizon)
    bands = {}
    for index, level in enumerate(sorted(float(v) for v in levels)):
        low, high = out[:, 2 * index], out[:, 2 * index + 1]
        bands[level] = (low.ravel(), high.ravel()) if horizon == 1 else (low, high)
    return bands

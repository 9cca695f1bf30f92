"""Which configurations a panel's registered model averages, and how often each: chosen on validation forecasts.

On one series the blend decides from forecasts none of its members trained on (`search.choose.blend`); a panel has
what one series lacks, a validation origin in every series, so the searched models' own validation forecasts,
hundreds of them, are the evidence. Greedy forward selection with replacement (Caruana et al. 2004) over the `top_k`
best configurations, `search.ensemble` rounds: a configuration picked n times becomes n members (n seeds), so the
average weighs it n / rounds. A configuration that only adds error is never picked; averaging the five best
regardless put a 15x-worse configuration into the average of a 5-trial search (`tests/test_panel.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from models import forecast as batched_forecast
from search.choose.blend import greedy_weights
from search.choose.selection import Candidate

if TYPE_CHECKING:
    import keras

    from search.fit.panel_hypermodel import PanelHyperModel

SEED_OFFSET = 100
"""The first member's seed offset (each further member of one configuration takes the next), as `ensemble_members`."""


def panel_members(
    load_searched: Callable[[str], keras.Model], hypermodel: PanelHyperModel, candidates: list[Candidate], rounds: int
) -> list[tuple[Candidate, int]]:
    """`(configuration, seed offset)` of each member: the greedy picks over `candidates`' validation forecasts
    (`load_searched(trial_id)`: the model the search trained), `rounds` of them."""
    layout = hypermodel.layout
    points = range(layout.score_start, layout.test_start)
    forecasts, actual = [], None
    for candidate in candidates:
        model = load_searched(candidate.trial_id)
        x, y = hypermodel.origin_windows(int(model.input_shape[1]), points)
        forecasts.append(np.asarray(batched_forecast(model, x), dtype=np.float64).reshape(len(x), -1))
        actual = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    counts = np.round(greedy_weights(np.stack(forecasts), actual, rounds) * rounds).astype(int)
    return [(candidate, SEED_OFFSET + k) for candidate, count in zip(candidates, counts, strict=True) for k in range(count)]

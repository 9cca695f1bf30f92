"""The numbers of a learning-rate range test: the geometric schedule, the smoothed curve, the suggestion.

NumPy only (no TensorFlow), so the rule is unit-tested on curves whose answer is known.

The rule, as the course reads its loss-vs-LR plot: cut the curve where it diverges (the first
non-finite loss, or the first step whose moving-average loss exceeds `diverge_factor` times its lowest
so far, as the sweep's own stop rule), smooth it without lag (a bias-corrected exponential moving average run forwards
then backwards), find the lowest smoothed loss, and suggest the learning rate *before* it where the
smoothed loss falls fastest, measured across one decade of learning rate (a single noisy batch
cannot fake a decade-long fall). The search range around the suggestion `s` is
`[s * low_factor, s * high_factor]` (default `[s/10, 3s]`), clipped to the learning rates swept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from data.errors import UserError

if TYPE_CHECKING:
    from omegaconf import DictConfig


def geometric_schedule(start: float, end: float, steps: int) -> np.ndarray:
    """`steps` learning rates from `start` growing geometrically towards `end` (exclusive).

    `start=1e-8, end=1e-3, steps=100` is the course's `1e-8 * 10**(epoch / 20)`.
    """
    return start * (end / start) ** (np.arange(steps) / steps)


def smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (`beta` = 0 keeps the raw losses)."""
    smoothed = np.empty(len(losses))
    average = 0.0
    for index, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed[index] = average / (1 - beta ** (index + 1))
    return smoothed


def smooth_centred(losses: np.ndarray, beta: float) -> np.ndarray:
    """`smooth` forwards then backwards: as smooth, but without the moving average's lag."""
    return smooth(smooth(np.asarray(losses, float), beta)[::-1], beta)[::-1]


@dataclass
class Suggestion:
    """A range test's reading: the suggested learning rate, the range for a search, and where the curve turned."""

    learning_rate: float
    low: float
    high: float
    min_loss_learning_rate: float  # where the smoothed loss was lowest
    diverged_at: float | None  # learning rate of the first non-finite loss, if any
    smoothed: np.ndarray  # smoothed losses of the part read (before divergence)
    finite: int  # steps before the first non-finite loss
    warning: str | None = None  # why the reading may be poor, and what to change

    def as_dict(self) -> dict:
        return {
            "suggested_learning_rate": self.learning_rate,
            "range": [self.low, self.high],
            "min_loss_learning_rate": self.min_loss_learning_rate,
            "diverged_at": self.diverged_at,
            "warning": self.warning,
        }


def suggest(
    learning_rates: np.ndarray,
    losses: np.ndarray,
    beta: float,
    low_factor: float = 0.1,
    high_factor: float = 3.0,
    diverge_factor: float = 4.0,
) -> Suggestion:
    """Read a recorded (learning rate, loss) curve; raises `UserError` if the loss never fell."""
    learning_rates, losses = np.asarray(learning_rates, float), np.asarray(losses, float)
    bad = np.flatnonzero(~np.isfinite(losses))
    finite = int(bad[0]) if len(bad) else len(losses)
    diverged_at = float(learning_rates[finite]) if len(bad) else None
    if finite < 3:
        raise UserError(
            f"the learning-rate sweep diverged after {finite} steps (loss not finite at lr={learning_rates[finite]:.3g}): "
            "lower lr_find.start"
        )
    forward = smooth(losses[:finite], beta)
    blown = np.flatnonzero(forward > diverge_factor * np.minimum.accumulate(forward))
    readable = int(blown[0]) if len(blown) else finite
    smoothed = smooth_centred(losses[:readable], beta)
    lowest = int(np.argmin(smoothed))
    never_fell = UserError(
        f"the loss never fell during the sweep from lr={learning_rates[0]:.3g}: lower lr_find.start (or raise lr_find.steps)"
    )
    if lowest < 2:
        raise never_fell
    log_rates = np.log10(learning_rates[:readable])
    steps_per_decade = (readable - 1) / max(log_rates[-1] - log_rates[0], 1e-12)
    half = max(1, min(round(steps_per_decade / 2), lowest // 2))
    centres = np.arange(half, lowest - half + 1)
    slope = (smoothed[centres + half] - smoothed[centres - half]) / (log_rates[centres + half] - log_rates[centres - half])
    if slope.min() >= 0:
        raise never_fell
    index = int(centres[np.argmin(slope)])
    rate = float(learning_rates[index])
    warning = None
    if index <= centres[0] + half // 2:
        warning = f"the loss fell fastest right at the start of the sweep: lower lr_find.start (now {learning_rates[0]:.3g})"
    swept_low, swept_high = float(learning_rates[0]), float(learning_rates[readable - 1])
    return Suggestion(
        learning_rate=rate,
        low=max(rate * low_factor, swept_low),
        high=min(rate * high_factor, swept_high),
        min_loss_learning_rate=float(learning_rates[lowest]),
        diverged_at=diverged_at,
        smoothed=smoothed,
        finite=finite,
        warning=warning,
    )


def check_settings(settings: DictConfig) -> None:
    """Check the `lr_find` config; raises `UserError` naming the bad field."""
    if not 0 < settings.start < settings.end:
        raise UserError(f"lr_find.start={settings.start:g} and lr_find.end={settings.end:g} need 0 < start < end")
    if settings.steps < 5:
        raise UserError(f"lr_find.steps={settings.steps} is too few to read a curve: use at least 5 (default 200)")
    if not 0 <= settings.smoothing < 1:
        raise UserError(f"lr_find.smoothing={settings.smoothing:g} must be in [0, 1)")
    if settings.stop_factor and settings.stop_factor <= 1:
        raise UserError(f"lr_find.stop_factor={settings.stop_factor:g} must be > 1 (or 0 to stop only on NaN/inf)")
    if not 0 < settings.low_factor <= 1 <= settings.high_factor:
        raise UserError(
            f"lr_find.low_factor={settings.low_factor:g} and lr_find.high_factor={settings.high_factor:g} "
            "need 0 < low_factor <= 1 <= high_factor"
        )

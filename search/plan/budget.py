"""The tuner's budget as a schedule of trials, to say on each progress line how much is done and how long is left.

Keras Tuner hands trials out in a fixed order: random search and Bayesian optimisation `max_trials` trials of
`max_epochs` each; Hyperband its brackets from the most aggressive down, each bracket's rounds in order, a round of
`size(bracket, round)` trials training from the epochs the round before reached to `epochs(bracket, round)`
(Keras Tuner's `HyperbandOracle._get_size` and `_get_epochs`, computed here from the config so no oracle is needed:
a worker process reaches the chief's only through calls). Trial ids count up in that order, so the id of a finished
trial says where the search is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig


def hyperband_schedule(max_epochs: int, factor: int, iterations: int = 1) -> list[int]:
    """The epochs each Hyperband trial trains, in the order the oracle creates them (44 trials at 27 epochs, factor 4)."""
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:  # Keras Tuner's min_epochs
        epochs /= factor
        brackets += 1
    last_round = math.ceil(1 + math.log(max_epochs, factor))
    schedule = []
    for _ in range(iterations):
        for bracket in range(brackets - 1, -1, -1):
            for round_ in range(bracket + 1):
                size = math.ceil(last_round / (bracket + 1) * factor ** (bracket - round_))
                reached = math.ceil(max_epochs / factor ** (bracket - round_))
                before = math.ceil(max_epochs / factor ** (bracket - round_ + 1)) if round_ else 0
                schedule += [reached - before] * size
    return schedule


def trial_schedule(tuner: DictConfig) -> list[int]:
    """The epochs of each trial of the config's `tuner`, in order."""
    if str(tuner.name) == "hyperband":
        return hyperband_schedule(tuner.max_epochs, tuner.factor, tuner.hyperband_iterations)
    return [tuner.max_epochs] * tuner.max_trials


class Progress:
    """How far a search is along its schedule and, from the pace of the trials this process saw end, the time left."""

    def __init__(self, schedule: list[int], started: float) -> None:
        self.schedule, self.started = schedule, started
        self.done_before: int | None = None  # trials already done when this process began (a resumed search)
        self.cumulative = [0]
        for epochs in schedule:
            self.cumulative.append(self.cumulative[-1] + epochs)

    def line(self, trial_id: str, now: float) -> str:
        """`12/44 trials, ~3m10s left` after trial `trial_id` ended (trial ids count from 0 in schedule order)."""
        total = len(self.schedule)
        try:
            done = min(int(trial_id) + 1, total)
        except ValueError:
            return ""
        if self.done_before is None:
            self.done_before = done - 1
        epochs_done = self.cumulative[done] - self.cumulative[self.done_before]
        left = self.cumulative[total] - self.cumulative[done]
        if epochs_done <= 0 or done >= total:
            return f"{done}/{total} trials"
        seconds = (now - self.started) * left / epochs_done
        return f"{done}/{total} trials, ~{_duration(seconds)} left"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"

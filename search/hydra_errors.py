"""Hydra's composition errors as the one line (and exit code 2) other bad input gets.

Hydra reports a bad override (unknown key, wrong type, a value outside an Enum, a value it cannot
parse) with several lines on stderr and exit code 1, before our code runs. The entry point holds
stderr until the config is composed (`search.__main__.main` or, in a multirun, `SweepSummary`
releases it), and turns what Hydra wrote into one line if composition failed. This lives outside
`search.__main__` so that launchers which pickle the task function (joblib) do not pickle stderr.
"""

from __future__ import annotations

import io
import sys


class HeldStderr:
    """Hydra's composition errors come as several lines on stderr and exit code 1: hold stderr until the
    config is composed, and turn such an error into the one line (and exit code 2) other bad input gets."""

    def __init__(self):
        self.real, self.held = sys.stderr, io.StringIO()

    def hold(self) -> None:
        self.real, sys.stderr = sys.stderr, self.held

    def release(self) -> None:
        """The config composed: what Hydra wrote meanwhile (warnings) goes out as it was."""
        if sys.stderr is self.held:
            sys.stderr = self.real
            self.real.write(self.held.getvalue())

    def error_line(self) -> str | None:
        """Hydra's error as one line, if stderr is still held (composition failed); releases stderr."""
        if sys.stderr is not self.held:
            return None
        sys.stderr = self.real
        return one_line(self.held.getvalue())


HELD = HeldStderr()
"""The one instance: `search.__main__` holds, its `main` (or a multirun's start) releases."""

_HYDRA_NOISE = ("Set the environment variable HYDRA_FULL_ERROR", "reference_type=", "object_type=")


def one_line(hydra_error: str) -> str:
    """Hydra's multi-line composition error as one line, with a hint where quoting fixes it."""
    text = hydra_error.split("Config search path:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(_HYDRA_NOISE)]
    message = "; ".join(lines).replace(":; ", ": ")
    if "Error parsing override" in message:
        message += "; quote a value with spaces, accents or brackets: 'key=\"value\"'"
    return message or "the command line could not be composed into a config"

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

    def __init__(self) -> None:
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
    """Hydra's multi-line composition error as one line, with a hint where quoting fixes it.

    Hydra's grammar errors name the override only sometimes (`Error parsing override ...`; a lexer error such as
    `mismatched input '('` or an accented letter does not): the first override of the command line that Hydra's
    parser refuses is named, with the same override quoted as the fix.
    """
    text = hydra_error.split("Config search path:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(_HYDRA_NOISE)]
    message = "; ".join(lines).replace(":; ", ": ")
    if "override_grammar" in message or "Error parsing override" in message:
        bad = unparsable_override(sys.argv[1:])
        if bad is not None:
            key, _, value = bad.partition("=")
            reason = next((line for line in lines if not line.startswith(("Error parsing override", "See https"))), "")
            reason = reason.split(" expecting {")[0]  # ANTLR's list of every token it would have taken
            return (
                f"{bad} cannot be read by Hydra's command-line grammar ({reason.rstrip('; ^').strip()}): quote the value "
                f"with spaces, accents or brackets, as '{key}=\"{value}\"'"
            )
        message += "; quote a value with spaces, accents or brackets: 'key=\"value\"'"
    return message or "the command line could not be composed into a config"


def unparsable_override(overrides: list[str]) -> str | None:
    """The first command-line override Hydra's own parser refuses (flags such as `-m` skipped)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for override in overrides:
        if override.startswith("-"):
            continue
        try:
            parser.parse_override(override)
        except HydraException:  # (`parse_overrides` wraps it in an OverrideParseException)
            return override
    return None

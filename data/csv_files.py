"""Reading a user's CSV file: one place that turns a missing or unreadable file into one line naming `data.path`."""

from __future__ import annotations

from pathlib import Path

from data.errors import UserError, first_line


def read_csv_file(path: str, what: str):
    """The CSV file at `data.path` as a DataFrame; a missing or unreadable file is a `UserError` saying it is `what`."""
    import pandas as pd

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"data.path={path!r}: no such file; point data.path at {what}")
    try:
        return pd.read_csv(file)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise UserError(f"data.path={path!r} cannot be read as CSV ({first_line(err)}); fix the file") from None

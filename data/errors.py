"""The one exception type for bad user input: caught at the entry point and printed as one line."""


class UserError(Exception):
    """Bad input that the user must fix; the message names the field and what to do."""


def first_line(err: BaseException) -> str:
    """An exception's first line (at most 200 characters), for one-line messages that quote a library's error."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__

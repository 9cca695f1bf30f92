"""The one exception type for bad user input: caught at the entry point and printed as one line."""


class UserError(Exception):
    """Bad input that the user must fix; the message names the field and what to do."""

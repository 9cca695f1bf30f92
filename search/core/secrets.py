"""Passwords kept out of what is printed, logged or saved: a tracking URI's `user:password@` becomes `***@`."""

import re

_SECRET = re.compile(r"(?<=://)[^/\s]*@")  # up to the last "@" before the path: a password may hold "@" itself


def redact(uri: str) -> str:
    """A tracking URI with any `user:password@` part replaced, safe to print and log."""
    return _SECRET.sub("***@", uri)

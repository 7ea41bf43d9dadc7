"""Exceptions for bad user input: command lines and jobs report them as one line, without a traceback."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Input that cannot be used as given: a wrong shape, an unreadable file, an unknown option."""

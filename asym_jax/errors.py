"""Exceptions for bad user input: command lines and jobs report them as one line, without a traceback."""

from __future__ import annotations

__all__ = ["DivergedError", "InputError"]


class InputError(ValueError):
    """Input that cannot be used as given: a wrong shape, an unreadable file, an unknown option."""


class DivergedError(RuntimeError):
    """A training loss became NaN or Inf (not bad input: ``main`` exits with status 3 for it)."""

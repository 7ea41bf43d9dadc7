"""Exceptions for bad user input: command lines and jobs report them as one line, without a traceback."""

from __future__ import annotations

__all__ = ["ConfigError", "DivergedError", "InputError"]


class InputError(ValueError):
    """Input that cannot be used as given: a wrong shape, an unreadable file, an unknown option."""


class ConfigError(InputError):
    """A job configuration that cannot run (an unknown field, a contradiction, a missing asset)."""


class DivergedError(RuntimeError):
    """A training loss became NaN or Inf (not bad input: ``main`` exits with status 3 for it)."""

"""Exceptions for bad user input: command lines and jobs report them as one line, without a traceback."""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DivergedError", "InputError", "Stopped", "WorkdirBusyError"]


class InputError(ValueError):
    """Input that cannot be used as given: a wrong shape, an unreadable file, an unknown option."""


class ConfigError(InputError):
    """A job configuration that cannot run (an unknown field, a contradiction, a missing asset)."""


class DivergedError(RuntimeError):
    """A training loss became NaN or Inf (not bad input: ``main`` exits with status 3 for it)."""


class CheckpointError(InputError):
    """A checkpoint could not be written (a full disk, a write error) or no intact one could be read; the
    message says which checkpoints are intact."""


class WorkdirBusyError(InputError):
    """Another live process holds the workdir (``asym_jax.io.workdir_lock``); the message names it."""


class Stopped(Exception):
    """A run stopped on SIGTERM or SIGINT after saving a checkpoint at its current step (not a failure:
    running the same command again resumes there). ``signal`` is the signal's number."""

    def __init__(self, message: str, signal: int):
        super().__init__(message)
        self.signal = signal

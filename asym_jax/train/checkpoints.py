"""Checkpoints of the training jobs (``sr_gan``, ``iqa_nr``, ``iqa_fr_train``) and their stop on a signal.

:class:`Checkpoints` is an Orbax ``CheckpointManager`` in ``<workdir>/checkpoints`` with the guarantees the
jobs promise (``docs/reliability.md``):

- **Saving.** Orbax writes a checkpoint into a temporary folder and renames it into place (locally; on
  ``gs://`` it writes ``commit_success.txt`` last), and removes checkpoints beyond ``keep`` only after the
  new one is complete. A write that fails (a full disk, a permission error) raises one
  :class:`~asym_jax.errors.CheckpointError` that names the step, the folder and the checkpoints left intact.
- **Restoring.** The newest checkpoint that restores is used. One that does not (truncated, a file missing,
  unreadable, twice in a row) is named with the reason, set aside as ``<step>.damaged-<time>`` once an older
  one has restored (so a later save of that step cannot collide with it and no rotation keeps it over a good
  one), and the next older one is tried. When none restores, nothing is moved and the error names each one.

:class:`StopSignals` turns SIGTERM (what a TPU VM, Slurm or ``docker stop`` sends before the end) and SIGINT
(Ctrl-C) into a request that the training loop reads after each step: the loop saves a checkpoint at that
step and raises :class:`~asym_jax.errors.Stopped`; ``main`` exits with status 128 + the signal's number.
A second signal acts as usual (Ctrl-C twice stops at once). On several hosts the hosts must stop at the same
step: there SIGTERM is left to JAX's preemption service (started by ``jax.distributed.initialize``), which
agrees on a step that every host reaches (``multihost_utils.reached_preemption_sync_point``), and SIGINT is
not caught (one host's Ctrl-C cannot be agreed on; the run resumes from its last periodic checkpoint).
"""

from __future__ import annotations

import os
import signal
import threading

from absl import logging

from asym_jax.errors import CheckpointError, Stopped
from asym_jax.io import workdir_path

__all__ = ["Checkpoints", "StopSignals"]

_CAUGHT = (signal.SIGTERM, signal.SIGINT)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


class Checkpoints:
    """The checkpoints of one run (see the module docstring); ``keep``: how many to keep."""

    def __init__(self, workdir, keep: int):
        import orbax.checkpoint as ocp

        self.directory = workdir_path(workdir_path(workdir) / "checkpoints", absolute=True)
        self.manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True))
        self._saving: int | None = None   # the step of a save that may still be in flight
        self._failed = False

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, args_of) -> tuple[int | None, object]:
        """``(step, restored)`` of the newest checkpoint that restores (``args_of(step)``: the Orbax restore
        arguments), or ``(None, None)`` when there is none."""
        skipped: list[tuple[int, str]] = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                restored = self._restore_step(step, args_of)
            except Exception as error:  # noqa: BLE001 - any failure to read it: damaged (see the docstring)
                reason = _reason(error)
                message = (f"the checkpoint at step {step} in {self.directory} cannot be restored ({reason}); "
                           "skipped, trying the one before it")
                print(message, flush=True)
                logging.warning("%s", message)
                skipped.append((step, reason))
                continue
            self._set_aside([s for s, _ in skipped])
            return step, restored
        if skipped:
            listed = "; ".join(f"step {s}: {r}" for s, r in skipped)
            raise CheckpointError(f"no checkpoint in {self.directory} can be restored ({listed}). If the run's "
                                  "config changed, run it with its original config; to start over, move that "
                                  "folder away")
        return None, None

    def _restore_step(self, step: int, args_of):
        """One retry: a failed read of an object store may be passing; a damaged file fails twice."""
        try:
            return self.manager.restore(step, args=args_of(step))
        except Exception as error:  # noqa: BLE001
            logging.warning("restoring the checkpoint at step %d failed (%s); trying once more", step, _reason(error))
            return self.manager.restore(step, args=args_of(step))

    def _set_aside(self, steps: list[int]) -> None:
        if not steps:
            return
        import jax

        if jax.process_count() > 1:  # every host has restored before the folders move
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices("asym_jax checkpoints: set aside damaged")
        if jax.process_index() == 0:
            import time
            for step in steps:
                target = self.directory / f"{step}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
                try:
                    (self.directory / str(step)).rename(target)
                except Exception as error:  # noqa: BLE001 - the restore succeeded; only the tidying failed
                    print(f"could not move the damaged checkpoint {self.directory / str(step)} aside "
                          f"({_reason(error)}); remove it before the run saves step {step} again", flush=True)
                    continue
                print(f"moved the damaged checkpoint to {target}", flush=True)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices("asym_jax checkpoints: damaged set aside")
        self.manager.reload()

    def save(self, step: int, args, *, force: bool = False) -> None:
        """Starts saving ``args`` at ``step`` (asynchronously); a failed write raises :class:`CheckpointError`
        (here, or from :meth:`wait` or the next save for the part written in the background)."""
        self.wait()
        self._saving = step
        try:
            self.manager.save(step, args=args, force=force)
        except Exception as error:  # noqa: BLE001 - a write failure of any kind: one clear error
            raise self._write_error(step, error) from error

    def wait(self) -> None:
        """Waits for a save in flight; its failure raises :class:`CheckpointError`."""
        try:
            self.manager.wait_until_finished()
        except Exception as error:  # noqa: BLE001
            raise self._write_error(self._saving, error) from error
        self._saving = None

    def _write_error(self, step: int | None, error: BaseException) -> CheckpointError:
        self._failed = True
        try:
            self.manager.reload()
            intact = [s for s in self.manager.all_steps() if s != step]
        except Exception:  # noqa: BLE001 - the folder itself may be unreadable now
            intact = []
        kept = (f"the checkpoints at steps {', '.join(map(str, sorted(intact)))} are intact" if intact
                else "no earlier checkpoint exists")
        which = f"the checkpoint at step {step}" if step is not None else "a checkpoint"
        return CheckpointError(f"could not write {which} in {self.directory} ({_reason(error)}); "
                               f"{kept}. Free space (or fix the folder), then run the same command again to resume")

    def close(self) -> None:
        """Waits for a save in flight and closes the manager. A failed write raises :class:`CheckpointError`,
        unless it was raised already or another exception is on its way out (called in a ``finally``: that one
        is the error to report; this one is logged)."""
        import sys

        leaving = sys.exc_info()[1]  # in a finally clause: the exception on its way out, if any
        try:
            self.manager.close()
        except Exception as error:  # noqa: BLE001
            if not self._failed and leaving is None:
                raise self._write_error(self._saving, error) from error
            logging.warning("closing the checkpoint manager: %s", _reason(error))


class StopSignals:
    """``with StopSignals() as stop:`` around a training loop; ``stop.requested(step)`` after each step (on
    every host: see the module docstring); then save and ``raise stop.stopped(step, checkpoints)``."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._multihost = False

    def __enter__(self) -> StopSignals:
        import jax

        self._multihost = jax.process_count() > 1
        if not self._multihost and threading.current_thread() is threading.main_thread():
            for signum in _CAUGHT:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)  # None: set outside Python
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # the second one: what it would have done without us
            previous = self._previous.pop(signum, signal.SIG_DFL)
            signal.signal(signum, previous)
            if callable(previous):
                previous(signum, frame)
            else:
                os.kill(os.getpid(), signum)
            return
        self.received = signum
        print(f"{signal.Signals(signum).name} received: saving a checkpoint after this step, then stopping "
              "(send it again to stop at once, without saving)", flush=True)

    def requested(self, step: int) -> bool:
        """Whether to save and stop after ``step``."""
        if self._multihost:
            from jax.experimental import multihost_utils
            try:
                reached = multihost_utils.reached_preemption_sync_point(step)
            except RuntimeError:  # the preemption service is off
                return False
            if reached:
                self.received = signal.SIGTERM
            return reached
        return self.received is not None

    def stopped(self, step: int, checkpoints: Checkpoints) -> Stopped:
        """The exception to raise once the checkpoint at ``step`` is saved (and waited for)."""
        signum = self.received or signal.SIGTERM
        return Stopped(f"stopped by {signal.Signals(signum).name} at step {step}; the checkpoint at step {step} is "
                       f"saved in {checkpoints.directory}. Run the same command again to resume", signum)

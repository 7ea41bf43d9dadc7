"""The training progress line, through ``clu.periodic_actions``.

:class:`Progress` is clu's ``ReportProgress`` (steps/s and uptime to the metric writer, the work-unit note
with percentage, ETA and the share of time spent in ``timed("eval")`` / ``timed("checkpoint")`` blocks)
that also prints one console line per report with the latest training losses and writes images/s.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from clu import periodic_actions

from asym_jax.errors import DivergedError

__all__ = ["LossLog", "Progress", "TrainLog", "format_duration", "print_line", "read_train_log"]

_SHOWN = ("g_total", "pixel", "fidelity", "g_gan", "d_loss", "d_real", "d_fake")


def print_line(line: str) -> None:
    print(line, flush=True)  # at once, also when stdout is a pipe


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def read_train_log(path) -> list[dict]:
    """The records of a ``train_log.jsonl`` (one JSON object per logging step, ``{"step": ..., <mean>: ...}``),
    in order; a line cut short by a kill is skipped; no file: ``[]``."""
    import json

    from asym_jax.io import workdir_path

    try:
        lines = workdir_path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


class TrainLog:
    """``<workdir>/train_log.jsonl``: the mean of each training scalar over every logging interval, one line
    per logging step, across resumes. Opening it at ``step`` (the step training starts from: 0 or the restored
    checkpoint's) drops the records after that step, written by a run that was killed before its next
    checkpoint, so the file always describes the steps that led to the current weights.

    Locally each record is appended to the file. On an object store (a ``gs://`` workdir) an object cannot
    be appended to: the whole file (one short line per logging step) is rewritten with each record."""

    def __init__(self, path, step: int):
        import json

        from asym_jax.io import is_remote, workdir_path, write_atomic

        self.path = workdir_path(path)
        kept = [r for r in read_train_log(self.path) if r["step"] <= step]
        self._text = "".join(json.dumps(r) + "\n" for r in kept)
        self._remote = is_remote(self.path)
        write_atomic(self.path, self._text)

    def append(self, step: int, means: dict[str, float]) -> None:
        import json

        from asym_jax.io import write_atomic

        line = json.dumps({"step": int(step), **{k: float(v) for k, v in means.items()}}) + "\n"
        if self._remote:
            self._text += line
            write_atomic(self.path, self._text)
            return
        with open(self.path, "a") as f:
            f.write(line)


class Progress(periodic_actions.ReportProgress):
    """Call it after every step; it reports at the multiples of ``every_steps`` and at the last step, except
    on its first call (clu measures the rate from that call on; a one-step run prints no line). Set
    :attr:`losses` (host floats) before the call at a reporting step."""

    def __init__(self, *, num_train_steps: int, every_steps: int, batch_size: int, writer=None,
                 print_fn: Callable[[str], None] = print_line):
        super().__init__(num_train_steps=num_train_steps, writer=writer, every_steps=every_steps, every_secs=None)
        self.losses: dict[str, float] = {}
        self._total = num_train_steps
        self._batch_size = batch_size
        self._print = print_fn

    def _apply(self, step: int, t: float) -> None:
        rate = (step - self._previous_step) / max(t - self._previous_time, 1e-9)
        super()._apply(step, t)  # the note, steps_per_sec and uptime
        if self._writer is not None:
            self._writer.write_scalars(step, {"images_per_sec": rate * self._batch_size})
        shown = " ".join(f"{k} {self.losses[k]:.4g}" for k in _SHOWN if k in self.losses)
        eta = (self._total - step) / max(rate, 1e-9)
        self._print(f"step {step}/{self._total} | {rate:.2f} steps/s | ETA {format_duration(eta)} | {shown}")


class LossLog:
    """The loss log of the IQA training loops (``iqa_fr_train``, ``iqa_nr``): :meth:`add` each step's loss
    (a device scalar; nothing is fetched between logging steps); at the multiples of ``every_steps`` and at
    the last step the interval's mean is checked (NaN/Inf: :class:`DivergedError` naming the job and where
    the last good checkpoint is), kept in :attr:`history` as ``[step, mean]``, printed with steps/s and the
    ETA, and written to ``writer`` (a clu metric writer: ``train/<loss>``, ``train/steps_per_sec`` and the
    extra scalars) and to ``log_file`` (a :class:`TrainLog`: then :attr:`history` covers the steps before a
    resume too). The loops log at every checkpoint step too (``flush``), so no checkpoint holds weights whose
    losses were not checked, and a resume never cuts a logging interval."""

    def __init__(self, *, job: str, loss: str, num_train_steps: int, every_steps: int, first_step: int,
                 checkpoints, writer=None, log_file=None, print_fn: Callable[[str], None] = print_line):
        self.job, self.loss, self.total, self.every = job, loss, num_train_steps, every_steps
        self.first, self.checkpoints, self.writer, self._print = first_step, checkpoints, writer, print_fn
        self._file = TrainLog(log_file, first_step) if log_file is not None else None
        self._history: list[list] = []
        self._pending: list = []
        self._start = time.perf_counter()

    @property
    def history(self) -> list[list]:
        """``[step, mean loss]`` of every logging step: from the log file (across resumes) when there is one,
        else this process's."""
        if self._file is None:
            return list(self._history)
        return [[r["step"], r[self.loss]] for r in read_train_log(self._file.path) if self.loss in r]

    def add(self, step: int, loss, extra: Callable[[], dict[str, float]] | None = None, *,
            flush: bool = False) -> None:
        """``extra``: more named scalars (e.g. ``{"lr": ...}``), made only at a logging step (it may fetch
        from the device). ``flush``: log (and check) the interval so far at this step too (a run stopping
        here on a signal saves a checkpoint: nothing unchecked is saved, and no loss is lost)."""
        import jax

        self._pending.append(loss)
        if step % self.every and step != self.total and not flush:
            return
        mean = float(np.mean(jax.device_get(self._pending)))
        self._pending.clear()
        if not np.isfinite(mean):
            raise DivergedError(f"{self.job}: the {self.loss} loss is {mean} at step {step} (checkpoints in "
                                f"{self.checkpoints} hold the last good weights)")
        self._history.append([step, mean])
        rate = (step - self.first) / max(time.perf_counter() - self._start, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        scalars = extra() if extra else {}
        if self._file is not None:
            self._file.append(step, {self.loss: mean, **scalars})
        if self.writer is not None:
            self.writer.write_scalars(step, {f"train/{self.loss}": mean, "train/steps_per_sec": rate,
                                             **{f"train/{k}": v for k, v in scalars.items()}})
        shown = "".join(f" | {k} {v:.3g}" for k, v in scalars.items())
        self._print(f"step {step}/{self.total} | {rate:.2f} steps/s | ETA {format_duration(eta)} | "
                    f"{self.loss} {mean:.5f}{shown}")

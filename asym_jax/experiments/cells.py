"""A study's cells: ordinary jobs (``sr_gan``, ``iqa_fr``, ``iqa_nr``, ...) each in ``<study>/cells/<name>/``.

A :class:`Cell` is a config file with its preset (``"configs/sr_patchgan.py:sample"``) and field overrides;
it runs in-process as ``python -m asym_jax.main`` would run it (:meth:`Cell.command` prints that command),
resumes from its own checkpoints and is *done* when its job's final result file exists. ``cell.json``
records what a cell was made with: a study rerun with other settings for the same cell is refused instead
of mixing results.

Claims: before running a cell a process creates ``<cell>/.claim`` atomically (``O_CREAT | O_EXCL``, on
any file system that shares the study's folder, e.g. NFS); other processes skip a claimed cell. A claim
left by a dead process on the same host is taken over (renamed away first, so only one process wins); a
claim from another host is respected until someone removes it.

On an object store (a ``gs://`` workdir) there is no exclusive create. There a claim is checked for, written
with a random token, and read back after :data:`SETTLE_SECONDS`: of two processes that both found the cell
free and wrote within that time, both read the later write, so only its writer runs the cell. Two writes
further apart than that cannot both find the cell free. ``launch/study.sh`` gives each machine its own
cells anyway.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import shlex
import socket
import time
from typing import Any

from asym_jax.errors import ConfigError
from asym_jax.io import SETTLE_SECONDS, WorkPath, is_remote, pid_alive, workdir_path, write_json

__all__ = ["DONE_FILES", "Cell", "cell_status", "claim", "load_job_config", "release", "slug"]

# The file whose presence means a job finished (written last, atomically, by each job).
DONE_FILES = {"sr_gan": "eval/final.json", "iqa_fr": "results.json", "iqa_fr_train": "results.json",
              "iqa_nr": "results.json"}
_REPO_CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


def slug(text: str) -> str:
    """A cell-name fragment: ``"dists_style:backbone=resnet50"`` -> ``"dists_style-backbone-resnet50"``."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", str(text)).strip("-") or "x"


def _config_path(spec: str) -> tuple[pathlib.Path, str | None]:
    file, _, preset = spec.partition(":")
    path = pathlib.Path(file)
    if not path.is_file() and (_REPO_CONFIGS / path.name).is_file() and path.parent.name in ("configs", ""):
        path = _REPO_CONFIGS / path.name  # run from outside the repository
    if not path.is_file():
        raise ConfigError(f"config file {file!r} not found (give it as configs/<name>.py[:preset])")
    return path, preset or None


def load_job_config(spec: str, overrides: dict[str, Any] | None = None):
    """``get_config(preset)`` of the config file in ``spec`` (``"configs/<file>.py[:preset]"``) with
    ``overrides`` set; an override that names no field of that config is refused."""
    path, preset = _config_path(spec)
    module_spec = importlib.util.spec_from_file_location(f"asym_jax_cell_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(preset) if preset is not None else module.get_config()
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ConfigError(f"{spec}: the config has no field {key!r} (a study override cannot add one)")
        config[key] = tuple(value) if isinstance(value, list) else value
    return config


def _flag_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return repr(tuple(value))
    return str(value)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One job of a study. ``labels``: what the report groups it by (metric, gan weight, seed, ...);
    ``needs``: cells whose results this one reads (run first)."""

    name: str
    experiment: str
    job: str
    config: str
    overrides: tuple[tuple[str, Any], ...]
    labels: tuple[tuple[str, Any], ...] = ()
    needs: tuple[str, ...] = ()

    def workdir(self, root: WorkPath) -> WorkPath:
        return workdir_path(root) / "cells" / self.name

    def job_config(self):
        return load_job_config(self.config, dict(self.overrides))

    def command(self, root: WorkPath) -> str:
        """The ``python -m asym_jax.main`` command that runs (or resumes) this cell on its own."""
        parts = ["python", "-m", "asym_jax.main", f"--config={self.config}", f"--workdir={self.workdir(root)}"]
        parts += [f"--config.{k}={_flag_value(v)}" for k, v in self.overrides]
        return " ".join(shlex.quote(p) for p in parts)

    def record(self) -> dict:
        return {"name": self.name, "experiment": self.experiment, "job": self.job, "config": self.config,
                "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides},
                "labels": dict(self.labels), "needs": list(self.needs)}


def cell_status(cell: Cell, root: WorkPath) -> str:
    """``"done"``, ``"diverged"`` (a GAN that blew up: a finished, recorded outcome), ``"claimed"`` (a
    process holds it), ``"partial"`` (started: a resume continues it) or ``"missing"``; a cell folder made
    with other settings raises."""
    folder = cell.workdir(root)
    recorded = folder / "cell.json"
    if recorded.is_file():
        try:
            before = json.loads(recorded.read_text())
        except ValueError:
            before = None
        if before is not None and {k: before.get(k) for k in ("job", "config", "overrides")} != \
                {k: cell.record()[k] for k in ("job", "config", "overrides")}:
            raise ConfigError(f"cell {cell.name} in {folder} was made with other settings ({recorded}); remove that "
                              "folder to rerun it, or use another study workdir")
    if (folder / DONE_FILES[cell.job]).is_file():
        return "done"
    if (folder / "diverged.json").is_file():
        return "diverged"
    if (folder / ".claim").is_file():
        return "claimed"
    return "partial" if recorded.is_file() else "missing"


def _claim_remote(path, mine: dict) -> dict | None:
    """:func:`claim` on an object store (see the module docstring)."""
    import uuid

    for _ in range(2):
        if path.exists():
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                return {"host": "?", "pid": None, "since": "?"}
            if holder.get("host") != mine["host"] or pid_alive(int(holder.get("pid") or 0)):
                return holder
            path.unlink(missing_ok=True)  # a dead process of this host
            continue
        token = dict(mine, token=uuid.uuid4().hex)
        write_json(path, token)
        time.sleep(SETTLE_SECONDS)
        try:
            holder = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"host": "?", "pid": None, "since": "?"}
        return None if holder.get("token") == token["token"] else holder
    return {"host": "?", "pid": None, "since": "?"}


def claim(folder: WorkPath) -> dict | None:
    """Claims ``folder`` for this process: ``None`` on success, else the holder's record."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".claim"
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    if is_remote(folder):
        return _claim_remote(path, mine)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                return {"host": "?", "pid": None, "since": "?"}  # being written: someone else's
            if holder.get("host") != mine["host"] or pid_alive(int(holder.get("pid") or 0)):
                return holder
            try:  # a dead process of this host: move its claim away (one process wins), then retry
                os.rename(path, folder / f".claim.stale-{holder.get('pid')}-{os.getpid()}")
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        return None
    return {"host": "?", "pid": None, "since": "?"}


def release(folder: WorkPath) -> None:
    try:
        (folder / ".claim").unlink()
    except FileNotFoundError:
        pass

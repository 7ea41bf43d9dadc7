"""``<workdir>/manifest.json``: where a run's weights came from and what it ran on.

Written by process 0 when a job starts::

    {"trunks": {ROLE: {"backbone", "source": "imagenet" | "random" | PATH, "seed", "sha256"}},
     "versions": {"asym_jax", "python", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy"},
     "devices": {"platform", "kind", "count", "processes"}, "command": "...", "time": "...",
     "resumes": [{"time", "command", "devices", "step"}, ...]}

A resumed run must find the same trunks (:func:`check_manifest`, before anything is restored) and appends
to ``resumes``: a weights file that changed since the run started would otherwise silently give a different
loss, discriminator or evaluation metric in the middle of a run. Roles: ``generator`` (its starting weights,
``g_init``), ``discriminator``, ``fidelity``, ``pixel`` (the losses) and ``eval/<metric>`` (the evaluation
metrics).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys
from typing import Mapping, Sequence

from asym_jax.errors import InputError
from asym_jax.io import workdir_path, write_json

__all__ = ["ManifestError", "check_manifest", "devices", "recorded_trunks", "same_weights", "versions", "write_manifest"]

_PACKAGES = ("asym_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy")


class ManifestError(InputError):
    """A resumed run whose trunks differ from those recorded when it started."""


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def devices(devices: Sequence | None = None) -> dict:
    import jax
    devices = list(jax.devices() if devices is None else devices)
    return {"platform": devices[0].platform, "kind": devices[0].device_kind, "count": len(devices),
            "processes": jax.process_count()}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def same_weights(a: dict | None, b: dict | None) -> bool:
    """Whether two trunk records name the same weights: the same backbone and kind, then the same seed
    (random) or digest (files; a moved file with the same digest is the same weights)."""
    if a is None or b is None:
        return a is b
    if a["backbone"] != b["backbone"] or (a["source"] == "random") != (b["source"] == "random"):
        return False
    if a["source"] == "random":
        return a["seed"] == b["seed"]
    if a["sha256"] and b["sha256"]:
        return a["sha256"] == b["sha256"]
    return a["source"] == b["source"]


def _read(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is unreadable ({error}); it records where this run's weights came from: "
                            "restore it, or use a new --workdir") from None


def recorded_trunks(workdir: str | os.PathLike) -> dict:
    """The trunk records of ``<workdir>/manifest.json`` (``{}`` without one)."""
    path = workdir_path(workdir) / "manifest.json"
    return dict(_read(path).get("trunks", {})) if path.exists() else {}


def check_manifest(workdir: str | os.PathLike, trunks: Mapping[str, dict]) -> None:
    """Before a resume (on every host: it only reads): raises :class:`ManifestError` when the trunks
    recorded in ``<workdir>/manifest.json`` are other weights than ``trunks``. A workdir without a
    manifest (a run from before manifests) passes."""
    path = workdir_path(workdir) / "manifest.json"
    if not path.exists():
        return
    recorded = _read(path).get("trunks", {})
    changed = sorted(r for r in set(recorded) | set(trunks) if not same_weights(recorded.get(r), trunks.get(r)))
    if changed:
        raise ManifestError(
            f"{workdir} holds a run that started with other trunk weights ({', '.join(changed)}): recorded "
            f"{[recorded.get(r) for r in changed]}, now {[trunks.get(r) for r in changed]} (see {path}); resuming "
            "would mix them. Restore the original weights or use a new --workdir")


def write_manifest(workdir: str | os.PathLike, trunks: Mapping[str, dict], *, resumed_step: int | None = None,
                   devices_used: Sequence | None = None, command: Sequence[str] | None = None) -> dict:
    """Writes a new manifest (``resumed_step=None``: a run that starts from scratch, also after an attempt
    that saved no checkpoint), or appends this start to ``resumes`` (after :func:`check_manifest`)."""
    path = workdir_path(workdir) / "manifest.json"
    start = {"time": _now(), "command": shlex.join(sys.argv if command is None else command),
             "devices": devices(devices_used)}
    if resumed_step is not None and path.exists():
        manifest = _read(path)
        manifest.setdefault("resumes", []).append({**start, "step": resumed_step})
    else:
        manifest = {"trunks": {role: dict(record) for role, record in trunks.items()}, "versions": versions(),
                    **start, "resumes": []}
    write_json(path, manifest)
    return manifest

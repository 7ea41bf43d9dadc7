"""``<workdir>/manifest.json``: where a run's weights came from and what it ran on.

Written by process 0 when a job starts::

    {"trunks": {ROLE: {"backbone", "source": "imagenet" | "random" | PATH, "seed", "sha256"}},
     "versions": {"asym_jax", "python", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy"},
     "devices": {"platform", "kind", "count", "processes"}, "command": "...", "time": "...",
     "resumes": [{"time", "command", "devices", "step"}, ...]}

A resumed run appends to ``resumes`` and must find the same trunks: a weights file that changed since the
run started would otherwise silently give a different loss or discriminator in the middle of a run.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import shlex
import sys
from typing import Mapping, Sequence

from asym_jax.errors import InputError
from asym_jax.io import write_json

__all__ = ["ManifestError", "devices", "versions", "write_manifest"]

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


def _same_weights(a: dict | None, b: dict | None) -> bool:
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


def write_manifest(workdir: str | os.PathLike, trunks: Mapping[str, dict], *, step: int = 0,
                   devices_used: Sequence | None = None, command: Sequence[str] | None = None) -> dict:
    """Writes (or, for a resumed run, extends) the manifest; returns it. Raises :class:`ManifestError` when
    the recorded trunks differ from ``trunks``."""
    path = pathlib.Path(workdir) / "manifest.json"
    command = shlex.join(sys.argv if command is None else command)
    trunks = {role: dict(record) for role, record in trunks.items()}
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ManifestError(f"{path} is unreadable ({error}); it records where this run's weights came from: "
                                "restore it, or use a new --workdir") from None
        recorded = manifest.get("trunks", {})
        changed = sorted(r for r in set(recorded) | set(trunks) if not _same_weights(recorded.get(r), trunks.get(r)))
        if changed:
            raise ManifestError(
                f"{workdir} holds a run that started with other trunk weights ({', '.join(changed)}): recorded "
                f"{[recorded.get(r) for r in changed]}, now {[trunks.get(r) for r in changed]} (see {path}); resuming "
                "would mix them. Restore the original weights or use a new --workdir")
        manifest.setdefault("resumes", []).append({"time": _now(), "command": command,
                                                   "devices": devices(devices_used), "step": step})
    else:
        manifest = {"trunks": trunks, "versions": versions(), "devices": devices(devices_used), "command": command,
                    "time": _now(), "resumes": []}
    write_json(path, manifest)
    return manifest

"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves the old one.

Every JSON, CSV and text file the project writes for users (results, manifests, metadata) goes through
:func:`write_atomic`: the bytes go to a temporary file in the same folder, are flushed to disk, and the
temporary file is renamed over the target (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

__all__ = ["write_atomic", "write_json"]


def _read_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``os.umask`` can only be read by
    setting it, which would race with threads creating files, such as Orbax's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import


def write_atomic(path: str | os.PathLike, data: str | bytes) -> pathlib.Path:
    """Writes ``data`` (text as UTF-8, or bytes) to ``path`` atomically; creates missing parent folders."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; a plain open() would honour the umask
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, payload: Any, *, sort_keys: bool = False) -> pathlib.Path:
    """Writes ``payload`` as indented JSON (with a final newline) atomically."""
    return write_atomic(path, json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n")

"""Workdir paths and atomic file writes.

:func:`workdir_path` turns a ``--workdir`` (or any folder a job writes to or reads another run from) into a
path object: a local path stays a :class:`pathlib.Path`; a URL (``gs://bucket/runs/x``, ``s3://...``) becomes
an :class:`etils.epath.Path`, whose file system is reached through ``tf.io.gfile`` (or fsspec). Both offer
the ``pathlib`` operations the jobs use (``/``, ``mkdir``, ``exists``, ``is_file``, ``read_text``, ``open``
for reading, ``glob``, ``iterdir``, ``unlink``). ``pathlib.Path("gs://b/x")`` would silently become the local
folder ``gs:/b/x``, so no job wraps a workdir in ``pathlib.Path`` itself.

Every JSON, CSV, text and image file the project writes for users (results, manifests, metadata, plots)
goes through :func:`write_atomic`: a reader never sees a half-written file, and a failed write leaves the
old one. Locally the bytes go to a temporary file in the same folder, are flushed to disk, and the temporary
file is renamed over the target (``os.replace`` is atomic on POSIX and Windows). On an object store the
object is written directly: the store makes an object visible whole when its upload completes (on close),
so readers see the old object or the new one, never a part.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import TYPE_CHECKING, Any, Union

from asym_jax.errors import InputError

if TYPE_CHECKING:
    from etils import epath

__all__ = ["WorkPath", "is_remote", "local_path", "workdir_path", "write_atomic", "write_json"]

WorkPath = Union[pathlib.Path, "epath.Path"]  # what workdir_path returns: local, or a URL's epath path

_URL_SCHEMES = ("gs", "s3", "az", "hf")  # the URL schemes etils.epath reaches (gs:// through tf.io.gfile)


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL (``gs://...``, an epath path to one), not a local path. (A local
    ``pathlib.Path`` never holds ``//``: it collapses it.)"""
    return "://" in os.fspath(path)


def workdir_path(value: str | os.PathLike, *, absolute: bool = False) -> WorkPath:
    """The path object of a workdir (or of any file or folder in one): ``gs://``, ``s3://``, ``az://`` and
    ``hf://`` URLs as :class:`etils.epath.Path` (kept intact: a URL has no "absolute" form to take), anything
    else as a local :class:`pathlib.Path` (``absolute=True``: made absolute, as Orbax wants local folders).
    Raises :class:`InputError` for a URL of another scheme, and for a local path that starts ``gs:`` (a URL
    that went through ``pathlib.Path``, which turns ``gs://b`` into ``gs:/b``)."""
    text = os.fspath(value)
    if is_remote(text):
        scheme = text.split("://", 1)[0]
        if scheme not in _URL_SCHEMES:
            raise InputError(f"{text}: {scheme}:// is not a file system this project can write to; give a local "
                             f"folder or a {', '.join(s + '://' for s in _URL_SCHEMES)} URL")
        from etils import epath
        return epath.Path(text)
    path = pathlib.Path(text)
    if path.parts and path.parts[0].rstrip(":") in _URL_SCHEMES and path.parts[0].endswith(":"):
        raise InputError(f"{text}: a URL whose '//' was lost (pathlib.Path turns gs://b into gs:/b); give the URL "
                         "itself, e.g. --workdir=gs://bucket/runs/x")
    return path.absolute() if absolute else path


def local_path(value: str | os.PathLike, what: str) -> pathlib.Path:
    """``value`` as a local :class:`pathlib.Path`, for inputs that are read with local file I/O only (converted
    weights, ``weights_dir``, ``manual_dir`` releases, images to score); a URL raises :class:`InputError`
    naming ``what`` (pathlib would silently turn ``gs://b/x`` into the local ``gs:/b/x``)."""
    if is_remote(value):
        raise InputError(f"{what} {os.fspath(value)}: must be a local path (it is read with local file I/O, not "
                         "from an object store); copy it to a local folder first, e.g. gcloud storage cp -r")
    return pathlib.Path(value)


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


def write_atomic(path: str | os.PathLike, data: str | bytes) -> WorkPath:
    """Writes ``data`` (text as UTF-8, or bytes) to ``path`` atomically; creates missing parent folders.
    Returns the path (:func:`workdir_path` of ``path``).

    Local: a temporary file in the same folder (mode 0666 less the umask, as ``open`` would make it),
    flushed and fsynced, renamed over the target. A URL (``gs://...``): the object is written directly;
    an object store publishes an object whole when its upload completes on close (there is no rename to
    do atomically), so a reader sees the previous object or the new one."""
    path = workdir_path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_remote(path):
        with path.open("wb") as f:
            f.write(payload)
        return path
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


def write_json(path: str | os.PathLike, payload: Any, *, sort_keys: bool = False) -> WorkPath:
    """Writes ``payload`` as indented JSON (with a final newline) atomically."""
    return write_atomic(path, json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n")

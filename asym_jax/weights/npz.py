"""Byte-reproducible ``.npz`` files: fixed member order and timestamps, so a sha256 can be recorded."""

from __future__ import annotations

import io
import math
import os
import zipfile
import zlib
from typing import BinaryIO, Mapping

import numpy as np

from asym_jax.weights.readers import (ZIP_ERRORS, WeightFileError, check_member_names, checked_shape,
                                      reading_errors)

__all__ = ["save_npz", "load_npz"]

_EPOCH = (1980, 1, 1, 0, 0, 0)
_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more: a member declaring more is forged


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes ``arrays`` as an uncompressed npz whose bytes depend only on the arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def load_npz(path: str | os.PathLike | BinaryIO) -> dict[str, np.ndarray]:
    """Reads an npz without ever unpickling (``np.save``/``np.savez[_compressed]`` files of numeric arrays).

    Every member must be a ``.npy`` of a plain numeric dtype whose header agrees with the member's declared
    size, checked before its data is read; anything else raises ``WeightFileError`` naming the file.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "the npz stream")
    with reading_errors(name, "npz file"):
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                check_member_names([info.filename for info in infos])
                return {info.filename[:-len(".npy")]: _read_member(archive, info) for info in infos}
        except WeightFileError:
            raise
        except (*ZIP_ERRORS, zlib.error) as error:
            raise WeightFileError(f"damaged zip archive ({error.__class__.__name__}: {error})") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    name = info.filename
    if not name.endswith(".npy"):
        raise WeightFileError(f"member {name!r} is not a .npy array (an npz holds nothing else; no pickle is read)")
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise WeightFileError(f"member {name!r} is encrypted or compressed by other means than numpy writes")
    if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise WeightFileError(f"member {name!r} declares {info.file_size} bytes, more than its "
                              f"{info.compress_size} compressed bytes can hold")
    with archive.open(info) as f:
        try:
            header = _HEADERS.get(np.lib.format.read_magic(f))
            if header is None:
                raise WeightFileError(f"member {name!r} has an unsupported .npy version")
            shape, fortran, dtype = header(f)
        except WeightFileError:
            raise
        except Exception as error:  # numpy parses the header with tokenize and ast: many error types
            raise WeightFileError(f"member {name!r} has no valid .npy header "
                                  f"({error.__class__.__name__}: {str(error)[:200]})") from None
        if dtype.kind not in "biufc":
            raise WeightFileError(f"member {name!r} holds dtype {dtype}; only plain numeric arrays are read "
                                  "(object arrays would need a pickle)")
        shape = checked_shape(shape, dtype.itemsize, f"shape of member {name!r}")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != f.tell() + nbytes:
            raise WeightFileError(f"member {name!r} holds {info.file_size - f.tell()} data bytes; its header "
                                  f"declares shape {shape} of {dtype} ({nbytes} bytes)")
        raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise WeightFileError(f"member {name!r} is truncated")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()

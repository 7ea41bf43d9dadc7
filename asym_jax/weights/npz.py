"""Byte-reproducible ``.npz`` files: fixed member order and timestamps, so a sha256 can be recorded."""

from __future__ import annotations

import io
import os
import zipfile
from typing import Mapping

import numpy as np

__all__ = ["save_npz", "load_npz"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes ``arrays`` as an uncompressed npz whose bytes depend only on the arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an npz without ever unpickling."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}

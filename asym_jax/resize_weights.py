"""MATLAB ``imresize`` weights along one axis as a dense float64 ``(out, in)`` matrix, for any of its kernels.

Shared by ``asym_jax.data.imresize`` (bicubic by a scale factor) and ``asym_jax.metrics`` (VSI's bilinear resize
to a size). numpy only: data-loading workers import it without JAX.

Output sample ``x`` (1-based) sits at input ``x / scale + (1 - 1 / scale) / 2``; when shrinking with
antialiasing the kernel is stretched by ``1 / scale`` (and its height scaled by ``scale``); each row is
normalised to sum to one, and taps past an edge read the image mirrored about it (``... b a | a b c ...``),
folded onto the pixels they read.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from asym_jax.errors import InputError

__all__ = ["KERNELS", "matlab_resize_matrix"]


def _keys_cubic(t: np.ndarray) -> np.ndarray:
    """The cubic convolution kernel of Keys (1981) with a = -0.5; zero for |t| >= 2."""
    t = np.abs(t)
    t2, t3 = t * t, t * t * t
    near = (1.5 * t3 - 2.5 * t2 + 1.0) * (t <= 1)
    far = (-0.5 * t3 + 2.5 * t2 - 4.0 * t + 2.0) * ((t > 1) & (t <= 2))
    return near + far


def _triangle(t: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(t))


# name -> (kernel, width in input pixels at scale 1), as MATLAB's imresize names them.
KERNELS = {"bicubic": (_keys_cubic, 4.0), "bilinear": (_triangle, 2.0)}
_MAX_TAPS = 1 << 24  # out_size x kernel taps; more only for absurd scales such as 1e-9


@functools.lru_cache(maxsize=64)
def matlab_resize_matrix(in_size: int, out_size: int, scale: float, kernel: str = "bicubic",
                         antialias: bool = True) -> np.ndarray:
    """The read-only float64 ``(out_size, in_size)`` matrix of MATLAB ``imresize`` along one axis (cached).

    ``scale`` is MATLAB's: the factor given (``imresize(x, scale)``), or ``out / in`` for a size.
    """
    function, width = KERNELS[kernel]
    shrink = antialias and scale < 1
    support = width / scale if shrink else width  # width of the (stretched) kernel, in input pixels
    if out_size * (math.ceil(support) + 2) > _MAX_TAPS:
        raise InputError(f"scale {scale!r} is too small for an axis of {in_size} pixels")
    centre = np.arange(1, out_size + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    first = np.floor(centre - support / 2)
    taps = first[:, None] + np.arange(math.ceil(support) + 2)[None, :]  # 1-based input positions
    offset = centre[:, None] - taps
    weights = scale * function(scale * offset) if shrink else function(offset)
    weights /= weights.sum(axis=1, keepdims=True)
    # Mirror positions outside 1..in_size back inside; the pattern repeats every 2 * in_size samples,
    # so this also serves kernels wider than the image.
    folded = np.mod(taps.astype(np.int64) - 1, 2 * in_size)
    folded = np.where(folded < in_size, folded, 2 * in_size - 1 - folded)
    matrix = np.zeros((out_size, in_size), np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_size), taps.shape[1]), folded.ravel()), weights.ravel())
    matrix.flags.writeable = False
    return matrix

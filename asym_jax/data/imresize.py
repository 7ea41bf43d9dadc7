"""Bicubic resizing equal to MATLAB's ``imresize(image, scale)``, for numpy and for JAX arrays.

Super-resolution benchmarks make their low-resolution inputs with MATLAB's ``imresize`` at its
defaults: the bicubic kernel of Keys with a = -0.5, and, when shrinking, that kernel stretched by
``1 / scale`` (and its height scaled by ``scale``) so that it also low-pass filters ("antialiasing").
The output is ``ceil(scale * size)`` samples along each axis, and output sample ``x`` (1-based) sits
at input coordinate ``x / scale + (1 - 1 / scale) / 2``, so pixel edges, not centres, line up.

Borders: where the kernel reaches past the image, MATLAB reads the image mirrored about its edge
(the edge pixel repeated: ``... b a | a b c ...``) and keeps the full kernel, which is then
normalised to sum to one. ``jax.image.resize(..., antialias=True)`` instead drops the taps that fall
outside and re-normalises what is left. Away from the borders the two agree (to float rounding),
but the outermost two output pixels on each side differ, by up to about ten grey levels on a
photograph shrunk four times. This module follows MATLAB everywhere, borders included.

How it is computed: each axis has a dense ``(out, in)`` matrix holding MATLAB's weights, built once in
float64 numpy (mirrored taps folded onto the pixels they read, so they add up) and cached. The image
is multiplied by the height matrix, then by the width matrix: MATLAB resizes the axis with the
smaller scale first, which for one common scale is the height. With dense matrices the order only
moves results by float rounding. Work and memory grow as ``in * out`` per axis, which suits training
crops (a 256 x 256 x 3 crop shrinks four times in about 1 ms on one core); a whole 2040 x 1356 photo
takes about 0.15 s.

Precision: numpy inputs are computed in float64 and returned as float32, so they stay within about
1e-7 of MATLAB's double-precision result. JAX inputs are computed in float32 (float64 if the input
is float64 and x64 is enabled) with ``Precision.HIGHEST``, so that GPUs and TPUs do not drop to
TF32 or bfloat16 matrix products; the difference from the numpy path is a few float32 ulps.

The numpy path never imports JAX, so it can run in data-loading worker processes.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys

import numpy as np

from asym_jax.errors import InputError
from asym_jax.resize_weights import matlab_resize_matrix

__all__ = ["bicubic_lr", "imresize", "mod_crop", "output_size", "resize_matrix"]


def _check_scale(scale) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (numbers.Real, np.ndarray)):
        raise InputError(f"scale must be a (static) Python number, got {type(scale).__name__}")
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"scale must be a (static) Python number, got {scale!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"scale must be a finite number > 0, got {value!r}")
    return value


def output_size(size: int, scale: float) -> int:
    """MATLAB's output length for ``size`` input samples resized by ``scale``: ``ceil(scale * size)``."""
    try:
        size = operator.index(size)
    except TypeError:
        raise InputError(f"size must be an integer, got {size!r}") from None
    scale = _check_scale(scale)
    if size < 1:
        raise InputError(f"size must be >= 1, got {size}")
    return math.ceil(size * scale)  # >= 1 for size >= 1 and scale > 0


def resize_matrix(in_size: int, scale: float, *, antialias: bool = True) -> np.ndarray:
    """The ``(output_size(in_size, scale), in_size)`` float64 matrix that resizes one axis like MATLAB.

    Each row holds the weights of one output sample and sums to one. The array is cached: read-only.
    """
    out = output_size(in_size, scale)
    return matlab_resize_matrix(int(in_size), out, _check_scale(scale), "bicubic", bool(antialias))


def _spatial_axes(ndim: int, shape) -> tuple[int, int]:
    if ndim in (2, 3):
        return 0, 1
    if ndim == 4:
        return 1, 2
    raise InputError(f"expected an HW, HWC or NHWC image, got an array of shape {tuple(shape)}")


def _is_jax_array(x) -> bool:
    jax = sys.modules.get("jax")  # never import JAX here: numpy callers must not pay for it
    return jax is not None and isinstance(x, jax.Array)


def imresize(image, scale: float, *, antialias: bool = True):
    """Resizes ``image`` by ``scale`` like MATLAB's ``imresize(image, scale)`` (bicubic).

    Args:
      image: HW, HWC or NHWC array of values in [0, 1] (other values are resized as they are). A numpy
        array (or anything ``np.asarray`` takes) is resized with numpy; a JAX array with ``jax.numpy``
        (jit-able with ``scale`` static, and differentiable).
      scale: factor applied to height and width, e.g. ``1 / 4`` to shrink four times or ``2`` to
        enlarge; the output has ``ceil(scale * size)`` pixels along each axis.
      antialias: when shrinking, widen the kernel to low-pass filter first, as MATLAB does by default.
        No effect when ``scale >= 1``.

    Returns:
      float32 array (numpy or JAX, like the input) of the same layout, with resized height and width;
      not clipped, so values may overshoot [0, 1] slightly near edges.
    """
    scale = _check_scale(scale)
    use_jax = _is_jax_array(image)
    if not use_jax:
        image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise InputError(f"expected a real-valued image, got dtype {image.dtype}")
    h_axis, w_axis = _spatial_axes(image.ndim, image.shape)
    height, width = image.shape[h_axis], image.shape[w_axis]
    if height < 1 or width < 1:
        raise InputError(f"cannot resize an empty image of shape {tuple(image.shape)}")
    out_h, out_w = output_size(height, scale), output_size(width, scale)
    m_h = matlab_resize_matrix(height, out_h, scale, "bicubic", bool(antialias))
    m_w = matlab_resize_matrix(width, out_w, scale, "bicubic", bool(antialias))

    letters = {2: "hw", 3: "hwc", 4: "nhwc"}[image.ndim]
    spec_h = f"oh,{letters}->{letters.replace('h', 'o')}"
    letters_o = letters.replace("h", "o")
    spec_w = f"pw,{letters_o}->{letters_o.replace('w', 'p')}"

    if use_jax:
        import jax
        import jax.numpy as jnp

        dtype = jnp.promote_types(image.dtype, jnp.float32) if image.dtype.kind == "f" else jnp.float32
        x = image.astype(dtype)
        highest = jax.lax.Precision.HIGHEST
        x = jnp.einsum(spec_h, jnp.asarray(m_h, dtype), x, precision=highest)
        x = jnp.einsum(spec_w, jnp.asarray(m_w, dtype), x, precision=highest)
        return x.astype(jnp.float32)

    x = image.astype(np.float64, copy=False)
    x = _contract(m_h, x, h_axis)
    x = _contract(m_w, x, w_axis)
    return x.astype(np.float32)


def _contract(matrix: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """``matrix`` applied along ``axis`` of ``x`` (BLAS through tensordot)."""
    return np.moveaxis(np.tensordot(matrix, x, axes=([1], [axis])), 0, axis)


def _check_integer_scale(scale) -> int:
    if isinstance(scale, bool):
        raise InputError(f"scale must be a positive integer, got {scale!r}")
    try:
        value = operator.index(scale)
    except TypeError:
        if isinstance(scale, numbers.Real) and float(scale).is_integer():
            value = int(scale)
        else:
            raise InputError(f"scale must be a positive integer, got {scale!r}") from None
    if value < 1:
        raise InputError(f"scale must be a positive integer, got {scale!r}")
    return value


def mod_crop(image, scale: int):
    """Crops height and width down to multiples of ``scale``, keeping the top-left corner.

    The usual convention for super-resolution test sets: HR images are mod-cropped, then shrunk.
    Works on HW, HWC and NHWC numpy or JAX arrays; returns a view (numpy) or slice of the input.
    """
    scale = _check_integer_scale(scale)
    if not _is_jax_array(image):
        image = np.asarray(image)
    h_axis, w_axis = _spatial_axes(image.ndim, image.shape)
    height, width = image.shape[h_axis], image.shape[w_axis]
    keep_h, keep_w = height - height % scale, width - width % scale
    if keep_h == 0 or keep_w == 0:
        raise InputError(f"image of {height}x{width} pixels is smaller than the scale {scale}")
    index = [slice(None)] * image.ndim
    index[h_axis], index[w_axis] = slice(0, keep_h), slice(0, keep_w)
    return image[tuple(index)]


def bicubic_lr(hr, scale: int):
    """The low-resolution training image for ``hr``: MATLAB bicubic ``imresize(hr, 1 / scale)`` saved as
    8 bits, i.e. ``round(clip(x, 0, 1) * 255) / 255``, as float32.

    ``hr`` (HW, HWC or NHWC, numpy or JAX) must have height and width divisible by the integer
    ``scale``; the result is exactly ``scale`` times smaller. With numpy the values are the float32
    nearest ``k / 255``, as ``png_uint8 / 255`` gives; with JAX, XLA may divide by multiplying with
    ``1 / 255``, so they can be one float32 ulp off (same ``k`` after ``round(x * 255)``).
    """
    scale = _check_integer_scale(scale)
    if not _is_jax_array(hr):
        hr = np.asarray(hr)
    h_axis, w_axis = _spatial_axes(hr.ndim, hr.shape)
    height, width = hr.shape[h_axis], hr.shape[w_axis]
    if height % scale or width % scale or height == 0 or width == 0:
        raise InputError(f"HR image of {height}x{width} pixels is not divisible by the scale {scale}; "
                         f"mod_crop it first")
    lr = imresize(hr, 1.0 / scale)
    if lr.shape[h_axis] != height // scale or lr.shape[w_axis] != width // scale:  # float rounding of ceil
        raise AssertionError(f"unexpected LR shape {lr.shape} for {height}x{width} / {scale}")
    if _is_jax_array(lr):
        import jax.numpy as jnp
        return jnp.round(jnp.clip(lr, 0.0, 1.0) * 255.0) / jnp.float32(255.0)
    return (np.round(np.clip(lr, 0.0, 1.0) * np.float32(255.0)) / np.float32(255.0)).astype(np.float32)

"""Small array operations shared by metrics and models (no imports from the rest of the package).

``correlate1d`` filters along one axis with a short, fixed kernel as a sum of shifted slices. XLA fuses
that into one elementwise pass on every backend, which is much faster than a grouped (depthwise)
convolution on CPU; its transpose (the gradient) is written by hand as the same kind of sum, because
the automatic transpose of a sum of slices is a chain of pads that XLA:CPU runs slowly.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["correlate1d", "highest_precision", "safe_sqrt"]


def highest_precision(fn):
    """``fn`` traced under ``jax.default_matmul_precision("highest")``: every matmul and convolution that
    does not set its own precision runs in full float32 (no TF32 or bf16 passes on GPU/TPU). Wrap a
    function before ``jax.jit`` to make every reported number independent of the accelerator's defaults."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)
    return wrapped


def _slice_sum(x: jax.Array, taps: tuple[float, ...], axis: int, stride: int, out_len: int) -> jax.Array:
    total = None
    for i, tap in enumerate(taps):
        if tap == 0.0:
            continue
        part = jax.lax.slice_in_dim(x, i, i + stride * (out_len - 1) + 1, stride=stride, axis=axis)
        total = tap * part if total is None else total + tap * part
    if total is None:
        shape = list(x.shape)
        shape[axis] = out_len
        return jnp.zeros(shape, x.dtype)
    return total


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _correlate(x: jax.Array, taps: tuple[float, ...], axis: int, stride: int) -> jax.Array:
    out_len = (x.shape[axis] - len(taps)) // stride + 1
    return _slice_sum(x, taps, axis, stride, out_len)


def _correlate_fwd(x, taps, axis, stride):
    return _correlate(x, taps, axis, stride), x.shape[axis]


def _correlate_bwd(taps, axis, stride, in_len, g):
    n = len(taps)
    # Spread the cotangent back to input positions (zeros between strided outputs), pad by the kernel,
    # and correlate with the reversed kernel: the transpose of a strided 'valid' correlation.
    config = [(0, 0, 0)] * g.ndim
    config[axis] = (n - 1, n - 1, stride - 1)
    spread = jax.lax.pad(g, jnp.zeros((), g.dtype), config)
    full = _slice_sum(spread, tuple(reversed(taps)), axis, 1, spread.shape[axis] - n + 1)
    grad = jax.lax.slice_in_dim(full, 0, min(in_len, full.shape[axis]), axis=axis)
    if grad.shape[axis] < in_len:  # inputs past the last strided window get no gradient
        pad = [(0, 0)] * g.ndim
        pad[axis] = (0, in_len - grad.shape[axis])
        grad = jnp.pad(grad, pad)
    return (grad,)


_correlate.defvjp(_correlate_fwd, _correlate_bwd)


def correlate1d(x: jax.Array, taps: Sequence[float], axis: int, *, stride: int = 1) -> jax.Array:
    """'valid' correlation of ``x`` with ``taps`` along ``axis`` (output ``i`` sees inputs
    ``stride*i .. stride*i + len(taps) - 1``); channels and other axes are independent."""
    taps = tuple(float(t) for t in taps)
    axis = axis % x.ndim
    if x.shape[axis] < len(taps):
        raise ValueError(f"correlate1d: axis {axis} has {x.shape[axis]} samples, fewer than the {len(taps)} taps")
    return _correlate(x, taps, axis, int(stride))


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(max(x, 0))`` whose gradient is 0, not NaN or inf, where ``x <= 0``; NaN stays NaN."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), jnp.where(jnp.isnan(x), x, 0.0))

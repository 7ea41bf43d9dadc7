"""GMSD: gradient magnitude similarity deviation (Xue, Zhang, Mou, Bovik 2014).

Follows the authors' MATLAB code: luma ``0.299 R + 0.587 G + 0.114 B`` (unrounded), a 2 x 2 average
with zero padding at the bottom/right keeping every second pixel, Prewitt gradients (kernel / 3, zero
'same' padding), similarity ``(2 g_x g_y + T) / (g_x^2 + g_y^2 + T)`` with T = 170 on the 8-bit scale
(170 / 255^2 here), and the standard deviation of the similarity map (``std2``: N - 1 in the
denominator; ``ddof=0`` gives piq's value). Lower is better; 0 for identical images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from asym_jax.metrics.common import check_pair, rgb_to_luma
from asym_jax.ops import correlate1d, safe_sqrt

__all__ = ["gmsd"]


def _halve(x: jax.Array) -> jax.Array:
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
    x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0


def _gradient_magnitude(x: jax.Array) -> jax.Array:
    # Prewitt kernels ([1, 0, -1] across, [1, 1, 1] / 3 along; the sign does not matter), zero 'same' padding.
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    along_w = correlate1d(correlate1d(padded, (1 / 3, 1 / 3, 1 / 3), axis=1), (1.0, 0.0, -1.0), axis=2)
    along_h = correlate1d(correlate1d(padded, (1.0, 0.0, -1.0), axis=1), (1 / 3, 1 / 3, 1 / 3), axis=2)
    return safe_sqrt(jnp.sum(jnp.square(along_w) + jnp.square(along_h), axis=-1))


@functools.partial(jax.jit, static_argnames=("t", "ddof"))
def gmsd(x: jax.Array, y: jax.Array, *, t: float = 170.0 / 255.0 ** 2, ddof: int = 1) -> jax.Array:
    """GMSD per image; NHWC RGB or grey images in [0, 1]."""
    x, y = check_pair("gmsd", x, y, channels=(1, 3), min_size=2)
    if x.shape[-1] == 3:
        x, y = rgb_to_luma(x), rgb_to_luma(y)
    gx, gy = _gradient_magnitude(_halve(x)), _gradient_magnitude(_halve(y))
    similarity = (2.0 * gx * gy + t) / (jnp.square(gx) + jnp.square(gy) + t)
    count = similarity.shape[1] * similarity.shape[2]
    centred = similarity - jnp.mean(similarity, axis=(1, 2), keepdims=True)
    variance = jnp.sum(jnp.square(centred), axis=(1, 2)) / (count - ddof)
    return safe_sqrt(variance)

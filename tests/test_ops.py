"""asym_jax.ops: the shifted-slice correlation and its hand-written gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from asym_jax.ops import correlate1d, safe_sqrt


def _reference(x, taps, axis, stride):
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    n = len(taps)
    out_len = (x.shape[-1] - n) // stride + 1
    out = np.stack([sum(taps[t] * x[..., stride * i + t] for t in range(n)) for i in range(out_len)], axis=-1)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("length,taps,stride", [(17, (0.25, 0.5, 0.25), 1), (17, (0.25, 0.5, 0.25), 2),
                                                (18, (0.25, 0.5, 0.25), 2), (20, tuple(np.hanning(11)), 1),
                                                (9, (1.0, 0.0, -1.0), 1), (12, (0.1, 0.2, 0.3, 0.4), 3)])
@pytest.mark.parametrize("axis", [1, 2])
def test_values_and_gradients(length, taps, stride, axis):
    shape = [2, 6, 5, 3]
    shape[axis] = length
    x = jax.random.normal(jax.random.PRNGKey(length), shape)
    out = correlate1d(x, taps, axis, stride=stride)
    np.testing.assert_allclose(out, _reference(x, taps, axis, stride), rtol=1e-5, atol=1e-6)
    check_grads(lambda a: correlate1d(a, taps, axis, stride=stride), (x,), order=1, modes=["rev"], eps=1e-2,
                atol=1e-2, rtol=1e-2)
    # The hand-written transpose equals the automatic one of the plain slice sum.
    g = jax.random.normal(jax.random.PRNGKey(0), out.shape)
    plain = lambda a: sum(t * jax.lax.slice_in_dim(a, i, i + stride * (out.shape[axis] - 1) + 1, stride=stride,
                                                   axis=axis) for i, t in enumerate(taps))
    ours = jax.vjp(lambda a: correlate1d(a, taps, axis, stride=stride), x)[1](g)[0]
    auto = jax.vjp(plain, x)[1](g)[0]
    np.testing.assert_allclose(ours, auto, rtol=1e-5, atol=1e-6)


def test_safe_sqrt():
    x = jnp.array([-1.0, 0.0, 4.0])
    np.testing.assert_allclose(safe_sqrt(x), [0.0, 0.0, 2.0])
    np.testing.assert_allclose(jax.grad(lambda a: jnp.sum(safe_sqrt(a)))(x), [0.0, 0.0, 0.25])
    assert np.isnan(safe_sqrt(jnp.array([jnp.nan]))[0])  # NaN is not hidden

"""Metrics on a batch sharded over 8 forced CPU devices equal the single-device values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from asym_jax import metrics

NAMES = ["psnr", "psnr_y", "ssim", "ms_ssim", "gmsd", "l1", "mse", "charbonnier", "lpips_alex", "dists"]


@pytest.fixture(scope="module")
def mesh():
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by conftest.py)")
    return Mesh(np.array(jax.devices()[:8]), ("data",))


@pytest.mark.parametrize("name", NAMES)
def test_sharded_batch_equals_single_device(mesh, name):
    options = {"num_scales": 4} if name == "ms_ssim" else {}
    metric = metrics.get(name, **options)
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 96, 96, 3))
    y = jnp.clip(x + 0.1 * jax.random.normal(jax.random.PRNGKey(1), x.shape), 0.0, 1.0)
    score = jax.jit(lambda m, a, b: m(a, b))

    single = jax.device_put((metric, x, y), jax.devices()[0])
    expected = score(*single)

    batch = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    sharded_metric = jax.device_put(metric, replicated)
    xs, ys = jax.device_put(x, batch), jax.device_put(y, batch)
    got = score(sharded_metric, xs, ys)
    assert len(got.sharding.device_set) == 8  # computed where the data lives
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-6)

    loss = metrics.as_loss(name, **options)
    grad_fn = jax.jit(jax.grad(lambda l, a, b: l(a, b), argnums=1))
    g_single = grad_fn(*jax.device_put((loss, x, y), jax.devices()[0]))
    g_sharded = grad_fn(jax.device_put(loss, replicated), xs, ys)
    np.testing.assert_allclose(np.asarray(g_sharded), np.asarray(g_single), rtol=1e-4, atol=1e-7)

"""Metrics on a batch sharded over 8 forced CPU devices equal the single-device values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from asym_jax import metrics

NAMES = ["psnr", "psnr_y", "ssim", "ms_ssim", "gmsd", "l1", "mse", "charbonnier", "lpips_alex", "dists", "vif", "fsim",
         "fsimc", "vsi", "mdsi", "haarpsi", "ms_gmsd", "nlpd", "cw_ssim", "mad"]
# Options that fit 96-px images: MS-SSIM's four scales, CW-SSIM's four levels (Ding et al.'s setting).
OPTIONS = {"ms_ssim": {"num_scales": 4}, "cw_ssim": {"level": 4}}


@pytest.fixture(scope="module")
def mesh():
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by conftest.py)")
    return Mesh(np.array(jax.devices()[:8]), ("data",))


@pytest.mark.parametrize("name", NAMES)
def test_sharded_batch_equals_single_device(mesh, name):
    options = OPTIONS.get(name, {})
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


@pytest.mark.parametrize("name", ["fsim", "vsi", "cw_ssim", "mad", "nlpd"])
def test_sharded_batch_against_one_shared_reference(mesh, name):
    """The iqa_fr job's layout: a batch sharded over the devices, one reference replicated (the Fourier-domain
    models once failed here: XLA:CPU's FFT needs its operand in the default layout)."""
    metric = metrics.get(name, **OPTIONS.get(name, {}))
    y = jax.random.uniform(jax.random.PRNGKey(0), (1, 96, 128, 3))
    x = jnp.clip(y + 0.1 * jax.random.normal(jax.random.PRNGKey(1), (8, 96, 128, 3)), 0.0, 1.0)
    score = jax.jit(lambda m, a, b: m(a, b))
    expected = score(*jax.device_put((metric, x, y), jax.devices()[0]))
    got = score(jax.device_put(metric, NamedSharding(mesh, P())), jax.device_put(x, NamedSharding(mesh, P("data"))),
                jax.device_put(y, NamedSharding(mesh, P())))
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-6)

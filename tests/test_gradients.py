"""Gradients of every differentiable metric: finite and of the right sign, at x == y, on flat images,
on 128 x 128 crops, under jit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asym_jax import metrics

# MS-SSIM on 128-px crops needs four scales.
LOSS_OPTIONS = {"ms_ssim": {"num_scales": 4}}
NAMES = ["psnr", "psnr_y", "ssim", "ms_ssim", "gmsd", "l1", "mse", "charbonnier", "lpips_vgg", "lpips_alex",
         "dists", "dists_style", "vif", "fsim", "fsimc", "vsi", "mdsi", "haarpsi", "ms_gmsd", "nlpd", "cw_ssim", "mad"]


@functools.lru_cache(maxsize=None)
def _loss(name):
    loss = metrics.as_loss(name, **LOSS_OPTIONS.get(name, {}))
    grad = jax.jit(jax.value_and_grad(lambda l, x, y: l(x, y), argnums=1))
    return loss, grad


@pytest.fixture(scope="module")
def crops():
    from asym_jax.data import distort, sample_image
    ref = sample_image("astronaut")[100:228, 180:308]
    return jnp.asarray(ref[None]), jnp.asarray(distort(ref, "blur", 2)[None])


@pytest.mark.parametrize("name", NAMES)
def test_gradient_finite_and_descends_on_crops(name, crops):
    loss, value_and_grad = _loss(name)
    ref, dist = crops
    value, grad = value_and_grad(loss, dist, ref)
    assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) > 0
    # Sign: a small step against the gradient lowers the loss, and the gradient points away from y.
    step = 1e-2 / float(jnp.abs(grad).max())
    lower, _ = value_and_grad(loss, dist - step * grad, ref)
    assert float(lower) < float(value), (name, float(lower), float(value))
    assert float(jnp.sum(grad * (dist - ref))) > 0


@pytest.mark.parametrize("name", NAMES)
def test_gradient_finite_at_identity_and_on_flat_images(name, crops):
    loss, value_and_grad = _loss(name)
    ref, _ = crops
    flat = jnp.full_like(ref, 0.5)
    for x, y in ((ref, ref), (flat, flat), (flat, jnp.full_like(ref, 0.25)), (jnp.zeros_like(ref), jnp.zeros_like(ref))):
        value, grad = value_and_grad(loss, x, y)
        assert np.isfinite(float(value)) and np.all(np.isfinite(grad)), name
    _, grad = value_and_grad(loss, ref, ref)
    assert float(jnp.abs(grad).max()) < 1e-3, name  # x == y is a minimum

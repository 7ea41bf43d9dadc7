"""The metric registry: names, metadata, options, jit / vmap, pytrees, losses."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asym_jax import metrics

CHEAP = ["psnr", "psnr_y", "ssim", "ms_ssim", "gmsd", "l1", "mse", "charbonnier"]
DEEP = ["lpips_vgg", "lpips_alex", "dists", "dists_style"]


def test_every_required_metric_is_registered_with_metadata():
    assert set(CHEAP + DEEP) <= set(metrics.names())
    for name in metrics.names():
        meta = metrics.info(name)
        # Every full-reference metric is a loss; the no-reference nr (a trained model) only scores.
        assert isinstance(meta.higher_is_better, bool) and meta.differentiable == meta.needs_reference
        assert meta.value_range[0] < meta.value_range[1] and meta.reference
    assert not metrics.info("nr").needs_reference
    assert metrics.info("ssim").higher_is_better and not metrics.info("dists").higher_is_better


def test_unknown_names_and_options_fail_clearly():
    with pytest.raises(ValueError, match="unknown metric 'ssimm'; known: .*ssim"):
        metrics.get("ssimm")
    with pytest.raises(ValueError, match=r"unknown options \['crop'\]; allowed: .*crop_border"):
        metrics.get("psnr", crop=4)
    with pytest.raises(ValueError, match="no gradient"):
        metrics.as_loss("ssim", quantize=True)


def _pair(shape=(4, 176, 176, 3), seed=0):
    x = jax.random.uniform(jax.random.PRNGKey(seed), shape)
    y = jnp.clip(x + 0.1 * jax.random.normal(jax.random.PRNGKey(seed + 1), shape), 0.0, 1.0)
    return x, y


@pytest.mark.parametrize("name", CHEAP)
def test_jit_and_vmap_agree_with_eager(name):
    metric = metrics.get(name)
    x, y = _pair()
    eager = metric(x, y)
    chex.assert_shape(eager, (4,))
    jitted = jax.jit(lambda m, a, b: m(a, b))(metric, x, y)
    mapped = jax.vmap(lambda a, b: metric(a[None], b[None])[0])(x, y)
    np.testing.assert_allclose(jitted, eager, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(mapped, eager, rtol=2e-5, atol=1e-6)


def test_deep_metric_is_a_pytree_of_its_params_and_does_not_retrace():
    metric = metrics.get("lpips_alex")
    leaves = jax.tree.leaves(metric)
    assert len(leaves) == 15  # 5 convolutions (kernel, bias) and 5 linear heads
    x, y = _pair((2, 64, 64, 3))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def score(m, a, b):
        return m(a, b)

    first = score(metric, x, y)
    second = score(metric, y, x)  # same shapes: no second trace
    np.testing.assert_allclose(first, second, rtol=1e-5)  # LPIPS is symmetric
    np.testing.assert_allclose(jax.vmap(lambda a, b: metric(a[None], b[None])[0])(x, y), first, rtol=1e-4)


def test_losses_are_lower_is_better_scalars():
    x, y = _pair((2, 176, 176, 3))
    near = jnp.clip(y + 0.02 * (x - y), 0, 1)
    for name in CHEAP + ["lpips_alex"]:
        loss = metrics.as_loss(name)
        value = loss(x, y)
        chex.assert_shape(value, ())
        assert float(loss(near, y)) < float(value), name
        assert loss.per_image(x, y).shape == (2,)
    assert metrics.info("ssim").loss_form.startswith("1 - ssim")
    ssim_loss = metrics.as_loss("ssim")
    assert dict(ssim_loss.metric.options) == {"colour": "rgb", "quantize": False}
    np.testing.assert_allclose(ssim_loss(x, y), 1.0 - jnp.mean(metrics.ssim(x, y, colour="rgb", quantize=False)),
                               rtol=1e-6)


def test_inputs_are_checked():
    x = jnp.zeros((2, 32, 32, 3))
    with pytest.raises(ValueError, match="psnr: expected NHWC"):
        metrics.psnr(x[0], x[0])
    with pytest.raises(ValueError, match="expected 3 channels"):
        metrics.ssim(x[..., :1], x[..., :1])
    with pytest.raises(ValueError, match="float array"):
        metrics.psnr(x.astype(jnp.uint8), x.astype(jnp.uint8))
    bf16 = metrics.psnr(x.astype(jnp.bfloat16), x.astype(jnp.bfloat16) + 0.5)
    assert bf16.dtype == jnp.float32


def test_metrics_and_losses_run_directly_under_jit_and_as_pytree_arguments():
    """``metric(x, y)``, ``jax.jit(metric)(x, y)`` and ``jax.jit(f)(metric, x, y)`` give the same numbers, for
    a deep metric (weights in the pytree), a structural one and a loss."""
    x, y = _pair((2, 48, 48, 3))
    for fn in (metrics.get("dists"), metrics.get("ssim"), metrics.as_loss("lpips_alex")):
        direct = fn(x, y)
        np.testing.assert_allclose(jax.jit(fn)(x, y), direct, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(jax.jit(lambda m, a, b: m(a, b))(fn, x, y), direct, rtol=1e-5, atol=1e-7)


def test_specs_parse_format_and_bind():
    name, options = metrics.parse_spec("dists_style:backbone=resnet50,weights=random,seed=3,alpha_beta=uniform")
    assert (name, options) == ("dists_style", {"backbone": "resnet50", "weights": "random", "seed": 3,
                                               "alpha_beta": "uniform"})
    assert metrics.parse_spec(metrics.format_spec(name, options)) == (name, options)
    assert metrics.format_spec("ssim", {}) == "ssim"
    for bad in ("ssim:crop", "", "ssim:=3"):
        with pytest.raises(ValueError):
            metrics.parse_spec(bad)
    assert metrics.from_spec("ms_ssim:num_scales=4").options == (("num_scales", 4),)
    lpips_alex = metrics.info("lpips_alex")
    assert lpips_alex.trunk({**lpips_alex.defaults}) == "alexnet" and metrics.info("psnr").trunk is None
    from asym_jax.losses import loss_trunk
    assert loss_trunk("dists_style", {"backbone": "resnet50"}) == ("resnet50", True)
    assert loss_trunk("dists", {}) == ("vgg16", False) and loss_trunk("perceptual_vgg19", {}) == ("vgg19", True)


@pytest.mark.parametrize("name", CHEAP + DEEP)
def test_a_reference_shared_by_the_batch_equals_the_reference_repeated(name):
    """``metric(x, y[:1])`` with ``x`` a batch of distortions of one reference equals ``metric(x, repeat(y))``;
    for the deep metrics (the reference's features computed once; one of each family) the loss gradients are
    equal too."""
    options = {}
    metric = metrics.get(name, **options)
    size = 176 if name == "ms_ssim" else 32  # MS-SSIM's five scales need 176 px
    x, y = _pair((3, size, size, 3))
    ref = y[:1]
    shared, repeated = metric(x, ref), metric(x, jnp.repeat(ref, 3, axis=0))
    chex.assert_shape(shared, (3,))
    np.testing.assert_allclose(shared, repeated, rtol=1e-5, atol=1e-6)
    if name not in ("dists", "lpips_alex"):  # the others share these code paths (a compile costs seconds)
        return
    loss = metrics.as_loss(name, **options)
    g_shared = jax.grad(lambda a: loss(a, ref))(x)
    g_repeated = jax.grad(lambda a: loss(a, jnp.repeat(ref, 3, axis=0)))(x)
    np.testing.assert_allclose(g_shared, g_repeated, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="differ in shape"):
        metric(x, y[:2])

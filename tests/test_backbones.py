"""Backbones against torchvision (random weights converted with the torchvision converters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asym_jax.models import backbones
from asym_jax.models.backbones import l2_pool
from asym_jax.weights import from_torchvision_alexnet, from_torchvision_vgg
from helpers import assert_close, to_torch


def _torch_taps(torch, features, x, tap_indices):
    """Runs a torchvision ``features`` Sequential, returning the outputs after the given indices."""
    out, h = {}, x
    with torch.no_grad():
        for index, layer in enumerate(features):
            h = layer(h)
            if index in tap_indices:
                out[tap_indices[index]] = h.permute(0, 2, 3, 1).numpy().copy()  # ReLUs are in-place
    return out


def _state(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("depth,size", [(16, 64), (16, 50), (19, 48)])
def test_vgg_matches_torchvision(torch, depth, size):
    import torchvision
    torch.manual_seed(depth)
    model = getattr(torchvision.models, f"vgg{depth}")(weights=None).eval()
    params = from_torchvision_vgg(_state(model), depth)
    spec = backbones.get(f"vgg{depth}")
    x = np.random.default_rng(0).uniform(size=(2, size, size, 3)).astype(np.float32)
    # torchvision's model sees ImageNet-normalised input; ours normalises inside.
    mean, std = np.array(backbones.IMAGENET_MEAN), np.array(backbones.IMAGENET_STD)
    xt = to_torch(torch, ((x - mean) / std).astype(np.float32))
    names = backbones.vgg_layer_names(depth)
    conv_index = {n: i for n, i in zip(names, [i for i, m in enumerate(model.features) if isinstance(m, torch.nn.Conv2d)])}
    taps = {conv_index[n] + 1: "relu" + n[4:] for n in names}  # index of each ReLU
    taps.update({conv_index[names[1]]: "conv1_2"})
    pool_index = [i for i, m in enumerate(model.features) if isinstance(m, torch.nn.MaxPool2d)]
    taps.update({pool_index[2]: "pool3"})
    expected = _torch_taps(torch, model.features, xt, taps)
    module = spec.build(taps=tuple(expected), precision=jax.lax.Precision.HIGHEST)
    ours = module.apply({"params": params}, x)
    for name in expected:
        scale = np.abs(expected[name]).max()
        assert_close(ours[name], expected[name], rtol=0, atol=1e-5 * scale, what=f"vgg{depth} {name}")


def test_alexnet_matches_torchvision(torch):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None).eval()
    params = from_torchvision_alexnet(_state(model))
    x = np.random.default_rng(1).uniform(size=(2, 99, 120, 3)).astype(np.float32)
    mean, std = np.array(backbones.IMAGENET_MEAN), np.array(backbones.IMAGENET_STD)
    expected = _torch_taps(torch, model.features, to_torch(torch, ((x - mean) / std).astype(np.float32)),
                           {1: "relu1", 4: "relu2", 7: "relu3", 9: "relu4", 10: "conv5", 11: "relu5"})
    module = backbones.get("alexnet").build(taps=tuple(expected), precision=jax.lax.Precision.HIGHEST)
    ours = module.apply({"params": params}, x)
    for name in expected:
        scale = np.abs(expected[name]).max()
        assert_close(ours[name], expected[name], rtol=0, atol=1e-5 * scale, what=f"alexnet {name}")


def test_l2_pool_matches_dists_reference(torch):
    import DISTS_pytorch.DISTS_pt as dists_module
    x = np.random.default_rng(2).normal(size=(2, 13, 16, 5)).astype(np.float32)
    pool = dists_module.L2pooling(channels=5)
    with torch.no_grad():
        expected = pool(to_torch(torch, x)).permute(0, 2, 3, 1).numpy()
    assert_close(l2_pool(jnp.asarray(x)), expected, rtol=1e-5, what="l2 pool")


def test_unknown_taps_and_names_fail_clearly():
    with pytest.raises(ValueError, match="unknown backbone"):
        backbones.get("resnet1000")
    module = backbones.get("vgg16").build(taps=("relu9_9",))
    with pytest.raises(ValueError, match="unknown VGG-16 taps"):
        module.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))


def test_bf16_forward_close_to_float32():
    taps = ("relu1_2", "relu2_2", "relu3_3")
    module32 = backbones.get("vgg16").build(taps=taps)
    module16 = backbones.get("vgg16").build(taps=taps, dtype=jnp.bfloat16)
    x = jax.random.uniform(jax.random.PRNGKey(0), (1, 32, 32, 3))
    params = module32.init(jax.random.PRNGKey(1), x)
    a, b = jax.jit(module32.apply)(params, x), jax.jit(module16.apply)(params, x)
    for name in a:
        assert b[name].dtype == jnp.bfloat16
        err = np.abs(np.asarray(b[name], np.float32) - np.asarray(a[name]))
        assert err.max() <= 0.05 * np.abs(np.asarray(a[name])).max(), name

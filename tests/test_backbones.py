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


# ------------------------------------------------------------------ timm / torchvision / transformers


def _save(torch, module, path, wrap=None):
    state = module.state_dict()
    torch.save(state if wrap is None else {wrap: state}, path)
    return path


def _relative_error(ours, expected):
    ours, expected = np.asarray(ours, np.float64), np.asarray(expected, np.float64)
    return np.abs(ours - expected).max() / np.abs(expected).max()


def _perturb_batch_norms(torch, model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)


def _imagenet_input(torch, x):
    mean, std = np.array(backbones.IMAGENET_MEAN), np.array(backbones.IMAGENET_STD)
    return to_torch(torch, ((x - mean) / std).astype(np.float32))


@pytest.mark.parametrize("source", ["torchvision", "timm"])
def test_resnet50_matches_reference(torch, tmp_path, source):
    import timm
    import torchvision
    from asym_jax.weights import from_pytorch
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None) if source == "torchvision" else timm.create_model("resnet50")
    _perturb_batch_norms(torch, model)
    model.eval()
    module, variables = from_pytorch("resnet50", _save(torch, model, tmp_path / "r50.pth"))
    x = np.random.default_rng(0).uniform(size=(2, 64, 72, 3)).astype(np.float32)
    with torch.no_grad():
        h = model.maxpool((model.act1 if source == "timm" else model.relu)(model.bn1(model.conv1(_imagenet_input(torch, x)))))
        expected = {}
        for i in range(1, 5):
            h = getattr(model, f"layer{i}")(h)
            expected[f"layer{i}"] = h.permute(0, 2, 3, 1).numpy()
    ours = jax.jit(module.clone(taps=tuple(expected)).apply)(variables, x)
    for name, value in expected.items():
        assert _relative_error(ours[name], value) < 1e-5, name


def test_convnext_t_matches_timm(torch, tmp_path):
    import timm
    from asym_jax.weights import from_pytorch
    torch.manual_seed(0)
    model = timm.create_model("convnext_tiny").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.normal_(0.5, 0.1)  # timm initialises the layer scale to 1e-6: make the blocks count
    module, variables = from_pytorch("convnext_t", _save(torch, model, tmp_path / "c.pth"))
    x = np.random.default_rng(0).uniform(size=(2, 64, 96, 3)).astype(np.float32)
    with torch.no_grad():
        h, expected = model.stem(_imagenet_input(torch, x)), {}
        for i in range(4):
            h = model.stages[i](h)
            expected[f"stage{i + 1}"] = h.permute(0, 2, 3, 1).numpy()
    ours = jax.jit(module.clone(taps=tuple(expected)).apply)(variables, x)
    for name, value in expected.items():
        assert _relative_error(ours[name], value) < 1e-5, name


def test_swin_t_matches_timm(torch, tmp_path):
    import timm
    from asym_jax.weights import from_pytorch
    torch.manual_seed(0)
    model = timm.create_model("swin_tiny_patch4_window7_224").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0, 0.5)
    module, variables = from_pytorch("swin_t", _save(torch, model, tmp_path / "s.pth"))
    x = np.random.default_rng(0).uniform(size=(1, 224, 224, 3)).astype(np.float32)
    with torch.no_grad():
        h, expected = model.patch_embed(_imagenet_input(torch, x)), {}
        for i in range(4):
            h = model.layers[i](h)
            expected[f"stage{i + 1}"] = h.numpy()
        expected["norm"] = model.norm(h).numpy()
    ours = jax.jit(module.clone(taps=tuple(expected)).apply)(variables, x)
    for name, value in expected.items():
        assert _relative_error(ours[name], value) < 1e-5, name
    other = jax.jit(module.clone(taps=("norm",)).apply)(variables, np.zeros((1, 96, 160, 3), np.float32))
    assert other["norm"].shape == (1, 3, 5, 768)  # other sizes run (padded windows)


@pytest.mark.parametrize("legacy_names", [False, True])
def test_dinov2_s14_matches_transformers(torch, tmp_path, legacy_names):
    from transformers import Dinov2Config, Dinov2Model
    from asym_jax.weights import from_pytorch
    torch.manual_seed(0)
    model = Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, image_size=518,
                                     patch_size=14, layerscale_value=0.5)).eval()
    state = model.state_dict()
    if legacy_names:  # the key layout of the hub checkpoints (transformers < 5)
        renames = {".attention.q_proj.": ".attention.attention.query.", ".attention.k_proj.": ".attention.attention.key.",
                   ".attention.v_proj.": ".attention.attention.value.", ".attention.o_proj.": ".attention.output.dense."}
        for new, old in renames.items():
            state = {k.replace(new, old): v for k, v in state.items()}
    torch.save(state, tmp_path / "d.bin")
    module, variables = from_pytorch("dinov2_s14", tmp_path / "d.bin")
    x = np.random.default_rng(0).uniform(size=(2, 70, 98, 3)).astype(np.float32)  # a 5 x 7 grid: positions resized
    with torch.no_grad():
        result = model(_imagenet_input(torch, x), output_hidden_states=True)
    ours = jax.jit(module.clone(taps=("cls", "patches", "block6")).apply)(variables, x)
    assert _relative_error(ours["cls"], result.pooler_output.numpy()) < 1e-5
    assert _relative_error(ours["patches"], result.last_hidden_state[:, 1:].numpy().reshape(2, 5, 7, 384)) < 1e-5
    assert _relative_error(ours["block6"], result.hidden_states[6][:, 1:].numpy().reshape(2, 5, 7, 384)) < 1e-5


def test_clip_b32_matches_transformers(torch, tmp_path):
    from transformers import CLIPConfig, CLIPModel
    from asym_jax.models.backbones.vit import CLIP_MEAN, CLIP_STD
    from asym_jax.weights import from_pytorch
    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2),
                        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                           num_attention_heads=12, image_size=224, patch_size=32))
    model = CLIPModel(config).eval()  # a whole CLIP model: the converter keeps the image tower
    torch.save(model.state_dict(), tmp_path / "clip.bin")
    module, variables = from_pytorch("clip_b32", tmp_path / "clip.bin")
    for size in ((224, 224), (160, 256)):
        x = np.random.default_rng(0).uniform(size=(1, *size, 3)).astype(np.float32)
        xt = to_torch(torch, ((x - np.array(CLIP_MEAN)) / np.array(CLIP_STD)).astype(np.float32))
        with torch.no_grad():
            result = model.vision_model(xt, interpolate_pos_encoding=True)
        ours = jax.jit(module.clone(taps=("cls", "patches")).apply)(variables, x)
        grid = (size[0] // 32, size[1] // 32)
        assert _relative_error(ours["cls"], result.pooler_output.numpy()) < 1e-5
        assert _relative_error(ours["patches"], result.last_hidden_state[:, 1:].numpy().reshape(1, *grid, 768)) < 1e-5


def test_bicubic_position_resize_matches_torch(torch):
    from asym_jax.models.backbones.vit import torch_bicubic_matrix
    grid = np.random.default_rng(0).normal(size=(1, 4, 37, 37)).astype(np.float32)
    for out in ((16, 16), (5, 7), (40, 52)):
        expected = torch.nn.functional.interpolate(torch.from_numpy(grid), size=out, mode="bicubic",
                                                   align_corners=False).numpy()[0]
        ours = np.einsum("ah,bw,chw->cab", torch_bicubic_matrix(37, out[0]), torch_bicubic_matrix(37, out[1]), grid[0])
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_every_backbone_builds_with_random_weights():
    from asym_jax.weights import backbone_variables
    for name in backbones.names():
        spec = backbones.get(name)
        variables = backbone_variables(name, "random", seed=0)
        size = spec.multiple * -(-64 // spec.multiple)
        # Every backbone takes a precision (the deep metrics run float32 at HIGHEST on any of them).
        out = spec.build(precision=jax.lax.Precision.HIGHEST).apply(variables, jnp.zeros((1, size, size, 3)))
        assert set(out) == set(spec.default_taps)
        assert [out[t].shape[-1] for t in spec.default_taps] == spec.channels(spec.default_taps), name

"""SwinIR and RRDBNet against the BasicSR 1.4.2 architectures, weights converted by name."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asym_jax.models.generators import RRDBNet, SwinIR
from asym_jax.weights.convert import ConversionError, torch_to_flax
from helpers import basicsr_arch, torch_state, to_torch


def _nhwc(tensor):
    return tensor.permute(0, 2, 3, 1).detach().numpy()


def _make_every_layer_count(torch, reference):
    """Re-initialises weights at unit scale (BasicSR's 0.1 scaling and trunc-normal(0.02) attention leave
    inner layers nearly without effect on the output, so a wiring error there would go unseen)."""
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.normal_(0, (1.0 / fan_in) ** 0.5)
            else:
                p.normal_(0, 0.1)


def _convert(module, reference, x, **init_kwargs):
    target = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, **init_kwargs))
    return torch_to_flax(torch_state(reference), target)


@pytest.mark.parametrize("scale", [4, 2, 1])
@pytest.mark.parametrize("size", [(16, 20), (12, 12), (13, 18)])
def test_rrdbnet_matches_basicsr(torch, scale, size):
    arch = basicsr_arch("rrdbnet_arch")
    torch.manual_seed(scale)
    reference = arch.RRDBNet(3, 3, scale=scale, num_feat=16, num_block=2, num_grow_ch=8).eval()
    _make_every_layer_count(torch, reference)
    module = RRDBNet(scale=scale, num_feat=16, num_block=2, num_grow_ch=8)
    x = np.random.default_rng(0).uniform(size=(2, *size, 3)).astype(np.float32)
    variables = _convert(module, reference, x)
    factor = {4: 1, 2: 2, 1: 4}[scale]  # the reference needs multiples: pad as Real-ESRGAN's inference does
    padded = torch.nn.functional.pad(to_torch(torch, x), (0, (-size[1]) % factor, 0, (-size[0]) % factor),
                                     mode="reflect")
    with torch.no_grad():
        expected = _nhwc(reference(padded))[:, :size[0] * scale, :size[1] * scale]
    out = jax.jit(module.apply)(variables, x)
    assert out.shape == (2, size[0] * scale, size[1] * scale, 3)
    np.testing.assert_allclose(out, expected, atol=1e-5 * np.abs(expected).max(), rtol=0)


SWINIR_CASES = {
    "pixelshuffle_x4": dict(embed_dim=24, depths=(2, 2), num_heads=(2, 3), window_size=4, mlp_ratio=2.0,
                            upsampler="pixelshuffle", upscale=4),
    "pixelshuffle_x3_3conv": dict(embed_dim=24, depths=(2,), num_heads=(3,), window_size=4, upsampler="pixelshuffle",
                                  upscale=3, resi_connection="3conv"),
    "direct_x2": dict(embed_dim=24, depths=(2,), num_heads=(3,), window_size=4, mlp_ratio=2.0,
                      upsampler="pixelshuffledirect", upscale=2),
    "nearest_conv_x4": dict(embed_dim=24, depths=(2,), num_heads=(3,), window_size=4, upsampler="nearest+conv",
                            upscale=4),
    "denoise": dict(embed_dim=24, depths=(2,), num_heads=(3,), window_size=4, upsampler="", upscale=1),
}


@pytest.mark.parametrize("case", sorted(SWINIR_CASES))
@pytest.mark.parametrize("size", [(16, 16), (13, 18)])  # 13 x 18 is not a multiple of the window
def test_swinir_matches_basicsr(torch, case, size):
    arch = basicsr_arch("swinir_arch")
    options = SWINIR_CASES[case]
    torch.manual_seed(1)
    reference = arch.SwinIR(img_size=16, **options).eval()
    _make_every_layer_count(torch, reference)
    with torch.no_grad():  # attention far from uniform, so that the relative positions matter
        for name, p in reference.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0, 2.0)
    module = SwinIR(img_size=16, **options)
    h, w = size
    x = np.random.default_rng(0).uniform(size=(2, h, w, 3)).astype(np.float32)
    variables = _convert(module, reference, x)
    # The reference architecture has no padding: give it the input padded as the official code pads it.
    window = options["window_size"]
    padded = torch.nn.functional.pad(to_torch(torch, x), (0, (-w) % window, 0, (-h) % window), mode="reflect")
    scale = options["upscale"] if options["upsampler"] else 1
    with torch.no_grad():
        expected = _nhwc(reference(padded))[:, :h * scale, :w * scale]
    out = jax.jit(module.apply)(variables, x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-5 * np.abs(expected).max(), rtol=0)


def test_swinir_presets_build_and_run_on_odd_sizes():
    from asym_jax.models.generators import SWINIR_PRESETS
    module = SwinIR(upscale=4, **{**SWINIR_PRESETS["lightweight"], "depths": (2,), "num_heads": (6,)})
    x = jnp.zeros((1, 10, 11, 3))
    variables = module.init(jax.random.PRNGKey(0), x)
    assert module.apply(variables, x).shape == (1, 40, 44, 3)


def test_conversion_reports_problems_by_name(torch):
    arch = basicsr_arch("rrdbnet_arch")
    reference = arch.RRDBNet(3, 3, scale=4, num_feat=16, num_block=2, num_grow_ch=8)
    module = RRDBNet(scale=4, num_feat=16, num_block=3, num_grow_ch=8)  # one block more than the checkpoint
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ConversionError, match=r"30 parameters missing from the checkpoint: params/body_2/rdb1/conv1/bias"):
        _convert(module, reference, x)
    state = torch_state(reference)
    state["extra.weight"] = np.zeros(3, np.float32)
    state["conv_first.weight"] = np.zeros((16, 3, 5, 5), np.float32)
    target = jax.eval_shape(lambda: RRDBNet(scale=4, num_feat=16, num_block=2, num_grow_ch=8).init(
        jax.random.PRNGKey(0), x))
    with pytest.raises(ConversionError, match=r"unknown checkpoint keys: extra.weight.*shape mismatches: "
                                              r"conv_first.weight \(16, 3, 5, 5\)"):
        torch_to_flax(state, target)


@pytest.mark.parametrize("name", ["rrdbnet", "swinir"])
def test_gradients_flow_and_bf16_is_close(name):
    if name == "rrdbnet":
        module32 = RRDBNet(num_feat=16, num_block=2, num_grow_ch=8)
        module16 = RRDBNet(num_feat=16, num_block=2, num_grow_ch=8, dtype=jnp.bfloat16)
    else:
        options = dict(embed_dim=24, depths=(2,), num_heads=(3,), window_size=4, upsampler="pixelshuffle", upscale=4)
        module32, module16 = SwinIR(**options), SwinIR(**options, dtype=jnp.bfloat16)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 12, 12, 3))
    variables = module32.init(jax.random.PRNGKey(1), x)
    grads = jax.jit(jax.grad(lambda v: jnp.mean(module32.apply(v, x) ** 2)))(variables)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) >= 0.9 * len(norms)
    a = jax.jit(module32.apply)(variables, x)
    b = jax.jit(module16.apply)(variables, x)
    assert np.abs(np.asarray(b, np.float32) - np.asarray(a)).max() <= 0.05 * np.abs(np.asarray(a)).max() + 1e-2


def test_stochastic_depth_in_training_mode():
    options = dict(embed_dim=24, depths=(2, 2), num_heads=(3, 3), window_size=4, upsampler="pixelshuffle", upscale=2,
                   drop_path_rate=0.5)
    module = SwinIR(**options)
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 3))
    variables = module.init(jax.random.PRNGKey(1), x)
    evaluation = module.apply(variables, x)
    train_a = module.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(2)})
    train_b = module.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(3)})
    assert np.all(np.isfinite(train_a)) and not np.allclose(train_a, evaluation) and not np.allclose(train_a, train_b)


def test_generator_registry():
    from asym_jax.errors import InputError
    from asym_jax.models import generators
    module = generators.get("swinir_m", upscale=2, depths=(2,), num_heads=(6,))
    assert module.embed_dim == 180 and module.upscale == 2 and module.window_size == 8
    assert generators.get("rrdbnet", num_block=3).num_block == 3
    with pytest.raises(InputError, match="unknown generator"):
        generators.get("edsr")
    with pytest.raises(InputError, match="num_blocks"):
        generators.get("rrdbnet", num_blocks=3)

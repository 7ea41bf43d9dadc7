"""Discriminators against the BasicSR 1.4.2 architectures, in PyTorch's training and evaluation modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asym_jax.models.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from asym_jax.models.layers import upsample_bilinear2x
from asym_jax.weights.convert import torch_to_flax
from helpers import basicsr_arch, to_torch, torch_state


def _target(module, x):
    return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x))


def _max_stat_diff(ours, theirs):
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)))


@pytest.mark.parametrize("size", [(32, 24), (16, 40)])
def test_unet_sn_matches_basicsr_in_both_modes(torch, size):
    arch = basicsr_arch("discriminator_arch")
    torch.manual_seed(0)
    reference = arch.UNetDiscriminatorSN(3, num_feat=8)
    x = np.random.default_rng(0).uniform(size=(2, *size, 3)).astype(np.float32)
    reference.train()
    with torch.no_grad():  # a few training calls so that u and v are not fresh
        for _ in range(3):
            reference(to_torch(torch, x))
    module = UNetDiscriminatorSN(num_feat=8)
    variables = torch_to_flax(torch_state(reference), _target(module, x))

    reference.eval()
    with torch.no_grad():
        expected = reference(to_torch(torch, x)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(module.apply(variables, x, train=False), expected, atol=1e-5)

    reference.train()  # one more power iteration, then the normalised weights
    with torch.no_grad():
        expected = reference(to_torch(torch, x)).permute(0, 2, 3, 1).numpy()
    out, updated = module.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    after = torch_to_flax(torch_state(reference), _target(module, x))
    assert _max_stat_diff(updated["batch_stats"], after["batch_stats"]) < 1e-5


@pytest.mark.parametrize("input_size", [128, 256])
def test_vgg_style_matches_basicsr_in_both_modes(torch, input_size):
    arch = basicsr_arch("discriminator_arch")
    torch.manual_seed(0)
    reference = arch.VGGStyleDiscriminator(3, 8, input_size=input_size)
    x = np.random.default_rng(0).uniform(size=(3, input_size, input_size, 3)).astype(np.float32)
    reference.train()
    with torch.no_grad():  # move the running statistics away from their initial values
        reference(to_torch(torch, x) * 0.5)
    module = VGGStyleDiscriminator(num_feat=8, input_size=input_size)
    variables = torch_to_flax(torch_state(reference), _target(module, x))

    reference.eval()
    with torch.no_grad():
        expected = reference(to_torch(torch, x)).numpy()
    np.testing.assert_allclose(module.apply(variables, x), expected, atol=1e-5)

    reference.train()
    with torch.no_grad():
        expected = reference(to_torch(torch, x)).numpy()
    out, updated = module.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    after = torch_to_flax(torch_state(reference), _target(module, x))
    assert _max_stat_diff(updated["batch_stats"], after["batch_stats"]) < 1e-5
    with pytest.raises(ValueError, match=f"expects {input_size} x {input_size}"):
        module.apply(variables, x[:, :64, :64])


def test_bilinear_upsampling_matches_torch(torch):
    x = np.random.default_rng(3).normal(size=(2, 5, 7, 3)).astype(np.float32)
    expected = torch.nn.functional.interpolate(to_torch(torch, x), scale_factor=2, mode="bilinear",
                                               align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(upsample_bilinear2x(jnp.asarray(x)), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["unet", "vgg"])
def test_gradients_flow_and_bf16_is_close(name):
    if name == "unet":
        module32, module16 = UNetDiscriminatorSN(num_feat=8), UNetDiscriminatorSN(num_feat=8, dtype=jnp.bfloat16)
        x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3))
    else:
        module32 = VGGStyleDiscriminator(num_feat=8)
        module16 = VGGStyleDiscriminator(num_feat=8, dtype=jnp.bfloat16)
        x = jax.random.uniform(jax.random.PRNGKey(0), (2, 128, 128, 3))
    variables = module32.init(jax.random.PRNGKey(1), x)

    def loss(params, image):
        out, _ = module32.apply({**variables, "params": params}, image, train=True, mutable=["batch_stats"])
        return jnp.mean(out ** 2)

    grads, image_grad = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and all(n > 0 for n in norms)
    assert np.all(np.isfinite(image_grad)) and float(jnp.abs(image_grad).max()) > 0
    a = jax.jit(module32.apply)(variables, x)
    b = jax.jit(module16.apply)(variables, x)
    assert np.abs(np.asarray(b, np.float32) - np.asarray(a)).max() <= 0.05 * np.abs(np.asarray(a)).max() + 1e-3


def _pix2pix_reference(torch, input_nc, ndf, n_layers, norm):
    """pix2pix's NLayerDiscriminator layer sequence (written out here: the reference is not packaged)."""
    nn = torch.nn
    norm_layer = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "none": lambda c: nn.Identity()}[norm]
    use_bias = norm == "instance"
    layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias), norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias), norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    model = nn.Module()
    model.model = nn.Sequential(*layers)
    model.forward = lambda x: model.model(x)
    return model


@pytest.mark.parametrize("norm,n_layers", [("batch", 3), ("instance", 3), ("none", 2)])
def test_patchgan_matches_pix2pix(torch, norm, n_layers):
    from asym_jax.models.discriminators import PatchGAN
    torch.manual_seed(0)
    reference = _pix2pix_reference(torch, 3, 8, n_layers, norm)
    x = np.random.default_rng(0).uniform(size=(2, 70, 76, 3)).astype(np.float32)
    reference.train()
    with torch.no_grad():
        reference(to_torch(torch, x) * 0.5)
    module = PatchGAN(ndf=8, n_layers=n_layers, norm=norm)
    variables = torch_to_flax(torch_state(reference), _target(module, x))
    for mode in ("eval", "train"):
        getattr(reference, mode)()
        with torch.no_grad():
            expected = reference(to_torch(torch, x)).permute(0, 2, 3, 1).numpy()
        out, _ = module.apply(variables, x, train=mode == "train", mutable=["batch_stats"])
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_patchgan_receptive_field_is_70():
    from asym_jax.models.discriminators import PatchGAN, patchgan_receptive_field
    assert patchgan_receptive_field(3) == 70
    module = PatchGAN(ndf=4, norm="none")
    x = jnp.zeros((1, 128, 128, 3))
    variables = module.init(jax.random.PRNGKey(0), x)
    out = module.apply(variables, x)
    i, j = out.shape[1] // 2, out.shape[2] // 2
    grad = jax.grad(lambda a: module.apply(variables, a)[0, i, j, 0])(x + 0.5)
    rows = np.nonzero(np.abs(np.asarray(grad)).sum(axis=(0, 2, 3)))[0]
    assert rows.max() - rows.min() + 1 == 70


@pytest.mark.parametrize("name", ["vgg16_image", "vgg16_patch", "resnet50_image", "resnet50_patch",
                                  "dinov2_s14_image", "dinov2_s14_patch"])
def test_backbone_heads_shapes_gradients_and_freezing(name):
    from asym_jax.models import discriminators
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 64, 64, 3))
    outputs = {}
    for frozen in (False, True):
        module = discriminators.get(name, hidden=16, frozen=frozen)
        variables = module.init(jax.random.PRNGKey(1), x)

        def loss(params, image):
            out, _ = module.apply({**variables, "params": params}, image, train=True, mutable=["batch_stats"])
            return jnp.mean(out ** 2), out

        (_, out), (grads, image_grad) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
            variables["params"], x)
        outputs[frozen] = out
        backbone_norm = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads["backbone"]))
        head_norm = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves({k: v for k, v in grads.items() if k != "backbone"}))
        assert head_norm > 0 and np.all(np.isfinite(image_grad))
        assert (backbone_norm == 0) == frozen, (name, frozen, backbone_norm)
        assert float(jnp.abs(image_grad).max()) > 0  # the generator learns from frozen trunks too
    expected = (2, 1) if name.endswith("image") else (2,)
    assert outputs[False].shape[:len(expected)] == expected and outputs[False].shape[-1] == 1
    if name.endswith("patch"):
        assert outputs[False].ndim == 4 and outputs[False].shape[1] > 1


def test_pretrained_trunk_drops_into_a_discriminator():
    from asym_jax.errors import InputError
    from asym_jax.models import discriminators
    from asym_jax.weights import backbone_variables, with_backbone
    module = discriminators.get("vgg16_patch", hidden=8)
    variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    pretrained = with_backbone(variables, "vgg16", "imagenet")
    reference = backbone_variables("vgg16", "imagenet")
    np.testing.assert_array_equal(pretrained["params"]["backbone"]["conv5_3"]["kernel"],
                                  reference["params"]["conv5_3"]["kernel"])
    np.testing.assert_array_equal(pretrained["params"]["head_fc1"]["kernel"], variables["params"]["head_fc1"]["kernel"])
    with pytest.raises(InputError, match="does not fit"):
        with_backbone(variables, "vgg19", "random")
    with pytest.raises(InputError, match="unknown discriminator 'vgg17_patch'"):
        discriminators.get("vgg17_patch")
    assert {"patchgan", "unet_sn", "vgg_style", "resnet50_patch", "dinov2_b14_image"} <= set(discriminators.names())


@pytest.mark.parametrize("name", ["patchgan", "resnet50_patch", "dinov2_s14_image"])
def test_bf16_forward_close_to_float32(name):
    from asym_jax.models import discriminators
    options = {"ndf": 8} if name == "patchgan" else {"hidden": 16}
    module32 = discriminators.get(name, **options)
    module16 = discriminators.get(name, dtype=jnp.bfloat16, **options)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 70, 70, 3))
    variables = module32.init(jax.random.PRNGKey(1), x)
    a = np.asarray(jax.jit(module32.apply)(variables, x))
    b = np.asarray(jax.jit(module16.apply)(variables, x), np.float32)
    assert np.abs(b - a).max() <= 0.05 * np.abs(a).max() + 1e-3

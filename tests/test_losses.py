"""Training losses: GAN objectives and the VGG-19 perceptual loss against BasicSR 1.4.2, ``get_loss``."""

from __future__ import annotations

import importlib
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asym_jax import losses, metrics
from asym_jax.errors import InputError
from asym_jax.weights import AssetError
from helpers import assert_close, basicsr_arch, to_torch


def _basicsr_loss_module(name: str):
    """``basicsr.losses.<name>`` from the installed files, without the (broken) package ``__init__``s."""
    basicsr_arch("vgg_arch")  # stubs basicsr, its utils, registry and archs packages
    registry = sys.modules["basicsr.utils.registry"]
    if not hasattr(registry, "LOSS_REGISTRY"):
        registry.LOSS_REGISTRY = types.SimpleNamespace(register=lambda obj=None, suffix=None: (
            obj if obj is not None else (lambda o: o)))
    if "basicsr.losses" not in sys.modules:
        root = pathlib.Path(list(sys.modules["basicsr"].__path__)[0])  # the stub's path: the installed files
        package = types.ModuleType("basicsr.losses")
        package.__path__ = [str(root / "losses")]
        sys.modules["basicsr.losses"] = package
    return importlib.import_module(f"basicsr.losses.{name}")


# ----------------------------------------------------------------------------------------- adversarial


def _logits(shape, seed, scale=2.0, shift=0.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape) + shift).astype(np.float32)


def _torch_grads(torch, fn, *arrays):
    tensors = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    value = fn(*tensors)
    value.backward()
    return float(value.detach()), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge"])
@pytest.mark.parametrize("shape", [(4,), (2, 8, 8, 1)])
def test_gan_losses_equal_basicsr(torch, kind, shape):
    gan = _basicsr_loss_module("gan_loss").GANLoss(kind, real_label_val=1.0, fake_label_val=0.0, loss_weight=1.0)
    real, fake = _logits(shape, 0, shift=0.5), _logits(shape, 1, shift=-0.5)

    expected_g, (expected_g_grad,) = _torch_grads(torch, lambda f: gan(f, True, is_disc=False), fake)
    value, grad = jax.value_and_grad(lambda f: losses.generator_loss(kind, f))(fake)
    assert_close(value, expected_g, rtol=1e-6, atol=1e-7, what=f"{kind} G")
    assert_close(grad, expected_g_grad, rtol=1e-5, atol=1e-8, what=f"{kind} G grad")

    # BasicSR's SRGANModel back-propagates the real and the fake term separately: the D loss is their sum.
    expected_d, expected_d_grads = _torch_grads(
        torch, lambda r, f: gan(r, True, is_disc=True) + gan(f, False, is_disc=True), real, fake)
    value, grads = jax.value_and_grad(lambda r, f: losses.discriminator_loss(kind, r, f), argnums=(0, 1))(real, fake)
    assert_close(value, expected_d, rtol=1e-6, atol=1e-7, what=f"{kind} D")
    for got, want in zip(grads, expected_d_grads):
        assert_close(got, want, rtol=1e-5, atol=1e-8, what=f"{kind} D grad")


@pytest.mark.parametrize("shape", [(4,), (2, 8, 8, 1)])
def test_relativistic_equals_esrgan_formula(torch, shape):
    gan = _basicsr_loss_module("gan_loss").GANLoss("vanilla")
    real, fake = _logits(shape, 2, shift=1.0), _logits(shape, 3, shift=-1.0)

    # ESRGANModel, generator step (the real logits come detached; they carry no generator gradient anyway).
    def g_loss(r, f):
        return (gan(r - torch.mean(f), False, is_disc=False) + gan(f - torch.mean(r), True, is_disc=False)) / 2

    expected, expected_grads = _torch_grads(torch, g_loss, real, fake)
    value, grads = jax.value_and_grad(lambda r, f: losses.generator_loss("relativistic", f, r), argnums=(0, 1))(real, fake)
    assert_close(value, expected, rtol=1e-6, what="RaGAN G")
    for got, want in zip(grads, expected_grads):
        assert_close(got, want, rtol=1e-5, atol=1e-8, what="RaGAN G grad")

    # Discriminator step: ESRGANModel detaches the other side's mean in each term (detach_means=True);
    # the relativistic average GAN as defined differentiates through both (the default).
    for detach in (True, False):
        def d_loss(r, f):
            mean_r, mean_f = (torch.mean(r).detach(), torch.mean(f).detach()) if detach else (torch.mean(r), torch.mean(f))
            return gan(r - mean_f, True, is_disc=True) * 0.5 + gan(f - mean_r, False, is_disc=True) * 0.5

        expected, expected_grads = _torch_grads(torch, d_loss, real, fake)
        value, grads = jax.value_and_grad(
            lambda r, f: losses.discriminator_loss("relativistic", r, f, detach_means=detach), argnums=(0, 1))(real, fake)
        assert_close(value, expected, rtol=1e-6, what=f"RaGAN D detach={detach}")
        for got, want in zip(grads, expected_grads):
            assert_close(got, want, rtol=1e-5, atol=1e-8, what=f"RaGAN D grad detach={detach}")


@pytest.mark.parametrize("kind", losses.KINDS)
def test_gan_losses_are_stable_in_float32_and_bfloat16(kind):
    real, fake = _logits((2, 4, 4, 1), 4, scale=1e4), _logits((2, 4, 4, 1), 5, scale=1e4)
    for dtype in (jnp.float32, jnp.bfloat16):
        r, f = jnp.asarray(real, dtype), jnp.asarray(fake, dtype)
        g_value, g_grad = jax.value_and_grad(lambda f: losses.generator_loss(kind, f, r))(f)
        d_value, d_grads = jax.value_and_grad(lambda r, f: losses.discriminator_loss(kind, r, f), argnums=(0, 1))(r, f)
        assert g_value.dtype == d_value.dtype == jnp.float32
        for a in (g_value, g_grad, d_value, *d_grads):
            assert np.all(np.isfinite(np.asarray(a, np.float32))), (kind, dtype)
    # bfloat16 logits give the float32 loss of the same (rounded) values.
    r16, f16 = jnp.asarray(_logits((8,), 6), jnp.bfloat16), jnp.asarray(_logits((8,), 7), jnp.bfloat16)
    r32, f32 = r16.astype(jnp.float32), f16.astype(jnp.float32)
    assert losses.generator_loss(kind, f16, r16) == losses.generator_loss(kind, f32, r32)
    assert losses.discriminator_loss(kind, r16, f16) == losses.discriminator_loss(kind, r32, f32)
    # The vanilla loss far in the saturated region is exact, not inf or 0.
    if kind == "vanilla":
        assert float(losses.generator_loss(kind, jnp.array([-1e4]))) == pytest.approx(1e4)


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge"])
def test_generator_gradient_pushes_fake_logits_up(kind):
    fake = jnp.asarray(_logits((3, 4, 4, 1), 8, scale=0.3))  # inside (-1, 1): every lsgan/hinge term is active
    grad = jax.grad(lambda f: losses.generator_loss(kind, f))(fake)
    assert np.all(np.isfinite(grad)) and np.all(grad < 0)
    step = losses.generator_loss(kind, fake + 0.1)
    assert step < losses.generator_loss(kind, fake)
    # The discriminator loss falls when real logits rise and fake logits fall (for lsgan and hinge: while
    # real logits are below 1 and fake logits between 0 and 1).
    real = -jnp.abs(fake)
    fake = jnp.clip(jnp.abs(jnp.asarray(_logits((3, 4, 4, 1), 9, scale=0.3))), 0.01, 0.9)
    g_real, g_fake = jax.grad(lambda r, f: losses.discriminator_loss(kind, r, f), argnums=(0, 1))(real, fake)
    assert np.all(g_real < 0) and np.all(g_fake > 0)


def test_gan_loss_errors():
    with pytest.raises(InputError, match="unknown GAN loss kind 'wgan'; known: vanilla, lsgan, hinge, relativistic"):
        losses.generator_loss("wgan", jnp.zeros(2))
    with pytest.raises(InputError, match="unknown GAN loss kind"):
        losses.discriminator_loss("ragan", jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(InputError, match="real_logits"):
        losses.generator_loss("relativistic", jnp.zeros(2))
    with pytest.raises(InputError, match="float"):
        losses.generator_loss("vanilla", jnp.zeros(2, jnp.int32))
    with pytest.raises(InputError, match="relativistic"):
        losses.discriminator_loss("vanilla", jnp.zeros(2), jnp.zeros(2), detach_means=True)


def test_gan_losses_under_jit_and_batch_shapes():
    real, fake = _logits((2, 8, 8, 1), 10), _logits((3, 4, 4, 1), 11)  # the relativistic means need no equal shapes
    for kind in losses.KINDS:
        step = jax.jit(lambda r, f, kind=kind: (losses.generator_loss(kind, f, r), losses.discriminator_loss(kind, r, f)))
        g, d = step(real, fake)
        assert g.shape == d.shape == ()
        assert_close(g, losses.generator_loss(kind, fake, real), rtol=1e-6)
        assert_close(d, losses.discriminator_loss(kind, real, fake), rtol=1e-6)


# ----------------------------------------------------------------------------------------- perceptual


@pytest.fixture(scope="module")
def basicsr_perceptual(torch, tmp_path_factory):
    """BasicSR's PerceptualLoss (Real-ESRGAN settings) around a seeded random torchvision VGG-19, the same
    weights saved as a torchvision checkpoint file (which our loss converts), and a maker of the reference
    with another criterion."""
    import torchvision

    basic_loss = _basicsr_loss_module("basic_loss")
    vgg_arch = sys.modules["basicsr.archs.vgg_arch"]
    torch.manual_seed(0)
    net = torchvision.models.vgg19(weights=None)
    with torch.no_grad():
        for module in net.features:
            if isinstance(module, torch.nn.Conv2d):
                module.bias.normal_(0.0, 0.05)  # torchvision initialises biases to 0: make the copy visible
    path = tmp_path_factory.mktemp("vgg19") / "vgg19_random.pth"
    torch.save(net.state_dict(), path)

    def make(criterion):
        original = vgg_arch.vgg
        # VGGFeatureExtractor calls vgg.vgg19(pretrained=True) (a download, and an argument torchvision removed).
        vgg_arch.vgg = types.SimpleNamespace(vgg19=lambda *args, **kwargs: net)
        try:
            layers = dict(losses.REAL_ESRGAN_LAYERS)
            return basic_loss.PerceptualLoss(layers, vgg_type="vgg19", use_input_norm=True, range_norm=False,
                                             perceptual_weight=1.0, style_weight=0.0, criterion=criterion).eval()
        finally:
            vgg_arch.vgg = original

    reference = make("l1")
    assert len(reference.vgg.vgg_net) == 35  # conv1_1 .. conv5_4: pool5 and the classifier are not used
    return reference, str(path), make


def _images(shape=(2, 64, 64, 3)):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    y = np.clip(x + 0.2 * rng.standard_normal(shape), 0.0, 1.0).astype(np.float32)
    return x, y


def test_perceptual_vgg19_equals_basicsr(torch, basicsr_perceptual):
    """Values equal BasicSR's; the feature extractor's backward pass equals torch's exactly (a vector-Jacobian
    product with random cotangents on every tap). L1's own gradient is sign(difference): where a feature
    difference is within float rounding of 0, oneDNN and XLA may take opposite signs (it depends on the
    CPU's kernels), so the whole loss's input gradient is compared in norm, to 1%."""
    from asym_jax.losses.perceptual import _module

    reference, path, _ = basicsr_perceptual
    x, y = _images()
    tx = to_torch(torch, x).requires_grad_(True)
    expected, style = reference(tx, to_torch(torch, y))
    assert style is None
    expected.backward()
    expected_grad = np.transpose(tx.grad.numpy(), (0, 2, 3, 1))

    loss = losses.get_loss("perceptual_vgg19", weights=path)  # torchvision checkpoint -> our VGG-19
    value, (grad_x, grad_y) = jax.jit(jax.value_and_grad(lambda l, x, y: l(x, y), argnums=(1, 2)))(loss, x, y)
    assert_close(value, float(expected.detach()), rtol=1e-4, what="perceptual loss")
    assert np.linalg.norm(grad_x - expected_grad) < 1e-2 * np.linalg.norm(expected_grad)
    assert not np.any(grad_y)  # the target is detached, as BasicSR's gt.detach()

    # The smooth part, exactly: d/dx sum_l <c_l, phi_l(x)> for random cotangents c_l.
    _, module = _module("vgg19", losses.REAL_ESRGAN_LAYERS, jnp.float32, None)
    feats = module.apply(loss.metric.params, x)
    rng = np.random.default_rng(1)
    cotangents = {tap: rng.standard_normal(np.shape(f)).astype(np.float32) for tap, f in feats.items()}
    tx = to_torch(torch, x).requires_grad_(True)
    torch_feats = reference.vgg(tx)
    sum(torch.sum(torch_feats[tap] * to_torch(torch, c)) for tap, c in cotangents.items()).backward()
    vjp = jax.grad(lambda x: sum(jnp.sum(module.apply(loss.metric.params, x)[tap] * c)
                                 for tap, c in cotangents.items()))(x)
    torch_vjp = np.transpose(tx.grad.numpy(), (0, 2, 3, 1))
    assert_close(vjp, torch_vjp, rtol=1e-3, atol=1e-4 * np.abs(torch_vjp).max(), what="feature VJP")

    # Per-image values average to the BasicSR batch value; identical images give 0.
    per_image = loss.per_image(x, y)
    assert per_image.shape == (2,) and float(jnp.mean(per_image)) == pytest.approx(float(value), rel=1e-6)
    assert float(loss(x, x)) == 0.0


def test_perceptual_loss_is_a_pytree_for_jit(basicsr_perceptual):
    path = basicsr_perceptual[1]
    loss = losses.get_loss("perceptual_vgg19", weights=path)
    assert isinstance(loss, metrics.Loss) and loss.metric.info is losses.PERCEPTUAL_INFO
    leaves = jax.tree.leaves(loss)
    assert len(leaves) == 32 and all(isinstance(a, jax.Array) for a in leaves)  # 16 convolutions
    assert dict(loss.metric.options)["layers"] == losses.REAL_ESRGAN_LAYERS

    # Same options -> same tree structure (one compiled program); the weights are arguments.
    other = losses.perceptual_loss("vgg19", dict(losses.REAL_ESRGAN_LAYERS), weights=loss.metric.params)
    assert jax.tree.structure(other) == jax.tree.structure(loss)
    shifted = jax.tree.map(lambda a: a * 1.5, loss)
    x, y = _images((1, 16, 16, 3))  # the smallest size VGG-19 takes: cheap compilations
    calls = []

    @jax.jit
    def step(l, x, y):
        calls.append(1)
        return l(x, y)

    a, b, c = step(loss, x, y), step(shifted, x, y), step(other, x, y)
    assert len(calls) == 1 and float(a) != float(b) and float(a) == float(c)

    # bfloat16 trunk (shallow taps: the bfloat16 path is the same, and XLA:CPU compiles deep bfloat16
    # gradients slowly): a float32 loss close to the float32 trunk's, a finite gradient.
    shallow = {"conv1_2": 0.1, "relu2_2": 1.0}
    low = losses.perceptual_loss(layers=shallow, weights=loss.metric.params, dtype=jnp.bfloat16)
    value, grad = jax.value_and_grad(lambda x: low(x, y))(x)
    assert value.dtype == grad.dtype == jnp.float32 and np.all(np.isfinite(grad)) and np.any(grad)
    full = losses.perceptual_loss(layers=shallow, weights=loss.metric.params)
    assert float(value) == pytest.approx(float(full(x, y)), rel=2e-2)
    # Another criterion: a different, still valid loss.
    mse = losses.perceptual_loss(layers=shallow, weights=loss.metric.params, criterion="l2")
    assert 0.0 < float(mse(x, y)) != float(full(x, y))


def test_get_loss_names_and_errors():
    names = losses.loss_names()
    assert "perceptual_vgg19" in names and {n for n in metrics.names() if n != "nr"} <= set(names)
    assert "nr" not in names  # a no-reference model scores; it is not offered as a loss
    ours, theirs = losses.get_loss("ssim"), metrics.as_loss("ssim")  # losses compare by identity: compare contents
    assert (ours.metric.info, ours.metric.options) == (theirs.metric.info, theirs.metric.options)
    assert dict(losses.get_loss("l1").metric.options) == {}
    with pytest.raises(InputError, match="unknown loss 'perceptual'; known: .*lpips_vgg.*perceptual_vgg19"):
        losses.get_loss("perceptual")
    with pytest.raises(InputError, match=r"unknown options \['net'\]"):
        losses.get_loss("perceptual_vgg19", net="vgg")
    with pytest.raises(InputError, match="backbone is fixed"):
        losses.get_loss("perceptual_vgg19", backbone="vgg16")
    with pytest.raises(AssetError, match="vgg19-dcbb9e9d.pth"):
        losses.get_loss("perceptual_vgg19")  # no offline ImageNet VGG-19
    with pytest.raises(InputError, match="unknown vgg19 taps"):
        losses.perceptual_loss(layers={"conv5_5": 1.0}, weights="random")
    with pytest.raises(InputError, match="criterion"):
        losses.perceptual_loss(criterion="fro", weights="random")
    with pytest.raises(InputError, match="precision"):
        losses.perceptual_loss(precision="fast", weights="random")

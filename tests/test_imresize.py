"""MATLAB-bicubic ``imresize``: parity with BasicSR's torch transcription of MATLAB's imresize, the JAX
path, the LR helpers and the input checks."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest

from asym_jax.data.imresize import bicubic_lr, imresize, mod_crop, output_size, resize_matrix
from asym_jax.errors import InputError

SIZES = ((48, 64), (51, 37), (97, 120), (30, 45))
PHOTOS = ("astronaut", "coffee", "chelsea")


@pytest.fixture(scope="module")
def oracle(torch):
    """BasicSR 1.4.2's ``utils/matlab_functions.py`` loaded by path (it only imports math, numpy and
    torch), so that ``basicsr/__init__`` (broken on current torchvision) never runs."""
    from helpers import basicsr_root

    root = basicsr_root()
    if root is None:
        pytest.fail("BasicSR is not installed: pip install --no-deps --no-build-isolation basicsr==1.4.2")
    path = root / "utils" / "matlab_functions.py"
    module_spec = importlib.util.spec_from_file_location("_basicsr_matlab_functions", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def images():
    """Crops of three photographs (8-bit values) at each size, plus uniform noise: HWC float32."""
    from asym_jax.data import sample_image

    rng = np.random.default_rng(1234)
    out = []
    for name in PHOTOS:
        photo = sample_image(name)
        for h, w in SIZES:
            top, left = rng.integers(0, photo.shape[0] - h), rng.integers(0, photo.shape[1] - w)
            out.append((f"{name}{h}x{w}", photo[top:top + h, left:left + w]))
    for h, w in SIZES:
        out.append((f"noise{h}x{w}", rng.random((h, w, 3), dtype=np.float32)))
    return out


def _grey(x):
    return np.round(np.clip(np.asarray(x, np.float64), 0.0, 1.0) * 255.0)


def _compare(images, oracle, scale, antialias=True):
    """Returns (float max abs diff, max grey-level diff, fraction of equal 8-bit values) over all images."""
    float_diff, grey_diff, equal, total = 0.0, 0.0, 0, 0
    for name, image in images:
        ours = imresize(image, scale, antialias=antialias)
        ref = oracle.imresize(image, scale, antialiasing=antialias)
        h, w = image.shape[:2]
        assert ours.dtype == np.float32 and ours.shape == ref.shape == (math.ceil(h * scale), math.ceil(w * scale), 3)
        float_diff = max(float_diff, np.abs(ours.astype(np.float64) - ref).max())
        levels = np.abs(_grey(ours) - _grey(ref))
        assert levels.max() <= 1, (name, scale, levels.max())
        grey_diff = max(grey_diff, levels.max())
        equal, total = equal + np.count_nonzero(levels == 0), total + levels.size
    return float_diff, grey_diff, equal / total


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4], ids=["x1/2", "x1/3", "x1/4"])
def test_downscale_matches_matlab(images, oracle, scale):
    float_diff, grey_diff, equal = _compare(images, oracle, scale)
    # The oracle runs in float32 (so about 1e-7 off MATLAB's doubles); ours in float64.
    assert float_diff < 1e-6, float_diff
    assert grey_diff <= 1 and equal >= 0.999, (grey_diff, equal)


@pytest.mark.parametrize("scale", [2, 4], ids=["x2", "x4"])
def test_upscale_matches_matlab(images, oracle, scale):
    float_diff, grey_diff, equal = _compare(images[::2], oracle, scale)
    assert float_diff < 1e-6, float_diff
    assert grey_diff <= 1 and equal >= 0.999, (grey_diff, equal)


def test_downscale_without_antialias_matches_matlab(images, oracle):
    # Without antialiasing the x1/2 weights are dyadic, so 8-bit photographs hit exact .5 grey-level ties
    # (about 0.07 % here) that the float32 oracle and our float64 sums round to either side.
    float_diff, grey_diff, equal = _compare(images[::3], oracle, 1 / 2, antialias=False)
    assert float_diff < 1e-6 and grey_diff <= 1 and equal >= 0.999, (float_diff, grey_diff, equal)


def test_layouts_agree(images):
    image = images[1][1]
    batch = np.stack([image, image[::-1, ::-1]])
    hwc = imresize(image, 1 / 3)
    np.testing.assert_array_equal(imresize(image[..., 1], 1 / 3), hwc[..., 1])
    nhwc = imresize(batch, 1 / 3)
    assert nhwc.shape == (2,) + hwc.shape
    np.testing.assert_allclose(nhwc[0], hwc, atol=1e-7)
    np.testing.assert_allclose(nhwc[1], imresize(batch[1], 1 / 3), atol=1e-7)
    np.testing.assert_array_equal(imresize(image.tolist(), 1 / 3), hwc)  # anything np.asarray takes
    np.testing.assert_allclose(imresize(image.astype(np.float64), 1 / 3), hwc, atol=1e-7)


def test_weights_and_tiny_images():
    for size, scale in [(1, 1 / 4), (2, 1 / 4), (3, 1 / 3), (5, 1 / 4), (7, 1 / 2), (1, 4), (2, 3.5), (10, 1 / 7)]:
        matrix = resize_matrix(size, scale)
        assert matrix.shape == (output_size(size, scale), size)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
        assert not matrix.flags.writeable
    # Kernels wider than the image fold back and forth (MATLAB's mirror is periodic): constants stay.
    flat = np.full((3, 2, 3), 0.25, np.float32)
    np.testing.assert_allclose(imresize(flat, 1 / 4), np.full((1, 1, 3), 0.25), atol=1e-7)
    # Shrinking by 1/2 with the half-sample mirror: 2 x 2 blocks of a symmetric ramp.
    assert resize_matrix(4, 1 / 2)[0, 0] == pytest.approx(resize_matrix(4, 1 / 2)[1, 3])
    # scale 1 is the identity.
    np.testing.assert_array_equal(resize_matrix(9, 1.0), np.eye(9))


def test_output_size():
    assert output_size(51, 1 / 2) == 26 and output_size(51, 1 / 3) == 17 and output_size(51, 1 / 4) == 13
    assert output_size(30, 4) == 120 and output_size(7, 1.5) == 11 and output_size(1, 1e-6) == 1
    for n in range(1, 2000):
        for s in (2, 3, 4, 5, 6, 7, 8):
            assert output_size(n * s, 1 / s) == n


def test_jax_path_matches_numpy(images):
    import jax
    import jax.numpy as jnp

    image = images[4][1]  # coffee 48x64
    batch = np.stack([image, images[-4][1]])
    for scale in (1 / 2, 1 / 3, 1 / 4, 2):
        expected = imresize(batch, scale)
        got = imresize(jnp.asarray(batch), scale)
        assert isinstance(got, jax.Array) and got.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(got), expected, atol=3e-7)
        jitted = jax.jit(imresize, static_argnums=1)(jnp.asarray(batch), scale)
        np.testing.assert_allclose(np.asarray(jitted), expected, atol=3e-7)
    np.testing.assert_allclose(np.asarray(imresize(jnp.asarray(image[..., 0]), 1 / 4)), imresize(image[..., 0], 1 / 4),
                               atol=3e-7)


def test_jax_gradient_is_the_adjoint():
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x = rng.random((2, 30, 45, 3), dtype=np.float32)
    cotangent = rng.standard_normal((2, 10, 15, 3)).astype(np.float32)
    grad = jax.jit(jax.grad(lambda v: jnp.sum(imresize(v, 1 / 3) * cotangent)))(jnp.asarray(x))
    grad = np.asarray(grad)
    assert np.all(np.isfinite(grad))
    m_h, m_w = resize_matrix(30, 1 / 3), resize_matrix(45, 1 / 3)
    np.testing.assert_allclose(grad, np.einsum("oh,pw,nopc->nhwc", m_h, m_w, cotangent), atol=1e-5)


def test_numpy_path_does_not_import_jax():
    code = ("import sys, numpy as np\n"
            "from asym_jax.data.imresize import bicubic_lr\n"
            "bicubic_lr(np.zeros((8, 8, 3), np.float32), 4)\n"
            "assert 'jax' not in sys.modules, 'jax was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_bicubic_lr(images, oracle):
    hr = mod_crop(images[2][1], 4)  # astronaut 97x120 -> 96x120
    assert hr.shape == (96, 120, 3)
    lr = bicubic_lr(hr, 4)
    assert lr.dtype == np.float32 and lr.shape == (24, 30, 3)
    np.testing.assert_array_equal(lr * 255, np.round(lr * 255))
    np.testing.assert_array_equal(lr, (_grey(imresize(hr, 1 / 4)) / 255).astype(np.float32))
    assert np.abs(_grey(lr) - _grey(oracle.imresize(hr, 1 / 4))).max() <= 1
    import jax.numpy as jnp

    lr_jax = np.asarray(bicubic_lr(jnp.asarray(hr), 4))  # same grey levels; k / 255 within one ulp
    np.testing.assert_array_equal(np.round(lr_jax * 255), lr * 255)
    np.testing.assert_allclose(lr_jax, lr, rtol=1.5e-7, atol=0)
    assert bicubic_lr(np.zeros((2, 6, 9, 3)), 3).shape == (2, 2, 3, 3)
    assert bicubic_lr(np.zeros((6, 9)), 3).shape == (2, 3)
    with pytest.raises(InputError, match=r"51x37 .* scale 2"):
        bicubic_lr(images[1][1], 2)


def test_mod_crop():
    x = np.arange(7 * 10 * 2).reshape(7, 10, 2)
    np.testing.assert_array_equal(mod_crop(x, 3), x[:6, :9])
    np.testing.assert_array_equal(mod_crop(x[..., 0], 4), x[:4, :8, 0])
    np.testing.assert_array_equal(mod_crop(x[None], 2), x[None, :6, :10])
    assert mod_crop(x, 1) is not None and mod_crop(x, 1).shape == x.shape
    with pytest.raises(InputError, match="smaller than the scale"):
        mod_crop(x, 8)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -0.5, "2", None, True, np.ones(2), 1e-12])
def test_bad_scales(scale):
    with pytest.raises(InputError, match="scale"):
        imresize(np.zeros((8, 8, 3), np.float32), scale)


def test_bad_inputs():
    with pytest.raises(InputError, match="HW, HWC or NHWC"):
        imresize(np.zeros(8), 1 / 2)
    with pytest.raises(InputError, match="HW, HWC or NHWC"):
        imresize(np.zeros((1, 2, 8, 8, 3)), 1 / 2)
    with pytest.raises(InputError, match="empty"):
        imresize(np.zeros((0, 8, 3)), 1 / 2)
    with pytest.raises(InputError, match="real-valued"):
        imresize(np.zeros((8, 8), complex), 1 / 2)
    with pytest.raises(InputError, match="size"):
        output_size(0, 1 / 2)
    with pytest.raises(InputError, match="scale"):
        output_size(8, -1)
    for scale in (0, -2, 2.5, "4", None, False):
        with pytest.raises(InputError, match="positive integer"):
            bicubic_lr(np.zeros((8, 8, 3)), scale)
    with pytest.raises(InputError, match="not divisible"):
        bicubic_lr(np.zeros((8, 6, 3)), 4)
    assert issubclass(InputError, ValueError)

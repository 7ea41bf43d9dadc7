"""LPIPS, DISTS and DISTS-style against lpips 0.1.4 and DISTS_pytorch 0.1 with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from asym_jax import metrics
from asym_jax.errors import InputError
from asym_jax.weights import backbone_variables
from helpers import assert_close, dists_reference, lpips_reference, to_torch

@pytest.mark.parametrize("net,version", [("vgg", "0.1"), ("alex", "0.1"), ("vgg", "0.0"), ("alex", "0.0")])
def test_lpips_equals_reference(torch, small_pairs, net, version):
    refs, dists = small_pairs
    metric = metrics.get(f"lpips_{net}", version=version)
    model = lpips_reference(torch, net, version, metric.params["trunk"]["params"])
    with torch.no_grad():
        expected = model(to_torch(torch, refs), to_torch(torch, dists), normalize=True).reshape(-1).numpy()
    assert_close(metric(refs, dists), expected, rtol=1e-4, what=f"lpips {net} v{version}")


def test_dists_equals_reference(torch, small_pairs):
    refs, dists = small_pairs
    metric = metrics.get("dists")
    model = dists_reference(torch, metric.params["trunk"]["params"])  # alpha/beta: the wheel's own weights.pt
    with torch.no_grad():
        expected = model(to_torch(torch, refs), to_torch(torch, dists)).numpy()
    assert_close(metric(refs, dists), expected, rtol=1e-4, what="dists")


def test_dists_style_vgg16_random_equals_reference(torch, small_pairs):
    """VGG-16-R: seeded random trunk, uniform alpha/beta, compared with DISTS_pytorch on the same weights."""
    refs, dists = small_pairs
    metric = metrics.get("dists_style", backbone="vgg16", weights="random", seed=3)
    ones = np.ones(1475, np.float32)
    model = dists_reference(torch, metric.params["trunk"]["params"], ones, ones)
    with torch.no_grad():
        expected = model(to_torch(torch, refs), to_torch(torch, dists)).numpy()
    # The score is 1 - (a sum close to 1): float32 resolves it to ulp(1) = 1.2e-7 absolute.
    assert_close(metric(refs, dists), expected, rtol=1e-4, atol=5e-7, what="dists vgg16-r")


def test_vgg16_random_is_seeded_and_offline():
    a = backbone_variables("vgg16", "random", seed=0)
    b = backbone_variables("vgg16", "random", seed=0)
    c = backbone_variables("vgg16", "random", seed=1)
    assert np.array_equal(a["params"]["conv3_2"]["kernel"], b["params"]["conv3_2"]["kernel"])
    assert not np.array_equal(a["params"]["conv3_2"]["kernel"], c["params"]["conv3_2"]["kernel"])
    # torchvision's VGG init: kaiming normal (fan_out, relu), zero bias.
    kernel = np.asarray(a["params"]["conv3_2"]["kernel"])
    assert kernel.std() == pytest.approx(np.sqrt(2.0 / (3 * 3 * 256)), rel=0.02)
    assert np.all(np.asarray(a["params"]["conv3_2"]["bias"]) == 0)


def test_dists_style_alpha_beta_sources(tmp_path, small_pairs):
    from asym_jax.weights import save_npz
    refs, dists = (a[:2] for a in small_pairs)
    official = metrics.get("dists")
    path = tmp_path / "ab.npz"
    save_npz(path, {"alpha": np.asarray(official.params["alpha"]), "beta": np.asarray(official.params["beta"])})
    from_file = metrics.get("dists_style", alpha_beta=str(path))
    assert_close(from_file(refs, dists), official(refs, dists), rtol=1e-6, what="alpha/beta from file")
    with pytest.raises(ValueError, match="channels"):
        save_npz(path, {"alpha": np.ones(10, np.float32), "beta": np.ones(10, np.float32)})
        metrics.get("dists_style", alpha_beta=str(path))
    with pytest.raises(InputError, match="nothere.npz"):
        metrics.get("dists_style", alpha_beta=str(tmp_path / "nothere.npz"))
    with pytest.raises(ValueError, match="official VGG-16"):
        metrics.get("dists_style", backbone="alexnet", alpha_beta="dists")


def test_dists_style_on_alexnet_runs(small_pairs):
    refs, dists = (a[:2] for a in small_pairs)
    metric = metrics.get("dists_style", backbone="alexnet")
    assert metric.params["alpha"].shape == (3 + 64 + 192 + 384 + 256 + 256,)
    values = np.asarray(metric(refs, dists))
    assert np.all(values > 0) and np.all(np.asarray(metric(refs, refs)) < 1e-5)

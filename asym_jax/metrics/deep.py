"""Deep-feature metrics: LPIPS (Zhang et al. 2018) and DISTS (Ding et al. 2020) with its family.

Every function is pure: the network weights come in ``params`` (a pytree), built by the matching
``*_params`` function from offline assets (see :mod:`asym_jax.weights`).

LPIPS: the trunk sees ``(2x - 1 - shift) / scale`` (v0.1; written here as the identical ImageNet
normalisation of the [0, 1] input) or ``2x - 1`` (v0.0); each tap is unit-normalised over channels
(``f / (||f|| + 1e-10)``, with a NaN-free gradient where a feature vector is 0), squared differences
are weighted by the 1x1 linear head, averaged over space and summed over the five layers.

DISTS: the image itself plus the five VGG-16 stages (max-pooling replaced by L2 pooling) give
3 + 64 + 128 + 256 + 512 + 512 = 1475 channels; per channel, texture
``(2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)`` and structure
``(2 s_xy + c2) / (s_x^2 + s_y^2 + c2)`` with c1 = c2 = 1e-6; the score is
``1 - sum(alpha * texture + beta * structure)`` with alpha and beta normalised to sum to 1.
``dists_style`` computes the same on any registered backbone ("DISTS-style" metrics).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair
from asym_jax.ops import safe_sqrt
from asym_jax.models import backbones
from asym_jax.weights.assets import resolve
from asym_jax.weights.trunks import backbone_variables
from asym_jax.weights.npz import load_npz

__all__ = ["LPIPS_BACKBONE", "dists", "dists_params", "dists_style", "dists_style_params", "dists_style_similarities",
           "lpips", "lpips_params", "weighted_distance"]

Params = Any

LPIPS_BACKBONE = {"vgg": "vgg16", "alex": "alexnet"}
_LPIPS_INPUT = {"0.1": (backbones.IMAGENET_MEAN, backbones.IMAGENET_STD), "0.0": ((0.5,) * 3, (0.5,) * 3)}
_DISTS_C1 = _DISTS_C2 = 1e-6
# The final contractions (LPIPS heads, DISTS alpha/beta sums) are float32 in every dtype: they are cheap,
# and a bf16 or TF32 pass there would move reported scores.
_HIGHEST = jax.lax.Precision.HIGHEST


PRECISIONS = ("highest", "default")


def _precision(dtype: Any, precision: str | None = None):
    """The trunk's matmul/conv precision. ``None`` (every reported score): float32 at HIGHEST on every platform
    (no TF32 / bf16 passes), lower dtypes at the default. ``"default"``: the platform's default, what a
    training loss uses (TF32 on recent NVIDIA GPUs, bf16 passes on TPU, as PyTorch's autocast and TF32 do);
    ``"highest"``: HIGHEST in any dtype."""
    if precision is None:
        return jax.lax.Precision.HIGHEST if jnp.dtype(dtype) == jnp.float32 else None
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return jax.lax.Precision.HIGHEST if precision == "highest" else None


# ----------------------------------------------------------------------------------------- LPIPS


def _lpips_module(net: str, version: str, dtype: Any, precision: str | None = None):
    if net not in LPIPS_BACKBONE:
        raise InputError(f"lpips: net must be one of {sorted(LPIPS_BACKBONE)}, got {net!r}")
    if version not in _LPIPS_INPUT:
        raise InputError(f"lpips: version must be '0.1' or '0.0', got {version!r}")
    spec = backbones.get(LPIPS_BACKBONE[net])
    mean, std = _LPIPS_INPUT[version]
    return spec, spec.build(taps=spec.default_taps, mean=mean, std=std, dtype=dtype,
                            precision=_precision(dtype, precision))


def lpips_params(net: str = "vgg", version: str = "0.1", *, weights: str = "imagenet", seed: int = 0) -> Params:
    """LPIPS parameters: the trunk variables (``weights`` as in ``backbone_variables``) and the shipped
    linear heads."""
    spec, _ = _lpips_module(net, version, jnp.float32)
    heads = load_npz(resolve("lpips_heads"))
    return {
        "trunk": backbone_variables(spec.name, weights, seed=seed),
        "heads": {tap: jnp.asarray(heads[f"v{version}_{net}_{k}"]) for k, tap in enumerate(spec.default_taps)},
    }


def _unit_normalise(f: jax.Array) -> jax.Array:
    return f / (safe_sqrt(jnp.sum(jnp.square(f), axis=-1, keepdims=True)) + 1e-10)


@functools.partial(jax.jit, static_argnames=("net", "version", "dtype", "precision"))
def lpips(x: jax.Array, y: jax.Array, *, params: Params, net: str = "vgg", version: str = "0.1",
          dtype: Any = jnp.float32, precision: str | None = None) -> jax.Array:
    """LPIPS distance per image (lower is better, 0 for identical images); NHWC RGB in [0, 1].

    Args:
      params: from :func:`lpips_params` with the same ``net`` and ``version``.
      net: ``"vgg"`` or ``"alex"``.
      version: ``"0.1"`` (current) or ``"0.0"`` (first release, unscaled input).
      dtype: compute dtype of the trunk (float32 for scores; bfloat16 is an option for losses).
      precision: of the trunk's convolutions: None (scores: float32 at HIGHEST), ``"default"`` (training
        losses) or ``"highest"``.
    """
    spec, module = _lpips_module(net, version, dtype, precision)
    x, y = check_pair(f"lpips_{net}", x, y, min_size=spec.min_size, keep_shared=True)
    # Two trunk passes: the reference's needs no backward pass in a loss, and a shared reference is one image.
    feats_x, feats_y = module.apply(params["trunk"], x), module.apply(params["trunk"], y)
    total = jnp.zeros((x.shape[0],), jnp.float32)
    for tap in spec.default_taps:
        fx, fy = (_unit_normalise(f[tap].astype(jnp.float32)) for f in (feats_x, feats_y))
        diff = jnp.square(fx - fy)
        head = params["heads"][tap].astype(jnp.float32)
        total = total + jnp.mean(jnp.einsum("nhwc,c->nhw", diff, head, precision=_HIGHEST), axis=(1, 2))
    return total


# ----------------------------------------------------------------------------------------- DISTS


def _dists_module(backbone: str, dtype: Any, precision: str | None = None):
    spec = backbones.get(backbone)
    options = {"pooling": "l2"} if backbone.startswith("vgg") else {}
    return spec, spec.build(taps=spec.default_taps, dtype=dtype, precision=_precision(dtype, precision), **options)


def _dists_channels(backbone: str) -> int:
    spec = backbones.get(backbone)
    return 3 + sum(spec.channels(spec.default_taps))


LEARNED_FILE, LEARNED_INFO = "alpha_beta.npz", "metric.json"  # what an iqa_fr_train workdir holds


def _learned_file(folder, backbone: str):
    """``<folder>/alpha_beta.npz`` of a learned metric (an iqa_fr_train workdir, local or ``gs://``), after
    checking that it was learned on ``backbone``."""
    import json

    info_path, path = folder / LEARNED_INFO, folder / LEARNED_FILE
    if not (info_path.is_file() and path.is_file()):
        raise InputError(f"alpha_beta={folder} is a folder without {LEARNED_FILE} and {LEARNED_INFO}: give an "
                         "iqa_fr_train workdir whose training has finished, or an npz file")
    try:
        learned_on = json.loads(info_path.read_text())["backbone"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{info_path} is unreadable ({error!r})") from None
    if learned_on != backbone:
        raise InputError(f"alpha_beta={folder} was learned on backbone {learned_on!r}, not {backbone!r}")
    return path


def _load_alpha_beta(source: str, channels: int, backbone: str) -> tuple[np.ndarray, np.ndarray]:
    from asym_jax.io import workdir_path

    if source == "uniform":
        return np.ones(channels, np.float32), np.ones(channels, np.float32)
    if source == "dists":
        path = resolve("dists_alpha_beta")
        data = load_npz(path)
    else:
        path = workdir_path(str(source))  # a file or an iqa_fr_train workdir; either may be on gs://
        if path.is_dir():
            path = _learned_file(path, backbone)
        if not path.is_file():
            raise InputError(f"alpha/beta file not found: {path} (expected an npz with 'alpha' and 'beta')")
        with path.open("rb") as f:
            data = load_npz(f)
    missing = {"alpha", "beta"} - set(data)
    if missing:
        raise InputError(f"{path}: lacks {sorted(missing)}")
    alpha, beta = (np.asarray(data[k], np.float32).reshape(-1) for k in ("alpha", "beta"))
    if alpha.size != channels or beta.size != channels:
        raise InputError(f"{path}: alpha/beta have {alpha.size}/{beta.size} values, the backbone has {channels} channels")
    return alpha, beta


def dists_style_params(backbone: str = "vgg16", *, weights: str = "imagenet", alpha_beta: str = "uniform",
                       seed: int = 0) -> Params:
    """Parameters of a DISTS-style metric.

    Args:
      backbone: a registered backbone; VGG trunks use L2 pooling, as DISTS does.
      weights: ``"imagenet"``, ``"random"`` (seeded; VGG-16-R is ``vgg16`` + ``"random"``) or a
        checkpoint file or converted folder (see :func:`asym_jax.weights.backbone_variables`).
      alpha_beta: ``"uniform"`` (equal weights), ``"dists"`` (the official VGG-16 values), an npz file
        with ``alpha`` and ``beta`` vectors (one value per channel, image channels first), or the workdir
        of an ``iqa_fr_train`` run on the same backbone.
      seed: seed of ``weights="random"``.
    """
    channels = _dists_channels(backbone)
    if alpha_beta == "dists" and backbone != "vgg16":
        raise InputError("alpha_beta='dists' holds the official VGG-16 values; use 'uniform' or a file")
    alpha, beta = _load_alpha_beta(alpha_beta, channels, backbone)
    return {"trunk": backbone_variables(backbone, weights, seed=seed), "alpha": jnp.asarray(alpha),
            "beta": jnp.asarray(beta)}


def dists_params() -> Params:
    """Parameters of the official DISTS: ImageNet VGG-16 and the published alpha/beta."""
    return dists_style_params("vgg16", weights="imagenet", alpha_beta="dists")


@functools.partial(jax.jit, static_argnames=("backbone", "dtype", "precision"))
def dists_style_similarities(x: jax.Array, y: jax.Array, *, trunk: Params, backbone: str = "vgg16",
                             dtype: Any = jnp.float32, precision: str | None = None) -> tuple[jax.Array, jax.Array]:
    """Per-channel texture and structure similarities ``(n, C)`` each, over the image channels then every
    tap of ``backbone`` (C = the length of alpha and beta): the terms a DISTS-style distance weights.
    With the trunk frozen they are all a learned metric needs of the images (``iqa_fr_train``)."""
    spec, module = _dists_module(backbone, dtype, precision)
    x, y = check_pair(f"dists_style[{backbone}]", x, y, min_size=1 if backbone.startswith("vgg") else spec.min_size,
                      keep_shared=True)
    # Two trunk passes (as in lpips): no backward pass for the reference; a shared one is one image.
    feats_x, feats_y = module.apply(trunk, x), module.apply(trunk, y)
    stages = [(x, y)] + [(feats_x[t].astype(jnp.float32), feats_y[t].astype(jnp.float32)) for t in spec.default_taps]
    texture, structure = [], []
    for fx, fy in stages:
        mx, my = jnp.mean(fx, axis=(1, 2)), jnp.mean(fy, axis=(1, 2))
        vx = jnp.mean(jnp.square(fx - mx[:, None, None]), axis=(1, 2))
        vy = jnp.mean(jnp.square(fy - my[:, None, None]), axis=(1, 2))
        cov = jnp.mean(fx * fy, axis=(1, 2)) - mx * my
        texture.append((2.0 * mx * my + _DISTS_C1) / (jnp.square(mx) + jnp.square(my) + _DISTS_C1))
        structure.append((2.0 * cov + _DISTS_C2) / (vx + vy + _DISTS_C2))
    return jnp.concatenate(texture, axis=1), jnp.concatenate(structure, axis=1)


def weighted_distance(texture: jax.Array, structure: jax.Array, alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """``1 - (texture . alpha + structure . beta) / (sum(alpha) + sum(beta))`` per image: the DISTS-style
    distance from :func:`dists_style_similarities` and non-negative weights."""
    if alpha.shape[0] != texture.shape[-1] or beta.shape[0] != structure.shape[-1]:
        raise InputError(f"dists_style: alpha/beta have {alpha.shape[0]}/{beta.shape[0]} values, the backbone "
                         f"gives {texture.shape[-1]} channels")
    total = jnp.sum(alpha.astype(jnp.float32)) + jnp.sum(beta.astype(jnp.float32))
    return 1.0 - (jnp.einsum("nc,c->n", texture, alpha.astype(jnp.float32), precision=_HIGHEST)
                  + jnp.einsum("nc,c->n", structure, beta.astype(jnp.float32), precision=_HIGHEST)) / total


@functools.partial(jax.jit, static_argnames=("backbone", "dtype", "precision"))
def dists_style(x: jax.Array, y: jax.Array, *, params: Params, backbone: str = "vgg16",
                dtype: Any = jnp.float32, precision: str | None = None) -> jax.Array:
    """DISTS-style distance per image on ``backbone`` (lower is better, 0 for identical images); ``dtype`` and
    ``precision`` as in :func:`lpips`."""
    texture, structure = dists_style_similarities(x, y, trunk=params["trunk"], backbone=backbone, dtype=dtype,
                                                  precision=precision)
    return weighted_distance(texture, structure, params["alpha"], params["beta"])


@functools.partial(jax.jit, static_argnames=("dtype", "precision"))
def dists(x: jax.Array, y: jax.Array, *, params: Params, dtype: Any = jnp.float32,
          precision: str | None = None) -> jax.Array:
    """The official DISTS per image (``params`` from :func:`dists_params`); lower is better."""
    return dists_style(x, y, params=params, backbone="vgg16", dtype=dtype, precision=precision)

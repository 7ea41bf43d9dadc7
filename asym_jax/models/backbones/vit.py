"""Vision Transformers in the Hugging Face ``transformers`` layouts: DINOv2 and the CLIP image tower.

One module, two layouts (``layout="dinov2"`` or ``"clip"``); parameter names mirror the HF state dicts
(``encoder_layer_0/attention/q_proj`` for DINOv2, ``encoder_layers_0/self_attn/q_proj`` for CLIP), so
checkpoints convert by name. Older DINOv2 checkpoints (``attention.attention.query`` ...) are renamed
by the converter (:mod:`asym_jax.weights.pytorch`).

Taps: ``cls`` (HF ``pooler_output``: the normalised class token, N x D), ``patches`` (HF
``last_hidden_state`` without the class token, as an N x h x w x D grid; normalised for DINOv2, not for
CLIP, as in HF) and ``block{k}`` (patch tokens after block k, 1-based, N x h x w x D). Position
embeddings are resized to the input's patch grid with PyTorch's bicubic interpolation (A = -0.75,
``align_corners=False``), as HF's ``interpolate_pos_encoding`` does.

Presets: DINOv2 ViT-S/14 (384 wide, 12 blocks, 6 heads) and ViT-B/14 (768, 12, 12), both at 518 px
(37 x 37 position grid); CLIP ViT-B/32 (768, 12, 12, 224 px).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize

__all__ = ["CLIP_MEAN", "CLIP_STD", "VIT_PRESETS", "ViT", "torch_bicubic_matrix"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

VIT_PRESETS = {
    "dinov2_s14": dict(layout="dinov2", width=384, depth=12, heads=6, patch=14, image_size=518),
    "dinov2_b14": dict(layout="dinov2", width=768, depth=12, heads=12, patch=14, image_size=518),
    "clip_b32": dict(layout="clip", width=768, depth=12, heads=12, patch=32, image_size=224),
}

_trunc = nn.initializers.truncated_normal(0.02)


def torch_bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) matrix of ``F.interpolate(size=out, mode='bicubic', align_corners=False)`` on one axis."""
    # PyTorch computes the source coordinate and the cubic weights in float32; so does this.
    f32 = np.float32
    a = f32(-0.75)
    matrix = np.zeros((out_size, in_size), np.float64)
    scale = f32(in_size) / f32(out_size)
    for i in range(out_size):
        src = scale * (f32(i) + f32(0.5)) - f32(0.5)
        base = math.floor(src)
        t = f32(src - f32(base))
        weights = [((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                   ((a + 2) * t - (a + 3)) * t * t + 1,
                   ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
                   ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a]
        for k, w in enumerate(weights):
            matrix[i, min(max(base - 1 + k, 0), in_size - 1)] += w
    return matrix


def _resize_positions(grid: jax.Array, height: int, width: int) -> jax.Array:
    """Bicubic resize of an (h, w, D) position grid to (height, width, D)."""
    if grid.shape[:2] == (height, width):
        return grid
    rows = jnp.asarray(torch_bicubic_matrix(grid.shape[0], height), jnp.float32)
    cols = jnp.asarray(torch_bicubic_matrix(grid.shape[1], width), jnp.float32)
    return jnp.einsum("ah,bw,hwd->abd", rows, cols, grid.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST)


class _Layer(nn.Module):
    layout: str
    width: int
    heads: int
    mlp_ratio: float
    eps: float
    dtype: Any
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dinov2 = self.layout == "dinov2"
        names = ("norm1", "attention", "o_proj", "norm2") if dinov2 else ("layer_norm1", "self_attn", "out_proj",
                                                                          "layer_norm2")
        b, n, d = x.shape
        head_dim = d // self.heads
        y = nn.LayerNorm(use_fast_variance=False, epsilon=self.eps, dtype=self.dtype, name=names[0])(x)

        def proj(name):
            return nn.Dense(d, kernel_init=_trunc, dtype=self.dtype, precision=self.precision, name=f"{names[1]}_{name}")

        q = proj("q_proj")(y).reshape(b, n, self.heads, head_dim) * head_dim ** -0.5
        k = proj("k_proj")(y).reshape(b, n, self.heads, head_dim)
        v = proj("v_proj")(y).reshape(b, n, self.heads, head_dim)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=self.precision)
        attn = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
        y = jnp.einsum("bhqk,bkhd->bqhd", attn, v, precision=self.precision).reshape(b, n, d)
        y = proj(names[2])(y)
        if dinov2:
            y = y * self.param("layer_scale1_lambda1", nn.initializers.ones, (d,)).astype(y.dtype)
        x = x + y
        y = nn.LayerNorm(use_fast_variance=False, epsilon=self.eps, dtype=self.dtype, name=names[3])(x)
        y = nn.Dense(int(d * self.mlp_ratio), kernel_init=_trunc, dtype=self.dtype, precision=self.precision,
                     name="mlp_fc1")(y)
        y = nn.gelu(y, approximate=False) if dinov2 else y * jax.nn.sigmoid(1.702 * y)  # CLIP's quick_gelu
        y = nn.Dense(d, kernel_init=_trunc, dtype=self.dtype, precision=self.precision, name="mlp_fc2")(y)
        if dinov2:
            y = y * self.param("layer_scale2_lambda1", nn.initializers.ones, (d,)).astype(y.dtype)
        return x + y


class ViT(nn.Module):
    """A DINOv2 or CLIP vision transformer returning named taps; input a [0, 1] NHWC image whose sides
    are multiples of ``patch`` (normalisation inside: ImageNet for DINOv2, CLIP's for CLIP)."""

    layout: str = "dinov2"
    width: int = 384
    depth: int = 12
    heads: int = 6
    patch: int = 14
    image_size: int = 518
    mlp_ratio: float = 4.0
    taps: Sequence[str] = ("patches",)
    dtype: Any = jnp.float32
    precision: Any = None            # of every matmul and convolution (jax.lax.Precision)
    remat: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        if self.layout not in ("dinov2", "clip"):
            raise InputError(f"ViT layout must be 'dinov2' or 'clip', got {self.layout!r}")
        known = {"cls", "patches"} | {f"block{k}" for k in range(1, self.depth + 1)}
        unknown = [t for t in self.taps if t not in known]
        if unknown or not self.taps:
            raise InputError(f"unknown ViT taps {unknown}; known: cls, patches, block1..block{self.depth}")
        if x.shape[1] % self.patch or x.shape[2] % self.patch:
            raise InputError(f"ViT: input sides must be multiples of the patch size {self.patch}, got {x.shape}")
        dinov2 = self.layout == "dinov2"
        eps = 1e-6 if dinov2 else 1e-5
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if dinov2 else (CLIP_MEAN, CLIP_STD)
        h = normalize(x, mean, std).astype(self.dtype)
        patch_name = "embeddings_patch_embeddings_projection" if dinov2 else "embeddings_patch_embedding"
        h = nn.Conv(self.width, (self.patch, self.patch), strides=(self.patch, self.patch), padding="VALID",
                    use_bias=dinov2, dtype=self.dtype, precision=self.precision, name=patch_name)(h)
        b, gh, gw, d = h.shape
        grid = self.image_size // self.patch
        if dinov2:
            cls = self.param("embeddings_cls_token", _trunc, (1, 1, d))
            positions = self.param("embeddings_position_embeddings", _trunc, (1, grid * grid + 1, d))[0]
        else:
            cls = self.param("embeddings_class_embedding", _trunc, (d,)).reshape(1, 1, d)
            positions = nn.Embed(grid * grid + 1, d, embedding_init=_trunc, name="embeddings_position_embedding").embedding
        patch_positions = _resize_positions(positions[1:].reshape(grid, grid, d), gh, gw).reshape(gh * gw, d)
        positions = jnp.concatenate([positions[:1].astype(jnp.float32), patch_positions], axis=0)
        tokens = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (b, 1, d)), h.reshape(b, gh * gw, d)], axis=1)
        tokens = (tokens + positions[None].astype(self.dtype)).astype(self.dtype)
        if not dinov2:
            tokens = nn.LayerNorm(use_fast_variance=False, epsilon=eps, dtype=self.dtype, name="pre_layrnorm")(tokens)
        wanted, out = set(self.taps), {}
        layer = nn.remat(_Layer) if self.remat else _Layer
        prefix = "encoder_layer" if dinov2 else "encoder_layers"
        last_needed = max([int(t[5:]) for t in wanted if t.startswith("block")] +
                          ([self.depth] if wanted & {"cls", "patches"} else []))
        for k in range(last_needed):
            tokens = layer(self.layout, d, self.heads, self.mlp_ratio, eps, self.dtype, self.precision,
                           name=f"{prefix}_{k}")(tokens)
            if f"block{k + 1}" in wanted:
                out[f"block{k + 1}"] = tokens[:, 1:].reshape(b, gh, gw, d)
        if wanted & {"cls", "patches"}:
            if dinov2:
                final = nn.LayerNorm(use_fast_variance=False, epsilon=eps, dtype=self.dtype, name="layernorm")(tokens)
                out_cls, out_patches = final[:, 0], final[:, 1:]
            else:
                out_cls = nn.LayerNorm(use_fast_variance=False, epsilon=eps, dtype=self.dtype, name="post_layernorm")(tokens[:, 0])
                out_patches = tokens[:, 1:]
            if "cls" in wanted:
                out["cls"] = out_cls
            if "patches" in wanted:
                out["patches"] = out_patches.reshape(b, gh, gw, d)
        return out

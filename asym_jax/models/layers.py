"""Layers shared by the networks: PyTorch-compatible spectral normalisation, resampling."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["BatchNorm", "SpectralConv", "drop_path", "instance_norm", "upsample_bilinear2x"]


def drop_path(module: nn.Module, x: jax.Array, rate: float, deterministic: bool) -> jax.Array:
    """Stochastic depth: drops ``x`` for whole samples with probability ``rate`` (scaling the kept ones),
    drawing from ``module``'s ``"dropout"`` RNG; the identity when ``deterministic`` or ``rate == 0``."""
    if deterministic or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0.0).astype(x.dtype)


def instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    """PyTorch's ``InstanceNorm2d`` without affine parameters or running statistics (its default)."""
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x32 - mean), axis=(1, 2), keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + epsilon)).astype(x.dtype)


class BatchNorm(nn.Module):
    """PyTorch's ``BatchNorm2d`` on NHWC: batch statistics in training (``train=True``, make
    ``batch_stats`` mutable), running statistics otherwise; the running variance is updated with the
    unbiased batch variance, as PyTorch does (Flax's ``nn.BatchNorm`` uses the biased one).
    Variables: params ``scale``, ``bias``; batch_stats ``mean``, ``var``.
    """

    momentum: float = 0.1  # PyTorch's convention: new = (1 - momentum) * old + momentum * batch
    epsilon: float = 1e-5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
        if train:
            x32 = x.astype(jnp.float32)
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x32, axis=axes)
            var = jnp.mean(jnp.square(x32 - mean), axis=axes)
            if not self.is_initializing():
                count = x.size // features
                unbiased = var * (count / max(count - 1, 1))
                running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
                running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
        else:
            mean, var = running_mean.value, running_var.value
        inv = jax.lax.rsqrt(var + self.epsilon) * scale
        return (x.astype(jnp.float32) * inv + (bias - mean * inv)).astype(self.dtype)


def _normalize(v: jax.Array, eps: float) -> jax.Array:
    # torch.nn.functional.normalize: v / max(||v||, eps)
    return v / jnp.maximum(jnp.linalg.norm(v), eps)


def _unit_normal(key, shape, dtype=jnp.float32):
    return _normalize(jax.random.normal(key, shape, dtype), 1e-12)


class SpectralConv(nn.Module):
    """A convolution with PyTorch's ``spectral_norm`` (one power iteration per training call).

    ``u`` (output side) and ``v`` (input side, flattened as kernel rows ``(kh, kw, in)``) live in the
    ``batch_stats`` collection. With ``update_stats=True`` (PyTorch's training mode) a power iteration
    refines them first and they are stored (make ``batch_stats`` mutable); with ``False`` (evaluation)
    the stored vectors are used as they are, so ``sigma = u^T W v`` equals PyTorch's in both modes.
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    padding: Any = ((1, 1), (1, 1))
    use_bias: bool = True
    n_power_iterations: int = 1
    eps: float = 1e-12
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool) -> jax.Array:
        kh, kw = self.kernel_size
        in_features = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
                            (kh, kw, in_features, self.features))
        matrix = kernel.reshape(-1, self.features)  # (kh * kw * in, out)
        u = self.variable("batch_stats", "u", _unit_normal, self.make_rng("params") if self.is_initializing() else None,
                          (self.features,))
        v = self.variable("batch_stats", "v", _unit_normal, self.make_rng("params") if self.is_initializing() else None,
                          (matrix.shape[0],))
        u_value, v_value = u.value, v.value
        if update_stats:
            for _ in range(self.n_power_iterations):
                v_value = _normalize(matrix @ u_value, self.eps)
                u_value = _normalize(matrix.T @ v_value, self.eps)
            u_value, v_value = jax.lax.stop_gradient(u_value), jax.lax.stop_gradient(v_value)
            if not self.is_initializing():
                u.value, v.value = u_value, v_value
        sigma = u_value @ (matrix.T @ v_value)
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype), (kernel / sigma).astype(self.dtype), tuple(self.strides), self.padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


def upsample_bilinear2x(x: jax.Array) -> jax.Array:
    """x2 bilinear upsampling of NHWC, equal to ``F.interpolate(scale_factor=2, mode='bilinear',
    align_corners=False)``: output pixels sit at quarter positions, edges repeat."""
    for axis in (1, 2):
        n = x.shape[axis]
        prev = jnp.concatenate([jax.lax.slice_in_dim(x, 0, 1, axis=axis), jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
        nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), jax.lax.slice_in_dim(x, n - 1, n, axis=axis)], axis)
        even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
        stacked = jnp.stack([even, odd], axis=axis + 1)
        shape = list(x.shape)
        shape[axis] = 2 * n
        x = stacked.reshape(shape)
    return x

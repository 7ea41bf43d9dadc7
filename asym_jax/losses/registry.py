"""One entry point for the fidelity losses: the metric registry's losses and the perceptual losses.

``get_loss(name, **options)`` returns a :class:`~asym_jax.metrics.Loss` (``loss(x, y) -> scalar``,
``loss.per_image(x, y) -> (N,)``) for every differentiable metric name (delegating to
:func:`asym_jax.metrics.as_loss`) and for ``"perceptual_vgg19"``, the VGG-19 perceptual loss of
ESRGAN / Real-ESRGAN (:func:`asym_jax.losses.perceptual_loss` with ``backbone="vgg19"``). The
adversarial objectives act on discriminator logits, not on image pairs, and live in
:mod:`asym_jax.losses.adversarial`.
"""

from __future__ import annotations

from typing import Any, Mapping

from asym_jax import metrics
from asym_jax.errors import InputError
from asym_jax.losses.perceptual import perceptual_loss
from asym_jax.metrics.registry import Loss

__all__ = ["get_loss", "loss_names", "loss_trunk"]

_PERCEPTUAL = {"perceptual_vgg19": "vgg19"}


def loss_names() -> list[str]:
    """Names :func:`get_loss` accepts."""
    return sorted([n for n in metrics.names() if metrics.info(n).differentiable] + list(_PERCEPTUAL))


def loss_trunk(name: str, options: Mapping[str, Any]) -> tuple[str, bool] | None:
    """``(backbone, configurable)`` of the feature network loss ``name`` would hold with ``options``
    (``None`` for losses without one), known before any weights load; ``configurable`` says whether the
    loss takes ``weights`` (and ``seed``) options for that trunk."""
    if name in _PERCEPTUAL:
        return _PERCEPTUAL[name], True
    meta = metrics.info(name)
    if meta.trunk is None:
        return None
    return meta.trunk({**meta.defaults, **options}), "weights" in meta.param_options


def get_loss(name: str, **options: Any) -> Loss:
    """The loss ``name`` with ``options`` bound.

    Metric names take the options of :func:`asym_jax.metrics.as_loss` (e.g. ``weights="random"`` for the
    deep metrics). ``"perceptual_vgg19"`` takes those of :func:`asym_jax.losses.perceptual_loss` except
    ``backbone`` (``layers``, ``weights``, ``criterion``, ``seed``, ``dtype``, ``precision``); its default
    ``weights="imagenet"`` needs a converted torchvision VGG-19 checkpoint (an AssetError says how).
    """
    if name in _PERCEPTUAL:
        if "backbone" in options:
            raise InputError(f"{name}: the backbone is fixed ({_PERCEPTUAL[name]}); "
                             "use asym_jax.losses.perceptual_loss for another one")
        allowed = {"layers", "weights", "criterion", "seed", "dtype", "precision"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise InputError(f"loss {name!r}: unknown options {unknown}; allowed: {sorted(allowed)}")
        return perceptual_loss(_PERCEPTUAL[name], **options)
    if name not in metrics.names():
        raise InputError(f"unknown loss {name!r}; known: {', '.join(loss_names())}")
    return metrics.as_loss(name, **options)

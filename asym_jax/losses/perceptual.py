"""The VGG perceptual loss of SRGAN / ESRGAN / Real-ESRGAN (BasicSR ``PerceptualLoss``).

Both images (NHWC RGB in [0, 1]) are ImageNet-normalised (``(x - mean) / std`` inside the trunk) and
passed through a feature backbone; per layer the criterion compares the two feature maps, the layer
terms are weighted and summed:

    loss(x, y) = sum_l  w_l * mean_{h, w, c} |phi_l(x) - phi_l(y)|      (criterion "l1")

The default is Real-ESRGAN's (and ESRGAN's) setting: VGG-19 features *before* the ReLU at conv1_2,
conv2_2, conv3_4, conv4_4, conv5_4 with weights (0.1, 0.1, 1, 1, 1) (:data:`REAL_ESRGAN_LAYERS`).
BasicSR's ``L1Loss`` averages over the whole batch; here the per-image values are returned by
:func:`perceptual`, and the :class:`~asym_jax.metrics.Loss` from :func:`perceptual_loss` takes their
batch mean, which is the same number. BasicSR's ``perceptual_weight`` (a plain factor) is left to the
trainer; its style (Gram) term and its ``"fro"`` criterion (a norm over the whole batch) are not
provided. Like BasicSR (``gt.detach()``), no gradient flows into the target ``y``.

VGG-19 ImageNet weights are not shipped: convert torchvision's ``vgg19-dcbb9e9d.pth`` with
``python -m asym_jax.weights convert --arch vgg19 --src FILE --dst DIR`` and pass ``weights=DIR``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair
from asym_jax.metrics.registry import Loss, Metric, MetricInfo
from asym_jax.models import backbones
from asym_jax.weights.trunks import backbone_variables

__all__ = ["CRITERIA", "PERCEPTUAL_INFO", "REAL_ESRGAN_LAYERS", "perceptual", "perceptual_loss", "perceptual_params"]

Params = Any
Layers = tuple[tuple[str, float], ...]

# Real-ESRGAN / ESRGAN: VGG-19 before the ReLU, BasicSR ``layer_weights``.
REAL_ESRGAN_LAYERS: Layers = (("conv1_2", 0.1), ("conv2_2", 0.1), ("conv3_4", 1.0), ("conv4_4", 1.0),
                              ("conv5_4", 1.0))
CRITERIA = ("l1", "l2")
_PRECISIONS = {"default": jax.lax.Precision.DEFAULT, "high": jax.lax.Precision.HIGH,
               "highest": jax.lax.Precision.HIGHEST}


def _layers(backbone: str, layers: Mapping[str, float] | Sequence[str] | Sequence[tuple[str, float]] | None) -> Layers:
    """``layers`` as a hashable tuple of ``(tap, weight)`` pairs, checked against the backbone's taps."""
    spec = backbones.get(backbone)
    if layers is None:
        layers = REAL_ESRGAN_LAYERS if backbone == "vgg19" else tuple((t, 1.0) for t in spec.default_taps)
    if isinstance(layers, Mapping):
        pairs = tuple(layers.items())
    elif isinstance(layers, str):
        raise InputError(f"perceptual: layers must be a mapping tap -> weight or a sequence of taps, got {layers!r}")
    else:
        pairs = tuple((item, 1.0) if isinstance(item, str) else tuple(item) for item in layers)
    if not pairs or any(len(p) != 2 for p in pairs):
        raise InputError(f"perceptual: layers must be a non-empty mapping tap -> weight, got {layers!r}")
    unknown = [t for t, _ in pairs if t not in spec.tap_channels]
    if unknown:
        raise InputError(f"perceptual: unknown {backbone} taps {unknown}; known: {sorted(spec.tap_channels)}")
    names = [t for t, _ in pairs]
    if len(set(names)) != len(names):
        raise InputError(f"perceptual: repeated taps in {names}")
    return tuple((str(t), float(w)) for t, w in pairs)


def _precision(precision: Any, dtype: Any) -> Any:
    if precision is None:  # as the metrics: float32 stays float32 on every platform
        return jax.lax.Precision.HIGHEST if jnp.dtype(dtype) == jnp.float32 else None
    if isinstance(precision, str):
        if precision not in _PRECISIONS:
            raise InputError(f"perceptual: precision must be None or one of {sorted(_PRECISIONS)}, got {precision!r}")
        return _PRECISIONS[precision]
    return precision


def _module(backbone: str, layers: Layers, dtype: Any, precision: Any):
    spec = backbones.get(backbone)
    module = spec.build(taps=tuple(t for t, _ in layers), dtype=dtype)
    if "precision" in {f.name for f in dataclasses.fields(module)}:
        module = module.clone(precision=_precision(precision, dtype))
    return spec, module


def _normalise_options(backbone: str, layers, criterion: str, dtype: Any, precision: Any) -> dict[str, Any]:
    if criterion not in CRITERIA:
        raise InputError(f"perceptual: criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    try:
        dtype = jnp.dtype(dtype).type
    except TypeError:
        raise InputError(f"perceptual: dtype must be a float dtype, got {dtype!r}") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise InputError(f"perceptual: dtype must be a float dtype, got {dtype!r}")
    _precision(precision, dtype)  # validates
    if isinstance(precision, jax.lax.Precision):
        precision = precision.name.lower()
    return {"backbone": backbone, "layers": _layers(backbone, layers), "criterion": criterion, "dtype": dtype,
            "precision": precision}


def perceptual_params(backbone: str = "vgg19", *, weights: str | Mapping[str, Any] = "imagenet",
                      seed: int = 0) -> Params:
    """The trunk variables (``{"params": ...}``) of :func:`perceptual`; ``weights`` as in
    :func:`asym_jax.weights.backbone_variables` (``"imagenet"``, ``"random"``, a checkpoint file or a
    converted folder), or variables already loaded (a mapping with a ``"params"`` collection, e.g. the
    leaves of another perceptual loss, shared without a copy). VGG-19 has no offline ImageNet weights:
    ``"imagenet"`` raises an :class:`~asym_jax.weights.AssetError` naming the checkpoint to convert."""
    if isinstance(weights, Mapping):
        if "params" not in weights:
            raise InputError(f"perceptual: loaded weights must be variables with a 'params' collection, "
                             f"got keys {sorted(weights)}")
        return jax.tree.map(jnp.asarray, dict(weights))
    return backbone_variables(backbone, weights, seed=seed)


@functools.partial(jax.jit, static_argnames=("backbone", "layers", "criterion", "dtype", "precision"))
def _perceptual(x, y, params, backbone, layers, criterion, dtype, precision):
    spec, module = _module(backbone, layers, dtype, precision)
    x, y = check_pair(f"perceptual[{backbone}]", x, y, min_size=spec.min_size, keep_shared=True)
    fx = module.apply(params, x)
    fy = module.apply(params, jax.lax.stop_gradient(y))  # BasicSR: gt.detach(); no backward pass for y
    total = jnp.zeros((x.shape[0],), jnp.float32)
    for tap, weight in layers:
        diff = fx[tap].astype(jnp.float32) - fy[tap].astype(jnp.float32)
        distance = jnp.abs(diff) if criterion == "l1" else jnp.square(diff)
        total = total + weight * jnp.mean(distance, axis=tuple(range(1, diff.ndim)))
    return total


def perceptual(x: jax.Array, y: jax.Array, *, params: Params, backbone: str = "vgg19",
               layers: Mapping[str, float] | Sequence[Any] | None = None, criterion: str = "l1",
               dtype: Any = jnp.float32, precision: Any = None) -> jax.Array:
    """Perceptual distance per image, shape ``(N,)``; NHWC RGB in [0, 1]; lower is better.

    Args:
      params: trunk variables from :func:`perceptual_params` for the same ``backbone``.
      backbone: a registered backbone (VGG taps: ``conv{b}_{i}`` before the ReLU, ``relu{b}_{i}`` after).
      layers: mapping tap -> weight (or a sequence of taps, weight 1 each, or of ``(tap, weight)`` pairs);
        default :data:`REAL_ESRGAN_LAYERS` for VGG-19, the backbone's default taps otherwise.
      criterion: ``"l1"`` (mean absolute difference, BasicSR's default) or ``"l2"`` (mean squared).
      dtype: compute dtype of the trunk (parameters stay float32; layer distances are float32).
      precision: convolution precision, ``"default"``, ``"high"`` or ``"highest"``; ``None`` means
        ``"highest"`` for float32 (exact float32 on GPU/TPU, as the metrics) and ``"default"`` otherwise.
        ``"default"`` lets GPUs use TF32, like PyTorch's cuDNN convolutions.
    """
    options = _normalise_options(backbone, layers, criterion, dtype, precision)
    return _perceptual(x, y, params, **options)


PERCEPTUAL_INFO = MetricInfo(
    "perceptual", perceptual, False, (0.0, 10.0), True,
    "BasicSR 1.4.2 PerceptualLoss (VGGFeatureExtractor, use_input_norm=True, range_norm=False, criterion 'l1'); "
    "Real-ESRGAN x4plus: VGG-19 conv1_2..conv5_4 before ReLU, weights (0.1, 0.1, 1, 1, 1)",
    load_params=perceptual_params, param_options=("backbone", "weights", "seed"),
    loss_form="sum_l w_l mean|phi_l(x) - phi_l(y)|", trunk=lambda options: options.get("backbone", "vgg19"))


def perceptual_loss(backbone: str = "vgg19", layers: Mapping[str, float] | Sequence[Any] | None = None,
                    weights: str | Mapping[str, Any] = "imagenet", criterion: str = "l1", *, seed: int = 0,
                    dtype: Any = jnp.float32, precision: Any = None) -> Loss:
    """The perceptual loss as a :class:`~asym_jax.metrics.Loss` pytree: ``loss(x, y) -> scalar`` (batch
    mean), ``loss.per_image(x, y) -> (N,)``. Its leaves are the trunk parameters, its options are static,
    so it can be passed to ``jax.jit`` as an argument; two losses built with the same options share one
    compiled program. Arguments as in :func:`perceptual` and :func:`perceptual_params`."""
    options = _normalise_options(backbone, layers, criterion, dtype, precision)
    params = perceptual_params(backbone, weights=weights, seed=seed)
    return Loss(metric=Metric(info=PERCEPTUAL_INFO, options=tuple(sorted(options.items())), params=params))

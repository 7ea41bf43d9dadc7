"""The metric registry: every fidelity metric by name, as an IQA score and as a training loss.

``get(name, **options)`` returns a :class:`Metric`: a callable ``metric(x, y) -> (N,)`` scores that
carries its metadata and, for deep metrics, its parameters. ``as_loss(name, **options)`` returns a
:class:`Loss`: ``loss(x, y) -> scalar``, lower is better, the batch mean of a per-image loss.

Both are pytrees whose leaves are the parameters, so they can be passed to ``jax.jit`` as arguments
(the weights then travel as inputs, not as constants folded into the compiled program)::

    metric = asym_jax.metrics.get("lpips_vgg")
    scores = jax.jit(lambda m, x, y: m(x, y))(metric, x, y)
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
from flax import struct

from asym_jax.errors import InputError
from asym_jax.metrics import (
    apparent, deep, gradient, haar, information, laplacian, nr, phase, pixel, saliency, steerable, structural,
)

__all__ = ["Loss", "Metric", "MetricInfo", "as_loss", "get", "info", "names"]


def _identity(score: jax.Array) -> jax.Array:
    return score


def _one_minus(score: jax.Array) -> jax.Array:
    return 1.0 - score


def _negate(score: jax.Array) -> jax.Array:
    return -score


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per name
class MetricInfo:
    """What a registered metric is.

    Attributes:
      name: registry name.
      fn: ``fn(x, y, *, [params], **options) -> (N,)`` per-image scores.
      higher_is_better: direction of the score.
      value_range: typical range of the score (lower, upper).
      differentiable: whether :func:`as_loss` accepts it.
      reference: the implementation its default reproduces.
      defaults: options this name fixes (e.g. ``lpips_alex`` is ``lpips`` with ``net="alex"``).
      load_params: builds the parameters from the options named in ``param_options``.
      param_options: options consumed by ``load_params`` rather than by ``fn``.
      loss_defaults: options :func:`as_loss` applies unless overridden.
      to_loss: per-image score -> per-image lower-is-better loss.
      loss_form: human-readable form of the loss.
      trunk: ``trunk(options) -> backbone name`` of the feature network the metric's parameters hold
        (``None`` for metrics without one); with ``"weights"`` in ``param_options`` the trunk's weights are
        chosen by the ``weights`` option (``"imagenet"``, ``"random"`` with ``seed``, a file or folder).
      needs_reference: False for no-reference metrics (``nr``), which score ``x`` alone and ignore ``y``.
    """

    name: str
    fn: Callable[..., jax.Array]
    higher_is_better: bool
    value_range: tuple[float, float]
    differentiable: bool
    reference: str
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    load_params: Callable[..., Any] | None = None
    param_options: tuple[str, ...] = ()
    loss_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    to_loss: Callable[[jax.Array], jax.Array] = _identity
    loss_form: str = "score"
    trunk: Callable[[Mapping[str, Any]], str] | None = None
    needs_reference: bool = True

    def fn_options(self) -> tuple[str, ...]:
        """Keyword options accepted by ``fn`` (other than ``params``)."""
        parameters = inspect.signature(self.fn).parameters
        return tuple(p for p, v in parameters.items() if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "params")


# eq=False: hashed and compared by identity, so ``jax.jit(metric)`` works (the generated hash would hash the
# weights); passed as an argument, the metric is a pytree whose leaves are the weights.
@struct.dataclass(eq=False)
class Metric:
    """A metric bound to its options and parameters; ``metric(x, y)`` gives per-image scores.

    Three ways to run it, all jitted: ``metric(x, y)``; ``jax.jit(metric)(x, y)`` (the weights become
    constants of that program); ``jax.jit(lambda m, x, y: m(x, y))(metric, x, y)`` (the weights travel as
    arguments: the way to share one compiled program between metrics, devices or steps).
    """

    info: MetricInfo = struct.field(pytree_node=False)
    options: tuple[tuple[str, Any], ...] = struct.field(pytree_node=False)
    params: Any = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def higher_is_better(self) -> bool:
        return self.info.higher_is_better

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        if y is None and self.info.needs_reference:
            raise InputError(f"{self.name} is a full-reference metric: it needs a reference image y")
        kwargs = dict(self.options)
        if self.info.load_params is not None:
            kwargs["params"] = self.params
        return self.info.fn(x, y, **kwargs)


@struct.dataclass(eq=False)
class Loss:
    """A differentiable, lower-is-better loss: ``loss(x, y)`` is the batch mean of
    ``metric.info.to_loss(metric(x, y))``; ``loss.per_image(x, y)`` keeps the batch axis."""

    metric: Metric

    def per_image(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return self.metric.info.to_loss(self.metric(x, y))

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.mean(self.per_image(x, y))


def _lpips_trunk(options: Mapping[str, Any]) -> str:
    return deep.LPIPS_BACKBONE.get(options.get("net", "vgg"), "vgg16")


_REGISTRY: dict[str, MetricInfo] = {}


def _register(info: MetricInfo) -> None:
    if info.name in _REGISTRY:
        raise RuntimeError(f"metric {info.name!r} registered twice")
    _REGISTRY[info.name] = info


_STRUCTURAL_LOSS = {"quantize": False, "colour": "rgb"}

for _info in (
    MetricInfo("psnr", pixel.psnr, True, (0.0, 100.0), True,
               "10 log10(1 / MSE) over RGB, data range 1 (piq.psnr, BasicSR calculate_psnr)",
               to_loss=_negate, loss_form="-psnr"),
    MetricInfo("psnr_y", pixel.psnr_y, True, (0.0, 100.0), True,
               "BasicSR calculate_psnr(test_y_channel=True): MATLAB rgb2ycbcr Y, unrounded",
               to_loss=_negate, loss_form="-psnr_y"),
    MetricInfo("ssim", structural.ssim, True, (-1.0, 1.0), True,
               "Wang et al. ssim_index.m on MATLAB rgb2gray of the 8-bit image",
               loss_defaults=_STRUCTURAL_LOSS, to_loss=_one_minus, loss_form="1 - ssim(colour='rgb', quantize=False)"),
    MetricInfo("ms_ssim", structural.ms_ssim, True, (0.0, 1.0), True,
               "Wang et al. msssim.m on MATLAB rgb2gray of the 8-bit image; negative terms clamped to 0",
               loss_defaults=_STRUCTURAL_LOSS, to_loss=_one_minus,
               loss_form="1 - ms_ssim(colour='rgb', quantize=False)"),
    MetricInfo("gmsd", gradient.gmsd, False, (0.0, 1.0), True,
               "Xue et al. GMSD.m (std2 with N - 1); piq.gmsd with ddof=0"),
    MetricInfo("ms_gmsd", gradient.ms_gmsd, False, (0.0, 1.0), True,
               "Zhang, Sander & Bermak MS-GMSD (ICASSP 2017; no authors' code): piq.multi_scale_gmsd (weights "
               ".096/.596/.289/.019, alpha 0.5, T 170, population std); chromatic=True is MS-GMSDc in piq's form "
               "(I/Q error at the coarsest scale, unchecked against the paper)"),
    MetricInfo("mdsi", gradient.mdsi, False, (0.0, 1.0), True,
               "Nafchi et al. MDSI.m: 8-bit scale, conv2 'same' box downsampling, L/H/M, 'sum' combination "
               "(alpha 0.6), complex deviation pooling q = o = 0.25; equals piq.mdsi; combination='mult' is the "
               "complex product of MDSI.m (mult_form='piq' for piq's)"),
    MetricInfo("vif", information.vif, True, (0.0, 1.0), True,
               "Sheikh & Bovik pixel-domain VIF, vifp_mscale.m (the 'vifp' convention, not the wavelet 'vifvec'): "
               "MATLAB rgb2gray unrounded, 4 scales, 1e-10 thresholds; piq.vif_p is colour='luma', eps=1e-8, "
               "ratio_eps=1e-8",
               to_loss=information.one_minus_clipped, loss_form="1 - min(vif, 1) (piq's VIFLoss)"),
    MetricInfo("fsim", phase.fsim, True, (0.0, 1.0), True,
               "Zhang et al. FeatureSIM.m (FSIM): its YIQ luma, conv2 'same' box downsampling, phasecong2 "
               "(epsilon 1e-4), Scharr; piq.fsim with epsilon=2.22e-16, downsample='avg_pool', angle_grid='piq'",
               to_loss=_one_minus, loss_form="1 - fsim"),
    MetricInfo("fsimc", phase.fsim, True, (0.0, 1.0), True,
               "Zhang et al. FeatureSIM.m (FSIMc): its YIQ, real((S_I S_Q)^0.03); piq.fsim(chromatic=True) with "
               "epsilon=2.22e-16, downsample='avg_pool', yiq='piq', chroma_power='abs', angle_grid='piq'",
               defaults={"chromatic": True}, to_loss=_one_minus, loss_form="1 - fsimc"),
    MetricInfo("vsi", saliency.vsi, True, (0.0, 1.0), True,
               "Zhang, Shen & Li VSI.m with SDSP (MATLAB bilinear imresize to 256, the authors' RGB2Lab, conv2 "
               "'same' box downsampling); piq.vsi with resize='piq', downsample='piq', white_point='piq'",
               to_loss=_one_minus, loss_form="1 - vsi"),
    MetricInfo("haarpsi", haar.haarpsi, True, (0.0, 1.0), True,
               "Reisenhofer et al. HaarPSI.m: its 3-decimal YIQ, 2x2 zero-padded subsampling, 3 Haar scales, C = 30, "
               "alpha = 4.2; piq.haarpsi with yiq='piq'",
               to_loss=_one_minus, loss_form="1 - haarpsi"),
    MetricInfo("nlpd", laplacian.nlpd, False, (0.0, 1.0), True,
               "Laparra et al. NLP_dist.m (HVEI 2016) on MATLAB rgb2gray unrounded: 6-level Laplacian pyramid, "
               "published sigmas and normalisation filters; variant='ding' is IQA_pytorch's NLPD (Ding et al. "
               "IJCV 2021, RGB), variant='pyiqa' pyiqa's (BT.601 luma)"),
    MetricInfo("cw_ssim", steerable.cw_ssim, True, (0.0, 1.0), True,
               "Sampat et al. cwssim_index.m with its example parameters (6 levels, 16 orientations, guardb 0, K 0) "
               "on matlabPyrTools buildSCFpyr, MATLAB rgb2gray unrounded (needs 256 px); level=4, orientations=8, "
               "colour='luma', quantize=True is pyiqa's cw_ssim",
               loss_defaults={"level": 4, "orientations": 8}, to_loss=_one_minus,
               loss_form="1 - cw_ssim(level=4, orientations=8) (Ding et al.'s setting; 64-px crops)"),
    MetricInfo("mad", apparent.mad, False, (0.0, 200.0), True,
               "Larson & Chandler MAD_index.m (2011 release with its ical_std/ical_stat): MATLAB rgb2gray unrounded, "
               "d_detect (x 200) and d_appear blended with b1 = exp(-2.55/3.35), b2 = 1/(ln 10 x 3.35); "
               "colour='luma' for BT.601"),
    MetricInfo("lpips_vgg", deep.lpips, False, (0.0, 1.5), True,
               "lpips 0.1.4 LPIPS(net='vgg', version='0.1'), ImageNet VGG-16 trunk",
               defaults={"net": "vgg"}, load_params=deep.lpips_params, param_options=("net", "version", "weights", "seed"),
               trunk=_lpips_trunk),
    MetricInfo("lpips_alex", deep.lpips, False, (0.0, 1.5), True,
               "lpips 0.1.4 LPIPS(net='alex', version='0.1'), ImageNet AlexNet trunk",
               defaults={"net": "alex"}, load_params=deep.lpips_params, param_options=("net", "version", "weights", "seed"),
               trunk=_lpips_trunk),
    MetricInfo("dists", deep.dists, False, (0.0, 1.0), True,
               "DISTS_pytorch 0.1 DISTS(): ImageNet VGG-16 with L2 pooling, official alpha/beta",
               load_params=lambda: deep.dists_params(), trunk=lambda options: "vgg16"),
    MetricInfo("dists_style", deep.dists_style, False, (0.0, 1.0), True,
               "DISTS formula on any backbone (default VGG-16 ImageNet, L2 pooling, uniform alpha/beta)",
               load_params=deep.dists_style_params, param_options=("backbone", "weights", "alpha_beta", "seed"),
               trunk=lambda options: options.get("backbone", "vgg16")),
    MetricInfo("l1", pixel.l1, False, (0.0, 1.0), True, "mean |x - y|"),
    MetricInfo("mse", pixel.mse, False, (0.0, 1.0), True, "mean (x - y)^2"),
    MetricInfo("charbonnier", pixel.charbonnier, False, (0.0, 1.0), True,
               "BasicSR CharbonnierLoss: mean sqrt((x - y)^2 + 1e-12)"),
    # Not a loss: an SR model trained to please an NR model exploits it (no reference keeps it honest).
    MetricInfo("nr", nr.nr_quality, True, (0.0, 1.0), False,
               "the NR-IQA model of an iqa_nr run: spec nr:<workdir>[@<step>] (no reference image)",
               load_params=nr.nr_params, param_options=("run",), needs_reference=False),
):
    _register(_info)


def names() -> list[str]:
    """Registered metric names."""
    return sorted(_REGISTRY)


def info(name: str) -> MetricInfo:
    """Metadata of a registered metric."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown metric {name!r}; known: {', '.join(names())}") from None


def _split_options(meta: MetricInfo, options: Mapping[str, Any]) -> tuple[dict, dict]:
    options = {**meta.defaults, **options}
    fn_names = set(meta.fn_options())
    allowed = fn_names | set(meta.param_options)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InputError(f"metric {meta.name!r}: unknown options {unknown}; allowed: {sorted(allowed)}")
    load_kwargs = {k: v for k, v in options.items() if k in meta.param_options}
    fn_kwargs = {k: v for k, v in options.items() if k in fn_names}
    return load_kwargs, fn_kwargs


def get(name: str, **options: Any) -> Metric:
    """The metric ``name`` with ``options`` bound, its parameters loaded (offline assets only).

    Options go to the scoring function (e.g. ``crop_border``, ``colour``) or, for deep metrics, to the
    parameter loader (e.g. ``weights="random"``, ``alpha_beta="uniform"``); unknown options raise.
    """
    meta = info(name)
    load_kwargs, fn_kwargs = _split_options(meta, options)
    params = meta.load_params(**load_kwargs) if meta.load_params is not None else None
    return Metric(info=meta, options=tuple(sorted(fn_kwargs.items())), params=params)


def as_loss(name: str, **options: Any) -> Loss:
    """A lower-is-better differentiable loss ``loss(x, y) -> scalar`` (mean over the batch).

    The metric's ``loss_defaults`` apply unless overridden: SSIM and MS-SSIM compare RGB channels on
    the unrounded float path (``colour="rgb", quantize=False``); ``info(name).loss_form`` says what
    the loss computes.
    """
    meta = info(name)
    if not meta.differentiable:
        raise InputError(f"metric {name!r} is not differentiable and cannot be used as a loss")
    merged = {**meta.loss_defaults, **options}
    if merged.get("quantize"):
        raise InputError(f"{name}: quantize=True rounds to 8 bits and has no gradient; use quantize=False in a loss")
    return Loss(metric=get(name, **merged))

"""Fidelity metrics: pure, differentiable functions ``f(x, y, **options) -> per-image scores``.

Inputs are NHWC float arrays in [0, 1] (RGB). Use :func:`get` for a metric bound to its options and
weights (:func:`from_spec` for a ``"name:key=value"`` spec), :func:`as_loss` for a training loss,
:func:`info` for metadata, :func:`names` for the list.
"""

from asym_jax.metrics.apparent import mad
from asym_jax.metrics.deep import dists, dists_params, dists_style, dists_style_params, lpips, lpips_params
from asym_jax.metrics.gradient import gmsd, mdsi, ms_gmsd
from asym_jax.metrics.haar import haarpsi
from asym_jax.metrics.information import vif
from asym_jax.metrics.laplacian import nlpd
from asym_jax.metrics.phase import fsim
from asym_jax.metrics.pixel import charbonnier, l1, mse, psnr, psnr_y
from asym_jax.metrics.registry import Loss, Metric, MetricInfo, as_loss, get, info, names
from asym_jax.metrics.saliency import vsi
from asym_jax.metrics.specs import format_spec, from_spec, parse_spec
from asym_jax.metrics.steerable import cw_ssim
from asym_jax.metrics.structural import MS_SSIM_WEIGHTS, ms_ssim, ssim

__all__ = [
    "Loss", "MS_SSIM_WEIGHTS", "Metric", "MetricInfo", "as_loss", "charbonnier", "cw_ssim", "dists", "dists_params",
    "dists_style", "dists_style_params", "format_spec", "from_spec", "fsim", "get", "gmsd", "haarpsi", "info", "l1",
    "lpips", "lpips_params", "mad", "mdsi", "ms_gmsd", "ms_ssim", "mse", "names", "nlpd", "parse_spec", "psnr", "psnr_y",
    "ssim", "vif", "vsi",
]

"""Super-resolution evaluation: a generator and the bicubic baseline scored on held-out images.

Convention (stated in every table): SR outputs are clipped to [0, 1] and rounded to 8 bits (as a saved
PNG) before scoring; HR is mod-cropped to the scale; PSNR and SSIM are computed on MATLAB's Y channel
(``rgb2ycbcr``, 16-235) with ``crop_border = scale``; LPIPS and DISTS on RGB, whole image. The bicubic
baseline is MATLAB ``imresize`` up-scaling of the same LR input.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = ["evaluate_sr", "format_panel", "sr_metric_specs"]


def sr_metric_specs(names: Sequence[str], scale: int) -> dict[str, str]:
    """Metric name -> spec with the SR convention's options (Y channel and border crop for PSNR/SSIM); other
    specs (``lpips_vgg``, ``nr:<iqa_nr workdir>``: an NR-IQA model scores the SR output alone) as given."""
    specs = {}
    for name in names:
        if name == "psnr_y":
            specs[name] = f"psnr_y:crop_border={scale}"
        elif name == "ssim":
            specs[name] = f"ssim:colour=y,crop_border={scale}"
        else:
            specs[name] = name
    return specs


def evaluate_sr(upscale: Callable[[np.ndarray], np.ndarray], pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
                *, scale: int, metric_names: Sequence[str], bound: dict | None = None,
                image_dir: str | os.PathLike | None = None, baseline: dict | None = None) -> dict:
    """Scores ``upscale`` (HWC float32 LR in [0, 1] -> HWC SR) and bicubic on ``(name, hr, lr)`` uint8 pairs.

    Returns ``{"methods": {"bicubic": {metric: mean}, "model": {...}}, "images": [...per image rows]}``;
    with ``image_dir``, writes ``<name>_sr.png`` and ``<name>_bicubic.png`` there. ``baseline``: a dict kept
    by the caller between evaluations of the same pairs and metrics; the bicubic scores are computed at the
    first call, stored there and reused (bicubic does not change during a run).
    """
    from asym_jax.data.images import to_uint8
    from asym_jax.data.imresize import imresize
    from asym_jax.eval.scoring import bind_metrics, score_pairs

    specs = sr_metric_specs(metric_names, scale)
    bound = bind_metrics(list(specs.values())) if bound is None else bound
    baseline = {} if baseline is None else baseline
    cached = baseline.get("rows") if baseline.get("specs") == specs else None
    outputs: dict[str, list] = {"bicubic": [], "model": []}
    names = []
    for name, hr, lr in pairs:
        lr_unit = lr.astype(np.float32) / 255.0
        sr = to_uint8(np.asarray(upscale(lr_unit)))
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: the generator made {sr.shape} from LR {lr.shape}; HR is {hr.shape}")
        names.append(name)
        outputs["model"].append((name, hr, sr))
        bicubic = to_uint8(imresize(lr_unit, float(scale))) if cached is None or image_dir is not None else None
        outputs["bicubic"].append((name, hr, bicubic))
        if image_dir is not None:
            from PIL import Image
            folder = pathlib.Path(image_dir)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(sr).save(folder / f"{name}_sr.png")
            Image.fromarray(bicubic).save(folder / f"{name}_bicubic.png")
    if not names:
        raise ValueError("no evaluation images")
    if cached is not None and [r["name"] for r in cached] != names:
        raise ValueError("the cached bicubic scores are of other images")
    result = {"methods": {}, "images": []}
    rows_by_method = {}
    for method, triples in outputs.items():
        if method == "bicubic" and cached is not None:
            rows = cached
        else:
            rows = score_pairs(((n, h.astype(np.float32) / 255.0, s.astype(np.float32) / 255.0)
                                for n, h, s in triples), list(specs.values()), batch_size=1, bound=bound)
        rows_by_method[method] = rows
        result["methods"][method] = {m: float(np.mean([r[specs[m]] for r in rows])) for m in specs}
    baseline.update(specs=specs, rows=rows_by_method["bicubic"])
    for i, name in enumerate(names):
        result["images"].append({"name": name, **{f"{method}/{m}": rows_by_method[method][i][specs[m]]
                                                 for method in outputs for m in specs}})
    result["convention"] = ("8-bit outputs; HR mod-cropped; psnr_y and ssim on MATLAB Y (16-235) with "
                            f"crop_border={scale}; lpips/dists on RGB")
    return result


def format_panel(result: dict) -> str:
    methods = result["methods"]
    metrics = list(next(iter(methods.values())))
    widths = [max(12, len(m) + 2) for m in metrics]  # an nr:<workdir> spec is long
    lines = [f"{'method':<10}" + "".join(f"{m:>{w}}" for m, w in zip(metrics, widths))]
    for method, values in methods.items():
        lines.append(f"{method:<10}" + "".join(f"{values[m]:>{w}.4f}" for m, w in zip(metrics, widths)))
    return "\n".join(lines)

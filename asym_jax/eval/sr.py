"""Super-resolution evaluation: a generator and the bicubic baseline scored on held-out images.

Convention (stated in every table): SR outputs are clipped to [0, 1] and rounded to 8 bits (as a saved
PNG) before scoring; HR is mod-cropped to the scale; PSNR and SSIM are computed on MATLAB's Y channel
(``rgb2ycbcr``, 16-235) with ``crop_border = scale``; LPIPS and DISTS on RGB, whole image. The bicubic
baseline is MATLAB ``imresize`` up-scaling of the same LR input.

Compilations are bounded: the generator sees LR images padded at the bottom and right to a multiple of
``bucket`` LR pixels by mirroring (``numpy.pad(mode="symmetric")``, the padding of SwinIR's test script), in
batches of ``batch_size`` (a short batch is filled with copies of its last image), and its output is
cropped back; so one program per bucket serves every image size. Mirrored padding changes the generator's
output only within its receptive field of the bottom and right borders (a PSNR change of the order of
0.01 dB on DIV2K-sized images); ``bucket=0`` runs every image at its own size, exactly as BasicSR's test
does. Metrics score the cropped images at their own sizes (exact), equal sizes batched together.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = ["bucket_shape", "evaluate_sr", "format_panel", "sr_metric_specs", "upscale_images"]


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


def bucket_shape(height: int, width: int, bucket: int) -> tuple[int, int]:
    """``(height, width)`` rounded up to multiples of ``bucket`` (0: unchanged)."""
    if bucket <= 0:
        return height, width
    return -(-height // bucket) * bucket, -(-width // bucket) * bucket


def upscale_images(upscale: Callable[[np.ndarray], np.ndarray], lrs: Sequence[np.ndarray], *, bucket: int = 0,
                   batch_size: int = 1) -> list[np.ndarray]:
    """``upscale`` (NHWC float32 LR in [0, 1] -> NHWC SR, one batch) applied to every uint8 HWC image of
    ``lrs``; returns the SR images (float) in order, each cropped to ``scale`` times its LR size. Images
    of one bucket shape (:func:`bucket_shape`) go together in batches of exactly ``batch_size``, padded
    by mirroring at the bottom and right."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, lr in enumerate(lrs):
        groups.setdefault(bucket_shape(lr.shape[0], lr.shape[1], bucket), []).append(index)
    out: list[np.ndarray | None] = [None] * len(lrs)
    for (height, width), indices in groups.items():
        for first in range(0, len(indices), batch_size):
            chunk = indices[first:first + batch_size]
            batch = [np.pad(lrs[i], ((0, height - lrs[i].shape[0]), (0, width - lrs[i].shape[1]), (0, 0)),
                            mode="symmetric") for i in chunk]
            batch += [batch[-1]] * (batch_size - len(batch))
            sr = np.asarray(upscale(np.stack(batch).astype(np.float32) / 255.0))
            scale = sr.shape[1] // height
            for j, i in enumerate(chunk):
                out[i] = sr[j, :scale * lrs[i].shape[0], :scale * lrs[i].shape[1]]
    return out


def _write_png(folder: str | os.PathLike, name: str, image: np.ndarray) -> None:
    """``image`` (HWC uint8) as ``<folder>/<name>``, encoded in memory and written atomically (also to a
    ``gs://`` workdir)."""
    from PIL import Image

    from asym_jax.io import workdir_path, write_atomic

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    write_atomic(workdir_path(folder) / name, buffer.getvalue())


def evaluate_sr(upscale: Callable[[np.ndarray], np.ndarray], pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
                *, scale: int, metric_names: Sequence[str], bound: dict | None = None,
                image_dir: str | os.PathLike | None = None, baseline: dict | None = None, bucket: int = 0,
                batch_size: int = 1) -> dict:
    """Scores ``upscale`` (NHWC float32 LR in [0, 1] -> NHWC SR) and bicubic on ``(name, hr, lr)`` uint8 pairs
    (``bucket``, ``batch_size``: :func:`upscale_images`; the metrics take batches of ``batch_size`` too).

    Returns ``{"methods": {"bicubic": {metric: mean}, "model": {...}}, "images": [...per image rows]}``;
    with ``image_dir``, writes ``<name>_sr.png`` and ``<name>_bicubic.png`` there. ``baseline``: a dict kept
    by the caller between evaluations of the same pairs and metrics; the bicubic scores are computed at the
    first call, stored there and reused (bicubic does not change during a run).
    """
    from asym_jax.data.images import to_uint8
    from asym_jax.data.imresize import imresize
    from asym_jax.eval.scoring import bind_metrics

    specs = sr_metric_specs(metric_names, scale)
    bound = bind_metrics(list(specs.values())) if bound is None else bound
    baseline = {} if baseline is None else baseline
    cached = baseline.get("rows") if baseline.get("specs") == specs else None
    pairs = list(pairs)
    srs = upscale_images(upscale, [lr for _, _, lr in pairs], bucket=bucket, batch_size=batch_size)
    outputs: dict[str, list] = {"bicubic": [], "model": []}
    names = []
    for (name, hr, lr), sr in zip(pairs, srs):
        lr_unit = lr.astype(np.float32) / 255.0
        sr = to_uint8(sr)
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: the generator made {sr.shape} from LR {lr.shape}; HR is {hr.shape}")
        names.append(name)
        outputs["model"].append((name, hr, sr))
        bicubic = to_uint8(imresize(lr_unit, float(scale))) if cached is None or image_dir is not None else None
        outputs["bicubic"].append((name, hr, bicubic))
        if image_dir is not None:
            _write_png(image_dir, f"{name}_sr.png", sr)
            _write_png(image_dir, f"{name}_bicubic.png", bicubic)
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
            rows = _score_by_shape(triples, list(specs.values()), batch_size, bound)
        rows_by_method[method] = rows
        result["methods"][method] = {m: float(np.mean([r[specs[m]] for r in rows])) for m in specs}
    baseline.update(specs=specs, rows=rows_by_method["bicubic"])
    for i, name in enumerate(names):
        result["images"].append({"name": name, **{f"{method}/{m}": rows_by_method[method][i][specs[m]]
                                                 for method in outputs for m in specs}})
    result["convention"] = ("8-bit outputs; HR mod-cropped; psnr_y and ssim on MATLAB Y (16-235) with "
                            f"crop_border={scale}; lpips/dists on RGB")
    return result


def _score_by_shape(triples, specs, batch_size: int, bound: dict) -> list[dict]:
    """:func:`~asym_jax.eval.scoring.score_pairs` rows in input order, images of equal shape scored together."""
    from asym_jax.eval.scoring import score_pairs

    order = sorted(range(len(triples)), key=lambda i: triples[i][1].shape)
    rows = score_pairs(((triples[i][0], triples[i][1].astype(np.float32) / 255.0,
                         triples[i][2].astype(np.float32) / 255.0) for i in order), specs,
                       batch_size=batch_size, bound=bound)
    by_index = dict(zip(order, rows))
    return [by_index[i] for i in range(len(triples))]


def format_panel(result: dict) -> str:
    methods = result["methods"]
    metrics = list(next(iter(methods.values())))
    widths = [max(12, len(m) + 2) for m in metrics]  # an nr:<workdir> spec is long
    lines = [f"{'method':<10}" + "".join(f"{m:>{w}}" for m, w in zip(metrics, widths))]
    for method, values in methods.items():
        lines.append(f"{method:<10}" + "".join(f"{values[m]:>{w}.4f}" for m, w in zip(metrics, widths)))
    return "\n".join(lines)

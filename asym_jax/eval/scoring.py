"""Scoring image pairs with metric specs: the one batch scorer behind the score CLI, the score job and SR
evaluation.

Metrics are named by specs (``"ssim:colour=y,crop_border=4"``, see :mod:`asym_jax.metrics.specs`).
:func:`bind_metrics` loads each once; :func:`score_pairs` scores ``(name, reference, distorted)`` arrays
in batches of equal shape, in float32 at ``Precision.HIGHEST`` whatever the caller's precision context
(reported numbers must not depend on the accelerator's TF32/bf16 defaults).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import pathlib
import sys
from typing import Iterable, Sequence

import numpy as np

from asym_jax.errors import InputError

__all__ = ["ScoreError", "bind_metrics", "check_specs", "format_table", "jitted_score", "match_images", "match_pairs",
           "means", "read_pairs", "score_batch", "score_pairs", "write_csv"]


class ScoreError(InputError):
    """Bad input for scoring, reported to the user as one line."""


def check_specs(specs: Sequence[str], *, reference: bool = True) -> None:
    """Refuses an empty list, a malformed spec or an unknown metric name (before anything loads), and,
    without a ``reference``, a full-reference metric."""
    from asym_jax import metrics
    if not specs:
        raise ScoreError("no metric given")
    for spec in specs:
        name, _ = metrics.parse_spec(spec)
        if name not in metrics.names():
            raise ScoreError(f"unknown metric {name!r}; known: {', '.join(metrics.names())}")
        if not reference and metrics.info(name).needs_reference:
            raise ScoreError(f"{spec} is a full-reference metric: give REF and DIST (only nr:<workdir> metrics "
                             "score images without a reference)")


def bind_metrics(specs: Sequence[str]) -> dict:
    """``{spec: Metric}`` for metric specs ``"name[:key=value,...]"``, weights loaded once."""
    from asym_jax import metrics
    check_specs(specs)
    return {spec: metrics.from_spec(spec) for spec in specs}


@functools.cache
def jitted_score():
    """``jit(metric, x, y) -> metric(x, y)`` traced at ``Precision.HIGHEST``; the metric travels as an
    argument, so metrics of one kind share a compiled program."""
    import jax

    from asym_jax.ops import highest_precision
    return jax.jit(highest_precision(lambda metric, x, y: metric(x, y)))


def score_batch(metric, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """``metric(x, y)`` per image as a numpy array, in float32 at ``Precision.HIGHEST`` (``y`` None: no
    reference, for no-reference metrics)."""
    return np.asarray(jitted_score()(metric, x, y))


def score_pairs(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], specs: Sequence[str], *,
                batch_size: int = 8, bound: dict | None = None) -> list[dict]:
    """Scores ``(name, reference, distorted)`` HWC arrays; returns one row ``{"name", spec: score}`` per pair,
    in input order. A reference of ``None`` (every pair's, or none's) scores ``distorted`` alone, with
    no-reference metrics only.

    Pairs of equal shape are scored together in batches of up to ``batch_size`` (one compilation per
    shape and batch size). ``bound``: metrics already made by :func:`bind_metrics` for these specs.
    """
    if batch_size < 1:
        raise ScoreError(f"batch size must be at least 1, got {batch_size}")
    bound = bind_metrics(specs) if bound is None else bound
    rows: list[dict] = []
    pending: list[tuple[str, np.ndarray, np.ndarray]] = []

    def flush():
        if not pending:
            return
        refs = None if pending[0][1] is None else np.stack([p[1] for p in pending])
        dists = np.stack([p[2] for p in pending])
        # Convention of every metric: x is the distorted (restored) image, y the reference.
        values = {spec: score_batch(metric, dists, refs) for spec, metric in bound.items()}
        for i, (name, _, _) in enumerate(pending):
            rows.append({"name": name, **{m: float(values[m][i]) for m in specs}})
        pending.clear()

    for name, ref, dist in pairs:
        if ref is None:
            check_specs(specs, reference=False)
        elif ref.shape != dist.shape:
            raise ScoreError(f"{name}: reference is {ref.shape[1]} x {ref.shape[0]} px, distorted is "
                             f"{dist.shape[1]} x {dist.shape[0]} px; full-reference metrics need equal sizes")
        if pending and ((pending[0][1] is None) != (ref is None)):
            raise ScoreError(f"{name}: pairs with and without a reference in one call")
        if pending and (pending[0][2].shape != dist.shape or len(pending) == batch_size):
            flush()
        pending.append((name, ref, dist))
    flush()
    return rows


def means(rows: Sequence[dict], specs: Sequence[str]) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) for m in specs}


def format_table(rows: Sequence[dict], specs: Sequence[str]) -> str:
    width = max([len("mean")] + [len(r["name"]) for r in rows])
    widths = [max(11, len(m)) for m in specs]
    lines = [f"{'name':<{width}}  " + "  ".join(f"{m:>{w}}" for m, w in zip(specs, widths))]
    for row in list(rows) + [{"name": "mean", **means(rows, specs)}]:
        lines.append(f"{row['name']:<{width}}  " + "  ".join(f"{row[m]:>{w}.6f}" for m, w in zip(specs, widths)))
    return "\n".join(lines)


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str]) -> None:
    """The rows as CSV (only ``columns``), written atomically."""
    from asym_jax.io import write_atomic
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


def _images_by_stem(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    from asym_jax.data.images import list_images

    images, others = list_images(folder)
    if others:
        print(f"note: {folder}: skipping {len(others)} entries that are not PNG/JPEG/BMP files "
              f"({others[0].name}, ...); subfolders are not searched", file=sys.stderr)
    by_stem: dict[str, pathlib.Path] = {}
    for path in images:
        if path.stem in by_stem:
            raise ScoreError(f"{folder}: two images share the name {path.stem!r}: {by_stem[path.stem].name}, "
                             f"{path.name}")
        by_stem[path.stem] = path
    return by_stem


def match_images(dist: str | os.PathLike) -> list[tuple[str, None, pathlib.Path]]:
    """``(name, None, path)`` for one image or each image of a folder (no reference)."""
    dist = pathlib.Path(dist)
    if dist.is_file():
        return [(dist.name, None, dist)]
    if not dist.is_dir():
        raise ScoreError(f"{dist}: no such file or folder")
    by_stem = _images_by_stem(dist)
    if not by_stem:
        raise ScoreError(f"no PNG/JPEG/BMP images in {dist}")
    return [(by_stem[s].name, None, by_stem[s]) for s in sorted(by_stem)]


def match_pairs(ref: str | os.PathLike, dist: str | os.PathLike) -> list[tuple[str, pathlib.Path, pathlib.Path]]:
    """``(name, ref_path, dist_path)`` for two files, or for two folders matched by file stem; every pair is
    checked from its headers first (:func:`~asym_jax.data.images.check_pair`: sizes and EXIF orientations
    agree), so a bad pair fails before anything is scored."""
    from asym_jax.data.images import check_pair

    pairs = _matched(ref, dist)
    for _, ref_path, dist_path in pairs:
        check_pair(ref_path, dist_path)
    return pairs


def _matched(ref, dist) -> list[tuple[str, pathlib.Path, pathlib.Path]]:
    from asym_jax.io import local_path

    ref, dist = local_path(ref, "ref"), local_path(dist, "dist")
    if ref.is_file() and dist.is_file():
        return [(dist.name, ref, dist)]
    if ref.is_dir() and dist.is_dir():
        sides = [_images_by_stem(folder) for folder in (ref, dist)]
        only_ref, only_dist = sorted(set(sides[0]) - set(sides[1])), sorted(set(sides[1]) - set(sides[0]))
        if only_ref or only_dist:
            raise ScoreError(
                f"images not matched by name: {len(only_ref)} only in {ref} ({', '.join(only_ref[:3])}), "
                f"{len(only_dist)} only in {dist} ({', '.join(only_dist[:3])})")
        if not sides[0]:
            raise ScoreError(f"no PNG/JPEG/BMP images in {ref}")
        return [(sides[1][s].name, sides[0][s], sides[1][s]) for s in sorted(sides[0])]
    for path in (ref, dist):
        if not path.exists():
            raise ScoreError(f"{path}: no such file or folder")
    raise ScoreError(f"REF and DIST must both be files or both be folders: {ref}, {dist}")


def read_pairs(matched):
    """Decodes the ``(name, ref_path, dist_path)`` of :func:`match_pairs` (or :func:`match_images`: no
    reference) to ``(name, ref, dist)`` arrays."""
    from asym_jax.data.images import read_image
    for name, ref, dist in matched:
        yield name, None if ref is None else read_image(ref), read_image(dist)

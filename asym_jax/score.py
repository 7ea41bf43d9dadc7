"""Score image pairs with registered metrics: ``python -m asym_jax.score --metric NAME REF DIST``.

REF and DIST are two image files, or two folders whose images are matched by file name (the stem,
so ``a.png`` matches ``a.jpg``). One line per pair and the mean of each metric are printed; ``--csv``
writes the table. A metric takes options after a colon: ``--metric ms_ssim:num_scales=4`` or
``--metric dists_style:weights=random,seed=1``. Bad input (unknown metric or option, unreadable
image, size mismatch, images too small for a metric, unmatched names) ends with a one-line error and
exit status 2.

The same scoring runs as the ``score`` job of ``python -m asym_jax.main`` (see ``configs/score.py``),
which by default scores the embedded sample photographs under synthetic distortions and reports how
well each metric ranks the distortion levels.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import pathlib
import sys
from typing import Iterable, Sequence

import numpy as np

from asym_jax.errors import InputError

__all__ = ["ScoreError", "match_pairs", "parse_metric", "run_job", "score_pairs"]


class ScoreError(InputError):
    """Bad input for scoring, reported to the user as one line."""


def match_pairs(ref: str | os.PathLike, dist: str | os.PathLike) -> list[tuple[str, pathlib.Path, pathlib.Path]]:
    """``(name, ref_path, dist_path)`` for two files, or for two folders matched by file stem."""
    from asym_jax.data.images import list_images

    ref, dist = pathlib.Path(ref), pathlib.Path(dist)
    if ref.is_file() and dist.is_file():
        return [(dist.name, ref, dist)]
    if ref.is_dir() and dist.is_dir():
        sides = []
        for folder in (ref, dist):
            images, others = list_images(folder)
            if others:
                print(f"note: {folder}: skipping {len(others)} entries that are not PNG/JPEG/BMP files "
                      f"({others[0].name}, ...); subfolders are not searched", file=sys.stderr)
            by_stem: dict[str, pathlib.Path] = {}
            for path in images:
                if path.stem in by_stem:
                    raise ScoreError(f"{folder}: two images share the name {path.stem!r}: {by_stem[path.stem].name}, {path.name}")
                by_stem[path.stem] = path
            sides.append(by_stem)
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


def parse_metric(spec: str) -> tuple[str, dict]:
    """``"name"`` or ``"name:key=value,key=value"`` -> (name, options); values are Python literals or
    plain strings."""
    import ast

    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ScoreError(f"metric option {item!r} of {spec!r} is not key=value")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return name.strip(), options


def _check_metric_names(specs: Sequence[str]) -> None:
    from asym_jax import metrics
    if not specs:
        raise ScoreError("no metric given")
    for spec in specs:
        name, _ = parse_metric(spec)
        if name not in metrics.names():
            raise ScoreError(f"unknown metric {name!r}; known: {', '.join(metrics.names())}")


def bind_metrics(metric_names: Sequence[str]) -> dict:
    """``{spec: Metric}`` for metric specs ``"name[:key=value,...]"``, weights loaded once."""
    from asym_jax import metrics

    _check_metric_names(metric_names)
    return {spec: metrics.get(name, **options) for spec, (name, options) in
            ((spec, parse_metric(spec)) for spec in metric_names)}


@functools.cache
def _jitted_score():
    import jax
    return jax.jit(lambda metric, x, y: metric(x, y))


def score_pairs(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], metric_names: Sequence[str], *,
                batch_size: int = 8, bound: dict | None = None) -> list[dict]:
    """Scores ``(name, reference, distorted)`` HWC arrays; returns one row per pair, input order.

    Pairs of equal shape are scored together in batches of up to ``batch_size`` (one compilation per
    shape and batch size). ``bound``: metrics already made by :func:`bind_metrics` for these names.
    """
    if batch_size < 1:
        raise ScoreError(f"batch size must be at least 1, got {batch_size}")
    bound = bind_metrics(metric_names) if bound is None else bound
    score = _jitted_score()
    rows: list[dict] = []
    pending: list[tuple[str, np.ndarray, np.ndarray]] = []

    def flush():
        if not pending:
            return
        refs = np.stack([p[1] for p in pending])
        dists = np.stack([p[2] for p in pending])
        # Convention of every metric: x is the distorted (restored) image, y the reference.
        values = {name: np.asarray(score(metric, dists, refs)) for name, metric in bound.items()}
        for i, (name, _, _) in enumerate(pending):
            rows.append({"name": name, **{m: float(values[m][i]) for m in metric_names}})
        pending.clear()

    for name, ref, dist in pairs:
        if ref.shape != dist.shape:
            raise ScoreError(f"{name}: reference is {ref.shape[1]} x {ref.shape[0]} px, distorted is "
                             f"{dist.shape[1]} x {dist.shape[0]} px; full-reference metrics need equal sizes")
        if pending and (pending[0][1].shape != ref.shape or len(pending) == batch_size):
            flush()
        pending.append((name, ref, dist))
    flush()
    return rows


def _means(rows: Sequence[dict], metric_names: Sequence[str]) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) for m in metric_names}


def format_table(rows: Sequence[dict], metric_names: Sequence[str]) -> str:
    width = max([len("mean")] + [len(r["name"]) for r in rows])
    widths = [max(11, len(m)) for m in metric_names]
    lines = [f"{'name':<{width}}  " + "  ".join(f"{m:>{w}}" for m, w in zip(metric_names, widths))]
    for row in list(rows) + [{"name": "mean", **_means(rows, metric_names)}]:
        lines.append(f"{row['name']:<{width}}  " + "  ".join(f"{row[m]:>{w}.6f}" for m, w in zip(metric_names, widths)))
    return "\n".join(lines)


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str]) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _read_pairs(matched):
    from asym_jax.data.images import read_image
    for name, ref, dist in matched:
        yield name, read_image(ref), read_image(dist)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asym_jax.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metric", action="append", required=True, metavar="NAME",
                        help="metric name (repeatable); see --list")
    parser.add_argument("--csv", metavar="FILE", help="write the per-pair table to FILE")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("ref", metavar="REF", help="reference image or folder")
    parser.add_argument("dist", metavar="DIST", help="distorted image or folder")
    if argv is None:
        argv = sys.argv[1:]
    if "--list" in argv:
        from asym_jax import metrics
        for name in metrics.names():
            meta = metrics.info(name)
            print(f"{name:<12} {'higher' if meta.higher_is_better else 'lower ':<6} is better  {meta.reference}")
        return 0
    args = parser.parse_args(argv)
    from asym_jax.weights.assets import AssetError
    try:
        _check_metric_names(args.metric)
        matched = match_pairs(args.ref, args.dist)
        rows = score_pairs(_read_pairs(matched), args.metric, batch_size=args.batch_size)
        print(format_table(rows, args.metric))
        if args.csv:
            try:
                write_csv(args.csv, rows, ["name", *args.metric])
            except OSError as error:
                raise ScoreError(f"cannot write {args.csv}: {error.strerror or error}") from None
    except (InputError, AssetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


# ------------------------------------------------------------------------------------ the job


def _sample_pairs(config) -> list[tuple[str, np.ndarray, np.ndarray, str, int]]:
    from asym_jax.data import sample_pairs
    out = []
    for image, kind, level, ref, dist in sample_pairs(names=tuple(config.sample_images), kinds=tuple(config.distortions),
                                                      levels=tuple(range(5)), crop=config.sample_crop):
        out.append((f"{image}_{kind}_{level}", ref, dist, f"{image}/{kind}", level))
    return out


def ranking_summary(rows: Sequence[dict], groups: Sequence[str], levels: Sequence[int],
                    metric_names: Sequence[str]) -> dict[str, float]:
    """Mean Spearman correlation between distortion level and quality, over (image, distortion) groups.

    Scores are oriented so that 1 means the metric orders every group's levels correctly (higher
    quality for milder distortion). A sanity check on synthetic data, not a human-opinion benchmark.
    """
    from scipy.stats import spearmanr

    from asym_jax import metrics
    summary = {}
    for m in metric_names:
        sign = 1.0 if metrics.info(parse_metric(m)[0]).higher_is_better else -1.0
        correlations = []
        for group in sorted(set(groups)):
            idx = [i for i, g in enumerate(groups) if g == group]
            quality = [sign * rows[i][m] for i in idx]
            rho = spearmanr([-levels[i] for i in idx], quality).statistic
            correlations.append(0.0 if np.isnan(rho) else rho)
        summary[m] = float(np.mean(correlations))
    return summary


def run_job(config, workdir: str) -> dict:
    """The ``score`` job: scores ``config.ref`` vs ``config.dist`` (or the embedded sample set)."""
    from absl import logging

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    names = list(config.metrics)
    _check_metric_names(names)
    if config.ref or config.dist:
        matched = match_pairs(config.ref, config.dist)
        rows = score_pairs(_read_pairs(matched), names, batch_size=config.batch_size)
        summary = {"pairs": len(rows), "mean": _means(rows, names)}
    else:
        samples = _sample_pairs(config)
        rows = score_pairs([(n, r, d) for n, r, d, _, _ in samples], names, batch_size=config.batch_size)
        ranking = ranking_summary(rows, [s[3] for s in samples], [s[4] for s in samples], names)
        summary = {"pairs": len(rows), "mean": _means(rows, names), "level_srcc": ranking,
                   "note": "level_srcc: mean Spearman correlation between distortion level and each metric's "
                           "quality ordering on the embedded sample photographs (1 = perfect ordering)"}
    logging.info("scores:\n%s", format_table(rows, names))
    print(format_table(rows, names))
    if "level_srcc" in summary:
        print("distortion-level SRCC: " + ", ".join(f"{m} {v:.3f}" for m, v in summary["level_srcc"].items()))
    write_csv(workdir / "scores.csv", rows, ["name", *names])
    tmp = workdir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, workdir / "summary.json")
    print(f"wrote {workdir / 'scores.csv'} and {workdir / 'summary.json'}")
    return summary


if __name__ == "__main__":
    sys.exit(main())

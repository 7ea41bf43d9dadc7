"""The asymmetry study (job ``study``): grids of ordinary jobs in ``<workdir>/cells/`` and one report.

    python -m asym_jax.main --config=configs/study.py[:preset] --workdir=W [--config.cells='sr-*']
                            [--config.plan_only=True] [--config.report_only=True]

Experiments (``experiments``):
  fidelity:      each metric of ``fidelity_metrics`` scored as an FR-IQA model (one iqa_fr cell on
                 ``fr_datasets``) and used as the fidelity loss of SR models (``sr_config``) at each weight of
                 ``fidelity_gan_weights`` (0: no GAN) and seed; the report ranks the metrics both ways.
  discriminator: SR models with each discriminator of ``discriminators`` at each of ``gan_weights``.
  init:          for each job of ``init_jobs``: NR-IQA models (``iqa_nr``, ``iqa_nr_config`` on ``iqa_datasets``)
                 and DISTS-style FR models (``iqa_fr_train``, ``fr_train_config`` on ``fr_train_datasets``)
                 with the trunk of each backbone discriminator trained in the previous experiment (its largest
                 GAN weight, first seed), of ImageNet and of random weights (``inits``). The first dataset
                 trains (its split), the others are cross-dataset evaluations; ``nr_splits="all"`` trains
                 the NR models on the ten seeded splits and reports medians.
Every SR model is judged by ``judges`` (FR metrics) and ``nr_judges``: ``nr:<iqa_nr workdir>`` specs, or
``cell:<name>`` for an iqa_nr cell of this study (trained first; e.g. ``cell:nr-alexnet-imagenet``; with
``nr_splits="all"`` the judge is that cell's split-0 model).

Presets: ``sample`` (default; the embedded sets, a 2-core CPU, a demonstration: its numbers show the
machinery, not the paper's findings), ``tiny`` (tests), ``paper`` (the paper's scale; needs the datasets).
"""

import ml_collections


def get_config(preset: str = "sample") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.job = "study"
    c.experiments = ("fidelity", "discriminator", "init")
    c.seeds = (0,)
    # Experiment 1: fidelity metrics as IQA models and as losses.
    c.fidelity_metrics = ("l1", "ssim", "lpips_vgg", "dists")
    c.fr_datasets = ("ranking",)
    c.fr_split = "full"                             # the split of fr_datasets the metrics are scored on
    c.fr_config = "configs/iqa_fr.py"               # the iqa_fr cell (metrics and datasets set from the above)
    c.sr_config = "configs/sr_patchgan.py:sample"   # base of every SR cell
    c.fidelity_gan_weights = (0.0, 0.05)            # 0: no GAN
    # > 0: one "pretrain" cell of this many steps with the pixel loss alone (ESRGAN's PSNR-oriented first
    # stage), from whose EMA generator every SR cell starts (g_init); 0: every SR cell starts from its seed.
    c.pretrain_steps = 0
    c.judges = ("psnr_y", "ssim", "lpips_vgg", "dists")
    c.nr_judges = ()                                # nr:<iqa_nr workdir> specs or cell:<iqa_nr cell name>
    # Experiment 2: discriminator design.
    c.discriminators = ("patchgan", "alexnet_image")
    c.gan_weights = (0.01, 0.05)
    # Experiment 3: discriminators as IQA initialisation.
    c.init_jobs = ("iqa_nr", "iqa_fr_train")
    c.inits = ("discriminator", "imagenet", "random")
    c.iqa_nr_config = "configs/iqa_nr.py:ranking"
    c.iqa_datasets = ("ranking",)
    c.nr_splits = "one"                             # iqa_nr cells: "one" split, or "all" ten seeded (medians)
    c.fr_train_config = "configs/iqa_fr_train.py:ranking"
    c.fr_train_datasets = ("ranking",)
    # Shared by every cell.
    c.data_dir = ""
    c.manual_dir = ""
    c.weights_dir = "weights"
    c.sr_overrides = ml_collections.ConfigDict()    # more fields for every SR cell, e.g. num_train_steps
    c.iqa_overrides = ml_collections.ConfigDict()   # more fields for every iqa_fr / iqa_nr cell
    c.fr_train_overrides = ml_collections.ConfigDict()  # more fields for every iqa_fr_train cell
    # Driver.
    c.cells = "*"                   # fnmatch pattern(s), comma-separated: the cells this process runs
    c.plan_only = False             # print the cells and their commands, run nothing
    c.report_only = False           # regenerate the report from finished cells
    c.bootstrap_resamples = 1000
    c.report_seed = 0
    if preset == "sample":
        # A pixel-loss pre-training of 400 steps (PSNR 27.6 dB on the held-out photographs, bicubic 28.6), then
        # 12 SR cells of 40 steps from it, the FR-IQA cell on the ranking set's seed-0 test split (a fifth of
        # it: LPIPS and DISTS score about 1 image/s on a 2-core CPU), three iqa_nr and three iqa_fr_train
        # cells: see README for the measured time. 40 steps of fine-tuning: a demonstration.
        c.fr_split = "seed0/test"
        c.pretrain_steps = 400
        c.sr_overrides = ml_collections.ConfigDict({"num_train_steps": 40, "adversarial_start_step": 0,
                                                    "eval_every_steps": 40, "checkpoint_every_steps": 20})
        c.nr_judges = ("cell:nr-alexnet-imagenet",)
    elif preset == "tiny":
        c.fidelity_metrics = ("l1", "ssim", "gmsd")
        c.judges = ("psnr_y", "ssim")
        c.sr_config = "configs/sr_patchgan.py:tiny"
        c.fr_config = "configs/iqa_fr.py:tiny"
        c.fidelity_gan_weights = (0.0,)
        c.discriminators = ("patchgan", "alexnet_image")
        c.gan_weights = (0.05,)
        c.iqa_nr_config = "configs/iqa_nr.py:tiny"
        c.fr_train_config = "configs/iqa_fr_train.py:tiny"
        c.inits = ("discriminator", "random")
        c.nr_judges = ("cell:nr-alexnet-random",)
        c.pretrain_steps = 1
        c.fr_train_overrides = ml_collections.ConfigDict({"num_train_steps": 4, "log_every_steps": 2,
                                                          "eval_every_steps": 4, "checkpoint_every_steps": 4})
        # Two steps; no EMA, so that the evaluated models differ (an EMA of two steps is the initialisation).
        # A checkpoint at step 1: the study's kill-and-resume test stops a cell between its two steps.
        c.sr_overrides = ml_collections.ConfigDict({"num_train_steps": 2, "adversarial_start_step": 0,
                                                    "ema_decay": 0.0, "checkpoint_every_steps": 1})
        c.iqa_overrides = ml_collections.ConfigDict({"plots": False})
        c.bootstrap_resamples = 50
    elif preset == "paper":
        c.seeds = (0, 1, 2)
        c.fidelity_metrics = ("l1", "ssim", "ms_ssim", "lpips_vgg", "dists",
                              "dists_style:weights=random,alpha_beta=dists",  # VGG-16-R
                              "dists_style:backbone=resnet50", "dists_style:backbone=convnext_t",
                              "dists_style:backbone=swin_t", "dists_style:backbone=clip_b32",
                              "dists_style:backbone=dinov2_b14")
        c.fr_datasets = ("live", "csiq", "tid2013", "kadid10k", "pipal")
        c.sr_config = "configs/sr_patchgan.py:paper"
        c.fidelity_gan_weights = (0.0, 0.1)
        c.discriminators = ("patchgan", "unet_sn", "vgg16_image", "vgg16_patch", "resnet50_image",
                            "resnet50_patch", "dinov2_b14_image", "dinov2_b14_patch")
        c.gan_weights = (0.005, 0.01, 0.05, 0.1, 0.5)
        c.iqa_nr_config = "configs/iqa_nr.py:koniq"
        c.iqa_datasets = ("koniq10k",)
        c.nr_splits = "all"  # the median over ten seeded 80/20 splits, as most papers report
        c.nr_judges = ("cell:nr-resnet50-imagenet",)
        c.fr_train_config = "configs/iqa_fr_train.py:kadid"
        c.fr_train_datasets = ("kadid10k", "live", "csiq", "tid2013")
    else:
        raise ValueError(f"unknown preset {preset!r}; presets: sample, tiny, paper")
    return c

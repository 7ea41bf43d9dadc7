"""NR-IQA models trained on human scores (the ``iqa_nr`` job), from ImageNet, random or a trained
discriminator's trunk.

Presets (``--config=configs/iqa_nr.py:<preset>``):
  ranking (default): AlexNet (ImageNet) on the embedded ``ranking`` set, 96-px crops, seeded split 0;
                     minutes on a 2-core CPU. Its "scores" are level ranks, a demonstration only.
  koniq:             ResNet-50 on KonIQ-10k's official split, 384-px crops, batch 16, AdamW 3e-5 cosine,
                     MSE (TOPIQ-NR's recipe; needs --config.manual_dir and the converted ResNet-50).
  tiny:              the smallest run of every code path (tests).
``--config.init=discriminator:<sr_gan workdir>[@<step>]`` starts from that run's discriminator trunk;
``--config.splits=all`` trains and tests on the ten seeded splits and reports median, mean and spread.
The trained model is then the metric ``nr:<workdir>`` (score CLI, iqa_fr, the SR trainer's eval_metrics).
"""

import ml_collections

from asym_jax.train.config import optimizer_config


def get_config(preset: str = "ranking") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.job = "iqa_nr"
    c.seed = 0
    # Model: a registered backbone, pooled taps, an MLP head (asym_jax.models.iqa.NRIQA).
    c.backbone = "alexnet"
    c.init = "imagenet"            # imagenet | random | discriminator:<workdir>[@<step>] | a converted folder
    c.head_init = "random"         # random | discriminator (an image-level discriminator's head, with its trunk)
    c.taps = ()                    # () : the tap an image-level discriminator head reads
    c.pooling = "mean"             # mean | mean_std
    c.hidden = 256
    c.frozen = False               # train only the head
    c.dtype = "float32"            # compute dtype: float32 or bfloat16
    c.weights_dir = "weights"      # converted pretrained trunks: <weights_dir>/<backbone>
    # Data: an IQA set (FR sets are used through their distorted images), its protocol.
    c.dataset = "ranking"
    c.split = "seed0"              # "official" (the release's train/test) or "seed<k>" (seeded 80/20 by content)
    c.splits = "one"               # "one" (`split`) or "all" (the ten seeded splits, each in splits/seed<k>)
    c.eval_datasets = ()           # cross-dataset evaluation on these sets' full splits
    c.manual_dir = ""
    c.data_dir = ""
    c.crop_size = 96               # training crops; evaluation sees whole images
    c.num_workers = 0
    # Optimisation (fields named as the SR trainer's).
    c.optimizer = optimizer_config(1e-4)
    c.loss = "mse"                 # mse | l1 | plcc | ranking (asym_jax.losses.iqa)
    c.rank_scale = 10.0            # ranking loss: margin scale on the [0, 1] score scale
    c.batch_size = 8               # global, over all devices
    c.eval_batch_size = 8
    # 0: evaluate the initial model and save it as step 0. Measured on the ranking preset (1 CPU device, 39 s):
    # test SRCC -0.33 at step 0, 0.56 after 150 steps (0.39 after 300: six training photographs overfit).
    c.num_train_steps = 150
    c.log_every_steps = 50
    c.eval_every_steps = 0         # 0: evaluate at the end only
    c.checkpoint_every_steps = 50
    c.keep_checkpoints = 2
    # Statistics (asym_jax.eval.stats).
    c.logistic = "4"
    c.bootstrap_resamples = 1000
    c.plots = True
    if preset == "ranking":
        pass
    elif preset == "koniq":
        c.backbone, c.dataset, c.split = "resnet50", "koniq10k", "official"
        c.crop_size, c.batch_size, c.eval_batch_size = 384, 16, 16
        c.optimizer = optimizer_config(3e-5)
        c.optimizer.b2, c.optimizer.weight_decay, c.optimizer.schedule = 0.999, 1e-5, "cosine"
        c.num_train_steps, c.log_every_steps = 20_000, 100
        c.eval_every_steps = c.checkpoint_every_steps = 2_000
        c.num_workers = 8
    elif preset == "tiny":
        c.crop_size, c.batch_size, c.eval_batch_size = 64, 8, 8
        c.hidden = 16
        c.num_train_steps, c.log_every_steps, c.checkpoint_every_steps = 4, 2, 2
        c.bootstrap_resamples = 20
        c.plots = False
    else:
        raise ValueError(f"unknown preset {preset!r}; presets: ranking, koniq, tiny")
    return c

"""Learning a DISTS-style metric on any backbone (the ``iqa_fr_train`` job): the trunk frozen, the per-channel
alpha/beta weights trained against human opinion.

Presets (``--config=configs/iqa_fr_train.py:<preset>``):
  ranking (default): VGG-16 (ImageNet, offline) on the embedded ``ranking`` set, seeded 80/20 split by
                     photograph; a demonstration (its scores are level ranks, not human opinion). Minutes on a
                     2-core CPU.
  kadid:             the paper-scale setting: KADID-10k's seed-0 train split, evaluated on its test split and on
                     LIVE, CSIQ and TID2013 (needs ``--config.manual_dir``; other backbones need converted
                     weights: ``--config.backbone=resnet50 --config.weights=DIR``).
  tiny:              AlexNet, 60 steps (tests).
The result, ``<workdir>`` itself, is usable as ``alpha_beta=<workdir>`` in every metric spec:
``dists_style:backbone=vgg16,alpha_beta=<workdir>`` (score CLI, iqa_fr job, sr_gan fidelity loss).
"""

import ml_collections

from asym_jax.train.config import optimizer_config


def get_config(preset: str = "ranking") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.job = "iqa_fr_train"
    config.seed = 0
    config.backbone = "vgg16"            # any registered backbone
    config.weights = "imagenet"          # its frozen trunk: imagenet, random, or a converted folder
    config.dataset = "ranking"           # an FR set
    config.train_split = "seed0/train"   # seeded 80/20 split by reference image, or an official split
    config.test_split = "seed0/test"
    config.eval_datasets = ()            # other FR sets, scored on their full split
    config.manual_dir = ""
    config.data_dir = ""
    config.weights_dir = "weights"
    # Loss: "ranking" (pairs of one reference, logistic on the score difference times rank_scale), "plcc"
    # ((1 - Pearson of the batch) / 2) or "mse" (1 - distance against scores normalised to [0, 1]).
    config.loss = "ranking"
    config.rank_scale = 100.0
    config.refs_per_batch = 4            # a batch: this many references, images_per_ref distorted images each
    config.images_per_ref = 8
    config.num_train_steps = 400
    config.optimizer = optimizer_config(1e-3)
    config.log_every_steps = 50
    config.eval_every_steps = 200
    config.checkpoint_every_steps = 200
    config.keep_checkpoints = 2
    config.batch_size = 8                # images per forward pass of the trunk (feature extraction)
    config.logistic = "4"
    config.bootstrap_resamples = 200
    if preset == "ranking":
        pass
    elif preset == "kadid":
        config.dataset = "kadid10k"
        config.eval_datasets = ("live", "csiq", "tid2013")
        config.refs_per_batch, config.images_per_ref = 8, 16
        config.num_train_steps = 5000
        config.eval_every_steps = config.checkpoint_every_steps = 1000
        config.bootstrap_resamples = 1000
    elif preset == "tiny":
        config.backbone = "alexnet"
        config.num_train_steps = 60
        config.log_every_steps = 20
        config.eval_every_steps = config.checkpoint_every_steps = 30
        config.bootstrap_resamples = 0
    else:
        raise ValueError(f"unknown preset {preset!r}; presets: ranking, kadid, tiny")
    return config

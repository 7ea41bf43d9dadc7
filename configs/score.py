"""Scores image pairs with the metric library (the ``score`` job).

Presets (``--config=configs/score.py:<preset>``):
  sample (default): the embedded sample photographs, four distortions at five levels, 256-px crops;
                    prints every score and how well each metric orders the distortion levels.
  tiny:             one photograph, two distortions, 64-px crops, pixel and structural metrics (tests).
Score your own images with ``--config.ref=REF_DIR --config.dist=DIST_DIR`` (or two files).
"""

import ml_collections


def get_config(preset: str = "sample") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.job = "score"
    config.metrics = ("psnr_y", "ssim", "ms_ssim", "gmsd", "lpips_vgg", "lpips_alex", "dists")
    config.ref = ""  # image file or folder; empty: the embedded sample set
    config.dist = ""
    config.batch_size = 8
    config.sample_images = ("astronaut", "chelsea", "coffee", "rocket")
    config.distortions = ("blur", "noise", "jpeg", "contrast")
    config.sample_crop = 256
    if preset == "sample":
        pass
    elif preset == "tiny":
        config.metrics = ("psnr", "ssim", "gmsd")
        config.sample_images = ("coffee",)
        config.distortions = ("blur", "noise")
        config.sample_crop = 64
    else:
        raise ValueError(f"unknown preset {preset!r}; presets: sample, tiny")
    return config

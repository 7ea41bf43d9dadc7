"""Metrics scored as full-reference IQA models (the ``iqa_fr`` job): agreement with human opinion.

Presets (``--config=configs/iqa_fr.py:<preset>``):
  ranking (default): the standard library metrics on the embedded ``ranking`` set (scikit-image photographs under
                     synthetic distortions; its "scores" are level ranks within each photograph and
                     distortion, a demonstration, not human opinion). Minutes on a 2-core CPU.
  classic:           the same metrics on LIVE, CSIQ and TID2013 (needs ``--config.manual_dir``: one folder
                     holding each official release, see ``python -m asym_jax.data info NAME``).
  classic_models:    the classic models Ding et al. (IJCV 2021) compared as optimisation objectives, with their
                     kin and the structural baselines, on ``ranking`` (``--config.datasets=live,csiq,tid2013`` and
                     ``--config.manual_dir`` for the human-rated sets). About a minute on a 2-core CPU.
  tiny:              pixel and structural metrics on ``ranking``, 100 bootstrap resamples (tests).
Any field can be overridden, e.g. ``--config.metrics=dists,lpips_vgg --config.datasets=kadid10k``; specs with
options need the tuple form: ``--config.metrics="('dists','ms_ssim:num_scales=4')"``.
"""

import ml_collections


def get_config(preset: str = "ranking") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.job = "iqa_fr"
    config.seed = 0                      # bootstrap draws, and seeds of `weights=random` trunks without one
    # Metric specs of the registry ("name[:key=value,...]"), e.g. "dists_style:backbone=vgg16,weights=random".
    config.metrics = ("psnr", "ssim", "ms_ssim", "gmsd", "lpips_vgg", "lpips_alex", "dists")
    config.datasets = ("ranking",)       # FR sets: ranking, live, csiq, tid2013, kadid10k, pipal
    config.split = "full"                # "full", an official split, or "seed<k>/train|test"
    config.manual_dir = ""               # one folder under which each release is found
    config.data_dir = ""                 # TFDS data_dir ("": TFDS's default)
    config.weights_dir = "weights"       # converted pretrained trunks: <weights_dir>/<backbone>
    config.batch_size = 8                # images per device batch (global; a multiple of the device count)
    config.logistic = "4"                # "4" (4-parameter) or "5" (VQEG 5-parameter) before PLCC and RMSE
    config.bootstrap_resamples = 1000    # 0: no confidence intervals
    config.plots = True                  # a scatter plot per metric and dataset in <workdir>/plots
    if preset == "ranking":
        pass
    elif preset == "classic":
        config.datasets = ("live", "csiq", "tid2013")
    elif preset == "classic_models":
        config.metrics = ("psnr", "ssim", "ms_ssim", "gmsd", "ms_gmsd", "vif", "fsim", "fsimc", "vsi", "mdsi", "haarpsi",
                          "nlpd", "cw_ssim", "mad")
    elif preset == "tiny":
        config.metrics = ("psnr", "ssim", "gmsd")
        config.bootstrap_resamples = 100
    else:
        raise ValueError(f"unknown preset {preset!r}; presets: ranking, classic, classic_models, tiny")
    return config

"""SR with a PatchGAN (pix2pix, 70 x 70 receptive field) discriminator, L1 + DISTS fidelity, vanilla GAN.

Presets: ``:sample`` (default; embedded photographs, small RRDBNet, minutes on a 2-core CPU), ``:paper``
(SwinIR-M x4 on DF2K; needs ``--config.manual_dir``), ``:tiny`` (tests). Any field can be overridden,
e.g. ``--config.gan_weight=0.05 --config.fidelity=lpips_vgg``; see ``asym_jax/train/config.py``.
"""

from asym_jax.train.presets import sr_config


def get_config(preset: str = "sample"):
    config = sr_config(preset)
    config.discriminator = "patchgan"
    if preset in ("sample", "tiny"):
        config.discriminator_options = {"ndf": 32 if preset == "sample" else 8, "n_layers": 2}
    return config

"""SR with Real-ESRGAN's U-Net discriminator with spectral normalisation; L1 + DISTS fidelity, vanilla GAN.

Presets: ``:sample`` (default), ``:paper``, ``:tiny``; see ``configs/sr_patchgan.py``.
"""

from asym_jax.train.presets import sr_config


def get_config(preset: str = "sample"):
    config = sr_config(preset)
    config.discriminator = "unet_sn"
    if preset in ("sample", "tiny"):
        config.discriminator_options = {"num_feat": 32 if preset == "sample" else 8}
    return config

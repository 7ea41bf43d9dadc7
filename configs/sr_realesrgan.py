"""The Real-ESRGAN x4plus recipe (REFERENCES.md): RRDBNet x4 (23 blocks), U-Net-SN discriminator,
L1 + VGG-19 perceptual (pre-ReLU conv1_2 .. conv5_4, weights .1 .1 1 1 1) + 0.1 x vanilla GAN,
Adam 1e-4 (0.9, 0.99), EMA 0.999, 256-px GT crops. (Bicubic LR only: Real-ESRGAN's second-order
degradations are not part of this study.)

Presets: ``:paper`` (the recipe on DF2K, batch 16), ``:sample`` (default; a small RRDBNet on the embedded
photographs), ``:tiny``. VGG-19 ImageNet weights do not install offline: convert torchvision's
vgg19-dcbb9e9d.pth into ``weights/vgg19`` (the error message gives the command) or use a seeded random
trunk with ``--config.fidelity=perceptual_vgg19:weights=random``.
"""

import ml_collections

from asym_jax.train.presets import sr_config


def get_config(preset: str = "sample"):
    config = sr_config(preset)
    config.discriminator = "unet_sn"
    config.fidelity = "perceptual_vgg19"
    config.pixel_weight, config.fidelity_weight, config.gan_weight = 1.0, 1.0, 0.1
    config.ema_decay = 0.999 if preset == "paper" else config.ema_decay
    if preset == "paper":
        config.generator = "rrdbnet"
        config.generator_options = ml_collections.ConfigDict({"num_feat": 64, "num_block": 23, "num_grow_ch": 32})
        for o in (config.g_optimizer, config.d_optimizer):
            o.lr, o.schedule, o.milestones = 1e-4, "constant", ()
    else:
        config.discriminator_options = {"num_feat": 32 if preset == "sample" else 8}
    if preset == "tiny":
        config.fidelity = "perceptual_vgg19:weights=random"
    return config

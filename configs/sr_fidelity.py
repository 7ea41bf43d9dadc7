"""SR with PatchGAN and a chosen fidelity loss: the study's fidelity-metric axis.

    --config=configs/sr_fidelity.py:<fidelity>[,<preset>]

fidelity:  dists (VGG-16, official alpha/beta), vgg16r (DISTS-style on a random VGG-16, "VGG-16-R"),
           dists_resnet50 / dists_convnext / dists_dinov2 (DISTS-style on those trunks, uniform alpha/beta),
           lpips (LPIPS-VGG v0.1), ssim, ms_ssim, l1 (pixel loss only), and the classic models Ding et al.
           (IJCV 2021) compared as objectives: gmsd, ms_gmsd, vif, fsim, fsimc, vsi, mdsi, haarpsi, nlpd,
           cw_ssim, mad
preset:    sample (default), paper, tiny

The fidelity trunk's weights are what the spec says: ImageNet by default (offline for VGG-16; the other
trunks are read from ``<weights_dir>/<backbone>``, made by ``python -m asym_jax.weights convert``), or
``weights=random`` (seeded from the run's seed unless the spec gives ``seed=``), e.g.
``--config.fidelity=dists_style:backbone=resnet50,weights=random,alpha_beta=uniform``.
"""

from asym_jax.train.presets import sr_config

FIDELITY = {
    "dists": "dists",
    "vgg16r": "dists_style:backbone=vgg16,weights=random,alpha_beta=uniform",
    "dists_resnet50": "dists_style:backbone=resnet50,alpha_beta=uniform",
    "dists_convnext": "dists_style:backbone=convnext_t,alpha_beta=uniform",
    "dists_dinov2": "dists_style:backbone=dinov2_s14,alpha_beta=uniform",
    "lpips": "lpips_vgg",
    "ssim": "ssim",
    "ms_ssim": "ms_ssim",
    "l1": "l1",
    **{name: name for name in ("gmsd", "ms_gmsd", "vif", "fsim", "fsimc", "vsi", "mdsi", "haarpsi", "nlpd", "cw_ssim",
                               "mad")},
}


_NOT_OFFLINE = ("dists_resnet50", "dists_convnext", "dists_dinov2")


def _ms_ssim_scales(size: int) -> int:
    """The most MS-SSIM scales whose 11-px window fits a ``size``-px crop: 10 * 2^(s-1) + 1 <= size."""
    return max(s for s in range(1, 6) if 10 * 2 ** (s - 1) + 1 <= size)


def get_config(arg: str = "dists"):
    name, _, preset = arg.partition(",")
    if name not in FIDELITY:
        raise ValueError(f"unknown fidelity {name!r}; known: {', '.join(FIDELITY)}")
    config = sr_config(preset or "sample")
    config.discriminator = "patchgan"
    if (preset or "sample") in ("sample", "tiny"):
        config.discriminator_options = {"ndf": 32 if (preset or "sample") == "sample" else 8, "n_layers": 2}
    if name == "l1":
        config.fidelity_weight = 0.0
    else:
        config.fidelity = FIDELITY[name]
    if name == "ms_ssim" and config.hr_size < 161:
        config.fidelity = f"ms_ssim:num_scales={_ms_ssim_scales(config.hr_size)}"
    # Fewer levels where the crop is small (tiny: 32 px); VIF (41 px) and MAD (34 px) are refused there.
    if name == "nlpd" and config.hr_size < 33:
        config.fidelity = f"nlpd:levels={max(1, (config.hr_size - 1).bit_length())}"
    if name == "cw_ssim" and config.hr_size < 64:
        config.fidelity = f"cw_ssim:level={max(1, config.hr_size.bit_length() - 3)}"
    if preset == "tiny" and name in _NOT_OFFLINE:
        config.fidelity += ",weights=random"  # tests: those trunks have no offline ImageNet weights
    return config

"""SR with a discriminator head on a pretrained backbone, at image or patch level (the study's comparison).

    --config=configs/sr_backbone.py:<backbone>,<level>[,<preset>]
    backbone: vgg16, resnet50, dinov2_s14 (or any registered backbone); level: image | patch
    preset:   sample (default), paper, tiny

The same two-layer head on the same trunk tap makes pooling (image) vs per-position logits (patch) the
only difference. ImageNet VGG-16 installs offline; other trunks need a converted checkpoint in
``<weights_dir>/<backbone>`` (the error says how to make it) or ``--config.d_init=random`` (a seeded random
trunk; ``--config.d_init=DIR`` takes a converted folder). The trunk trains with the head unless
``--config.discriminator_options.frozen=True``. The fidelity loss keeps its own trunk (its spec says which).
"""

from asym_jax.train.presets import sr_config


def get_config(arg: str = "vgg16,patch"):
    parts = [p.strip() for p in arg.split(",")]
    if len(parts) not in (2, 3) or parts[1] not in ("image", "patch"):
        raise ValueError(f"expected '<backbone>,<image|patch>[,<preset>]', got {arg!r}")
    backbone, level = parts[:2]
    preset = parts[2] if len(parts) == 3 else "sample"
    config = sr_config(preset)
    config.discriminator = f"{backbone}_{level}"
    config.discriminator_options = {"frozen": False}
    if preset == "tiny":
        config.d_init = "random"
    return config

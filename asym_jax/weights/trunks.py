"""Variables of the feature backbones ("trunks"): ImageNet (offline assets), seeded random, or converted
files; and the provenance record of each (:func:`trunk_provenance`)."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.models import backbones
from asym_jax.models.backbones.vgg import vgg_layer_names
from asym_jax.weights.assets import ASSETS, AssetError, resolve, sha256_of
from asym_jax.weights.pytorch import ARCHS, from_pytorch, load_converted, read_metadata
from asym_jax.weights.readers import read_numpy_pickle
from asym_jax.weights.runs import (GENERATOR_PREFIX, NR_PREFIX, is_run_source, restore_discriminator_trunk,
                                   restore_generator, restore_nr_model)
from asym_jax.weights.torchvision import ALEXNET_CONVS

__all__ = ["backbone_variables", "checkpoint_hint", "has_offline_imagenet", "trunk_provenance", "with_backbone"]

Variables = dict[str, Any]

_IMAGENET_ASSETS = {"vgg16": ("vgg16_imagenet", "VGG16_0"), "alexnet": ("alexnet_imagenet", "AlexNet_0")}
# Checkpoints to convert for the backbones without offline ImageNet weights.
_WHERE_TO_GET = {
    "vgg19": "torchvision's vgg19-dcbb9e9d.pth",
    "resnet50": "torchvision's resnet50-11ad3fa6.pth or timm's resnet50 (pytorch_model.bin)",
    "convnext_t": "timm's convnext_tiny (pytorch_model.bin)",
    "swin_t": "timm's swin_tiny_patch4_window7_224 (pytorch_model.bin)",
    "dinov2_s14": "facebook/dinov2-small pytorch_model.bin",
    "dinov2_b14": "facebook/dinov2-base pytorch_model.bin",
    "clip_b32": "openai/clip-vit-base-patch32 pytorch_model.bin",
}


def has_offline_imagenet(name: str) -> bool:
    """Whether backbone ``name`` has ImageNet weights that install with the package (VGG-16, AlexNet)."""
    return name in _IMAGENET_ASSETS


def checkpoint_hint(name: str) -> str:
    """Which released checkpoint to convert for backbone ``name``'s pretrained weights."""
    return _WHERE_TO_GET.get(name, "its PyTorch checkpoint")


def _imagenet(name: str) -> Variables:
    if name not in _IMAGENET_ASSETS:
        raise AssetError(
            f"no offline ImageNet weights for backbone {name!r}: convert {_WHERE_TO_GET.get(name, 'its checkpoint')} "
            f"with: python -m asym_jax.weights convert --arch {name} --src FILE --dst DIR, then pass "
            f"weights=DIR (or weights=FILE directly), or use weights='random'")
    asset, root = _IMAGENET_ASSETS[name]
    tree = read_numpy_pickle(resolve(asset))[root]
    convs = vgg_layer_names(16) if name == "vgg16" else list(ALEXNET_CONVS)
    return {"params": {layer: {"kernel": np.asarray(tree[f"Conv_{k}"]["kernel"], np.float32),
                               "bias": np.asarray(tree[f"Conv_{k}"]["bias"], np.float32)}
                       for k, layer in enumerate(convs)}}


def _random(name: str, seed: int) -> Variables:
    arch = ARCHS[name]
    module = arch.build()
    return jax.tree.map(np.asarray, dict(module.init(jax.random.PRNGKey(seed), arch.example({}))))


def _from_path(name: str, path: pathlib.Path) -> Variables:
    if path.is_dir():
        arch = read_metadata(path)["arch"]
        if arch != name:
            raise InputError(f"{path} holds a converted {arch!r} checkpoint, not {name!r}")
        return dict(load_converted(path)[1])
    return dict(from_pytorch(name, path)[1])


def backbone_variables(name: str, weights: str = "imagenet", *, seed: int = 0) -> Variables:
    """Variables (``params``, and ``batch_stats`` where the backbone has batch norms) of backbone ``name``.

    Args:
      name: a registry name of :mod:`asym_jax.models.backbones`.
      weights: ``"imagenet"`` (offline for VGG-16 and AlexNet), ``"random"`` (the backbone's own
        initialiser from ``seed``; "VGG-16-R" is ``vgg16`` with ``"random"``), a PyTorch checkpoint
        file (torchvision / timm / HF layouts), a folder made by ``python -m asym_jax.weights convert``, or
        ``"discriminator:<workdir>[@<step>]"``: the trained discriminator trunk of an sr_gan run
        (:mod:`asym_jax.weights.runs`).
      seed: PRNG seed of ``"random"``.
    """
    backbones.get(name)  # validates the name
    if weights == "imagenet":
        variables = _imagenet(name)
    elif weights == "random":
        variables = _random(name, seed)
    elif is_run_source(weights):
        variables = restore_discriminator_trunk(weights, name)[0]
    elif os.path.exists(str(weights)):
        variables = _from_path(name, pathlib.Path(weights))
    else:
        raise InputError(f"weights must be 'imagenet', 'random', a checkpoint file or a converted folder; "
                         f"{weights!r} does not exist")
    return jax.tree.map(jnp.asarray, variables)


def with_backbone(variables: Variables, backbone: str, weights: str = "imagenet", *, seed: int = 0,
                  scope: str = "backbone") -> Variables:
    """``variables`` of a model whose ``scope`` sub-module is backbone ``backbone``, with that trunk
    replaced by ``backbone_variables(backbone, weights)`` (e.g. a pretrained discriminator or IQA trunk).
    The structure and shapes must match exactly; the rest of the model keeps its initialisation."""
    trunk = backbone_variables(backbone, weights, seed=seed)
    out = {collection: dict(tree) for collection, tree in variables.items()}
    for collection in set(trunk) | {c for c, tree in variables.items() if scope in tree}:
        current = out.get(collection, {}).get(scope)
        want = jax.tree.map(np.shape, current) if current is not None else None
        got = jax.tree.map(np.shape, trunk[collection]) if collection in trunk else None
        if want != got:
            raise InputError(f"the {backbone} trunk does not fit {collection}/{scope} of this model "
                             "(a different backbone?)")
        out[collection][scope] = trunk[collection]
    return out


def trunk_provenance(name: str, weights: str = "imagenet", *, seed: int = 0) -> dict:
    """Where ``backbone_variables(name, weights, seed=seed)`` comes from, for a run's manifest:
    ``{"backbone", "source": "imagenet" | "random" | PATH | "discriminator:W@STEP" | "nr:W@STEP" |
    "generator:W@STEP", "seed": int or None, "sha256": hex or None}`` (for a run's trunk, the digest of the
    restored arrays; ``nr:W@STEP`` is the whole NR-IQA model of an iqa_nr run, trunk and head;
    ``generator:W@STEP`` the EMA generator of an sr_gan run, ``name`` then being the generator's).

    ``sha256`` identifies the weights: the offline asset's recorded digest for ``imagenet``, the file's
    digest for a checkpoint file, the digest of the checkpoint a converted folder was made from (its
    ``metadata.json``), ``None`` for ``random`` (the seed identifies those).
    """
    if weights == "imagenet":
        sha = ASSETS[_IMAGENET_ASSETS[name][0]].sha256 if name in _IMAGENET_ASSETS else None
        return {"backbone": name, "source": "imagenet", "seed": None, "sha256": sha}
    if weights == "random":
        return {"backbone": name, "source": "random", "seed": int(seed), "sha256": None}
    if is_run_source(weights):
        return restore_discriminator_trunk(weights, name)[1]
    if str(weights).startswith(NR_PREFIX):
        return restore_nr_model(weights)[2]
    if str(weights).startswith(GENERATOR_PREFIX):
        return restore_generator(weights, name)[1]
    path = pathlib.Path(weights)
    if path.is_dir():
        sha = read_metadata(path).get("source_sha256")
    else:
        sha = sha256_of(path) if path.is_file() else None
    return {"backbone": name, "source": str(path.absolute()), "seed": None, "sha256": sha}

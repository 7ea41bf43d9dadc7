"""Parameters of the feature backbones: ImageNet (offline assets), seeded random, or torchvision files."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.models import backbones
from asym_jax.models.backbones.vgg import VGG_BLOCKS, vgg_layer_names
from asym_jax.weights.assets import AssetError, resolve
from asym_jax.weights.readers import read_numpy_pickle, read_torch_checkpoint

__all__ = ["backbone_params", "from_torchvision_alexnet", "from_torchvision_vgg"]

Params = dict[str, Any]

# torchvision ``features`` indices of the convolutions.
_ALEXNET_TORCH_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
_IMAGENET_ASSETS = {"vgg16": ("vgg16_imagenet", "VGG16_0"), "alexnet": ("alexnet_imagenet", "AlexNet_0")}


def _vgg_torch_indices(depth: int) -> dict[str, int]:
    indices, index = {}, 0
    for b, (n, _) in enumerate(VGG_BLOCKS[depth], 1):
        for i in range(1, n + 1):
            indices[f"conv{b}_{i}"] = index
            index += 2  # conv, relu
        index += 1  # max-pool
    return indices


def _conv_from_torch(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    weight, bias = state[prefix + ".weight"], state[prefix + ".bias"]
    return {"kernel": np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)), np.float32),
            "bias": np.asarray(bias, np.float32)}


def _strip(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Accept ``vgg16().state_dict()`` as well as ``vgg16().features.state_dict()``.
    return {k if k.startswith("features.") else "features." + k: v for k, v in state.items()}


def from_torchvision_vgg(state: dict[str, np.ndarray], depth: int) -> Params:
    """Converts a torchvision ``vgg16``/``vgg19`` state dict (numpy arrays) to :class:`VGG` params."""
    state = _strip(state)
    indices = _vgg_torch_indices(depth)
    missing = [f"features.{i}.weight" for i in indices.values() if f"features.{i}.weight" not in state]
    if missing:
        raise KeyError(f"VGG-{depth} state dict lacks {missing}")
    return {name: _conv_from_torch(state, f"features.{i}") for name, i in indices.items()}


def from_torchvision_alexnet(state: dict[str, np.ndarray]) -> Params:
    """Converts a torchvision ``alexnet`` state dict (numpy arrays) to :class:`AlexNet` params."""
    state = _strip(state)
    missing = [f"features.{i}.weight" for i in _ALEXNET_TORCH_INDEX.values() if f"features.{i}.weight" not in state]
    if missing:
        raise KeyError(f"AlexNet state dict lacks {missing}")
    return {name: _conv_from_torch(state, f"features.{i}") for name, i in _ALEXNET_TORCH_INDEX.items()}


def _imagenet_params(name: str) -> Params:
    if name not in _IMAGENET_ASSETS:
        raise AssetError(
            f"no offline ImageNet weights for backbone {name!r}: pass weights=<path to the torchvision "
            f"state_dict file> (for example vgg19-dcbb9e9d.pth from torchvision's model zoo), or "
            f"weights='random'")
    asset, root = _IMAGENET_ASSETS[name]
    tree = read_numpy_pickle(resolve(asset))[root]
    convs = vgg_layer_names(16) if name == "vgg16" else list(_ALEXNET_TORCH_INDEX)
    return {layer: {"kernel": np.asarray(tree[f"Conv_{k}"]["kernel"], np.float32),
                    "bias": np.asarray(tree[f"Conv_{k}"]["bias"], np.float32)}
            for k, layer in enumerate(convs)}


def _random_params(name: str, seed: int) -> Params:
    spec = backbones.get(name)
    module = spec.build(taps=spec.default_taps[-1:])
    variables = module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 64, 64, 3), jnp.float32))
    return jax.tree.map(np.asarray, dict(variables["params"]))


def _file_params(name: str, path: str) -> Params:
    state = read_torch_checkpoint(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if name.startswith("vgg"):
        return from_torchvision_vgg(state, int(name[3:]))
    if name == "alexnet":
        return from_torchvision_alexnet(state)
    raise ValueError(f"no torchvision converter for backbone {name!r}")


def backbone_params(name: str, weights: str = "imagenet", *, seed: int = 0) -> Params:
    """Parameters for backbone ``name``.

    Args:
      name: a registry name of :mod:`asym_jax.models.backbones` (``vgg16``, ``vgg19``, ``alexnet``).
      weights: ``"imagenet"`` (offline assets: VGG-16 and AlexNet), ``"random"`` (the backbone's
        initialiser: torchvision's scheme, from ``seed``; "VGG-16-R" is ``vgg16`` with ``"random"``),
        or the path of a torchvision state-dict file.
      seed: PRNG seed of ``"random"``.
    """
    backbones.get(name)  # validates the name
    if weights == "imagenet":
        params = _imagenet_params(name)
    elif weights == "random":
        params = _random_params(name, seed)
    elif os.path.isfile(str(weights)):
        params = _file_params(name, str(weights))
    else:
        raise ValueError(
            f"weights must be 'imagenet', 'random' or an existing torchvision checkpoint file, got {weights!r}")
    return jax.tree.map(jnp.asarray, params)

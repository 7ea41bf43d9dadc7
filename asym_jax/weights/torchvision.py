"""torchvision's index-named VGG and AlexNet ``features`` layouts, converted to our named layers.

A leaf module (it imports no other part of :mod:`asym_jax.weights`): the PyTorch converter
(:mod:`asym_jax.weights.pytorch`) and the offline ImageNet loader (:mod:`asym_jax.weights.trunks`) both
use it.
"""

from __future__ import annotations

import numpy as np

from asym_jax.errors import InputError
from asym_jax.models.backbones.vgg import VGG_BLOCKS

__all__ = ["ALEXNET_CONVS", "from_torchvision_alexnet", "from_torchvision_vgg"]

# torchvision ``features`` indices of AlexNet's convolutions, in order.
_ALEXNET_TORCH_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
ALEXNET_CONVS = tuple(_ALEXNET_TORCH_INDEX)


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


def _features(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Accept ``vgg16().state_dict()`` as well as ``vgg16().features.state_dict()``.
    return {k if k.startswith("features.") else "features." + k: v for k, v in state.items()
            if not k.startswith("classifier.")}


def _from_indices(state, indices: dict[str, int], what: str) -> dict:
    state = _features(state)
    missing = [f"features.{i}.weight" for i in indices.values() if f"features.{i}.weight" not in state]
    if missing:
        raise InputError(f"{what} state dict lacks {missing}")
    expected = {f"features.{i}.{p}" for i in indices.values() for p in ("weight", "bias")}
    unknown = sorted(set(state) - expected)
    if unknown:
        raise InputError(f"{what} state dict has unknown keys {unknown[:10]}")
    return {name: _conv_from_torch(state, f"features.{i}") for name, i in indices.items()}


def from_torchvision_vgg(state: dict[str, np.ndarray], depth: int) -> dict:
    """Converts a torchvision ``vgg16``/``vgg19`` state dict (numpy arrays) to :class:`VGG` params."""
    return _from_indices(state, _vgg_torch_indices(depth), f"VGG-{depth}")


def from_torchvision_alexnet(state: dict[str, np.ndarray]) -> dict:
    """Converts a torchvision ``alexnet`` state dict (numpy arrays) to :class:`AlexNet` params."""
    return _from_indices(state, _ALEXNET_TORCH_INDEX, "AlexNet")

"""Weights: the offline asset registry (sha256-checked), restricted readers, converters."""

from asym_jax.weights.assets import ASSETS, Asset, AssetError, resolve, sha256_of
from asym_jax.weights.backbones import backbone_params, from_torchvision_alexnet, from_torchvision_vgg
from asym_jax.weights.npz import load_npz, save_npz
from asym_jax.weights.readers import UnsafePickleError, read_numpy_pickle, read_torch_checkpoint

__all__ = [
    "ASSETS", "Asset", "AssetError", "UnsafePickleError", "backbone_params", "from_torchvision_alexnet",
    "from_torchvision_vgg", "load_npz", "read_numpy_pickle", "read_torch_checkpoint", "resolve", "save_npz",
    "sha256_of",
]

"""Weights: the offline asset registry (sha256-checked), restricted readers, PyTorch checkpoint conversion
(``from_pytorch``, ``python -m asym_jax.weights convert``), backbone ("trunk") variables and their provenance."""

from asym_jax.weights.assets import ASSETS, Asset, AssetError, resolve, sha256_of
from asym_jax.weights.convert import ConversionError, torch_to_flax
from asym_jax.weights.npz import load_npz, save_npz
from asym_jax.weights.pytorch import ARCHS, from_pytorch, load_converted, save_converted
from asym_jax.weights.readers import UnsafePickleError, WeightFileError, read_numpy_pickle, read_torch_checkpoint
from asym_jax.weights.torchvision import from_torchvision_alexnet, from_torchvision_vgg
from asym_jax.weights.trunks import backbone_variables, trunk_provenance, with_backbone

__all__ = [
    "ARCHS", "ASSETS", "Asset", "AssetError", "ConversionError", "UnsafePickleError", "WeightFileError",
    "backbone_variables", "from_pytorch", "from_torchvision_alexnet", "from_torchvision_vgg", "load_converted", "load_npz",
    "read_numpy_pickle", "read_torch_checkpoint", "resolve", "save_converted", "save_npz", "sha256_of",
    "torch_to_flax", "trunk_provenance", "with_backbone",
]

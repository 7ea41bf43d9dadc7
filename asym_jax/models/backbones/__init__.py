"""Feature backbones: Flax modules that map a [0, 1] NHWC image to a dict of named activations.

The registry describes each backbone once (constructor, default taps, channels per tap), so metrics,
discriminators and IQA models can be written against any of them. Weights are loaded by
:mod:`asym_jax.weights`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn

from asym_jax.models.backbones.alexnet import ALEXNET_LAYERS, AlexNet
from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize
from asym_jax.models.backbones.vgg import VGG, VGG_BLOCKS, l2_pool, vgg_layer_names

__all__ = [
    "AlexNet", "BackboneSpec", "IMAGENET_MEAN", "IMAGENET_STD", "VGG", "get", "l2_pool", "names",
    "normalize", "vgg_layer_names",
]


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and what its taps are.

    Attributes:
      name: registry name.
      build: ``build(taps=..., **module_options) -> nn.Module``.
      default_taps: the taps perceptual metrics use (e.g. LPIPS / DISTS layers).
      tap_channels: channels of every tap name the backbone knows.
      min_size: smallest input side the default taps accept.
    """

    name: str
    build: Callable[..., nn.Module]
    default_taps: tuple[str, ...]
    tap_channels: dict[str, int]
    min_size: int

    def channels(self, taps: Sequence[str]) -> list[int]:
        return [self.tap_channels[t] for t in taps]


def _vgg_spec(depth: int) -> BackboneSpec:
    channels = {}
    for b, (n, c) in enumerate(VGG_BLOCKS[depth], 1):
        channels[f"pool{b}"] = c
        for i in range(1, n + 1):
            channels[f"conv{b}_{i}"] = channels[f"relu{b}_{i}"] = c
    last = {16: 3, 19: 4}[depth]
    taps = ("relu1_2", "relu2_2", f"relu3_{last}", f"relu4_{last}", f"relu5_{last}")
    return BackboneSpec(f"vgg{depth}", lambda **kw: VGG(depth=depth, **kw), taps, channels, min_size=16)


def _alexnet_spec() -> BackboneSpec:
    channels = {}
    for name, (c, *_) in ALEXNET_LAYERS.items():
        channels[name] = channels["relu" + name[-1]] = c
    taps = tuple(f"relu{i}" for i in range(1, 6))
    return BackboneSpec("alexnet", lambda **kw: AlexNet(**kw), taps, channels, min_size=31)


_REGISTRY: dict[str, BackboneSpec] = {s.name: s for s in (_vgg_spec(16), _vgg_spec(19), _alexnet_spec())}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(names())}") from None

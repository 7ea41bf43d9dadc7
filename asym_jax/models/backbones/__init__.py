"""Feature backbones: Flax modules that map a [0, 1] NHWC image to a dict of named activations.

The registry describes each backbone once (constructor, default taps, channels per tap), so metrics,
discriminators and IQA models can be written against any of them. Weights are loaded by
:mod:`asym_jax.weights`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax

from asym_jax.errors import InputError
from asym_jax.models.backbones.alexnet import ALEXNET_LAYERS, AlexNet
from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize
from asym_jax.models.backbones.convnext import ConvNeXt
from asym_jax.models.backbones.resnet import ResNet
from asym_jax.models.backbones.swin import SwinTransformer
from asym_jax.models.backbones.vgg import VGG, VGG_BLOCKS, l2_pool, vgg_layer_names
from asym_jax.models.backbones.vit import VIT_PRESETS, ViT

__all__ = [
    "AlexNet", "BackboneSpec", "ConvNeXt", "IMAGENET_MEAN", "IMAGENET_STD", "ResNet", "SwinTransformer", "VGG",
    "VIT_PRESETS", "ViT", "fit_to_multiple", "get", "l2_pool", "names", "normalize", "trunk_features",
    "vgg_layer_names",
]


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and what its taps are.

    Attributes:
      name: registry name.
      build: ``build(taps=..., **module_options) -> nn.Module``; the module maps a [0, 1] NHWC image
        (and ``train``) to a dict of taps.
      default_taps: multi-scale taps used by DISTS-style metrics (shallow to deep).
      tap_channels: channels of every tap name the backbone knows.
      min_size: smallest input side the default taps accept.
      multiple: input sides must be multiples of this (patch sizes of transformers), else 1.
      head_tap: the tap discriminator heads use (a feature map, N x h x w x C).
      full_taps: taps that make the module create every parameter of the trunk (for conversion).
    """

    name: str
    build: Callable[..., nn.Module]
    default_taps: tuple[str, ...]
    tap_channels: dict[str, int]
    min_size: int
    multiple: int = 1
    head_tap: str = ""
    full_taps: tuple[str, ...] = ()

    def channels(self, taps: Sequence[str]) -> list[int]:
        return [self.tap_channels[t] for t in taps]


def _spec(name: str, module: Callable[..., nn.Module], default_taps: tuple[str, ...], **fields) -> BackboneSpec:
    """A spec whose ``build`` returns the default taps unless ``taps=`` is given."""
    return BackboneSpec(name, lambda **kw: module(**{"taps": default_taps, **kw}), default_taps, **fields)


def _vgg_spec(depth: int) -> BackboneSpec:
    channels = {}
    for b, (n, c) in enumerate(VGG_BLOCKS[depth], 1):
        channels[f"pool{b}"] = c
        for i in range(1, n + 1):
            channels[f"conv{b}_{i}"] = channels[f"relu{b}_{i}"] = c
    last = {16: 3, 19: 4}[depth]
    taps = ("relu1_2", "relu2_2", f"relu3_{last}", f"relu4_{last}", f"relu5_{last}")
    return _spec(f"vgg{depth}", functools.partial(VGG, depth=depth), taps, tap_channels=channels, min_size=16,
                 head_tap=f"relu5_{last}", full_taps=taps[-1:])


def _alexnet_spec() -> BackboneSpec:
    channels = {}
    for name, (c, *_) in ALEXNET_LAYERS.items():
        channels[name] = channels["relu" + name[-1]] = c
    taps = tuple(f"relu{i}" for i in range(1, 6))
    return _spec("alexnet", AlexNet, taps, tap_channels=channels, min_size=31, head_tap="relu5",
                 full_taps=("relu5",))


def _resnet50_spec() -> BackboneSpec:
    channels = {"stem": 64, "layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048, "pool": 2048}
    return _spec("resnet50", functools.partial(ResNet, depth=50), ("stem", "layer1", "layer2", "layer3", "layer4"),
                 tap_channels=channels, min_size=32, head_tap="layer4", full_taps=("layer4",))


def _convnext_t_spec() -> BackboneSpec:
    dims = (96, 192, 384, 768)
    channels = {"stem": 96, **{f"stage{i}": d for i, d in enumerate(dims, 1)}}
    return _spec("convnext_t", functools.partial(ConvNeXt, depths=(3, 3, 9, 3), dims=dims),
                 ("stage1", "stage2", "stage3", "stage4"), tap_channels=channels, min_size=32, head_tap="stage4",
                 full_taps=("stage4",))


def _swin_t_spec() -> BackboneSpec:
    channels = {"stage1": 96, "stage2": 192, "stage3": 384, "stage4": 768, "norm": 768}
    return _spec("swin_t", SwinTransformer, ("stage1", "stage2", "stage3", "stage4"), tap_channels=channels,
                 min_size=32, multiple=4, head_tap="norm", full_taps=("norm",))


def _vit_spec(name: str) -> BackboneSpec:
    preset = VIT_PRESETS[name]
    width, depth, patch = preset["width"], preset["depth"], preset["patch"]
    channels = {"cls": width, "patches": width, **{f"block{k}": width for k in range(1, depth + 1)}}
    taps = tuple(f"block{k}" for k in range(depth // 4, depth + 1, depth // 4))
    return _spec(name, functools.partial(ViT, **preset), taps, tap_channels=channels, min_size=patch,
                 multiple=patch, head_tap="patches", full_taps=("cls", "patches"))


_REGISTRY: dict[str, BackboneSpec] = {s.name: s for s in (
    _vgg_spec(16), _vgg_spec(19), _alexnet_spec(), _resnet50_spec(), _convnext_t_spec(), _swin_t_spec(),
    _vit_spec("dinov2_s14"), _vit_spec("dinov2_b14"), _vit_spec("clip_b32"))}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown backbone {name!r}; known: {', '.join(names())}") from None


def fit_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
    """``x`` resized (bilinear, antialiased) to the nearest sides that are multiples of ``multiple`` (a
    transformer's patch size); unchanged when they already are."""
    if multiple <= 1 or (x.shape[1] % multiple == 0 and x.shape[2] % multiple == 0):
        return x
    size = [max(multiple, multiple * round(s / multiple)) for s in x.shape[1:3]]
    return jax.image.resize(x, (x.shape[0], *size, x.shape[3]), "bilinear", antialias=True)


def trunk_features(x: jax.Array, *, backbone: str, taps: tuple[str, ...], frozen: bool, train: bool, dtype: Any,
                   initializing: bool) -> dict[str, jax.Array]:
    """Features ``{tap: array}`` of a backbone trunk built under the ``backbone`` variable scope of the
    module whose compact method calls this (the discriminator heads, the NR-IQA model).

    The whole trunk is built (``full_taps``), so pretrained or transferred trunk variables fit it exactly.
    ``frozen`` stops gradients at the trunk's parameters (not at the image: a generator still learns
    through a frozen discriminator) and keeps its batch norms in inference mode. ``initializing``: the
    calling module's ``is_initializing()``."""
    spec = get(backbone)
    x = fit_to_multiple(x, spec.multiple)
    trunk = spec.build(taps=tuple(dict.fromkeys(tuple(taps) + spec.full_taps)), dtype=dtype, name="backbone")
    if frozen:
        run = nn.map_variables(lambda module, image: module(image, train=False), "params",
                               trans_in_fn=jax.lax.stop_gradient, init=initializing)
        return run(trunk, x)
    return trunk(x, train=train)

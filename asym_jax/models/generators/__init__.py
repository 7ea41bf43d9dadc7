"""Super-resolution generators, built by name: ``get(name, **options) -> flax module``.

* ``rrdbnet``: ESRGAN / Real-ESRGAN RRDBNet (BasicSR argument names);
* ``swinir``: SwinIR (official argument names); ``swinir_m`` and ``swinir_light`` are the classical "M"
  and lightweight presets (other options override them).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn

from asym_jax.errors import InputError
from asym_jax.models.generators.rrdbnet import RRDBNet, pixel_unshuffle, upsample_nearest
from asym_jax.models.generators.swinir import SWINIR_PRESETS, SwinIR, pixel_shuffle

__all__ = ["GeneratorInfo", "RRDBNet", "SWINIR_PRESETS", "SwinIR", "get", "info", "names", "pixel_shuffle",
           "pixel_unshuffle", "upsample_nearest"]


@dataclasses.dataclass(frozen=True)
class GeneratorInfo:
    """What a trainer needs to know of a generator beyond its options.

    Attributes:
      build: ``build(**options) -> module``.
      scale_option: the constructor argument holding the upscaling factor (``scale`` in BasicSR's
        RRDBNet, ``upscale`` in SwinIR).
      stochastic: ``__call__`` takes ``deterministic`` and draws from a ``"dropout"`` RNG when it is False
        (SwinIR's stochastic depth).
    """

    build: Callable[..., nn.Module]
    scale_option: str
    stochastic: bool


_REGISTRY = {
    "rrdbnet": GeneratorInfo(lambda **o: RRDBNet(**o), "scale", False),
    "swinir": GeneratorInfo(lambda **o: SwinIR(**o), "upscale", True),
    "swinir_m": GeneratorInfo(lambda **o: SwinIR(**{**SWINIR_PRESETS["classical_m"], **o}), "upscale", True),
    "swinir_light": GeneratorInfo(lambda **o: SwinIR(**{**SWINIR_PRESETS["lightweight"], **o}), "upscale", True),
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def info(name: str) -> GeneratorInfo:
    """Registry metadata of generator ``name``."""
    if name not in _REGISTRY:
        raise InputError(f"unknown generator {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name]


def get(name: str, **options) -> nn.Module:
    """Builds generator ``name`` with ``options`` (the reference constructors' argument names)."""
    builder = info(name).build
    try:
        return builder(**options)
    except TypeError as error:
        raise InputError(f"generator {name!r}: {error}") from None

"""Super-resolution generators, built by name: ``get(name, **options) -> flax module``.

* ``rrdbnet``: ESRGAN / Real-ESRGAN RRDBNet (BasicSR argument names);
* ``swinir``: SwinIR (official argument names); ``swinir_m`` and ``swinir_light`` are the classical "M"
  and lightweight presets (other options override them).
"""

from __future__ import annotations

import flax.linen as nn

from asym_jax.errors import InputError
from asym_jax.models.generators.rrdbnet import RRDBNet, pixel_unshuffle, upsample_nearest
from asym_jax.models.generators.swinir import SWINIR_PRESETS, SwinIR, pixel_shuffle

__all__ = ["RRDBNet", "SWINIR_PRESETS", "SwinIR", "get", "names", "pixel_shuffle", "pixel_unshuffle",
           "upsample_nearest"]

_BUILDERS = {
    "rrdbnet": lambda **o: RRDBNet(**o),
    "swinir": lambda **o: SwinIR(**o),
    "swinir_m": lambda **o: SwinIR(**{**SWINIR_PRESETS["classical_m"], **o}),
    "swinir_light": lambda **o: SwinIR(**{**SWINIR_PRESETS["lightweight"], **o}),
}


def names() -> list[str]:
    return sorted(_BUILDERS)


def get(name: str, **options) -> nn.Module:
    """Builds generator ``name`` with ``options`` (the reference constructors' argument names)."""
    if name not in _BUILDERS:
        raise InputError(f"unknown generator {name!r}; known: {', '.join(names())}")
    try:
        return _BUILDERS[name](**options)
    except TypeError as error:
        raise InputError(f"generator {name!r}: {error}") from None

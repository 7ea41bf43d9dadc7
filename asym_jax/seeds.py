"""Randomness by purpose: every random component of a run draws from its own key, derived from
``config.seed`` and a fixed name.

``component_key(seed, name) = fold_in(PRNGKey(seed), crc32(name))``: the generator's and the
discriminator's initialisations, each random trunk, the training step's dropout stream and the data
pipeline never share a stream, so (for example) a random VGG-16 discriminator trunk and a random VGG-16
fidelity trunk ("VGG-16-R") of the same run hold different weights. APIs that take an integer seed
(random trunks, the grain pipeline) get :func:`component_seed`, 31 bits drawn from that key.

Data on several hosts: every host reads a disjoint slice of the records (``records[host::hosts]``), and
shuffles and augments it with its own seed, ``fold_in(component_key(seed, "data"), host)``; so the global
batch is deterministic for a given seed and host count, and no two hosts repeat each other's crops.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np

__all__ = ["COMPONENTS", "component_key", "component_seed", "data_seed"]

# The names in use; any other name works too (the test checks these are distinct after hashing).
COMPONENTS = ("generator", "discriminator", "discriminator_trunk", "fidelity_trunk", "pixel_trunk", "step", "data")


def _name_id(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def component_key(seed: int, name: str) -> jax.Array:
    """The PRNG key of component ``name`` of a run seeded with ``seed``."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), _name_id(name))


def _to_int(key: jax.Array) -> int:
    return int(np.asarray(jax.random.bits(key, (), np.uint32))) & 0x7FFFFFFF


def component_seed(seed: int, name: str) -> int:
    """A 31-bit integer seed for component ``name`` (for APIs that take an int)."""
    return _to_int(component_key(seed, name))


def data_seed(seed: int, process_index: int = 0) -> int:
    """The grain seed of host ``process_index``'s data pipeline."""
    return _to_int(jax.random.fold_in(component_key(seed, "data"), process_index))

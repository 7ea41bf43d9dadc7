"""A trained NR-IQA model as a metric: the spec ``nr:<workdir>[@<step>]`` scores images with no reference.

The model is the one an ``iqa_nr`` run saved (:class:`asym_jax.models.iqa.NRIQA`, restored by
:func:`asym_jax.weights.runs.restore_nr_model`): the latest checkpoint of ``<workdir>``, or ``<step>``.
Scores are the model's output, higher is better (the job trains on targets oriented so), in float32
whatever dtype the run trained in. The reference ``y`` of the metric interface is ignored, so the metric
runs wherever full-reference metrics run (score CLI, ``iqa_fr`` tables, SR evaluation).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from asym_jax.errors import InputError

__all__ = ["NRModel", "nr_params", "nr_quality"]


@struct.dataclass
class NRModel:
    """The restored variables (the pytree leaves) and the architecture (static)."""

    variables: Any
    backbone: str = struct.field(pytree_node=False)
    taps: tuple[str, ...] = struct.field(pytree_node=False)
    pooling: str = struct.field(pytree_node=False)
    hidden: int = struct.field(pytree_node=False)


def nr_params(run: str = "") -> NRModel:
    """The model of ``run`` (``"<workdir>[@<step>]"``)."""
    from asym_jax.weights.runs import NR_PREFIX, restore_nr_model

    if not run:
        raise InputError("nr: name the iqa_nr run whose model scores, nr:<workdir>[@<step>]")
    architecture, variables, _ = restore_nr_model(f"{NR_PREFIX}{run}")
    return NRModel(variables=jax.tree.map(jnp.asarray, variables), **architecture)


def nr_quality(x: jax.Array, y: jax.Array | None = None, *, params: NRModel) -> jax.Array:
    """Per-image quality of ``x`` (NHWC in [0, 1]) by the NR-IQA model ``params``; ``y`` is ignored."""
    from asym_jax.models.iqa import NRIQA

    x = jnp.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise InputError(f"nr: expected NHWC RGB batches (4 dimensions, 3 channels), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise InputError(f"nr: x must be a float array in [0, 1], got dtype {x.dtype}")
    model = NRIQA(backbone=params.backbone, taps=params.taps, pooling=params.pooling, hidden=params.hidden)
    return model.apply(params.variables, x.astype(jnp.float32), train=False)

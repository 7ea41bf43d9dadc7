"""The SR-GAN train state and its optimisers: one pytree holding everything a resumed run needs."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainState", "make_optimizer", "make_schedule", "trunk_frozen_mask"]


class TrainState(flax.struct.PyTreeNode):
    """Generator and discriminator parameters, the discriminator's running state (batch statistics,
    spectral-norm vectors), both optimiser states, the generator EMA, the step and the RNG key."""

    step: jax.Array
    g_params: Any
    g_ema: Any
    g_opt: Any
    d_params: Any
    d_state: Any                 # non-parameter collections of the discriminator ({} if none)
    d_opt: Any
    rng: jax.Array               # raw uint32[2] key data (checkpointable as a plain array)


def trunk_frozen_mask(params) -> dict:
    """The ``frozen`` mask of :func:`make_optimizer` for a model whose trunk lives under ``params["backbone"]``
    (a discriminator head, the NR-IQA model): True for the trunk's leaves."""
    return {k: jax.tree.map(lambda _: k == "backbone", v) for k, v in params.items()}


def make_schedule(o, num_train_steps: int) -> optax.Schedule:
    """Learning-rate schedule from an optimiser config (constant, multistep, cosine; linear warm-up)."""
    if o.schedule == "constant":
        schedule = optax.constant_schedule(o.lr)
    elif o.schedule == "multistep":
        # join_schedules hands the part after the warm-up its own count (step - warmup_steps): milestones are
        # global steps, so they are shifted by the warm-up here.
        schedule = optax.piecewise_constant_schedule(o.lr, {int(m) - o.warmup_steps: float(o.gamma)
                                                            for m in o.milestones})
    else:
        schedule = optax.cosine_decay_schedule(o.lr, max(1, num_train_steps - o.warmup_steps))
    if o.warmup_steps:
        warmup = optax.linear_schedule(0.0, o.lr, o.warmup_steps)
        schedule = optax.join_schedules([warmup, schedule], [o.warmup_steps])
    return schedule


def make_optimizer(o, num_train_steps: int, *, first_step: int = 0,
                   frozen: Any = None) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Adam(W) with the config's betas, schedule and optional global-norm clipping.

    Returns ``(tx, schedule)``; ``schedule`` is a function of the *global* training step. ``first_step``
    is the global step of this optimiser's first update (the discriminator's starts at
    ``adversarial_start_step``): its count is shifted so milestones, warm-up and the cosine end fall on
    the same global steps as the generator's. ``frozen``: a pytree of bools (True = frozen) matching the
    parameters; frozen leaves get no update, no weight decay.
    """
    schedule = make_schedule(o, num_train_steps)
    by_count = schedule if not first_step else (lambda count: schedule(count + first_step))
    parts = []
    if o.clip_norm:
        parts.append(optax.clip_by_global_norm(o.clip_norm))
    if o.weight_decay:
        parts.append(optax.adamw(by_count, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay))
    else:
        parts.append(optax.adam(by_count, b1=o.b1, b2=o.b2))
    tx = optax.chain(*parts)
    if frozen is not None and any(jax.tree.leaves(frozen)):
        labels = jax.tree.map(lambda f: "frozen" if f else "train", frozen)
        tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
    return tx, schedule


def ema_update(ema, params, decay: float):
    return jax.tree.map(lambda e, p: (decay * e + (1.0 - decay) * p).astype(e.dtype), ema, params)


def global_norm(tree) -> jax.Array:
    return optax.global_norm(jax.tree.map(lambda x: x.astype(jnp.float32), tree))

"""The jitted SR-GAN step: a generator update on pixel + fidelity + weighted adversarial loss, then a
discriminator update on the same (stop-gradient) SR batch.

Pure: ``step(state, losses, batch) -> (state, metrics)``; the losses (pytrees holding their networks'
weights) come in as an argument, so nothing large is baked into the compiled program as a constant.
``metrics["finite"]`` is 1 when every loss, gradient norm and updated-parameter norm is finite, so a state
is never saved or evaluated after an update that overflowed.
``adversarial=False`` (the generator-only phase before ``adversarial_start_step``) updates the generator
alone.

In the generator's update the discriminator runs in training mode (batch statistics, as BasicSR does)
but its state updates are discarded; the discriminator's own update then advances its batch statistics
and spectral-norm vectors once per step, on real then fake images.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from asym_jax.losses.adversarial import discriminator_loss, generator_loss
from asym_jax.train.state import TrainState, ema_update, global_norm

__all__ = ["Losses", "StepConfig", "make_train_step", "to_unit"]


class Losses(flax.struct.PyTreeNode):
    """The generator's non-adversarial losses (``None`` where a term is off)."""

    pixel: Any = None
    fidelity: Any = None


@dataclasses.dataclass(frozen=True)
class StepConfig:
    g_apply: Callable                  # (params, lr, rng, train) -> sr float32
    d_apply: Callable                  # (variables, x, train, mutable) -> (logits, new_state)
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    g_schedule: optax.Schedule        # learning rates by global step (for the logs)
    d_schedule: optax.Schedule
    adversarial_kind: str
    pixel_weight: float
    fidelity_weight: float
    gan_weight: float
    ema_decay: float
    remat_loss: bool = False           # recompute the fidelity loss's forward pass in the backward pass


def to_unit(images: jax.Array) -> jax.Array:
    """uint8 batch -> float32 in [0, 1] (training batches travel as uint8)."""
    return images.astype(jnp.float32) / 255.0


def make_train_step(cfg: StepConfig, *, adversarial: bool):
    def step(state: TrainState, losses: Losses, batch: dict) -> tuple[TrainState, dict]:
        lr, hr = to_unit(batch["lr"]), to_unit(batch["hr"])
        key = jax.random.wrap_key_data(state.rng)
        key, g_key = jax.random.split(key)
        d_frozen = jax.lax.stop_gradient(state.d_params)

        def g_objective(g_params):
            sr = cfg.g_apply(g_params, lr, g_key, True)
            terms = {}
            total = jnp.zeros((), jnp.float32)
            if losses.pixel is not None:
                terms["pixel"] = losses.pixel(sr, hr)
                total += cfg.pixel_weight * terms["pixel"]
            if losses.fidelity is not None:
                fidelity = jax.checkpoint(losses.fidelity) if cfg.remat_loss else losses.fidelity
                terms["fidelity"] = fidelity(sr, hr)
                total += cfg.fidelity_weight * terms["fidelity"]
            if adversarial:
                variables = {"params": d_frozen, **state.d_state}
                fake, _ = cfg.d_apply(variables, sr, True)
                real = cfg.d_apply(variables, hr, True)[0] if cfg.adversarial_kind == "relativistic" else None
                terms["g_gan"] = generator_loss(cfg.adversarial_kind, fake, real)
                total += cfg.gan_weight * terms["g_gan"]
            terms["g_total"] = total
            return total, (sr, terms)

        (_, (sr, metrics)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        g_updates, g_opt = cfg.g_tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)
        metrics["g_grad_norm"] = global_norm(g_grads)
        metrics["g_param_norm"] = global_norm(g_params)  # a finite loss can still step into Inf/NaN parameters
        metrics["lr_g"] = jnp.asarray(cfg.g_schedule(state.step), jnp.float32)
        new = state.replace(step=state.step + 1, g_params=g_params, g_opt=g_opt,
                            g_ema=ema_update(state.g_ema, g_params, cfg.ema_decay),
                            rng=jax.random.key_data(key))
        if adversarial:
            sr_fixed = jax.lax.stop_gradient(sr)

            def d_objective(d_params):
                real, d_state = cfg.d_apply({"params": d_params, **state.d_state}, hr, True)
                fake, d_state = cfg.d_apply({"params": d_params, **d_state}, sr_fixed, True)
                loss = discriminator_loss(cfg.adversarial_kind, real, fake)
                return loss, (d_state, real, fake)

            (d_loss, (d_state, real, fake)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(state.d_params)
            d_updates, d_opt = cfg.d_tx.update(d_grads, state.d_opt, state.d_params)
            d_params = optax.apply_updates(state.d_params, d_updates)
            new = new.replace(d_params=d_params, d_opt=d_opt, d_state=d_state)
            metrics.update(d_loss=d_loss, d_real=jnp.mean(real), d_fake=jnp.mean(fake),
                           d_grad_norm=global_norm(d_grads), d_param_norm=global_norm(d_params),
                           lr_d=jnp.asarray(cfg.d_schedule(state.step), jnp.float32))
        metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
        metrics["finite"] = jnp.all(jnp.asarray([jnp.isfinite(v) for v in metrics.values()])).astype(jnp.float32)
        return new, metrics

    return step

"""GAN objectives as pure functions of discriminator logits.

Logits may have any shape: ``(B,)`` or ``(B, 1)`` for image-level heads, ``(B, H, W, 1)`` for patch
heads; every loss is a mean over *all* elements (as BasicSR's ``GANLoss``). Logits are cast to float32
first, so bfloat16 heads give float32 losses, and the BCE terms use ``softplus`` (``log(1 + e^x)``
evaluated without overflow), so they stay finite for logits of any magnitude.

With ``sp = softplus`` (``BCEWithLogits(l, 1) = sp(-l)``, ``BCEWithLogits(l, 0) = sp(l)``):

=================  =====================================  ===================================================
kind               generator (fake ``f``, real ``r``)     discriminator
=================  =====================================  ===================================================
``vanilla``        ``mean sp(-f)`` (non-saturating)       ``mean sp(-r) + mean sp(f)``
``lsgan``          ``mean (f - 1)^2``                     ``mean (r - 1)^2 + mean f^2``
``hinge``          ``-mean f``                            ``mean relu(1 - r) + mean relu(1 + f)``
``relativistic``   ``(mean sp(r - mean f)                 ``(mean sp(-(r - mean f))
                   + mean sp(-(f - mean r))) / 2``        + mean sp(f - mean r)) / 2``
=================  =====================================  ===================================================

The first three reproduce BasicSR 1.4.2 ``GANLoss`` (``gan_type`` of the same name, labels 1/0) as
``SRGANModel`` uses it: the discriminator loss is the *sum* of its real and fake terms (BasicSR calls
``backward`` on each). ``relativistic`` is the relativistic average GAN of ESRGAN (``ESRGANModel``
with ``gan_type='vanilla'``): each logit is compared with the mean of the other side's logits (a mean
over the whole batch and every patch), and both the generator and the discriminator loss average a
real and a fake term.

Loss weights (e.g. 0.1 in Real-ESRGAN, 5e-3 in ESRGAN) are the trainer's business; these functions
return unweighted losses. ``kind`` must be a Python string (static under ``jax.jit``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError

__all__ = ["KINDS", "discriminator_loss", "generator_loss"]

KINDS = ("vanilla", "lsgan", "hinge", "relativistic")


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or kind not in KINDS:
        raise InputError(f"unknown GAN loss kind {kind!r}; known: {', '.join(KINDS)}")


def _logits(name: str, logits) -> jax.Array:
    if logits is None:
        raise InputError(f"{name} are required")
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise InputError(f"{name} must be a float array, got dtype {logits.dtype}")
    if logits.size == 0:
        raise InputError(f"{name} are empty (shape {logits.shape})")
    return logits.astype(jnp.float32)


def _bce_real(logits: jax.Array) -> jax.Array:
    """``BCEWithLogits(logits, 1)`` averaged: ``mean softplus(-logits)``."""
    return jnp.mean(jax.nn.softplus(-logits))


def _bce_fake(logits: jax.Array) -> jax.Array:
    """``BCEWithLogits(logits, 0)`` averaged: ``mean softplus(logits)``."""
    return jnp.mean(jax.nn.softplus(logits))


def generator_loss(kind: str, fake_logits: jax.Array, real_logits: jax.Array | None = None) -> jax.Array:
    """The generator's adversarial loss (a float32 scalar, lower is better for the generator).

    Args:
      kind: one of :data:`KINDS`.
      fake_logits: discriminator logits of generated images (any shape).
      real_logits: discriminator logits of real images; required by ``"relativistic"``, ignored by the
        others. No gradient needs to flow through them (BasicSR detaches them); pass them as computed.
    """
    _check_kind(kind)
    fake = _logits("fake_logits", fake_logits)
    if kind == "vanilla":
        return _bce_real(fake)
    if kind == "lsgan":
        return jnp.mean(jnp.square(fake - 1.0))
    if kind == "hinge":
        return -jnp.mean(fake)
    real = _logits("real_logits (the relativistic generator loss compares with real images)", real_logits)
    return 0.5 * (_bce_fake(real - jnp.mean(fake)) + _bce_real(fake - jnp.mean(real)))


def discriminator_loss(kind: str, real_logits: jax.Array, fake_logits: jax.Array, *,
                       detach_means: bool = False) -> jax.Array:
    """The discriminator's loss (a float32 scalar).

    Args:
      kind: one of :data:`KINDS`.
      real_logits: discriminator logits of real images (any shape).
      fake_logits: discriminator logits of generated images, computed from ``stop_gradient`` images so
        that no gradient reaches the generator.
      detach_means: ``"relativistic"`` only: stop the gradient through the mean of the other side in each
        term, as BasicSR 1.4.2 ``ESRGANModel`` does (it back-propagates its real and fake terms separately,
        with the other side's mean detached). The default, ``False``, differentiates through both means,
        as the relativistic average GAN is defined (and as the original ESRGAN code did). The value is the
        same either way; only the discriminator's gradient differs.
    """
    _check_kind(kind)
    if detach_means and kind != "relativistic":
        raise InputError(f"detach_means applies to the 'relativistic' loss only, not {kind!r}")
    real = _logits("real_logits", real_logits)
    fake = _logits("fake_logits", fake_logits)
    if kind == "vanilla":
        return _bce_real(real) + _bce_fake(fake)
    if kind == "lsgan":
        return jnp.mean(jnp.square(real - 1.0)) + jnp.mean(jnp.square(fake))
    if kind == "hinge":
        return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))
    mean_real, mean_fake = jnp.mean(real), jnp.mean(fake)
    if detach_means:
        mean_real, mean_fake = jax.lax.stop_gradient(mean_real), jax.lax.stop_gradient(mean_fake)
    return 0.5 * (_bce_real(real - mean_fake) + _bce_fake(fake - mean_real))

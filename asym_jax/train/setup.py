"""Building what the ``sr_gan`` job trains from its config: networks, trunk weights, losses, initial state.

Everything that can fail on a missing asset (pretrained trunks, converted checkpoints) fails here, before
any data is read or anything compiles, with the command that makes the missing file.
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.models import discriminators, generators
from asym_jax.train.config import ConfigError

__all__ = ["Networks", "build_losses", "build_networks", "init_variables", "trunk_weights"]

_TRUNK_METRICS = {"dists_style": None, "perceptual_vgg19": "vgg19"}  # losses whose trunk weights we resolve


def trunk_weights(backbone: str, config, what: str) -> str:
    """The ``weights`` argument for a pretrained ``backbone`` trunk: offline ImageNet weights, else the
    converted checkpoint ``<weights_dir>/<backbone>``; ``init=random`` gives seeded random weights."""
    from asym_jax.weights.backbones import checkpoint_hint, has_offline_imagenet

    if config.init == "random":
        return "random"
    if has_offline_imagenet(backbone):
        return "imagenet"
    expected = pathlib.Path(config.weights_dir) / backbone
    if expected.exists():
        return str(expected)
    raise ConfigError(
        f"{what} needs pretrained {backbone} weights, which do not install offline: expected the converted "
        f"checkpoint {expected}. Make it from {checkpoint_hint(backbone)} with: python -m asym_jax.weights convert "
        f"--arch {backbone} --src FILE --dst {expected}  (or run with --config.init=random)")


@dataclasses.dataclass(frozen=True)
class Networks:
    generator: Any
    discriminator: Any
    g_apply: Callable          # (params, lr, key, train) -> sr float32
    d_apply: Callable          # (variables, x, train) -> (logits, new non-param state)
    d_backbone: str | None     # the discriminator's trunk, if it is a backbone head
    d_frozen: bool


def _dtype(config):
    return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def build_networks(config) -> Networks:
    g_opts = dict(config.generator_options)
    scale_key = "scale" if config.generator == "rrdbnet" else "upscale"
    if g_opts.get(scale_key, config.scale) != config.scale:
        raise ConfigError(f"generator_options.{scale_key}={g_opts[scale_key]} contradicts scale={config.scale}")
    g_opts[scale_key] = config.scale
    g_opts["dtype"] = _dtype(config)
    if config.remat:
        g_opts["remat"] = True
    generator = generators.get(config.generator, **g_opts)
    d_opts = dict(config.discriminator_options)
    d_opts["dtype"] = _dtype(config)
    discriminator = discriminators.get(config.discriminator, **d_opts)
    stochastic = "deterministic" in inspect.signature(type(generator).__call__).parameters

    def g_apply(params, lr, key, train):
        if stochastic:
            rngs = {"dropout": key} if (train and key is not None) else {}
            return generator.apply({"params": params}, lr, deterministic=not train, rngs=rngs)
        return generator.apply({"params": params}, lr)

    def d_apply(variables, x, train):
        logits, state = discriminator.apply(variables, x, train=train, mutable=["batch_stats"])
        return logits, dict(state)

    backbone = getattr(discriminator, "backbone", None) if isinstance(discriminator,
                                                                     discriminators.BackboneDiscriminator) else None
    return Networks(generator, discriminator, g_apply, d_apply, backbone,
                    bool(getattr(discriminator, "frozen", False)))


def discriminator_trunk_weights(config, networks: Networks) -> str | None:
    """The discriminator trunk's ``weights`` argument (None without a backbone trunk); resolved at start-up."""
    if networks.d_backbone is None:
        return None
    return trunk_weights(networks.d_backbone, config, f"discriminator {config.discriminator!r}")


def init_variables(config, networks: Networks, key: jax.Array, d_weights: str | None):
    """(generator params, discriminator params, discriminator state), the discriminator's trunk loaded
    from ``d_weights`` (see :func:`discriminator_trunk_weights`)."""
    from asym_jax.weights.backbones import with_backbone

    g_key, d_key = jax.random.split(key)
    lr = jnp.zeros((1, config.hr_size // config.scale, config.hr_size // config.scale, 3), jnp.float32)
    hr = jnp.zeros((1, config.hr_size, config.hr_size, 3), jnp.float32)
    g_vars = jax.jit(lambda k: networks.generator.init({"params": k, "dropout": k}, lr))(g_key)
    try:
        d_vars = jax.jit(lambda k: networks.discriminator.init({"params": k}, hr, train=False))(d_key)
    except ValueError as error:  # e.g. a VGG-style discriminator for another crop size
        raise ConfigError(f"discriminator {config.discriminator!r} on {config.hr_size}-px crops: {error}") from None
    if networks.d_backbone is not None:
        d_vars = with_backbone(d_vars, networks.d_backbone, d_weights, seed=config.seed)
    d_vars = dict(d_vars)
    d_params = d_vars.pop("params")
    return g_vars["params"], d_params, d_vars


def frozen_mask(networks: Networks, d_params):
    """True for the discriminator parameters that never train (a frozen trunk)."""
    if not networks.d_frozen:
        return None
    return {k: jax.tree.map(lambda _: k == "backbone", v) for k, v in d_params.items()}


def _parse(spec: str) -> tuple[str, dict]:
    from asym_jax.score import parse_metric
    return parse_metric(spec)


def build_losses(config):
    """The generator's pixel and fidelity losses (``Losses`` pytree; ``None`` where the weight is 0)."""
    from asym_jax.losses import get_loss
    from asym_jax.train.step import Losses

    pixel = fidelity = None
    try:
        if config.pixel_weight > 0:
            name, options = _parse(config.pixel_loss)
            pixel = get_loss(name, **options)
        if config.fidelity_weight > 0:
            name, options = _parse(config.fidelity)
            if name in _TRUNK_METRICS and "weights" not in options:
                backbone = _TRUNK_METRICS[name] or options.get("backbone", "vgg16")
                options["weights"] = trunk_weights(backbone, config, f"fidelity loss {config.fidelity!r}")
            if name == "perceptual_vgg19" and config.dtype == "bfloat16":
                options.setdefault("dtype", jnp.bfloat16)  # the VGG trunk in bf16, as PyTorch autocast runs it
                options.setdefault("precision", "default")
            fidelity = get_loss(name, **options)
    except ConfigError:
        raise
    except InputError as error:
        raise ConfigError(f"loss: {error}") from None
    return Losses(pixel=pixel, fidelity=fidelity)

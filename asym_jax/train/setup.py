"""Building what the ``sr_gan`` job trains from its config: networks, trunk weights, losses, initial state.

Every trunk (the discriminator's backbone, a deep fidelity loss's feature network) is resolved here into
a :class:`~asym_jax.weights.selection.Trunk`, before any data is read or anything compiles; a missing pretrained checkpoint fails with
the command that makes it. Each trunk is set by its own field and nothing else: the discriminator's by
``d_init``, a loss's by its spec (``"dists_style:backbone=resnet50,weights=random"``), so changing one
never changes another.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from asym_jax.errors import ConfigError, InputError
from asym_jax.models import discriminators, generators
from asym_jax.seeds import component_key
from asym_jax.weights.selection import Trunk, resolve_spec, resolve_trunk

__all__ = ["Networks", "build_losses", "build_networks", "discriminator_trunk", "frozen_mask", "eval_metrics",
           "init_variables"]


@dataclasses.dataclass(frozen=True)
class Networks:
    generator: Any
    discriminator: Any
    g_apply: Callable          # (params, lr, key, train) -> sr float32, in the run's compute dtype
    eval_apply: Callable       # (params, lr) -> sr float32: float32 compute, inference mode
    d_apply: Callable          # (variables, x, train) -> (logits, new non-param state)
    d_backbone: str | None     # the discriminator's trunk, if it is a backbone head
    d_frozen: bool


def _dtype(config):
    return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def build_networks(config) -> Networks:
    meta = generators.info(config.generator)
    g_opts = dict(config.generator_options)
    if g_opts.get(meta.scale_option, config.scale) != config.scale:
        raise ConfigError(f"generator_options.{meta.scale_option}={g_opts[meta.scale_option]} contradicts "
                          f"scale={config.scale}")
    g_opts[meta.scale_option] = config.scale
    if config.remat:
        g_opts["remat"] = True
    generator = generators.get(config.generator, **g_opts, dtype=_dtype(config))
    # Evaluation runs the same parameters in float32 (reported numbers do not depend on the training dtype).
    evaluator = generators.get(config.generator, **{k: v for k, v in g_opts.items() if k != "remat"},
                               dtype=jnp.float32)
    d_opts = dict(config.discriminator_options)
    d_opts["dtype"] = _dtype(config)
    discriminator = discriminators.get(config.discriminator, **d_opts)

    def g_apply(params, lr, key, train):
        if meta.stochastic:
            rngs = {"dropout": key} if (train and key is not None) else {}
            return generator.apply({"params": params}, lr, deterministic=not train, rngs=rngs)
        return generator.apply({"params": params}, lr)

    def eval_apply(params, lr):
        if meta.stochastic:
            return evaluator.apply({"params": params}, lr, deterministic=True)
        return evaluator.apply({"params": params}, lr)

    def d_apply(variables, x, train):
        logits, state = discriminator.apply(variables, x, train=train, mutable=["batch_stats"])
        return logits, dict(state)

    backbone = (discriminator.backbone if isinstance(discriminator, discriminators.BackboneDiscriminator)
                else None)
    return Networks(generator, discriminator, g_apply, eval_apply, d_apply, backbone,
                    bool(getattr(discriminator, "frozen", False)))


def discriminator_trunk(config, networks: Networks) -> Trunk | None:
    """The discriminator's trunk as ``d_init`` says (``None`` for discriminators without a backbone)."""
    backbone = networks.d_backbone
    if backbone is None:
        if config.d_init != "pretrained":
            raise ConfigError(f"d_init={config.d_init!r} sets a discriminator's backbone trunk, and discriminator "
                              f"{config.discriminator!r} has none (use a <backbone>_image / <backbone>_patch head)")
        return None
    return resolve_trunk(backbone, str(config.d_init), "discriminator", config,
                         what=f"discriminator {config.discriminator!r}", alternative="run with --config.d_init=random")


def _check_crop_size(loss, spec: str, role: str, hr_size: int) -> None:
    """Traces ``loss`` (no computation) on HR crops of the run's size, so that a model that needs larger images
    (VIF 41 px, MAD 34, CW-SSIM 2^(level+2), MS-SSIM ...) fails here, before anything compiles."""
    crop = jax.ShapeDtypeStruct((1, hr_size, hr_size, 3), jnp.float32)
    try:
        jax.eval_shape(loss, crop, crop)
    except InputError as error:
        raise ConfigError(f"{role} loss {spec!r} on {hr_size}-px HR crops (config.hr_size): {error}") from None


def build_losses(config):
    """The generator's pixel and fidelity losses (``Losses`` pytree; ``None`` where the weight is 0) and
    their trunks (``{role: Trunk}``)."""
    from asym_jax.losses import get_loss, loss_trunk
    from asym_jax.train.step import Losses

    built, trunks = {}, {}
    try:
        for role, spec, weight in (("pixel", config.pixel_loss, config.pixel_weight),
                                   ("fidelity", config.fidelity, config.fidelity_weight)):
            if weight <= 0:
                built[role] = None
                continue
            name, options, trunk = resolve_spec(spec, role, config, what=f"{role} loss")
            if loss_trunk(name, options) is not None:
                # A loss's feature network computes in the run's dtype at the platform's default precision
                # (as PyTorch autocast and TF32 run it); every reported metric stays float32 at HIGHEST.
                options.setdefault("dtype", jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32)
                options.setdefault("precision", "default")
            built[role] = get_loss(name, **options)
            _check_crop_size(built[role], spec, role, config.hr_size)
            if trunk is not None:
                trunks[role] = trunk
    except ConfigError:
        raise
    except InputError as error:
        raise ConfigError(f"loss: {error}") from None
    return Losses(pixel=built["pixel"], fidelity=built["fidelity"]), trunks


def eval_metrics(config) -> tuple[dict, dict]:
    """The evaluation metrics (``{spec: Metric}``, specs with the SR convention's options) and their trunks
    (``{"eval/<name>": Trunk}``), resolved as the losses' are (pretrained trunks from the offline assets or
    ``<weights_dir>``), so the manifest records every network a reported number depends on."""
    from asym_jax import metrics
    from asym_jax.eval.sr import sr_metric_specs

    bound, trunks = {}, {}
    try:
        for spec in sr_metric_specs(config.eval_metrics, config.scale).values():
            name = metrics.parse_spec(spec)[0]
            # an nr model is named by its run: two of them are two trunks
            name, options, trunk = resolve_spec(spec, f"eval/{spec if name == 'nr' else name}", config,
                                                what="evaluation metric")
            bound[spec] = metrics.get(name, **options)
            if trunk is not None:
                trunks[trunk.role] = trunk
    except ConfigError:
        raise
    except InputError as error:
        raise ConfigError(f"eval_metrics: {error}") from None
    return bound, trunks


def generator_init(config) -> Trunk | None:
    """The generator's starting weights as a manifest entry (role ``generator``, source pinned to its step:
    ``generator:W@STEP``), or None when it starts from its seed; the source run is checked now."""
    from asym_jax.weights.runs import GENERATOR_PREFIX, check_generator_source

    if not config.g_init:
        return None
    workdir, step = check_generator_source(config.g_init, {"generator": config.generator, "scale": config.scale,
                                                           "generator_options": config.generator_options.to_dict()})
    return Trunk(role="generator", backbone=config.generator, weights=f"{GENERATOR_PREFIX}{workdir}@{step}")


def init_variables(config, networks: Networks, d_trunk: Trunk | None, g_init: Trunk | None = None):
    """(generator params, discriminator params, discriminator state), each network initialised from its own
    key (:mod:`asym_jax.seeds`), the generator from ``g_init`` where given (:func:`generator_init`) and the
    discriminator's trunk loaded as ``d_trunk`` says."""
    from asym_jax.weights.runs import restore_generator
    from asym_jax.weights.trunks import with_backbone

    g_key = component_key(config.seed, "generator")
    d_key = component_key(config.seed, "discriminator")
    lr = jnp.zeros((1, config.hr_size // config.scale, config.hr_size // config.scale, 3), jnp.float32)
    hr = jnp.zeros((1, config.hr_size, config.hr_size, 3), jnp.float32)
    # Op by op, not one jitted program: a jitted init compiles one fused random-number kernel per parameter
    # (85 s for RRDBNet's 351 kernels on a 2-core CPU), op by op compiles one per distinct shape (13 s).
    g_vars = networks.generator.init({"params": g_key, "dropout": g_key}, lr)
    try:
        d_vars = networks.discriminator.init({"params": d_key}, hr, train=False)
    except ValueError as error:  # e.g. a VGG-style discriminator for another crop size
        raise ConfigError(f"discriminator {config.discriminator!r} on {config.hr_size}-px crops: {error}") from None
    if d_trunk is not None:
        d_vars = with_backbone(d_vars, d_trunk.backbone, d_trunk.weights, seed=d_trunk.seed or 0)
    d_vars = dict(d_vars)
    d_params = d_vars.pop("params")
    g_params = g_vars["params"]
    if g_init is not None:
        restored = restore_generator(g_init.weights, g_init.backbone)[0]
        shapes = [jax.tree.map(lambda a: tuple(a.shape), t) for t in (restored, dict(g_params))]
        if shapes[0] != shapes[1]:
            raise InputError(f"g_init {g_init.weights}: its generator's parameters differ from this run's "
                             f"{config.generator} (same name and options, other shapes)")
        g_params = jax.tree.map(lambda r, f: jnp.asarray(r, f.dtype), restored, dict(g_params))
    return g_params, d_params, d_vars


def frozen_mask(networks: Networks, d_params):
    """True for the discriminator parameters that never train (a frozen trunk)."""
    if not networks.d_frozen:
        return None
    from asym_jax.train.state import trunk_frozen_mask
    return trunk_frozen_mask(d_params)

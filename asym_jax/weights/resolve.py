"""Which weights each trunk of a job gets: a metric or loss spec, or a field like ``d_init``, resolved into
a :class:`Trunk` (backbone, weights, seed) before anything loads.

A spec without ``weights`` (or ``weights=imagenet``/``pretrained``) means the pretrained trunk: the offline
ImageNet weights where they install (VGG-16, AlexNet), else the converted checkpoint
``<config.weights_dir>/<backbone>``; a missing one fails with the command that makes it. ``weights=random``
gets a seed of its own (:func:`asym_jax.seeds.component_seed` of the job's seed and the trunk's role), so
two random trunks of one job differ. Used by every job (``sr_gan``, ``iqa_fr``, ``iqa_fr_train``).
"""

from __future__ import annotations

import dataclasses
import pathlib

from asym_jax.errors import ConfigError, InputError
from asym_jax.seeds import component_seed
from asym_jax.weights.runs import check_run_source, is_run_source

__all__ = ["Trunk", "pretrained_weights", "resolve_spec"]


@dataclasses.dataclass(frozen=True)
class Trunk:
    """One backbone trunk of a run: its role, the backbone, and the ``weights`` / ``seed`` arguments of
    :func:`asym_jax.weights.backbone_variables` that build it."""

    role: str                  # "discriminator", "fidelity", "pixel", "eval/<metric>", "metric/<spec>"
    backbone: str
    weights: str               # "imagenet", "random" or a path
    seed: int | None = None    # for "random"

    def provenance(self) -> dict:
        """The manifest record: ``{"backbone", "source", "seed", "sha256"}``."""
        from asym_jax.weights.trunks import trunk_provenance
        return trunk_provenance(self.backbone, self.weights, seed=self.seed or 0)

    def describe(self, record: dict | None = None) -> str:
        """One start-up line, e.g. ``trunk discriminator: vgg16 from imagenet (sha256 2ecbe4ce01168921)``."""
        record = record or self.provenance()
        detail = f"seed {record['seed']}" if record["seed"] is not None else (
            f"sha256 {record['sha256'][:16]}" if record["sha256"] else "no sha256")
        return f"trunk {self.role}: {self.backbone} from {record['source']} ({detail})"



def pretrained_weights(backbone: str, config, what: str, alternative: str) -> str:
    """The ``weights`` argument of a pretrained ``backbone`` trunk: ``"imagenet"`` where it installs
    offline (VGG-16, AlexNet), else the converted checkpoint ``<weights_dir>/<backbone>``; otherwise a
    :class:`ConfigError` with the convert command and ``alternative`` (how to run without it)."""
    from asym_jax.weights.trunks import checkpoint_hint, has_offline_imagenet

    if has_offline_imagenet(backbone):
        return "imagenet"
    expected = pathlib.Path(config.weights_dir) / backbone
    if expected.exists():
        return str(expected)
    raise ConfigError(
        f"{what} needs pretrained {backbone} weights, which do not install offline: expected the converted "
        f"checkpoint {expected}. Make it from {checkpoint_hint(backbone)} with: python -m asym_jax.weights convert "
        f"--arch {backbone} --src FILE --dst {expected}  (or {alternative})")


def resolve_spec(spec: str, role: str, config, *, what: str = "") -> tuple[str, dict, Trunk | None]:
    """``(name, options, trunk)`` of a loss or metric spec, with the trunk's weights resolved into ``options``.

    A spec without ``weights`` (or with ``weights=imagenet``/``pretrained``) means the pretrained trunk
    (:func:`pretrained_weights`); ``weights=random`` without ``seed`` gets this run's seed for ``role``;
    a path is taken as given. ``what`` names the spec's use in messages (default: ``role``).
    """
    from asym_jax import metrics
    from asym_jax.losses import loss_trunk

    name, options = metrics.parse_spec(spec)
    found = loss_trunk(name, options)
    if found is None:
        return name, options, None
    backbone, configurable = found
    if not configurable:  # a fixed trunk (the official DISTS: ImageNet VGG-16)
        return name, options, Trunk(role, backbone, "imagenet")
    weights = str(options.get("weights", "imagenet"))
    if weights in ("imagenet", "pretrained"):
        weights = pretrained_weights(backbone, config, f"{what or role} {spec!r}",
                                     "give the spec weights=random for a seeded random trunk")
        trunk = Trunk(role, backbone, weights)
    elif weights == "random":
        seed = int(options["seed"]) if "seed" in options else component_seed(config.seed, f"{role}_trunk")
        trunk = Trunk(role, backbone, "random", seed)
        options["seed"] = seed
    elif is_run_source(weights):
        try:
            check_run_source(weights, backbone)
        except InputError as error:
            raise ConfigError(f"{what or role} {spec!r}: {error}") from None
        trunk = Trunk(role, backbone, weights)
    else:
        if not pathlib.Path(weights).exists():
            raise ConfigError(f"{what or role} {spec!r}: weights {weights!r} is not 'imagenet', 'random' or an "
                              "existing converted folder or checkpoint file, or discriminator:<sr_gan workdir>[@<step>]")
        trunk = Trunk(role, backbone, weights)
    options["weights"] = trunk.weights
    return name, options, trunk

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

from asym_jax.errors import ConfigError, InputError
from asym_jax.io import local_path
from asym_jax.seeds import component_seed
from asym_jax.weights.runs import (DISCRIMINATOR_PREFIX, NR_PREFIX, check_nr_source, check_run_source, is_run_source,
                                   nr_run)

__all__ = ["Trunk", "pretrained_weights", "resolve_spec", "resolve_trunk"]


@dataclasses.dataclass(frozen=True)
class Trunk:
    """One backbone trunk of a run: its role, the backbone, and the ``weights`` / ``seed`` arguments of
    :func:`asym_jax.weights.backbone_variables` that build it."""

    role: str                  # "generator", "discriminator", "fidelity", "pixel", "eval/<metric>", "metric/<spec>"
    backbone: str              # the generator's name for role "generator"
    weights: str               # "imagenet", "random", a path, "discriminator:<workdir>@<step>"; for the nr
                               # metric "nr:<workdir>@<step>" (the whole NR-IQA model: trunk and head); for
                               # g_init "generator:<workdir>@<step>" (an sr_gan run's EMA generator)
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
    expected = local_path(config.weights_dir, "weights_dir") / backbone
    if expected.exists():
        return str(expected)
    raise ConfigError(
        f"{what} needs pretrained {backbone} weights, which do not install offline: expected the converted "
        f"checkpoint {expected}. Make it from {checkpoint_hint(backbone)} with: python -m asym_jax.weights convert "
        f"--arch {backbone} --src FILE --dst {expected}  (or {alternative})")


def resolve_trunk(backbone: str, weights: str, role: str, config, *, what: str, alternative: str,
                  seed: int | None = None) -> Trunk:
    """The :class:`Trunk` of ``backbone`` for a ``weights`` field: ``imagenet``/``pretrained``
    (:func:`pretrained_weights`; ``alternative`` says how to run without them), ``random`` (``seed``, else
    this job's seed for ``role``: ``component_seed(config.seed, role + "_trunk")``),
    ``discriminator:<workdir>[@<step>]`` (checked now, restored when loaded) or an existing converted folder
    or checkpoint file (a run source comes back pinned to its step: ``discriminator:W@STEP``). ``what`` names
    the field in messages."""
    if weights in ("imagenet", "pretrained"):
        return Trunk(role, backbone, pretrained_weights(backbone, config, what, alternative))
    if weights == "random":
        return Trunk(role, backbone, "random", component_seed(config.seed, f"{role}_trunk") if seed is None else seed)
    if is_run_source(weights):
        try:
            workdir, step = check_run_source(weights, backbone)
        except InputError as error:
            raise ConfigError(f"{what}: {error}") from None
        # Pinned to the step found now: every later read (trunk, head) sees that checkpoint, even while the
        # sr_gan run goes on saving.
        return Trunk(role, backbone, f"{DISCRIMINATOR_PREFIX}{workdir}@{step}")
    if not local_path(weights, f"{what}: weights").exists():
        raise ConfigError(f"{what}: weights {weights!r} is not 'imagenet', 'random', an existing converted folder or "
                          "checkpoint file, or discriminator:<sr_gan workdir>[@<step>]")
    return Trunk(role, backbone, weights)


def resolve_spec(spec: str, role: str, config, *, what: str = "") -> tuple[str, dict, Trunk | None]:
    """``(name, options, trunk)`` of a loss or metric spec, with the trunk's weights resolved into ``options``.

    A spec without ``weights`` (or with ``weights=imagenet``/``pretrained``) means the pretrained trunk
    (:func:`pretrained_weights`); ``weights=random`` without ``seed`` gets this run's seed for ``role``;
    a path is taken as given. ``what`` names the spec's use in messages (default: ``role``).
    """
    from asym_jax import metrics
    from asym_jax.losses import loss_trunk

    name, options = metrics.parse_spec(spec)
    if name == "nr":
        return name, options, _nr_trunk(options, role, f"{what or role} {spec!r}")
    found = loss_trunk(name, options)
    if found is None:
        return name, options, None
    backbone, configurable = found
    if not configurable:  # a fixed trunk (the official DISTS: ImageNet VGG-16)
        return name, options, Trunk(role, backbone, "imagenet")
    seed = int(options["seed"]) if "seed" in options else None
    trunk = resolve_trunk(backbone, str(options.get("weights", "imagenet")), role, config,
                          what=f"{what or role} {spec!r}", alternative="give the spec weights=random for a seeded "
                          "random trunk", seed=seed)
    if trunk.weights == "random":
        options["seed"] = trunk.seed
    options["weights"] = trunk.weights
    return name, options, trunk


def _nr_trunk(options: dict, role: str, what: str) -> Trunk:
    """The :class:`Trunk` of an ``nr`` metric's model, its ``run`` option pinned to ``<workdir>@<step>``
    (absolute workdir, the step found now)."""
    run = options.get("run")
    if not run:
        raise ConfigError(f"{what}: name the iqa_nr run, nr:<workdir>[@<step>]")
    try:
        workdir, step = check_nr_source(f"{NR_PREFIX}{run}")
        backbone = nr_run(workdir)["backbone"]
    except InputError as error:
        raise ConfigError(f"{what}: {error}") from None
    options["run"] = f"{workdir}@{step}"
    return Trunk(role, backbone, f"{NR_PREFIX}{workdir}@{step}")

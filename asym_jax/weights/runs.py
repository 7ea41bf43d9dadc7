"""Weights taken out of other runs' workdirs: a trained discriminator's trunk as a backbone initialisation,
and a trained NR-IQA model as a metric.

``weights="discriminator:<workdir>[@<step>]"`` is accepted wherever a backbone takes weights (NR-IQA models,
DISTS-style metrics and their training, discriminator trunks). It restores **only** the discriminator's
trunk of the ``sr_gan`` run in ``<workdir>`` (the latest checkpoint, or ``<step>``): an Orbax partial
restore of that subtree, so the generator, the optimiser states and the rest of the train state are never
read.

Key mapping (the ``sr_gan`` train state, :class:`asym_jax.train.state.TrainState`, saved by Orbax under
``<workdir>/checkpoints/<step>/state``)::

    d_params["backbone"]                  -> params       (the trunk, as backbone_variables lays it out)
    d_state["batch_stats"]["backbone"]    -> batch_stats  (backbones with batch norms, e.g. ResNet-50)
    d_params["head_fc1"], ["head_fc2"]    -> the head     (image-level heads: restore_discriminator_head)

The backbone is read from the run's ``config.json`` (``discriminator="<backbone>_image|_patch"``) and must be
the requested one. Each failure (no checkpoint, a missing step, a discriminator without a backbone trunk, a
backbone mismatch) is one :class:`InputError` naming the workdir and what was found there.

``g_init="generator:<workdir>[@<step>]"`` (the SR trainer) starts a generator from the EMA weights
(``g_ema``) of another ``sr_gan`` run with the same generator, options and scale (:func:`restore_generator`):
the two-stage recipe of ESRGAN and Real-ESRGAN, a PSNR-oriented model fine-tuned with perceptual and GAN
losses.

``nr:<workdir>[@<step>]`` (the metric spec of :mod:`asym_jax.metrics.nr`) restores the whole model of an
``iqa_nr`` run (:func:`restore_nr_model`): ``params`` and ``batch_stats`` of ``<workdir>/checkpoints/<step>/
state`` (the optimiser state is not read), with the architecture (backbone, taps, pooling, hidden) from
the run's ``config.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

import numpy as np

from asym_jax.errors import InputError
from asym_jax.io import WorkPath, workdir_path

__all__ = ["DISCRIMINATOR_PREFIX", "GENERATOR_PREFIX", "NR_PREFIX", "check_generator_source", "check_nr_source",
           "check_run_source", "checkpoint_steps", "discriminator_run", "is_run_source", "nr_run", "parse_run_source",
           "restore_discriminator_head", "restore_discriminator_trunk", "restore_generator", "restore_nr_model",
           "restore_subtree", "run_provenance", "tree_digest"]

DISCRIMINATOR_PREFIX = "discriminator:"
GENERATOR_PREFIX = "generator:"
NR_PREFIX = "nr:"
_GENERATOR_ARCHITECTURE = ("generator", "generator_options", "scale")
_NR_ARCHITECTURE = ("backbone", "taps", "pooling", "hidden")
_STATE_ITEM = "state"  # the train state's item in an sr_gan checkpoint (next to the data iterator's)


def is_run_source(weights: Any) -> bool:
    return isinstance(weights, str) and weights.startswith(DISCRIMINATOR_PREFIX)


def parse_run_source(weights: str, prefix: str = DISCRIMINATOR_PREFIX) -> tuple[WorkPath, int | None]:
    """``"discriminator:W[@STEP]"`` (or ``prefix`` + ``W[@STEP]``) -> ``(W, STEP or None)``."""
    if not (isinstance(weights, str) and weights.startswith(prefix)):
        raise InputError(f"{weights!r} is not a '{prefix}<workdir>[@<step>]' source")
    rest = weights[len(prefix):]
    path, at, step = rest.rpartition("@")
    if not at or "/" in step:
        path, step = rest, ""
    if not path:
        raise InputError(f"{weights!r}: no workdir after {prefix!r}")
    if step and not step.isdigit():
        raise InputError(f"{weights!r}: the step after '@' must be a non-negative integer, got {step!r}")
    return workdir_path(path).expanduser(), (int(step) if step else None)  # W may be gs://


def checkpoint_steps(workdir: WorkPath) -> list[int]:
    """The steps of the finished checkpoints in ``<workdir>/checkpoints`` (ascending)."""
    folder = workdir_path(workdir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.name.isdigit() and p.is_dir() and (p / _STATE_ITEM).is_dir()
                  and not any(p.glob("*.orbax-checkpoint-tmp*")))


def _select_step(workdir: WorkPath, step: int | None, what: str) -> int:
    steps = checkpoint_steps(workdir)
    if not steps:
        raise InputError(f"{what}: {workdir} has no checkpoint (no {workdir / 'checkpoints'}/<step>/state); "
                         "give the workdir of an sr_gan run that saved one")
    if step is None:
        return steps[-1]
    if step not in steps:
        raise InputError(f"{what}: {workdir} has no checkpoint at step {step}; it has steps "
                         f"{', '.join(map(str, steps))}")
    return step


def _run_config(workdir: WorkPath, job: str, what: str) -> dict:
    """The config.json of the ``job`` run in ``workdir``; one :class:`InputError` for anything else."""
    path = workdir_path(workdir) / "config.json"
    if not path.is_file():
        raise InputError(f"{what}: {workdir} has no config.json; give the workdir of an {job} run")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{what}: {path} is unreadable ({error!r})") from None
    if config.get("job") != job:
        raise InputError(f"{what}: {workdir} is a {config.get('job')!r} run, not an {job} run")
    return config


def discriminator_run(workdir: WorkPath, what: str = "") -> dict:
    """``{"discriminator", "backbone", "level", "options"}`` of the sr_gan run in ``workdir`` (its
    config.json); refuses a run whose discriminator has no backbone trunk."""
    from asym_jax.models import discriminators

    what = what or f"discriminator:{workdir}"
    config = _run_config(workdir, "sr_gan", what)
    name, options = str(config.get("discriminator")), dict(config.get("discriminator_options") or {})
    backbone, level = discriminators.backbone_of(name, options)
    if backbone is None:
        raise InputError(f"{what}: the discriminator of {workdir} is {name!r}, which has no backbone trunk "
                         "(only <backbone>_image and <backbone>_patch heads have one)")
    return {"discriminator": name, "backbone": backbone, "level": level,
            "options": options}


def restore_subtree(workdir: WorkPath, step: int, paths: list[tuple[str, ...]]) -> dict:
    """``{path: numpy subtree}`` restored from ``<workdir>/checkpoints/<step>/state`` for each key path (an
    Orbax partial restore: only these arrays are read). A path absent from the checkpoint maps to None."""
    import jax
    import orbax.checkpoint as ocp

    directory = workdir_path(workdir, absolute=True) / "checkpoints" / str(step) / _STATE_ITEM
    checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
    metadata = checkpointer.metadata(directory)
    tree = metadata.item_metadata.tree if hasattr(metadata, "item_metadata") else metadata.tree

    def subtree(path):
        node = tree
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    wanted, found = {}, {}
    for path in paths:
        node = subtree(path)
        found[path] = node is not None
        if node is None:
            continue
        target = wanted
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = node
    if not wanted:
        return {path: None for path in paths}
    item = jax.tree.map(lambda m: np.zeros((), np.float32), wanted)
    restore_args = jax.tree.map(lambda m: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
    restored = checkpointer.restore(directory, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args,
                                                                           partial_restore=True))
    out = {}
    for path in paths:
        node = restored if found[path] else None
        for key in path if found[path] else ():
            node = node[key]
        out[path] = None if node is None else jax.tree.map(np.asarray, node)
    return out


def check_run_source(weights: str, backbone: str) -> tuple[WorkPath, int]:
    """``(workdir, step)`` of ``"discriminator:W[@STEP]"`` after every check that needs no array (the run,
    its discriminator's backbone, the checkpoint step): jobs call it at start-up."""
    workdir, step = parse_run_source(weights)
    run = discriminator_run(workdir, weights)
    if run["backbone"] != backbone:
        raise InputError(f"{weights}: the discriminator of {workdir} ({run['discriminator']!r}) has a "
                         f"{run['backbone']} trunk, not the requested {backbone}")
    return workdir, _select_step(workdir, step, weights)


@functools.lru_cache(maxsize=4)
def restore_discriminator_trunk(weights: str, backbone: str) -> tuple[dict, dict]:
    """``(variables, record)``: the trunk variables (``params``, ``batch_stats`` where the backbone has
    them) of the run named by ``weights`` (``"discriminator:W[@STEP]"``), checked to be ``backbone``, and
    its provenance record (cached: a job's manifest and its model see the same arrays)."""
    workdir, step = check_run_source(weights, backbone)
    parts = restore_subtree(workdir, step, [("d_params", "backbone"), ("d_state", "batch_stats", "backbone")])
    params = parts[("d_params", "backbone")]
    if params is None:
        raise InputError(f"{weights}: the checkpoint at step {step} of {workdir} has no d_params/backbone")
    variables = {"params": params}
    if parts[("d_state", "batch_stats", "backbone")] is not None:
        variables["batch_stats"] = parts[("d_state", "batch_stats", "backbone")]
    return variables, run_provenance(workdir, step, backbone, variables)


def restore_discriminator_head(weights: str) -> tuple[dict, dict]:
    """``(head params {"head_fc1", "head_fc2"}, run)`` of an image-level discriminator (its logit is then
    an IQA score before any fine-tuning); refuses patch-level heads."""
    workdir, step = parse_run_source(weights)
    run = discriminator_run(workdir, weights)
    if run["level"] != "image":
        raise InputError(f"{weights}: head_init='discriminator' needs an image-level head; the discriminator "
                         f"of {workdir} is {run['discriminator']!r} (patch level)")
    step = _select_step(workdir, step, weights)
    parts = restore_subtree(workdir, step, [("d_params", "head_fc1"), ("d_params", "head_fc2")])
    if any(v is None for v in parts.values()):
        raise InputError(f"{weights}: the checkpoint at step {step} of {workdir} has no head_fc1/head_fc2")
    return {"head_fc1": parts[("d_params", "head_fc1")], "head_fc2": parts[("d_params", "head_fc2")]}, run


def nr_run(workdir: WorkPath, what: str = "") -> dict:
    """The architecture ``{"backbone", "taps", "pooling", "hidden"}`` of the iqa_nr run in ``workdir`` (its
    config.json). A ten-split run (``splits="all"``) holds one model per split: name one of them."""
    what = what or f"{NR_PREFIX}{workdir}"
    config = _run_config(workdir, "iqa_nr", what)
    splits = workdir_path(workdir) / "splits"
    if config.get("splits") == "all" and not checkpoint_steps(workdir) and splits.is_dir():
        raise InputError(f"{what}: {workdir} is a run over the seeded splits, one model each; give one of them, "
                         f"e.g. {NR_PREFIX}{splits / 'seed0'}")
    missing = [k for k in _NR_ARCHITECTURE if k not in config]
    if missing:
        raise InputError(f"{what}: {workdir / 'config.json'} has no {missing[0]!r}")
    return {"backbone": str(config["backbone"]), "taps": tuple(config["taps"]), "pooling": str(config["pooling"]),
            "hidden": int(config["hidden"])}


def check_nr_source(spec: str) -> tuple[WorkPath, int]:
    """``(workdir, step)`` of ``"nr:W[@STEP]"`` (W made absolute; the latest step where none is given), after
    every check that needs no array."""
    workdir, step = parse_run_source(spec, NR_PREFIX)
    nr_run(workdir, spec)
    return workdir_path(workdir, absolute=True), _select_step(workdir, step, spec)


@functools.lru_cache(maxsize=4)
def restore_nr_model(spec: str) -> tuple[dict, dict, dict]:
    """``(architecture, variables, record)`` of the iqa_nr model named by ``"nr:W[@STEP]"``: its
    ``params`` and ``batch_stats`` (an Orbax partial restore: the optimiser state is not read) and the
    provenance record (source pinned to the step, digest of the restored arrays)."""
    workdir, step = check_nr_source(spec)
    architecture = nr_run(workdir, spec)
    parts = restore_subtree(workdir, step, [("params",), ("batch_stats",)])
    if parts[("params",)] is None:
        raise InputError(f"{spec}: the checkpoint at step {step} of {workdir} has no params")
    variables = {"params": parts[("params",)]}
    if parts[("batch_stats",)]:
        variables["batch_stats"] = parts[("batch_stats",)]
    record = {"backbone": architecture["backbone"], "source": f"{NR_PREFIX}{workdir}@{step}", "seed": None,
              "sha256": tree_digest(variables)}
    return architecture, variables, record


def check_generator_source(spec: str, architecture: dict) -> tuple[WorkPath, int]:
    """``(workdir, step)`` of ``"generator:W[@STEP]"`` (W made absolute; the latest step where none is given)
    after checking that W is an sr_gan run of the same ``architecture`` (``{"generator", "generator_options",
    "scale"}``)."""
    workdir, step = parse_run_source(spec, GENERATOR_PREFIX)
    config = _run_config(workdir, "sr_gan", spec)
    theirs = {k: config.get(k) for k in _GENERATOR_ARCHITECTURE}
    theirs["generator_options"] = dict(theirs["generator_options"] or {})
    mine = {k: architecture[k] for k in _GENERATOR_ARCHITECTURE}
    mine["generator_options"] = json.loads(json.dumps(dict(mine["generator_options"] or {})))
    differs = [k for k in _GENERATOR_ARCHITECTURE if theirs[k] != mine[k]]
    if differs:
        raise InputError(f"{spec}: {workdir} trained another generator "
                         f"({', '.join(f'{k} {theirs[k]!r}' for k in differs)}; this run has "
                         f"{', '.join(f'{k} {mine[k]!r}' for k in differs)})")
    return workdir_path(workdir, absolute=True), _select_step(workdir, step, spec)


@functools.lru_cache(maxsize=2)
def restore_generator(spec: str, generator: str) -> tuple[dict, dict]:
    """``(params, record)``: the EMA generator weights (``g_ema``: the model that run evaluated) of the sr_gan
    run named by a pinned ``"generator:W@STEP"`` (check it first with :func:`check_generator_source`), and
    their provenance record."""
    workdir, step = parse_run_source(spec, GENERATOR_PREFIX)
    step = _select_step(workdir, step, spec)
    params = restore_subtree(workdir, step, [("g_ema",)])[("g_ema",)]
    if params is None:
        raise InputError(f"{spec}: the checkpoint at step {step} of {workdir} has no g_ema")
    return params, run_provenance(workdir, step, generator, params, GENERATOR_PREFIX)


def tree_digest(tree) -> str:
    """sha256 over a pytree's key paths, dtypes, shapes and bytes (identifies restored weights)."""
    import jax

    digest = hashlib.sha256()
    for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(tree)[0], key=lambda kv: jax.tree_util.keystr(kv[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def run_provenance(workdir: WorkPath, step: int, backbone: str, variables,
                   prefix: str = DISCRIMINATOR_PREFIX) -> dict:
    """The manifest record of weights restored from a run: the source names the workdir and the step."""
    return {"backbone": backbone, "source": f"{prefix}{workdir_path(workdir, absolute=True)}@{step}",
            "seed": None, "sha256": tree_digest(variables)}

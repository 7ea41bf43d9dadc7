"""The ``iqa_fr_train`` job (``configs/iqa_fr_train.py``): a DISTS-style metric learned on any backbone.

The trunk is frozen, so a DISTS-style distance is linear in its weights given each image pair's per-channel
texture and structure similarities (:func:`asym_jax.metrics.deep.dists_style_similarities`)::

    d = 1 - (texture . alpha + structure . beta) / (sum(alpha) + sum(beta)),   alpha, beta >= 0

The similarities of every image of the training and evaluation splits are computed once (float32 at
HIGHEST; cached in ``<workdir>/features/``), and the training steps only touch alpha and beta: Adam, then a
projection onto alpha, beta >= 0; initialised N(0.1, 0.01) per channel as DISTS was (REFERENCES.md). Each
step's batch is ``refs_per_batch`` reference images with ``images_per_ref`` of their distorted images,
drawn from ``(seed, step)`` (a resume draws the same batches).

Workdir: ``checkpoints/`` (Orbax: weights, optimiser state), ``features/``, ``alpha_beta.npz`` and
``metric.json`` (the learned metric: ``alpha_beta=<workdir>`` in any metric spec), ``results.json`` /
``results.md`` (agreement on the test split and the evaluation sets, learned vs uniform weights),
``config.json``, ``manifest.json``.
"""

from __future__ import annotations

import io
import time

import numpy as np

from asym_jax.errors import ConfigError
from asym_jax.io import holds_workdir
from asym_jax.losses.iqa import IQA_LOSSES

__all__ = ["FIELDS", "LOSSES", "check_config", "loss_value", "run_job"]

FIELDS = ("job", "seed", "backbone", "weights", "dataset", "train_split", "test_split", "eval_datasets",
          "manual_dir", "data_dir", "weights_dir", "loss", "rank_scale", "refs_per_batch", "images_per_ref",
          "num_train_steps", "optimizer", "log_every_steps", "eval_every_steps", "checkpoint_every_steps",
          "keep_checkpoints", "batch_size", "logistic", "bootstrap_resamples")
LOSSES = IQA_LOSSES


def check_config(config) -> None:
    from asym_jax.data import datasets
    from asym_jax.eval.stats import LOGISTIC_FORMS
    from asym_jax.models import backbones

    unknown = sorted(set(config.keys()) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config field {unknown[0]!r} for the iqa_fr_train job; fields: "
                                  f"{', '.join(FIELDS)}")
    try:
        backbones.get(config.backbone)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"backbone {config.backbone!r}: {error}") from None
    for name in (config.dataset, *config.eval_datasets):
        spec = datasets.spec_of(name)
        if getattr(spec, "kind", None) != "fr":
            raise ConfigError(f"dataset {name!r} has no reference images: a DISTS-style metric is learned "
                                      "and judged on FR sets (ranking, live, csiq, tid2013, kadid10k, pipal)")
    if config.loss not in LOSSES:
        raise ConfigError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if config.logistic not in LOGISTIC_FORMS:
        raise ConfigError(f"logistic must be one of {LOGISTIC_FORMS}, got {config.logistic!r}")
    for field in ("refs_per_batch", "images_per_ref", "num_train_steps", "log_every_steps", "eval_every_steps",
                  "checkpoint_every_steps", "keep_checkpoints", "batch_size"):
        if int(config[field]) < 1:
            raise ConfigError(f"{field} must be at least 1, got {config[field]}")
    if config.loss == "ranking" and config.images_per_ref < 2:
        raise ConfigError("the ranking loss compares images of one reference: images_per_ref >= 2")


# ---------------------------------------------------------------------------------------------------------
# Features: per-image similarities through the frozen trunk, computed once
# ---------------------------------------------------------------------------------------------------------


def _features(data, indices: np.ndarray, trunk, config, path) -> tuple[np.ndarray, np.ndarray]:
    """``(texture, structure)``, ``(len(indices), C)`` each, read from ``path`` when it holds these indices."""
    import jax

    from asym_jax.eval.iqa_fr import image_batches, pad_to
    from asym_jax.io import write_atomic
    from asym_jax.metrics.deep import dists_style_similarities
    from asym_jax.ops import highest_precision

    if path.exists():
        with path.open("rb") as f, np.load(f) as cached:  # a file object: path may be on gs://
            if np.array_equal(cached["indices"], indices):
                return cached["texture"], cached["structure"]
    similarities = jax.jit(highest_precision(
        lambda variables, x, y: dists_style_similarities(x, y, trunk=variables, backbone=config.backbone)))
    position = {int(i): k for k, i in enumerate(indices)}
    texture = structure = None
    start = time.perf_counter()
    done = 0
    for batch, ref, dists in image_batches(data, [int(i) for i in indices], config.batch_size,
                                           chunk=8 * config.batch_size):
        t, s = similarities(trunk, pad_to(dists, config.batch_size), ref)
        t, s = np.asarray(t)[:len(batch)], np.asarray(s)[:len(batch)]
        if texture is None:
            texture = np.zeros((len(indices), t.shape[1]), np.float32)
            structure = np.zeros_like(texture)
        rows = [position[i] for i in batch]
        texture[rows], structure[rows] = t, s
        done += len(batch)
    print(f"{data.name}: similarities of {done} images through {config.backbone} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    buffer = io.BytesIO()
    np.savez(buffer, indices=np.asarray(indices), texture=texture, structure=structure)
    write_atomic(path, buffer.getvalue())
    return texture, structure


# ---------------------------------------------------------------------------------------------------------
# Losses (quality q = -distance, targets t aligned so that higher is better)
# ---------------------------------------------------------------------------------------------------------


def loss_value(name: str, quality, target, groups, *, rank_scale: float = 100.0, score_range=(0.0, 1.0)):
    """The training loss ``name`` of a batch (:func:`asym_jax.losses.iqa.iqa_loss`): ``quality``
    (-distance, so ``1 + quality`` is in [0, 1]), ``target`` (human scores aligned so that higher is better,
    normalised here by ``score_range``), ``groups`` (reference index of each image: ranking pairs stay
    within one reference)."""
    from asym_jax.losses.iqa import iqa_loss

    if name not in LOSSES:
        raise ConfigError(f"loss must be one of {LOSSES}, got {name!r}")
    lo, hi = score_range
    return iqa_loss(name, 1.0 + quality, (target - lo) / (hi - lo), groups, rank_scale=rank_scale)


def _draw(step: int, seed: int, members: list[np.ndarray], config) -> np.ndarray:
    """Positions (into the training arrays) of step ``step``'s batch."""
    rng = np.random.default_rng([seed, step])
    groups = rng.integers(0, len(members), config.refs_per_batch)
    per_ref = config.images_per_ref
    return np.concatenate([rng.choice(members[g], per_ref, replace=len(members[g]) < per_ref) for g in groups])


def _evaluate(params, sets: dict, config) -> list[dict]:
    import jax.numpy as jnp

    from asym_jax.eval import stats
    from asym_jax.metrics.deep import weighted_distance

    rows = []
    uniform = np.ones_like(np.asarray(params["alpha"]))
    for (dataset, split), (texture, structure, scores, refs, types, higher) in sets.items():
        for weights_name, (alpha, beta) in (("learned", (params["alpha"], params["beta"])),
                                            ("uniform", (uniform, uniform))):
            distance = np.asarray(weighted_distance(jnp.asarray(texture), jnp.asarray(structure), jnp.asarray(alpha),
                                                    jnp.asarray(beta)), np.float64)
            row = {"weights": weights_name, "dataset": dataset, "split": split}
            row.update(stats.agreement(stats.align(distance, False, higher), scores, groups=refs, types=types,
                                       form=config.logistic, n_resamples=config.bootstrap_resamples, seed=config.seed))
            rows.append(row)
    return rows


def _markdown(rows: list[dict], config, spec: str) -> str:
    from asym_jax.eval.report import fmt

    lines = [f"# Learned DISTS-style metric on {config.backbone} ({config.weights})", "",
             f"Trained on {config.dataset} `{config.train_split}` with the {config.loss} loss for "
             f"{config.num_train_steps} steps. Use it as `{spec}`.", "",
             "| dataset | split | weights | n | SRCC | KRCC | PLCC | PLCC logistic |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | `{r['split']}` | {r['weights']} | {r['n']} | {fmt(r['srcc'])} | "
                     f"{fmt(r['krcc'])} | {fmt(r['plcc'])} | {fmt(r['plcc_logistic'])} |")
    if config.dataset == "ranking" or "ranking" in config.eval_datasets:
        lines += ["", "`ranking` is the embedded demonstration set: level ranks within each photograph and "
                      "distortion, not human opinion."]
    return "\n".join(lines) + "\n"


@holds_workdir
def run_job(config, workdir: str) -> dict:
    """Learns alpha/beta (or resumes), evaluates and writes the learned metric; returns the results."""
    import jax
    import jax.numpy as jnp
    import optax
    import orbax.checkpoint as ocp

    from asym_jax.data import datasets
    from asym_jax.io import workdir_path, write_atomic, write_json
    from asym_jax.manifest import check_manifest, write_manifest
    from asym_jax.metrics.deep import LEARNED_FILE, LEARNED_INFO, weighted_distance
    from asym_jax.seeds import component_key
    from asym_jax.train.checkpoints import Checkpoints, StopSignals
    from asym_jax.train.progress import LossLog
    from asym_jax.weights.selection import resolve_spec
    from asym_jax.train.state import make_optimizer
    from asym_jax.weights.trunks import backbone_variables

    check_config(config)
    workdir = workdir_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _, options, trunk = resolve_spec(f"dists_style:backbone={config.backbone},weights={config.weights}", "trunk",
                                     config, what="iqa_fr_train trunk")
    records = {"trunk": trunk.provenance()}
    checkpoints = Checkpoints(workdir, config.keep_checkpoints)
    try:
        if checkpoints.latest_step() is not None:
            check_manifest(workdir, records)
        print(trunk.describe(records["trunk"]))
        variables = backbone_variables(config.backbone, options["weights"], seed=int(options.get("seed", 0)))

        def opened(name):
            return datasets.iqa_data(name, data_dir=config.data_dir or None, manual_dir=config.manual_dir or None)

        data = opened(config.dataset)
        train_idx, test_idx = data.split(config.train_split), data.split(config.test_split)
        if len(train_idx) == 0 or len(test_idx) == 0:
            raise ConfigError(f"{config.dataset}: split {config.train_split!r} or {config.test_split!r} "
                                      "is empty")

        def features(d, split, idx):
            path = workdir / "features" / f"{d.name}__{split.replace('/', '_')}.npz"
            return _features(d, idx, variables, config, path)

        train_t, train_s = features(data, config.train_split, train_idx)
        aligned = np.asarray(data.table["score"][train_idx], np.float64) * (1.0 if data.higher_is_better else -1.0)
        lo, hi = (data.score_range if data.higher_is_better else (-data.score_range[1], -data.score_range[0]))
        ref_ids = data.table["ref_id"][train_idx].astype(str)
        _, group_of = np.unique(ref_ids, return_inverse=True)
        members = [np.flatnonzero(group_of == g) for g in range(int(group_of.max()) + 1)]

        eval_sets = {}
        for d, split, idx in [(data, config.test_split, test_idx),
                              *[(opened(n), "full", None) for n in config.eval_datasets]]:
            idx = d.split(split) if idx is None else idx
            t, s = features(d, split, idx)
            eval_sets[(d.name, split)] = (t, s, d.table["score"][idx].astype(np.float64),
                                          d.table["ref_id"][idx].astype(str), d.table["distortion"][idx].astype(str),
                                          d.higher_is_better)

        channels = train_t.shape[1]
        init = 0.1 + 0.01 * jax.random.normal(component_key(config.seed, "alpha_beta"), (2, channels))
        params = {"alpha": jnp.maximum(init[0], 0.0), "beta": jnp.maximum(init[1], 0.0)}
        tx, _ = make_optimizer(config.optimizer, config.num_train_steps)
        state = {"params": params, "opt_state": tx.init(params), "step": jnp.asarray(0, jnp.int32)}
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
        resumed, restored = checkpoints.restore(lambda _: ocp.args.StandardRestore(abstract))
        if resumed is not None:
            state = restored
            print(f"resumed from the checkpoint at step {resumed} in {checkpoints.directory}")
        write_atomic(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
        write_manifest(workdir, records, resumed_step=resumed)

        def objective(p, t, s, target, groups):
            quality = -weighted_distance(t, s, p["alpha"], p["beta"])
            return loss_value(config.loss, quality, target, groups, rank_scale=config.rank_scale, score_range=(lo, hi))

        @jax.jit
        def step_fn(state, t, s, target, groups):
            loss, grads = jax.value_and_grad(objective)(state["params"], t, s, target, groups)
            updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
            params = jax.tree.map(lambda p: jnp.maximum(p, 0.0), optax.apply_updates(state["params"], updates))
            return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, loss

        step = int(state["step"])
        log = LossLog(job="iqa_fr_train", loss=config.loss, num_train_steps=config.num_train_steps,
                      every_steps=config.log_every_steps, first_step=step, checkpoints=workdir / "checkpoints",
                      log_file=workdir / "train_log.jsonl" if jax.process_index() == 0 else None)
        with StopSignals() as stop:
            while step < config.num_train_steps:
                rows = _draw(step, config.seed, members, config)
                state, loss = step_fn(state, train_t[rows], train_s[rows], aligned[rows], group_of[rows])
                step += 1
                stopping = stop.requested(step) and step != config.num_train_steps
                saving = step % config.checkpoint_every_steps == 0 or step == config.num_train_steps or stopping
                log.add(step, loss, flush=saving)  # nothing unchecked is saved
                if saving:
                    checkpoints.save(step, ocp.args.StandardSave(state))
                if stopping:
                    checkpoints.wait()
                    raise stop.stopped(step, checkpoints)
                if step % config.eval_every_steps == 0 and step != config.num_train_steps:
                    first = {k: eval_sets[k] for k in list(eval_sets)[:1]}
                    test = _evaluate(jax.device_get(state["params"]), first, config)[0]
                    print(f"step {step}: test SRCC {test['srcc']:.4f}, PLCC {test['plcc']:.4f}", flush=True)
        checkpoints.wait()
    finally:
        checkpoints.close()

    params = jax.device_get(state["params"])
    rows = _evaluate(params, eval_sets, config)
    seed = f",seed={options['seed']}" if options["weights"] == "random" else ""  # the trunk it was learned on
    spec = f"dists_style:backbone={config.backbone},weights={options['weights']}{seed},alpha_beta={workdir}"
    buffer = io.BytesIO()
    np.savez(buffer, alpha=np.asarray(params["alpha"], np.float32), beta=np.asarray(params["beta"], np.float32))
    write_atomic(workdir / LEARNED_FILE, buffer.getvalue())
    write_json(workdir / LEARNED_INFO, {
        "backbone": config.backbone, "weights": config.weights, "trunk": records["trunk"], "spec": spec,
        "trained_on": {"dataset": config.dataset, "split": config.train_split, "loss": config.loss,
                       "steps": config.num_train_steps, "seed": config.seed},
        "channels": int(np.asarray(params["alpha"]).size)})
    from asym_jax.eval.stats import conventions
    result = {"results": rows, "spec": spec, "train_loss": log.history,
              "conventions": dict(conventions(config.logistic, config.bootstrap_resamples, config.seed))}
    if jax.process_index() == 0:  # the loss history (train_log.jsonl) is process 0's
        write_json(workdir / "results.json", result)
        write_atomic(workdir / "results.md", _markdown(rows, config, spec))
    print(_markdown(rows, config, spec))
    print(f"wrote {workdir / LEARNED_FILE} and {workdir / LEARNED_INFO}: use {spec}")
    return result

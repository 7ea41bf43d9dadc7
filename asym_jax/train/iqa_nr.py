"""The ``iqa_nr`` job (``configs/iqa_nr.py``): an NR-IQA model trained on human scores, and the
discriminator -> IQA transfer.

The model (:class:`asym_jax.models.iqa.NRIQA`) starts from ``init``: ``imagenet`` (the offline or converted
pretrained trunk), ``random`` (seeded), a converted folder, or ``discriminator:<workdir>[@<step>]``: the
trunk of a trained ``sr_gan`` discriminator, restored alone (:mod:`asym_jax.weights.runs`);
``head_init="discriminator"`` also takes that discriminator's image-level head, so step 0 scores with the
discriminator's own logit. Training: random crops and left-right flips through grain, targets normalised to
[0, 1] (higher is better), the loss of ``config.loss`` (:mod:`asym_jax.losses.iqa`), Optax Adam(W) with the
SR trainer's schedules, data-parallel over every device. Evaluation: whole images of the test split (and
of ``eval_datasets``), with the FR-IQA job's statistics (:mod:`asym_jax.eval.stats`), in float32. The
trained model is the metric ``nr:<workdir>[@<step>]`` (:mod:`asym_jax.metrics.nr`).

Workdir::

    checkpoints/<step>/   Orbax: {"step", "params" (trunk under params["backbone"], as a discriminator's),
                          "batch_stats", "opt_state"} and the data iterator; a rerun resumes
    results.json, results.md, plots/<dataset>__<split>.png, predictions/<dataset>__<split>.csv
    initial.json          the test split's statistics at step 0 (before any training)
    config.json, manifest.json (the trunk's provenance: source, step, digest)
    tensorboard/          clu metric writer: train/<loss>, train/lr, train/steps_per_sec, eval/<set>/{srcc,plcc}
    splits/seed<k>/       with ``splits="all"``: one such run per seeded split; the top-level results give
                          median, mean and standard deviation over the splits
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from asym_jax.errors import ConfigError
from asym_jax.eval.report import ci_text, fmt, scatter_plot
from asym_jax.io import WorkPath, holds_workdir

__all__ = ["FIELDS", "build_model", "check_config", "make_steps", "run_job", "train_and_test_splits"]

FIELDS = ("job", "seed", "backbone", "init", "head_init", "taps", "pooling", "hidden", "frozen", "dtype", "weights_dir",
          "dataset", "split", "splits", "eval_datasets", "manual_dir", "data_dir", "crop_size", "num_workers",
          "optimizer", "loss", "rank_scale", "batch_size", "eval_batch_size", "num_train_steps", "log_every_steps",
          "eval_every_steps", "checkpoint_every_steps", "keep_checkpoints", "logistic", "bootstrap_resamples", "plots")
SEEDED_SPLITS = 10


def check_config(config) -> None:
    """Refuses unknown fields and bad values before anything loads."""
    from asym_jax.data import datasets
    from asym_jax.eval.stats import LOGISTIC_FORMS
    from asym_jax.losses.iqa import IQA_LOSSES
    from asym_jax.models import backbones
    from asym_jax.models.iqa import POOLINGS
    from asym_jax.train.config import optimizer_config
    from asym_jax.weights.runs import is_run_source

    unknown = sorted(set(config.keys()) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config field {unknown[0]!r} for the iqa_nr job; fields: {', '.join(FIELDS)}")
    bad_opt = sorted(set(config.optimizer.keys()) - set(optimizer_config(1.0).keys()))
    if bad_opt:
        raise ConfigError(f"unknown optimizer field {bad_opt[0]!r}; fields: {', '.join(optimizer_config(1.0).keys())}")
    try:
        spec = backbones.get(config.backbone)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    unknown_taps = [t for t in config.taps if t not in spec.tap_channels]
    if unknown_taps:
        raise ConfigError(f"backbone {config.backbone} has no tap {unknown_taps[0]!r}; taps: "
                          f"{', '.join(spec.tap_channels)}")
    if config.pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {POOLINGS}, got {config.pooling!r}")
    if config.head_init not in ("random", "discriminator"):
        raise ConfigError(f"head_init must be 'random' or 'discriminator', got {config.head_init!r}")
    if config.head_init == "discriminator" and not is_run_source(config.init):
        raise ConfigError("head_init='discriminator' takes the head of the discriminator named by init: set "
                          "init=discriminator:<sr_gan workdir>")
    if config.head_init == "discriminator" and (tuple(config.taps) or config.pooling != "mean"):
        raise ConfigError("head_init='discriminator' needs the discriminator's own tap and mean pooling "
                          "(taps=() and pooling='mean')")
    if config.loss not in IQA_LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(IQA_LOSSES)}, got {config.loss!r}")
    if config.dtype not in ("float32", "bfloat16"):
        raise ConfigError(f"dtype must be float32 or bfloat16, got {config.dtype!r}")
    if config.splits not in ("one", "all"):
        raise ConfigError(f"splits must be 'one' or 'all', got {config.splits!r}")
    if config.logistic not in LOGISTIC_FORMS:
        raise ConfigError(f"logistic must be one of {LOGISTIC_FORMS}, got {config.logistic!r}")
    for field in ("crop_size", "batch_size", "eval_batch_size", "log_every_steps", "checkpoint_every_steps",
                  "keep_checkpoints"):
        if config[field] < 1:
            raise ConfigError(f"{field} must be at least 1, got {config[field]}")
    if config.num_train_steps < 0 or config.eval_every_steps < 0 or config.bootstrap_resamples < 0:
        raise ConfigError("num_train_steps, eval_every_steps and bootstrap_resamples must be >= 0")
    for name in (config.dataset, *config.eval_datasets):
        if not hasattr(datasets.spec_of(name), "kind"):
            raise ConfigError(f"dataset {name!r} is a super-resolution set, not an IQA set")
    train_and_test_splits(config.split if config.splits == "one" else "seed0")


def train_and_test_splits(split: str) -> tuple[str, str]:
    """``"official"`` -> ``("train", "test")``; ``"seed<k>"`` -> ``("seed<k>/train", "seed<k>/test")``."""
    if split == "official":
        return "train", "test"
    if split.startswith("seed") and split[4:].isdigit() and int(split[4:]) < SEEDED_SPLITS:
        return f"{split}/train", f"{split}/test"
    raise ConfigError(f"split must be 'official' or 'seed<k>' (k in 0..{SEEDED_SPLITS - 1}), got {split!r}")


def build_model(config, *, evaluation: bool = False):
    """The model of ``config``; ``evaluation=True``: in float32 whatever ``config.dtype`` (every reported
    figure is float32, as the ``nr:<workdir>`` metric scores)."""
    import jax.numpy as jnp

    from asym_jax.models.iqa import NRIQA
    bf16 = config.dtype == "bfloat16" and not evaluation
    return NRIQA(backbone=config.backbone, taps=tuple(config.taps), pooling=config.pooling, hidden=config.hidden,
                 frozen=config.frozen, dtype=jnp.bfloat16 if bf16 else jnp.float32)


def make_steps(config, tx):
    """``(train_step, predict)``, jitted: ``train_step(state, {"image": uint8 NHWC, "target": (N,)}) ->
    (state, loss)`` (``state``: ``{"step", "params", "batch_stats", "opt_state"}``; ``tx`` the Optax
    optimiser) in the compute dtype of ``config``; ``predict(state, images [0, 1]) -> (N,)`` in float32 at
    Precision.HIGHEST (every reported figure)."""
    import jax
    import jax.numpy as jnp
    import optax

    from asym_jax.losses.iqa import iqa_loss
    from asym_jax.ops import highest_precision

    model, eval_model = build_model(config), build_model(config, evaluation=True)

    def apply(variables, images, train):
        collections = {"params": variables["params"]}
        if variables["batch_stats"]:
            collections["batch_stats"] = variables["batch_stats"]
        if not train:
            return eval_model.apply(collections, images, train=False), variables["batch_stats"]
        if variables["batch_stats"] and not config.frozen:
            out, new = model.apply(collections, images, train=True, mutable=["batch_stats"])
            return out, new["batch_stats"]
        return model.apply(collections, images, train=False), variables["batch_stats"]

    def objective(params, batch_stats, images, target):
        prediction, new_stats = apply({"params": params, "batch_stats": batch_stats}, images, True)
        # Ranking pairs span the whole batch: batches are drawn image by image, so pairs of one content
        # would hardly ever meet (and each authentic image is a content of its own).
        return iqa_loss(config.loss, prediction, target, rank_scale=config.rank_scale), new_stats

    @jax.jit
    def train_step(state, batch):
        images = batch["image"].astype(jnp.float32) / 255.0
        (loss, new_stats), grads = jax.value_and_grad(objective, has_aux=True)(
            state["params"], state["batch_stats"], images, batch["target"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        return {"step": state["step"] + 1, "params": optax.apply_updates(state["params"], updates),
                "batch_stats": new_stats, "opt_state": opt_state}, loss

    predict = jax.jit(highest_precision(lambda variables, images: apply(variables, images, False)[0]))
    return train_step, predict


def _trunk(config):
    """The trunk's :class:`~asym_jax.weights.selection.Trunk` as ``init`` says (its random seed:
    ``component_seed(seed, "iqa_trunk")``)."""
    from asym_jax.weights.selection import resolve_trunk

    return resolve_trunk(config.backbone, str(config.init), "iqa", config, what="iqa_nr init",
                         alternative="run with --config.init=random")


def _initial_variables(config, model, trunk) -> dict:
    import jax
    import jax.numpy as jnp

    from asym_jax.seeds import component_key
    from asym_jax.weights.runs import restore_discriminator_head
    from asym_jax.weights.trunks import with_backbone

    size = max(config.crop_size, 32)
    variables = model.init(component_key(config.seed, "iqa_head"), jnp.zeros((1, size, size, 3), jnp.float32))
    variables = with_backbone(dict(variables), config.backbone, trunk.weights, seed=trunk.seed or 0)
    if config.head_init == "discriminator":
        head, run = restore_discriminator_head(trunk.weights)  # the trunk's run, pinned to its step
        if run["options"].get("hidden", 256) != config.hidden:
            raise ConfigError(f"head_init='discriminator': the discriminator's head has hidden="
                              f"{run['options'].get('hidden', 256)}, the config says hidden={config.hidden}")
        params = dict(variables["params"])
        for name, value in head.items():
            want = jax.tree.map(np.shape, params[name])
            if jax.tree.map(np.shape, value) != want:
                raise ConfigError(f"head_init='discriminator': {name} shapes differ from the model's")
            params[name] = jax.tree.map(jnp.asarray, value)
        variables = {**variables, "params": params}
    return variables


def _targets(data, indices) -> np.ndarray:
    """Human scores of ``indices`` normalised to [0, 1] over the set's range, higher is better."""
    lo, hi = data.score_range
    t = (np.asarray(data.table["score"][indices], np.float64) - lo) / (hi - lo)
    return (t if data.higher_is_better else 1.0 - t).astype(np.float32)


def _eval_batches(data, indices, batch_size: int):
    """``(indices, images float32)`` batches of equal image size (whole images, padded by repetition to
    ``batch_size``: one compilation per size); records are read ``8 * batch_size`` at a time, so a large
    test set never needs all its images in memory."""
    from asym_jax.eval.iqa_fr import pad_to

    chunk = 8 * batch_size
    for start in range(0, len(indices), chunk):
        by_shape: dict[tuple, list] = {}
        for index in indices[start:start + chunk]:
            image = np.asarray(data.source[int(index)]["image"])
            by_shape.setdefault(image.shape, []).append((int(index), image))
        for items in by_shape.values():
            for b in range(0, len(items), batch_size):
                part = items[b:b + batch_size]
                images = np.stack([im for _, im in part]).astype(np.float32) / 255.0
                yield [i for i, _ in part], pad_to(images, batch_size)


def _predict(apply_fn, variables, data, indices, config) -> dict[int, float]:
    out = {}
    for batch, images in _eval_batches(data, indices, config.eval_batch_size):
        values = np.asarray(apply_fn(variables, images))[:len(batch)]
        out.update({i: float(v) for i, v in zip(batch, values)})
    return out


def _types(table, indices):
    """Distortion types where the set has them (synthetic sets), else None."""
    if "distortion" not in table:
        return None
    labels = np.asarray(table["distortion"][indices]).astype(str)
    return labels if np.any(labels != "") else None


def _row(data, split: str, indices, predictions: dict, config) -> dict:
    from asym_jax.eval import stats

    table = data.table
    prediction = np.asarray([predictions[int(i)] for i in indices], np.float64)
    row = {"dataset": data.name, "split": split}
    row.update(stats.agreement(stats.align(prediction, True, data.higher_is_better), table["score"][indices],
                               groups=table["ref_id"][indices].astype(str),
                               types=_types(table, indices),
                               form=config.logistic, n_resamples=config.bootstrap_resamples, seed=config.seed))
    return row


def _write_predictions(path, data, indices, predictions: dict) -> None:
    from asym_jax.io import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("index", "name", "score", "prediction"))
    for i in indices:
        writer.writerow((int(i), data.table["name"][int(i)], repr(float(data.table["score"][int(i)])),
                         repr(predictions[int(i)])))
    write_atomic(path, buffer.getvalue())


def _markdown(rows: list[dict], config, title: str) -> str:
    lines = [f"# {title}", "",
             f"{config.backbone} from `{config.init}` (head: {config.head_init}), trained on {config.dataset} with "
             f"the {config.loss} loss for {config.num_train_steps} steps.", "",
             "| dataset | split | n | SRCC [95% CI] | KRCC | PLCC [95% CI] | PLCC logistic | step 0 SRCC |",
             "|---|---|---:|---|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | `{r['split']}` | {r['n']} | {fmt(r['srcc'])}{ci_text(r, 'srcc')} | "
                     f"{fmt(r['krcc'])} | {fmt(r['plcc'])}{ci_text(r, 'plcc')} | {fmt(r['plcc_logistic'])} | "
                     f"{fmt(r.get('initial_srcc'))} |")
    if "ranking" in (config.dataset, *config.eval_datasets):
        lines += ["", "`ranking` is the embedded demonstration set: level ranks within each photograph and "
                      "distortion, not human opinion."]
    return "\n".join(lines) + "\n"


def _run_split(config, workdir: WorkPath, split: str) -> dict:
    """Trains (or resumes) and evaluates one split in ``workdir``; returns the results."""
    import grain
    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp
    from clu import metric_writers
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from asym_jax.data import datasets
    from asym_jax.data.pipeline import iqa_train_dataset
    from asym_jax.eval import stats
    from asym_jax.io import write_atomic, write_json
    from asym_jax.manifest import check_manifest, write_manifest
    from asym_jax.seeds import data_seed
    from asym_jax.train.checkpoints import Checkpoints, StopSignals
    from asym_jax.train.feed import DeviceFeed
    from asym_jax.train.progress import LossLog
    from asym_jax.train.state import make_optimizer, trunk_frozen_mask

    workdir.mkdir(parents=True, exist_ok=True)
    train_split, test_split = train_and_test_splits(split)
    trunk = _trunk(config)
    records = {"trunk": trunk.provenance()}

    def opened(name):
        return datasets.iqa_data(name, data_dir=config.data_dir or None, manual_dir=config.manual_dir or None,
                                 as_nr=True)

    data = opened(config.dataset)
    train_idx, test_idx = data.split(train_split), data.split(test_split)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ConfigError(f"{config.dataset}: split {train_split!r} or {test_split!r} is empty")
    devices = jax.devices()
    if config.batch_size % len(devices):
        raise ConfigError(f"batch_size {config.batch_size} is not a multiple of the {len(devices)} devices")
    mesh = Mesh(np.asarray(devices), ("data",))
    batch_sharding, replicated = NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())

    model = build_model(config)
    checkpoints = Checkpoints(workdir, config.keep_checkpoints)
    host_batches = iter(iqa_train_dataset(data, train_idx, _targets(data, train_idx), crop_size=config.crop_size,
                                          batch_size=config.batch_size // jax.process_count(),
                                          seed=data_seed(config.seed, jax.process_index()),
                                          shard_index=jax.process_index(), shard_count=jax.process_count(),
                                          num_workers=config.num_workers))
    iterator = DeviceFeed(host_batches, lambda host: {
        k: jax.make_array_from_process_local_data(batch_sharding, np.asarray(host[k])) for k in ("image", "target")})
    writer = metric_writers.create_default_writer(workdir / "tensorboard", just_logging=jax.process_index() > 0)
    try:
        if checkpoints.latest_step() is not None:
            check_manifest(workdir, records)
        print(trunk.describe(records["trunk"]), flush=True)
        variables = _initial_variables(config, model, trunk)
        # A frozen trunk gets no update and no weight decay (its gradient is already zero).
        tx, schedule = make_optimizer(config.optimizer, max(config.num_train_steps, 1),
                                      frozen=trunk_frozen_mask(variables["params"]) if config.frozen else None)
        state = {"step": jnp.asarray(0, jnp.int32), "params": variables["params"],
                 "batch_stats": variables.get("batch_stats", {}), "opt_state": tx.init(variables["params"])}
        state = jax.device_put(state, replicated)
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), state)
        resumed, restored = checkpoints.restore(lambda _: ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), data=grain.checkpoint.CheckpointRestore(iterator)))
        if resumed is not None:
            state = restored["state"]
            print(f"resumed from the checkpoint at step {resumed} in {checkpoints.directory}", flush=True)
        write_atomic(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
        write_manifest(workdir, records, resumed_step=resumed)

        train_step, predict = make_steps(config, tx)

        def save(step):
            checkpoints.save(step, ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                      data=grain.checkpoint.CheckpointSave(iterator)), force=True)

        def evaluate(v):
            return _predict(predict, v, data, test_idx, config)

        step = int(jax.device_get(state["step"]))
        initial_path = workdir / "initial.json"  # the test split's figures at step 0, kept for the report
        if step == 0 and not initial_path.exists():
            initial = _row(data, test_split, test_idx, evaluate(state), config)
            write_json(initial_path, initial)
            print(f"step 0: test SRCC {fmt(initial['srcc'])}, PLCC {fmt(initial['plcc'])}", flush=True)
        if config.num_train_steps == 0 and resumed is None:
            save(0)
        initial = json.loads(initial_path.read_text()) if initial_path.exists() else None
        log = LossLog(job="iqa_nr", loss=config.loss, num_train_steps=config.num_train_steps,
                      every_steps=config.log_every_steps, first_step=step, checkpoints=workdir / "checkpoints",
                      writer=writer,
                      log_file=workdir / "train_log.jsonl" if jax.process_index() == 0 else None)
        with StopSignals() as stop:
            while step < config.num_train_steps:
                state, loss = train_step(state, iterator.take())
                iterator.fill()  # the next batch's copy overlaps the step just dispatched
                step += 1
                stopping = stop.requested(step) and step != config.num_train_steps
                saving = step % config.checkpoint_every_steps == 0 or step == config.num_train_steps or stopping
                log.add(step, loss, lambda: {"lr": float(schedule(step - 1))}, flush=saving)  # this update's rate
                if saving:
                    save(step)
                if stopping:
                    checkpoints.wait()
                    raise stop.stopped(step, checkpoints)
                if config.eval_every_steps and step % config.eval_every_steps == 0 and step != config.num_train_steps:
                    _report_test(evaluate(state), data, test_idx, writer, step)
        checkpoints.wait()
    except BaseException:
        writer.close()
        raise
    finally:
        checkpoints.close()

    rows = []
    try:
        for d, s, idx in [(data, test_split, test_idx), *[(opened(n), "full", None) for n in config.eval_datasets]]:
            idx = d.split(s) if idx is None else idx
            predictions = _predict(predict, state, d, idx, config)
            row = _row(d, s, idx, predictions, config)
            if d is data and initial is not None:
                row["initial_srcc"], row["initial_plcc"] = initial["srcc"], initial["plcc"]
            rows.append(row)
            name = f"{d.name}__{s.replace('/', '_')}"
            _write_predictions(workdir / "predictions" / f"{name}.csv", d, idx, predictions)
            if config.plots:
                aligned = stats.align([predictions[int(i)] for i in idx], True, d.higher_is_better)
                scatter_plot(workdir / "plots" / f"{name}.png", row, aligned, d.table["score"][idx],
                             xlabel="predicted quality (aligned)", score_name=d.score_name)
            writer.write_scalars(step, {f"eval/{d.name}/{k}": row[k] for k in ("srcc", "plcc") if row[k] is not None})
            print(f"{d.name} {s}: SRCC {fmt(row['srcc'])}, PLCC {fmt(row['plcc'])} (n={row['n']})", flush=True)
    finally:
        writer.close()
    result = {"results": rows, "train_loss": log.history, "split": split, "trunk": records["trunk"],
              "conventions": stats.conventions(config.logistic, config.bootstrap_resamples, config.seed)}
    if jax.process_index() == 0:  # the loss history (train_log.jsonl) is process 0's
        write_json(workdir / "results.json", result)
        write_atomic(workdir / "results.md", _markdown(rows, config, f"NR-IQA on {config.dataset} ({split})"))
    return result


def _report_test(predicted, data, test_idx, writer, step) -> None:
    """SRCC and PLCC on the test split in the middle of training (no fit or bootstrap)."""
    from asym_jax.eval import stats

    aligned = stats.align([predicted[int(i)] for i in test_idx], True, data.higher_is_better)
    scores = data.table["score"][test_idx]
    figures = {"srcc": stats.srcc(aligned, scores), "plcc": stats.plcc(aligned, scores)}
    writer.write_scalars(step, {f"eval/{data.name}/{k}": v for k, v in figures.items()})
    print(f"step {step}: test SRCC {fmt(figures['srcc'])}, PLCC {fmt(figures['plcc'])}", flush=True)


def _summary(results: dict[str, dict]) -> list[dict]:
    """Median, mean and standard deviation of each statistic over the splits, per evaluated set."""
    out = []
    first = next(iter(results.values()))["results"]
    for k, row in enumerate(first):
        summary = {"dataset": row["dataset"], "split": "all seeded splits" if row["split"] != "full" else "full",
                   "splits": len(results)}
        for key in ("srcc", "krcc", "plcc", "plcc_logistic", "rmse_logistic"):
            values = [r["results"][k][key] for r in results.values() if r["results"][k][key] is not None]
            summary[key] = {"median": float(np.median(values)) if values else None,
                            "mean": float(np.mean(values)) if values else None,
                            "std": float(np.std(values)) if values else None, "values": values}
        out.append(summary)
    return out


@holds_workdir
def run_job(config, workdir: str) -> dict:
    """Trains and evaluates (``splits="one"``: one split in ``workdir``; ``"all"``: the ten seeded splits
    in ``workdir/splits/seed<k>`` and their summary); returns the results."""
    from asym_jax.io import workdir_path, write_atomic, write_json

    check_config(config)
    workdir = workdir_path(workdir)
    if config.splits == "one":
        result = _run_split(config, workdir, config.split)
        print((workdir / "results.md").read_text())
        return result
    results = {f"seed{k}": _run_split(config, workdir / "splits" / f"seed{k}", f"seed{k}")
               for k in range(SEEDED_SPLITS)}
    summary = _summary(results)
    import jax
    if jax.process_index() == 0:
        write_json(workdir / "results.json", {"summary": summary, "splits": results})
    lines = [f"# NR-IQA on {config.dataset}: {SEEDED_SPLITS} seeded splits", "",
             "| dataset | SRCC median | SRCC mean +- std | PLCC median | PLCC mean +- std |", "|---|---:|---:|---:|---:|"]
    for s in summary:
        lines.append(f"| {s['dataset']} | {fmt(s['srcc']['median'])} | {fmt(s['srcc']['mean'])} +- "
                     f"{fmt(s['srcc']['std'])} | {fmt(s['plcc']['median'])} | {fmt(s['plcc']['mean'])} +- "
                     f"{fmt(s['plcc']['std'])} |")
    write_atomic(workdir / "results.md", "\n".join(lines) + "\n")
    write_atomic(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
    print("\n".join(lines))
    return {"summary": summary, "splits": results}

"""The ``iqa_fr`` job (``configs/iqa_fr.py``): metrics scored as full-reference IQA models.

Every metric spec of ``config.metrics`` scores every (reference, distorted) pair of ``config.split`` of each
FR set of ``config.datasets``; the agreement with the human scores is computed by :mod:`asym_jax.eval.stats`
(aligned SRCC, KRCC, PLCC, PLCC and RMSE after the logistic fit, grouped bootstrap intervals, SRCC per
distortion type).

Workdir::

    scores/<dataset>/<metric>.csv   per-image predictions (index, name, ref_id, distortion, score, prediction);
                                    reused on a rerun: only images and metrics without one are scored
    results.json, results.csv, results.md   every number, and the conventions behind them
    plots/<dataset>__<metric>.png   score against human opinion, with the fitted logistic
    config.json, manifest.json      the resolved config; the trunks of the deep metrics, versions, devices

Images go through each metric in device batches of up to ``batch_size`` distorted images of one reference
(the reference goes once: deep metrics compute its features once per batch; batches are padded by
repetition, so a dataset compiles once per distinct image size), split over every device when the batch
divides evenly, in float32 at ``Precision.HIGHEST`` (:func:`asym_jax.eval.scoring.jitted_score`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from typing import Sequence

import numpy as np

from asym_jax.errors import ConfigError, InputError
from asym_jax.eval.report import ci_text, fmt, scatter_plot
from asym_jax.io import holds_workdir

__all__ = ["FIELDS", "check_config", "image_batches", "metric_file_name", "pad_to", "run_job"]

FIELDS = ("job", "seed", "metrics", "datasets", "split", "manual_dir", "data_dir", "weights_dir", "batch_size",
          "logistic", "bootstrap_resamples", "plots")
_COLUMNS = ("index", "name", "ref_id", "distortion", "score", "prediction")
_SAVE_EVERY_S = 60.0  # per-image scores reach the disk at least this often while a dataset is scored


def check_config(config) -> None:
    """Refuses unknown fields, unknown metrics, non-FR datasets and bad options, before anything loads."""
    from asym_jax.data import datasets
    from asym_jax.eval.scoring import check_specs
    from asym_jax.eval.stats import LOGISTIC_FORMS

    unknown = sorted(set(config.keys()) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config field {unknown[0]!r} for the iqa_fr job; fields: {', '.join(FIELDS)}")
    check_specs(list(config.metrics))
    if len(set(config.metrics)) != len(config.metrics):
        raise ConfigError(f"metrics lists a spec twice: {list(config.metrics)}")
    if not config.datasets:
        raise ConfigError("no dataset given (config.datasets)")
    for name in config.datasets:
        spec = datasets.spec_of(name)
        if getattr(spec, "kind", None) != "fr":
            kind = "a super-resolution set" if not hasattr(spec, "kind") else "a no-reference set (no references)"
            raise ConfigError(f"dataset {name!r} is {kind}; full-reference IQA needs reference images: "
                                 "ranking, live, csiq, tid2013, kadid10k, pipal")
    if config.logistic not in LOGISTIC_FORMS:
        raise ConfigError(f"logistic must be one of {LOGISTIC_FORMS}, got {config.logistic!r}")
    if config.batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {config.batch_size}")
    if config.bootstrap_resamples < 0:
        raise ConfigError(f"bootstrap_resamples must be >= 0, got {config.bootstrap_resamples}")


def metric_file_name(spec: str) -> str:
    """A file name for metric ``spec``: the spec with unsafe characters replaced, plus a short hash of the
    exact spec where anything was replaced (``dists_style_backbone=vgg16_weights=random-1a2b3c4d``)."""
    safe = re.sub(r"[^A-Za-z0-9=._-]+", "_", spec).strip("_")[:80]
    if safe == spec:
        return spec
    return f"{safe}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"


def _read_scores(path, spec: str, table: dict) -> dict[int, float]:
    """``{index: prediction}`` from a per-image score file written by this job for ``spec``, checked against
    the dataset's label table (a file written for another metric or another copy of the set is refused)."""
    if not path.exists():
        return {}
    out = {}
    try:
        for row in csv.DictReader(io.StringIO(path.read_text())):
            index = int(row["index"])
            if row["metric"] != spec:
                raise InputError(f"{path} holds scores of metric {row['metric']!r}, not {spec!r}: remove it")
            if not 0 <= index < len(table["name"]) or row["name"] != str(table["name"][index]):
                raise InputError(f"{path} row {index} ({row['name']!r}) does not match the prepared dataset: it "
                                 "was written for another copy of the set; remove it to score again")
            out[index] = float(row["prediction"])
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{path} is not a score file of this job ({error!r}): remove it to score again") from None
    return out


def _write_scores(path, spec: str, predictions: dict[int, float], table: dict) -> None:
    from asym_jax.io import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("metric", *_COLUMNS))
    for index in sorted(predictions):
        writer.writerow((spec, index, table["name"][index], table["ref_id"][index], table["distortion"][index],
                         repr(float(table["score"][index])), repr(float(predictions[index]))))
    write_atomic(path, buffer.getvalue())


def image_batches(data, indices: Sequence[int], batch_size: int, chunk: int):
    """``(indices, reference, distorted)`` batches in float32 [0, 1]: up to ``batch_size`` distorted images
    of one reference, ``reference`` being that one image (batch 1; every metric takes a reference shared by
    the batch, and the deep ones compute its features once). Images are taken reference by reference, and
    records are read ``chunk`` at a time (large sets never need all images in memory)."""
    ref_ids = data.table["ref_id"]
    ordered = sorted((int(i) for i in indices), key=lambda i: (str(ref_ids[i]), i))
    for start in range(0, len(ordered), chunk):
        groups: dict[tuple, tuple[np.ndarray, list]] = {}
        for index in ordered[start:start + chunk]:
            record = data[index]
            key = (str(ref_ids[index]), record["image"].shape)
            if key in groups and not np.array_equal(groups[key][0], record["ref"]):
                key = (*key, index)  # a reference id naming two different images: not shared
            groups.setdefault(key, (record["ref"], []))[1].append((index, record["image"]))
        for ref, items in groups.values():
            ref = ref[None].astype(np.float32) / 255.0
            for b in range(0, len(items), batch_size):
                part = items[b:b + batch_size]
                yield [i for i, _ in part], ref, np.stack([d for _, d in part]).astype(np.float32) / 255.0


def pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """``x`` with its last item repeated up to ``size`` items (one compiled program per image size)."""
    if len(x) == size:
        return x
    return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)])


def _score_dataset(data, indices: np.ndarray, bound: dict, files: dict, done: dict, config, label: str) -> None:
    """Scores the images of ``indices`` that some metric of ``bound`` lacks; updates ``done`` ({spec:
    {index: prediction}}) and saves each metric's file at least every ``_SAVE_EVERY_S`` and at the end."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from asym_jax.eval.scoring import jitted_score

    todo = [int(i) for i in indices if any(int(i) not in done[spec] for spec in bound)]
    if not todo:
        return
    devices = jax.devices()
    sharding = replicated = None
    if len(devices) > 1 and config.batch_size % len(devices) == 0:
        mesh = Mesh(np.asarray(devices), ("data",))
        sharding, replicated = NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())
    start = last_save = last_print = time.perf_counter()
    count, changed = 0, set()
    try:
        for batch_indices, ref, dists in image_batches(data, todo, config.batch_size, chunk=8 * config.batch_size):
            n = len(batch_indices)
            x, y = pad_to(dists, config.batch_size), ref
            if sharding is not None:
                x, y = jax.device_put(x, sharding), jax.device_put(y, replicated)
            for spec, metric in bound.items():
                missing = [k for k, i in enumerate(batch_indices) if i not in done[spec]]
                if not missing:
                    continue
                try:
                    values = np.asarray(jitted_score()(metric, x, y))[:n]
                except InputError as error:  # e.g. images too small for the metric: named, scores kept
                    raise InputError(f"{spec} on {label} ({tuple(x.shape[1:3])} images): {error}") from None
                for k in missing:
                    done[spec][batch_indices[k]] = float(values[k])
                changed.add(spec)
            count += n
            now = time.perf_counter()
            if now - last_print >= 10.0 or count == len(todo):
                rate = count / max(now - start, 1e-9)
                print(f"{label}: {count}/{len(todo)} images, {rate:.1f} img/s, "
                      f"ETA {(len(todo) - count) / rate:.0f} s", flush=True)
                last_print = now
            if now - last_save >= _SAVE_EVERY_S:
                for spec in changed:
                    _write_scores(files[spec], spec, done[spec], data.table)
                last_save = now
    finally:  # whatever stops the loop, the scores computed so far are kept
        for spec in changed:
            _write_scores(files[spec], spec, done[spec], data.table)


def _result_row(spec: str, data, split: str, indices: np.ndarray, predictions: dict, config) -> dict:
    from asym_jax import metrics
    from asym_jax.eval import stats

    prediction = np.asarray([predictions[int(i)] for i in indices], np.float64)
    table = data.table
    aligned = stats.align(prediction, metrics.info(metrics.parse_spec(spec)[0]).higher_is_better,
                          data.higher_is_better)
    row = {"metric": spec, "dataset": data.name, "split": split}
    row.update(stats.agreement(aligned, table["score"][indices], groups=table["ref_id"][indices].astype(str),
                               types=table["distortion"][indices].astype(str), form=config.logistic,
                               n_resamples=config.bootstrap_resamples, seed=config.seed))
    return row


def _markdown(rows: list[dict], config) -> str:
    metrics_ = list(dict.fromkeys(r["metric"] for r in rows))
    datasets_ = list(dict.fromkeys(r["dataset"] for r in rows))
    by = {(r["metric"], r["dataset"]): r for r in rows}
    lines = [f"# FR-IQA: agreement with human opinion (split `{config.split}`)", "",
             "SRCC / PLCC (no fit), predictions aligned so that +1 is perfect agreement.", "",
             "| metric | " + " | ".join(datasets_) + " |", "|---|" + "---:|" * len(datasets_)]
    for m in metrics_:
        cells = [f"{fmt(by[m, d]['srcc'], 3)} / {fmt(by[m, d]['plcc'], 3)}" for d in datasets_]
        lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
    lines += ["", "## Every statistic", "",
              "| metric | dataset | n | SRCC [95% CI] | KRCC | PLCC [95% CI] | PLCC logistic | RMSE logistic |",
              "|---|---|---:|---|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['metric']}` | {r['dataset']} | {r['n']} | {fmt(r['srcc'])}{ci_text(r, 'srcc')} | "
                     f"{fmt(r['krcc'])} | {fmt(r['plcc'])}{ci_text(r, 'plcc')} | {fmt(r['plcc_logistic'])} | "
                     f"{fmt(r['rmse_logistic'])} |")
    failed = [r for r in rows if not r["logistic"]["converged"]]
    if failed:
        lines += ["", "Logistic fits that did not converge (raw figures stand): "
                  + "; ".join(f"`{r['metric']}` on {r['dataset']}: {r['logistic']['message']}" for r in failed)]
    if "ranking" in datasets_:
        lines += ["", "`ranking` is the embedded demonstration set: its scores are the level order within each "
                      "photograph and distortion (5 mildest .. 1 strongest), not human opinion."]
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict]) -> str:
    fields = ("metric", "dataset", "split", "n", "srcc", "krcc", "plcc", "plcc_logistic", "rmse_logistic",
              "srcc_ci95_lo", "srcc_ci95_hi", "plcc_ci95_lo", "plcc_ci95_hi")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        flat = dict(r)
        for name in ("srcc", "plcc"):
            interval = r.get(f"{name}_ci95") or [None, None]
            flat[f"{name}_ci95_lo"], flat[f"{name}_ci95_hi"] = interval
        writer.writerow(["" if flat.get(f) is None else flat.get(f) for f in fields])
    return buffer.getvalue()


def _bind(config) -> tuple[dict, dict]:
    """``({spec: Metric}, {"metric/<spec>": trunk record})``: each spec resolved once (weights of its trunk,
    seeds of random trunks) and loaded."""
    from asym_jax import metrics
    from asym_jax.weights.selection import resolve_spec

    bound, records = {}, {}
    for spec in config.metrics:
        name, options, trunk = resolve_spec(spec, f"metric/{spec}", config, what="metric")
        bound[spec] = metrics.get(name, **options)
        if trunk is not None:
            records[trunk.role] = trunk.provenance()
    return bound, records


@holds_workdir
def run_job(config, workdir: str) -> dict:
    """Scores, computes the statistics and writes the report; returns ``{"results": [...], "conventions"}``."""
    from asym_jax import metrics
    from asym_jax.data import datasets
    from asym_jax.eval import stats
    from asym_jax.io import workdir_path, write_atomic, write_json
    from asym_jax.manifest import ManifestError, recorded_trunks, same_weights, write_manifest

    check_config(config)
    workdir = workdir_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Per-image scores are reused on a rerun: a metric whose trunk weights changed since they were written is
    # refused (its old scores would be mixed in); a metric added to the run adds its trunk.
    bound, records = _bind(config)
    recorded = recorded_trunks(workdir)
    changed = sorted(r for r in records if r in recorded and not same_weights(recorded[r], records[r]))
    if changed:
        raise ManifestError(f"{workdir} holds scores made with other trunk weights ({', '.join(changed)}; see "
                            f"{workdir / 'manifest.json'}): remove those metrics' files under {workdir / 'scores'} "
                            "and their manifest entries, or use a new --workdir")
    write_atomic(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
    write_manifest(workdir, {**recorded, **records})

    rows = []
    for name in config.datasets:
        data = datasets.iqa_data(name, data_dir=config.data_dir or None, manual_dir=config.manual_dir or None)
        indices = data.split(config.split)
        files = {spec: workdir / "scores" / name / f"{metric_file_name(spec)}.csv" for spec in bound}
        done = {spec: _read_scores(files[spec], spec, data.table) for spec in bound}
        _score_dataset(data, indices, bound, files, done, config, label=f"{name}/{config.split}")
        for spec in bound:
            row = _result_row(spec, data, config.split, indices, done[spec], config)
            rows.append(row)
            print(f"{spec} on {name}: SRCC {fmt(row['srcc'])}, PLCC {fmt(row['plcc'])}, "
                  f"PLCC logistic {fmt(row['plcc_logistic'])} (n={row['n']})")
            if config.plots:
                aligned = stats.align([done[spec][int(i)] for i in indices],
                                      metrics.info(metrics.parse_spec(spec)[0]).higher_is_better, data.higher_is_better)
                scatter_plot(workdir / "plots" / f"{name}__{metric_file_name(spec)}.png", row, aligned,
                             data.table["score"][indices], xlabel=f"{spec} (aligned)", score_name=data.score_name)
    result = {"results": rows,
              "conventions": {**stats.conventions(config.logistic, config.bootstrap_resamples, config.seed),
                              "metrics": "each metric's default conventions (metrics.info(name).reference); "
                                         "images at full size, no resizing; float32 at Precision.HIGHEST",
                              "split": config.split}}
    write_json(workdir / "results.json", result)
    write_atomic(workdir / "results.csv", _csv(rows))
    write_atomic(workdir / "results.md", _markdown(rows, config))
    print(_markdown(rows, config))
    print(f"wrote {workdir / 'results.json'}, results.csv, results.md" + (", plots/" if config.plots else ""))
    return result

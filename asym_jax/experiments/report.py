"""The study's report: ``report.md``, ``report.json`` (every number) and ``plots/`` from the finished cells.

1. Fidelity metrics as IQA models vs as losses: each metric's SRCC as an FR-IQA model (mean over the FR
   sets) against the quality of the SR models trained with it (each judge's mean over seeds and held-out
   images, bicubic for reference), per GAN weight; the asymmetry is Kendall's tau (and SRCC) between the two
   rankings with a bootstrap interval over seeds and images (:func:`asym_jax.eval.stats.ranking_agreement`).
2. Discriminator design: each judge for each discriminator and GAN weight (mean over seeds), diverged runs
   marked; a plot of quality against GAN weight per discriminator.
3. Discriminators as IQA initialisation: the NR-IQA models' test SRCC / PLCC by backbone and initialisation
   (step 0 and trained), and a bar plot.

And a grid of central crops of one held-out image as every finished SR model made it (``sr_crops.png``).

Cells that are not finished are listed as missing, never dropped silently; a ranking needs every seed of
at least three metrics.
"""

from __future__ import annotations

import io
import json

import numpy as np

from asym_jax.io import WorkPath, workdir_path

__all__ = ["write_report"]

_MODELS = {"nr": "NR-IQA model", "dists": "DISTS-style FR model"}


def _read(path: WorkPath):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _labels(cell) -> dict:
    return dict(cell.labels)


def _judge_direction(spec: str) -> bool:
    from asym_jax import metrics
    return metrics.info(metrics.parse_spec(spec)[0]).higher_is_better


def _per_image(final: dict, method: str, judge: str) -> list[float]:
    return [float(row[f"{method}/{judge}"]) for row in final["images"]]


def _judges(config, root) -> list[str]:
    """The keys of the judges in each SR cell's ``eval/final.json`` (``cell:`` NR judges resolved)."""
    from asym_jax.experiments.plan import nr_judges
    return list(config.judges) + nr_judges(config, root)[0]


def _judge_label(judge: str, root) -> str:
    """A judge as the tables name it: the study's own NR cells relative to the study (``nr:cells/<name>``)."""
    return judge.replace(f"nr:{workdir_path(root)}/", "nr:")


def _fidelity(config, root, cells, status) -> dict:
    from asym_jax.eval import stats

    judges = _judges(config, root)
    fr_cell = next((c for c in cells if c.name == "fr-iqa"), None)
    fr = _read(fr_cell.workdir(root) / "results.json") if fr_cell and status[fr_cell.name] == "done" else None
    iqa = {}
    for metric in config.fidelity_metrics:
        rows = [r for r in (fr or {}).get("results", []) if r["metric"] == metric and r["srcc"] is not None]
        iqa[metric] = {"per_dataset": {r["dataset"]: r["srcc"] for r in rows},
                       "srcc": float(np.mean([r["srcc"] for r in rows])) if rows else None}
    sections = []
    for w in config.fidelity_gan_weights:
        finals, bicubic = {}, None
        for metric in config.fidelity_metrics:
            runs = []
            for seed in config.seeds:
                cell = next(c for c in cells if c.experiment == "fidelity" and c.job == "sr_gan" and
                            _labels(c) == {"metric": metric, "gan_weight": float(w), "seed": int(seed)})
                final = _read(cell.workdir(root) / "eval" / "final.json") if status[cell.name] == "done" else None
                runs.append(final)
                bicubic = bicubic or (final and final["methods"]["bicubic"])
            finals[metric] = runs
        rows = []
        for metric in config.fidelity_metrics:
            done = [f for f in finals[metric] if f is not None]
            row = {"metric": metric, "iqa_srcc": iqa[metric]["srcc"], "iqa_per_dataset": iqa[metric]["per_dataset"],
                   "seeds_done": len(done), "seeds": len(config.seeds)}
            for j in judges:
                means = [f["methods"]["model"][j] for f in done]
                row[j] = float(np.mean(means)) if means else None
                row[f"{j}_seed_std"] = float(np.std(means)) if len(means) > 1 else None
            rows.append(row)
        complete = [m for m in config.fidelity_metrics
                    if iqa[m]["srcc"] is not None and all(f is not None for f in finals[m])]
        asymmetry = {}
        for j in judges:
            if len(complete) < 3:
                asymmetry[j] = {"note": f"needs 3 metrics with every seed and an FR-IQA figure; {len(complete)} have"}
                continue
            sign = 1.0 if _judge_direction(j) else -1.0
            optimisation = np.asarray([[_per_image(f, "model", j) for f in finals[m]] for m in complete]) * sign
            asymmetry[j] = stats.ranking_agreement([iqa[m]["srcc"] for m in complete], optimisation,
                                                   n_resamples=config.bootstrap_resamples, seed=config.report_seed)
            asymmetry[j]["metrics"] = complete
        start = _pretrained(cells, root, status)
        sections.append({"gan_weight": float(w), "rows": rows, "asymmetry": asymmetry,
                         "bicubic": bicubic or (start and start["methods"]["bicubic"]),
                         "pretrained": start and start["methods"]["model"]})
    return {"judges": judges, "fr_datasets": list(config.fr_datasets), "by_gan_weight": sections,
            "fr_cell": "done" if fr else "missing"}


def _pretrained(cells, root, status) -> dict | None:
    """The evaluation (``eval/final.json``) of the pre-trained generator every SR cell started from (None
    without a finished pretrain cell)."""
    from asym_jax.experiments.plan import PRETRAIN

    cell = next((c for c in cells if c.name == PRETRAIN), None)
    final = _read(cell.workdir(root) / "eval" / "final.json") if cell and status[cell.name] == "done" else None
    return final


def _stability(folder: WorkPath) -> dict:
    """The discriminator's mean output on real minus on SR images (``d_real - d_fake``, logged means) at each
    logging step of an SR run, and its mean over the last quarter of them: how far ahead the discriminator is."""
    from asym_jax.train.progress import read_train_log

    trace = [[r["step"], r["d_real"] - r["d_fake"]] for r in read_train_log(folder / "train_log.jsonl")
             if "d_real" in r and "d_fake" in r]
    tail = [gap for _, gap in trace[len(trace) - max(1, len(trace) // 4):]]
    return {"trace": trace, "d_gap": float(np.mean(tail)) if tail else None}


def _discriminator(config, root, cells, status) -> dict:
    judges = _judges(config, root)
    rows = []
    for d in config.discriminators:
        for w in config.gan_weights:
            group = [c for c in cells if c.experiment == "discriminator" and _labels(c)["discriminator"] == d
                     and _labels(c)["gan_weight"] == float(w)]
            done = [c for c in group if status[c.name] == "done"]
            finals = [_read(c.workdir(root) / "eval" / "final.json") for c in done]
            ended = [c for c in group if status[c.name] in ("done", "diverged")]
            stability = [_stability(c.workdir(root)) for c in ended]
            gaps = [s["d_gap"] for s in stability if s["d_gap"] is not None]
            row = {"discriminator": d, "gan_weight": float(w), "seeds_done": len(finals), "seeds": len(group),
                   "diverged": sum(status[c.name] == "diverged" for c in group),
                   "d_gap": float(np.mean(gaps)) if gaps else None,
                   "d_gap_trace": stability[0]["trace"] if stability else [],  # the first ended seed's
                   "d_gap_trace_seed": _labels(ended[0])["seed"] if ended else None}
            for j in judges:
                values = [f["methods"]["model"][j] for f in finals if f]
                row[j] = float(np.mean(values)) if values else None
            rows.append(row)
    return {"judges": judges, "rows": rows}


def _nr_figures(result: dict) -> dict:
    """Test SRCC / PLCC of an iqa_nr result: its test row, or with ``splits="all"`` the median over the
    splits and the range (2.5th-97.5th percentile) the splits span."""
    if "summary" in result:
        row = result["summary"][0]
        values = row["srcc"]["values"]
        initial = [r["results"][0].get("initial_srcc") for r in result.get("splits", {}).values()]
        initial = [v for v in initial if v is not None]
        return {"srcc": row["srcc"]["median"], "plcc": row["plcc"]["median"], "splits": row["splits"],
                "srcc_ci95": [float(v) for v in np.percentile(values, [2.5, 97.5])] if values else None,
                "initial_srcc": float(np.median(initial)) if initial else None}
    row = result["results"][0]
    return {"srcc": row.get("srcc"), "plcc": row.get("plcc"), "srcc_ci95": row.get("srcc_ci95"), "splits": 1,
            "initial_srcc": row.get("initial_srcc")}


def _dists_figures(result: dict) -> dict:
    """Test SRCC / PLCC of an iqa_fr_train result: the learned weights on the test split (the first row);
    "step 0" is the same trunk with uniform weights."""
    rows = result["results"]
    learned = next(r for r in rows if r["weights"] == "learned")
    uniform = next(r for r in rows if r["weights"] == "uniform" and r["dataset"] == learned["dataset"]
                   and r["split"] == learned["split"])
    return {"srcc": learned.get("srcc"), "plcc": learned.get("plcc"), "srcc_ci95": learned.get("srcc_ci95"),
            "splits": 1, "initial_srcc": uniform.get("srcc")}


def _init(config, root, cells, status) -> dict:
    rows = []
    for c in cells:
        if c.experiment != "init":
            continue
        result = _read(c.workdir(root) / "results.json") if status[c.name] == "done" else None
        figures = {"srcc": None, "plcc": None, "srcc_ci95": None, "splits": None, "initial_srcc": None}
        if result:
            figures = _nr_figures(result) if c.job == "iqa_nr" else _dists_figures(result)
        rows.append({**_labels(c), "cell": c.name, "status": status[c.name], **figures})
    return {"rows": rows}


def _save(fig, folder: WorkPath, name: str) -> str:
    """``fig`` as the PNG ``<folder>/<name>``: rendered in memory, written atomically (also to gs://)."""
    from asym_jax.io import write_atomic

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_atomic(folder / name, buffer.getvalue())
    return name


def _plots(report: dict, root: WorkPath) -> list[str]:
    from asym_jax.eval.report import subplots
    from asym_jax.experiments.cells import slug

    folder = root / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    labels = report.get("judge_labels", {})
    fidelity = report.get("fidelity")
    if fidelity:
        for section in fidelity["by_gan_weight"]:
            for j in fidelity["judges"]:
                points = [(r["iqa_srcc"], r[j], r["metric"]) for r in section["rows"]
                          if r["iqa_srcc"] is not None and r[j] is not None]
                if not points:
                    continue
                fig, ax = subplots(figsize=(4.5, 3.5))
                ax.scatter([p[0] for p in points], [p[1] for p in points])
                for x, y, name in points:
                    ax.annotate(name, (x, y), fontsize=7)
                ax.set_xlabel("SRCC as an FR-IQA model")
                ax.set_ylabel(f"{labels.get(j, j)} of the SR model "
                              f"({'higher' if _judge_direction(j) else 'lower'} is better)")
                ax.set_title(f"GAN weight {section['gan_weight']:g}", fontsize=9)
                name = f"iqa_vs_optimisation_gan{section['gan_weight']:g}_{slug(labels.get(j, j))}.png"
                written.append(_save(fig, folder, name))
    discriminator = report.get("discriminator")
    if discriminator and discriminator["rows"]:
        for j in discriminator["judges"]:
            series = {d: [(r["gan_weight"], r[j]) for r in discriminator["rows"]
                          if r["discriminator"] == d and r[j] is not None and r["gan_weight"] > 0]
                      for d in dict.fromkeys(r["discriminator"] for r in discriminator["rows"])}
            if not any(series.values()):
                continue
            fig, ax = subplots(figsize=(4.5, 3.5))
            for d, points in series.items():
                if points:
                    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=d)
            ax.set_xscale("log")
            ax.set_xlabel("GAN weight")
            ax.set_ylabel(labels.get(j, j))
            ax.legend(fontsize=7)
            written.append(_save(fig, folder, f"quality_vs_gan_weight_{slug(labels.get(j, j))}.png"))
        traces = [r for r in discriminator["rows"] if r["d_gap_trace"]]
        if traces:
            fig, ax = subplots(figsize=(5.5, 3.5))
            for r in traces:
                ax.plot([t[0] for t in r["d_gap_trace"]], [t[1] for t in r["d_gap_trace"]],
                        label=f"{r['discriminator']}, GAN {r['gan_weight']:g}, seed {r['d_gap_trace_seed']}")
            ax.axhline(0.0, color="grey", linewidth=0.5)
            ax.set_xlabel("step")
            ax.set_ylabel("D(real) - D(SR), mean output")
            ax.legend(fontsize=6)
            written.append(_save(fig, folder, "stability.png"))
    init = report.get("init")
    points = [r for r in (init or {}).get("rows", []) if r["srcc"] is not None]
    if points:
        backbones = list(dict.fromkeys(r["backbone"] for r in points))
        inits = list(dict.fromkeys(r["init"] for r in points))
        models = list(dict.fromkeys(r["model"] for r in points))
        fig, axes = subplots(1, len(models), figsize=(len(models) * (1.2 + 1.4 * len(backbones)), 3.5),
                                 squeeze=False)
        width = 0.8 / len(inits)
        for ax, model in zip(axes[0], models):
            for k, name in enumerate(inits):
                values = [next((r["srcc"] for r in points if (r["model"], r["backbone"], r["init"]) ==
                                (model, b, name)), np.nan) for b in backbones]
                ax.bar(np.arange(len(backbones)) + (k - (len(inits) - 1) / 2) * width, values, width, label=name)
            ax.set_xticks(np.arange(len(backbones)), backbones)
            ax.set_ylabel(f"test SRCC of the {_MODELS[model]}")
            ax.axhline(0.0, color="grey", linewidth=0.5)
            ax.legend(fontsize=7)
        written.append(_save(fig, folder, "init_comparison.png"))
    crops = report.get("sr_crops")
    if crops and crops["tiles"]:
        from asym_jax.data.images import read_image

        tiles = crops["tiles"]
        columns = min(4, len(tiles))
        rows = -(-len(tiles) // columns)
        fig, axes = subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, (label, path) in zip(axes.ravel(), tiles):
            image = read_image(root / path)
            side = min(crops["side"], image.shape[0], image.shape[1])
            top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
            ax.imshow(image[top:top + side, left:left + side], interpolation="nearest")
            ax.set_title(label, fontsize=7)
        fig.suptitle(f"{crops['image']}: central {crops['side']}-px crops", fontsize=8)
        written.append(_save(fig, folder, "sr_crops.png"))
    return written


def _sr_crops(cells, root: WorkPath, status: dict, side: int = 128) -> dict:
    """One held-out image (the first name every finished SR cell has) as each SR model made it, and bicubic."""
    done = [c for c in cells if c.job == "sr_gan" and status[c.name] == "done"]
    names = None
    for c in done:
        found = {p.name[:-len("_sr.png")] for p in (c.workdir(root) / "eval" / "images").glob("*_sr.png")}
        names = found if names is None else names & found
    if not done or not names:
        return {"image": None, "side": side, "tiles": []}
    image = sorted(names)[0]
    first = done[0].workdir(root) / "eval" / "images" / f"{image}_bicubic.png"
    tiles = [("bicubic", str(first.relative_to(root)))]
    for c in done:
        labels = _labels(c)
        label = "pre-trained start (pixel loss)" if labels.get("role") == "pretrain" else (
            f"{labels.get('metric') or labels.get('discriminator')}, GAN {labels['gan_weight']:g}, "
            f"seed {labels['seed']}")
        tiles.append((label, str((c.workdir(root) / "eval" / "images" / f"{image}_sr.png").relative_to(root))))
    return {"image": image, "side": side, "tiles": tiles}


def _markdown(report: dict) -> str:
    from asym_jax.eval.report import fmt

    def ci(row, key):
        interval = row.get(f"{key}_ci95")
        return f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else ""

    labels = report.get("judge_labels", {})
    lines = ["# The asymmetry study", ""]
    if report.get("demonstration"):
        lines += [report["demonstration"], ""]
    fidelity = report.get("fidelity")
    if fidelity:
        lines += ["## 1. Fidelity metrics: as IQA models and as losses", "",
                  f"IQA: SRCC on {', '.join(fidelity['fr_datasets'])} (mean over the sets). SR: each judge's mean "
                  "over seeds and held-out images of the model trained with the metric as its fidelity loss.", ""]
        for section in fidelity["by_gan_weight"]:
            judges = fidelity["judges"]
            lines += [f"### GAN weight {section['gan_weight']:g}", "",
                      "| metric | IQA SRCC | " + " | ".join(labels.get(j, j) for j in judges) + " | seeds |",
                      "|---|---:|" + "---:|" * len(judges) + "---:|"]
            for r in section["rows"]:
                lines.append(f"| {r['metric']} | {fmt(r['iqa_srcc'])} | " + " | ".join(fmt(r[j]) for j in judges)
                             + f" | {r['seeds_done']}/{r['seeds']} |")
            for name, row in (("bicubic", section["bicubic"]), ("pre-trained start", section.get("pretrained"))):
                if row:
                    lines.append(f"| *{name}* | | " + " | ".join(fmt(row.get(j)) for j in judges) + " | |")
            lines += ["", "| judge | Kendall tau [95% CI] | SRCC [95% CI] | metrics |", "|---|---|---|---:|"]
            for j, a in section["asymmetry"].items():
                if "note" in a:
                    lines.append(f"| {labels.get(j, j)} | - | - | {a['note']} |")
                else:
                    lines.append(f"| {labels.get(j, j)} | {fmt(a['kendall_tau'])}{ci(a, 'kendall_tau')} | "
                                 f"{fmt(a['srcc'])}{ci(a, 'srcc')} | {a['n_methods']} |")
            lines.append("")
    discriminator = report.get("discriminator")
    if discriminator:
        judges = discriminator["judges"]
        lines += ["## 2. Discriminator design", "",
                  "D gap: the discriminator's mean output on real minus on SR images over the last quarter of the "
                  "logged steps (mean over seeds; `stability.png` shows it over training for one seed each).", "",
                  "| discriminator | GAN weight | " + " | ".join(labels.get(j, j) for j in judges) +
                  " | D gap | seeds | diverged |", "|---|---:|" + "---:|" * len(judges) + "---:|---:|---:|"]
        for r in discriminator["rows"]:
            lines.append(f"| {r['discriminator']} | {r['gan_weight']:g} | " + " | ".join(fmt(r[j]) for j in judges)
                         + f" | {fmt(r['d_gap'])} | {r['seeds_done']}/{r['seeds']} | {r['diverged']} |")
        lines.append("")
    init = report.get("init")
    if init:
        lines += ["## 3. Discriminators as IQA initialisation", "",
                  "Test SRCC on the first IQA set's test split (with several seeded splits: the median, and the "
                  "range of the middle 95% of splits; one split: the bootstrap interval). Step 0: the NR model "
                  "before training; for a DISTS-style model, its trunk with uniform weights.", "",
                  "| model | backbone | init | test SRCC [95%] | test PLCC | step-0 SRCC | splits | cell |",
                  "|---|---|---|---|---:|---:|---:|---|"]
        for r in init["rows"]:
            source = f"discriminator ({r['discriminator']})" if r["init"] == "discriminator" else r["init"]
            lines.append(f"| {_MODELS[r['model']]} | {r['backbone']} | {source} | {fmt(r['srcc'])}"
                         f"{ci(r, 'srcc')} | {fmt(r['plcc'])} | {fmt(r['initial_srcc'])} | {r['splits'] or '-'} | "
                         f"{r['status']} |")
        lines.append("")
    lines += ["## Cells", "", "| cell | experiment | status |", "|---|---|---|"]
    lines += [f"| {c['name']} | {c['experiment']} | {c['status']} |" for c in report["cells"]]
    if report.get("plots"):
        lines += ["", "## Plots", ""] + [f"- [{p}](plots/{p})" for p in report["plots"]]
    return "\n".join(lines) + "\n"


def write_report(config, root: WorkPath, cells, status: dict) -> dict:
    """Writes ``report.json``, ``report.md`` and ``plots/`` from the cells' results; returns the report."""
    from asym_jax.io import write_atomic, write_json

    report: dict = {"cells": [{"name": c.name, "experiment": c.experiment, "status": status[c.name]} for c in cells]}
    if "ranking" in (*config.fr_datasets, *config.iqa_datasets) or "sample" in config.sr_config:
        report["demonstration"] = ("The embedded `sample` and `ranking` sets are a demonstration: these numbers show "
                                   "the machinery at work, not the paper's findings.")
    report["judge_labels"] = {j: _judge_label(j, root) for j in _judges(config, root)}
    if "fidelity" in config.experiments:
        report["fidelity"] = _fidelity(config, root, cells, status)
    if "discriminator" in config.experiments:
        report["discriminator"] = _discriminator(config, root, cells, status)
    if "init" in config.experiments:
        report["init"] = _init(config, root, cells, status)
    report["sr_crops"] = _sr_crops(cells, root, status)
    report["plots"] = _plots(report, root)
    write_json(root / "report.json", report)
    write_atomic(root / "report.md", _markdown(report))
    return report

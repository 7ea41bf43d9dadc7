# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fidelity metrics as full-reference IQA models
#
# The `iqa_fr` job (`configs/iqa_fr.py`) scores the standard metrics on the embedded `ranking` set (scikit-image
# photographs under six synthetic distortions at five levels; its "scores" are the level ranks within each
# photograph and distortion, a demonstration, not human opinion) and measures how well each metric agrees
# with them: SRCC, KRCC, PLCC (also after a logistic fit), bootstrap intervals over the photographs, SRCC per
# distortion type. With `--config.datasets=live,csiq,...` and `--config.manual_dir` the same job reads the
# official human-opinion sets, and the `classic_models` preset scores VIF, FSIM, VSI, MDSI, HaarPSI, MS-GMSD,
# NLPD, CW-SSIM and MAD.
#
# On Colab, set `REPO_URL` in the next cell. `ASYM_NOTEBOOK_SMALL=1` scores five cheaper metrics (PSNR, SSIM,
# MS-SSIM, GMSD, LPIPS-AlexNet) with 200 bootstrap resamples instead of every metric with 1000.

# %%
# Set REPO_URL to the git URL of the asym_jax repository (your fork, or the upstream) before running on Colab.
REPO_URL = "https://github.com/YOUR_ACCOUNT/asym_jax.git"

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

IN_COLAB = "google.colab" in sys.modules
SMALL = os.environ.get("ASYM_NOTEBOOK_SMALL", "0") == "1"  # CI: minutes on a 2-core CPU; unset: the real sizes
NOTEBOOK = "03_metrics_as_iqa"

if IN_COLAB:
    REPO_DIR = pathlib.Path("/content/asym_jax")
    if not REPO_DIR.exists():
        subprocess.run(["git", "clone", "--depth=1", REPO_URL, str(REPO_DIR)], check=True)
    JAX = "jax[tpu]" if os.environ.get("COLAB_TPU_ADDR") else "jax[cuda12]" if shutil.which("nvidia-smi") else "jax"
    # %pip install -q -c {REPO_DIR}/constraints.txt {REPO_DIR} "{JAX}"
else:  # a local checkout with the package installed (pip install -e .)
    REPO_DIR = next((p for p in (pathlib.Path.cwd(), *pathlib.Path.cwd().parents)
                     if (p / "configs" / "sr_patchgan.py").is_file()), None)
    if REPO_DIR is None:
        import asym_jax
        REPO_DIR = pathlib.Path(asym_jax.__file__).resolve().parents[1]
os.chdir(REPO_DIR)  # config files are named as on the command line: configs/<experiment>.py[:preset]

# Where runs are written: $ASYM_NOTEBOOK_WORKDIR, else a temporary folder (small mode) or runs/notebooks/.
_base = os.environ.get("ASYM_NOTEBOOK_WORKDIR") or (tempfile.mkdtemp(prefix="asym_nb_") if SMALL
                                                     else str(REPO_DIR / "runs" / "notebooks"))
WORKDIR = pathlib.Path(_base).absolute() / NOTEBOOK
WORKDIR.mkdir(parents=True, exist_ok=True)
# Prepared datasets (TFDS data_dir): the notebook's own folder in small mode, TFDS's default otherwise.
DATA_DIR = str(WORKDIR / "tfds") if SMALL else ""

import jax

print(f"Colab: {IN_COLAB}, small: {SMALL}, workdir: {WORKDIR}")
print("JAX", jax.__version__, jax.devices())

# %% [markdown]
# ## 1. The configuration and the run

# %%
from asym_jax.experiments.cells import load_job_config
from asym_jax.jobs import job_runners

CONFIG = "configs/iqa_fr.py:ranking"
OVERRIDES = {"data_dir": DATA_DIR}
if SMALL:
    OVERRIDES.update(metrics=("psnr", "ssim", "ms_ssim", "gmsd", "lpips_alex"), bootstrap_resamples=200)
config = load_job_config(CONFIG, OVERRIDES)
RUN = WORKDIR / "iqa_fr_ranking"
print(f"metrics {config.metrics} on {config.datasets} (split {config.split!r}), workdir {RUN}")

result = job_runners()[config.job](config, str(RUN))  # per-image scores are reused on a rerun

# %% [markdown]
# ## 2. The correlation table
#
# `results.md` as the job wrote it, then the main figures of `results.json` with their 95% bootstrap
# intervals (resampling photographs). Predictions are aligned so that +1 is perfect agreement whatever the
# metric's direction.

# %%
import json

from IPython.display import Markdown, display

display(Markdown((RUN / "results.md").read_text()))

# %%
rows = json.loads((RUN / "results.json").read_text())["results"]


def ci(row, key):
    low_high = row.get(f"{key}_ci95")
    return f" [{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else ""


kinds = sorted({kind for row in rows for kind in row.get("per_distortion", {})})
table = ["| metric | SRCC [95% CI] | KRCC | PLCC [95% CI] | PLCC logistic | " + " | ".join(f"SRCC {k}" for k in kinds) + " |",
         "|---|---|---:|---|---:|" + "---:|" * len(kinds)]
for row in sorted(rows, key=lambda r: -r["srcc"]):
    per = [row["per_distortion"].get(k, {}).get("srcc") for k in kinds]
    table.append(f"| `{row['metric']}` | {row['srcc']:.3f}{ci(row, 'srcc')} | {row['krcc']:.3f} | "
                 f"{row['plcc']:.3f}{ci(row, 'plcc')} | "
                 + (f"{row['plcc_logistic']:.3f}" if row["plcc_logistic"] is not None else "-") + " | "
                 + " | ".join("-" if v is None else f"{v:.3f}" for v in per) + " |")
display(Markdown("\n".join(table)))

# %% [markdown]
# ## 3. Scatter plots
#
# Each metric's raw score against the level rank (jittered horizontally), one colour per distortion type,
# from the per-image scores in `scores/ranking/<metric>.csv`; the job's own plots (aligned predictions with
# the fitted logistic) are in `plots/`.

# %%
import csv

import matplotlib.pyplot as plt
import numpy as np

from asym_jax.eval.iqa_fr import metric_file_name

specs = list(config.metrics)
cols = min(4, len(specs))
fig, axes = plt.subplots(int(np.ceil(len(specs) / cols)), cols, figsize=(3.6 * cols, 3.2 * np.ceil(len(specs) / cols)),
                         squeeze=False)
rng = np.random.default_rng(0)
for ax, spec in zip(axes.flat, specs):
    with open(RUN / "scores" / "ranking" / f"{metric_file_name(spec)}.csv") as f:
        table = list(csv.DictReader(f))
    for kind in sorted({r["distortion"] for r in table}):
        sel = [r for r in table if r["distortion"] == kind]
        level = np.asarray([float(r["score"]) for r in sel])
        ax.scatter(level + rng.uniform(-0.15, 0.15, level.size), [float(r["prediction"]) for r in sel], s=8,
                   label=kind)
    srcc = next(r["srcc"] for r in rows if r["metric"] == spec)
    ax.set_title(f"{spec}: SRCC {srcc:.3f}", fontsize=9)
    ax.set_xlabel("level rank (5: mildest)")
for ax in axes.flat[len(specs):]:
    ax.axis("off")
axes.flat[0].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %%
from IPython.display import Image as ShowImage

plots = sorted((RUN / "plots").glob("*.png"))
print([p.name for p in plots])
if plots:
    display(ShowImage(filename=str(plots[0])))

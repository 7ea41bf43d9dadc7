# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # From a GAN discriminator to an NR-IQA model
#
# The paper's third question: is a trained discriminator's backbone a good start for a no-reference IQA
# model? Here an SR run with an image-level AlexNet discriminator (ImageNet trunk, then trained against the
# generator) is made first; the `iqa_nr` job (`configs/iqa_nr.py`) then trains NR-IQA models on the embedded
# `ranking` set from three initialisations of the same AlexNet trunk: the trained discriminator
# (`init=discriminator:<sr workdir>`, a partial restore of its trunk from the run's Orbax checkpoint),
# ImageNet and random weights. The trained model is then a metric, `nr:<workdir>`, that scores the SR
# outputs without a reference. (Other backbones need converted weights; AlexNet and VGG-16 are offline.)
#
# On Colab, set `REPO_URL` in the next cell. `ASYM_NOTEBOOK_SMALL=1` uses the tiny presets: 2 SR steps and
# 20 NR-IQA steps on 64-px crops with a 16-unit head (numbers that show the machinery only). Without it: the
# `sample` SR preset (300 steps) and the `ranking` NR preset (150 steps on 96-px crops).

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
NOTEBOOK = "04_discriminator_to_iqa"

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
# ## 1. An SR run with an image-level AlexNet discriminator

# %%
from asym_jax.experiments.cells import load_job_config
from asym_jax.jobs import job_runners

RUNNERS = job_runners()
if SMALL:
    SR_CONFIG, SR_OVERRIDES = "configs/sr_backbone.py:alexnet,image,tiny", {"num_train_steps": 2, "eval_limit": 2}
else:
    SR_CONFIG, SR_OVERRIDES = "configs/sr_backbone.py:alexnet,image", {}
sr_config = load_job_config(SR_CONFIG, {**SR_OVERRIDES, "d_init": "pretrained", "data_dir": DATA_DIR})
SR_RUN = WORKDIR / "sr_alexnet_image"
print(f"{SR_CONFIG}: discriminator {sr_config.discriminator} (trunk: {sr_config.d_init}), "
      f"{sr_config.num_train_steps} steps -> {SR_RUN}")
sr_final = RUNNERS["sr_gan"](sr_config, str(SR_RUN))

# %% [markdown]
# ## 2. NR-IQA models from three initialisations
#
# The same AlexNet trunk, pooled, with a fresh MLP head (`head_init="random"` for all three, so only the
# trunk differs), trained on the seed-0 training split of `ranking` and tested on its test split. The
# step-0 figures are those of the untrained head on each trunk.

# %%
NR_CONFIG = "configs/iqa_nr.py:tiny" if SMALL else "configs/iqa_nr.py:ranking"
NR_OVERRIDES = {"num_train_steps": 20, "log_every_steps": 4, "checkpoint_every_steps": 20} if SMALL else {}
INITS = {"discriminator": f"discriminator:{SR_RUN}", "imagenet": "imagenet", "random": "random"}
nr_runs, nr_results = {}, {}
for label, init in INITS.items():
    config = load_job_config(NR_CONFIG, {**NR_OVERRIDES, "backbone": "alexnet", "init": init, "data_dir": DATA_DIR})
    nr_runs[label] = WORKDIR / f"nr_alexnet_{label}"
    print(f"--- init={init}")
    nr_results[label] = RUNNERS["iqa_nr"](config, str(nr_runs[label]))

# %% [markdown]
# ## 3. The comparison

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display


def fmt(value):
    return "-" if value is None else f"{value:.3f}"


def ci(row, key):
    low_high = row.get(f"{key}_ci95")
    return f" [{low_high[0]:.2f}, {low_high[1]:.2f}]" if low_high else ""


rows = {label: json.loads((run / "results.json").read_text())["results"][0] for label, run in nr_runs.items()}
table = ["| init | trunk source | SRCC at step 0 | SRCC [95% CI] | PLCC at step 0 | PLCC [95% CI] | n test |",
         "|---|---|---:|---|---:|---|---:|"]
for label, row in rows.items():
    source = json.loads((nr_runs[label] / "manifest.json").read_text())["trunks"]["trunk"]["source"]
    table.append(f"| {label} | `{source}` | {fmt(row.get('initial_srcc'))} | {fmt(row['srcc'])}{ci(row, 'srcc')} | "
                 f"{fmt(row.get('initial_plcc'))} | {fmt(row['plcc'])}{ci(row, 'plcc')} | {row['n']} |")
display(Markdown("\n".join(table)))

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
labels = list(rows)
at0 = [rows[k].get("initial_srcc") or 0.0 for k in labels]
end = [rows[k]["srcc"] or 0.0 for k in labels]
pos = np.arange(len(labels))
axes[0].bar(pos - 0.2, at0, 0.4, label="step 0")
axes[0].bar(pos + 0.2, end, 0.4, label="trained")
axes[0].set_xticks(pos, labels)
axes[0].axhline(0, color="k", lw=0.5)
axes[0].set_title("test SRCC by initialisation")
axes[0].legend()
for label in labels:
    history = np.asarray(nr_results[label]["train_loss"])  # [[step, mean loss], ...] per logging step
    axes[1].plot(history[:, 0], history[:, 1], marker=".", label=label)
axes[1].set_title("training loss")
axes[1].set_xlabel("step")
axes[1].legend()
for label in labels:
    predictions = next((nr_runs[label] / "predictions").glob("ranking__*.csv"))
    table = np.genfromtxt(predictions, delimiter=",", names=True, dtype=None, encoding="utf-8")
    axes[2].scatter(table["score"] + np.random.default_rng(0).uniform(-0.2, 0.2, table.size), table["prediction"],
                    s=10, label=label)
axes[2].set_xlabel("level rank (5: mildest)")
axes[2].set_ylabel("predicted quality")
axes[2].set_title("test-split predictions")
axes[2].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The NR model as a metric: scoring the SR outputs without a reference
#
# `nr:<workdir>` is a registered metric (score CLI, `iqa_fr`, the SR trainer's `eval_metrics`). Here the
# ImageNet-initialised model scores the SR run's outputs and bicubic's on the held-out photographs.

# %%
from PIL import Image

from asym_jax import metrics

nr_metric = metrics.from_spec(f"nr:{nr_runs['imagenet']}")
lines = ["| image | bicubic | model |", "|---|---:|---:|"]
for sr_path in sorted((SR_RUN / "eval" / "images").glob("*_sr.png")):
    name = sr_path.name[:-len("_sr.png")]
    scores = [float(nr_metric(np.asarray(Image.open(p), np.float32)[None] / 255.0)[0])
              for p in (sr_path.with_name(f"{name}_bicubic.png"), sr_path)]
    lines.append(f"| {name} | {scores[0]:.3f} | {scores[1]:.3f} |")
display(Markdown("\n".join(lines)))

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
# # The asymmetry study: a grid of jobs and its report
#
# The `study` job (`configs/study.py`) plans a grid of ordinary jobs (cells, each in `W/cells/<name>/`):
# (1) fidelity metrics as FR-IQA models and as SR losses, (2) discriminators across GAN weights, (3) NR-IQA
# and DISTS-style models from the trained discriminators' trunks against ImageNet and random ones; then
# writes `W/report.md`, `W/report.json` and `W/plots/` (the asymmetry: Kendall tau and SRCC between the
# metrics' IQA ranking and their optimisation ranking). A rerun skips finished cells; `cells=` runs a subset;
# `plan_only` prints each cell's own command; `report_only` rewrites the report from what has finished,
# listing the missing cells.
#
# Here the `tiny` preset (every code path, smallest networks, two training steps: the numbers show the
# machinery only; `configs/study.py:sample` is the 20-cell demonstration on the embedded sets, about 21
# minutes on a 2-core CPU). On Colab, set `REPO_URL` in the next cell. `ASYM_NOTEBOOK_SMALL=1` runs the cells
# of the first two experiments (the FR-IQA cell, the pixel-loss pre-training, three SR cells with the
# metrics as losses and two with each discriminator; no NR judge) and reports the initialisation
# experiment's cells as missing.

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
NOTEBOOK = "05_study_report"

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
# ## 1. The plan
#
# `plan_only=True` runs nothing: each cell, its status and the command that runs it alone.

# %%
from asym_jax.experiments import study
from asym_jax.experiments.cells import load_job_config

STUDY = "configs/study.py:tiny"
OVERRIDES = {"data_dir": DATA_DIR}
if SMALL:
    OVERRIDES.update(cells="fr-iqa,pretrain,sr-*,d-*", nr_judges=())
W = WORKDIR / "study_tiny"
runner = study.run_job  # what python -m asym_jax.main runs for config.job == "study"

plan = runner(load_job_config(STUDY, {**OVERRIDES, "plan_only": True}), str(W))

# %% [markdown]
# ## 2. Running the cells
#
# Each cell runs in this process, as its command would; the report is written at the end.

# %%
config = load_job_config(STUDY, OVERRIDES)
result = runner(config, str(W))

# %%
from IPython.display import Markdown, display

display(Markdown("| cell | status |\n|---|---|\n" + "\n".join(f"| {name} | {status} |"
                                                             for name, status in result["cells"].items())))

# %% [markdown]
# ## 3. The report
#
# `report_only=True` regenerates `report.md`, `report.json` and `plots/` from the finished cells (e.g. after
# other machines ran other cells of the same `W`); missing cells are listed, never dropped.

# %%
runner(load_job_config(STUDY, {**OVERRIDES, "report_only": True}), str(W))
display(Markdown((W / "report.md").read_text()))

# %%
from IPython.display import Image as ShowImage

plots = sorted((W / "plots").glob("*.png"))
print([p.name for p in plots])
for path in plots:
    display(Markdown(f"**{path.name}**"))
    display(ShowImage(filename=str(path)))

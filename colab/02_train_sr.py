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
# # Train a perceptual SR model (PatchGAN discriminator) and look at its results
#
# The `sample` preset of `configs/sr_patchgan.py`: a small RRDBNet x4 generator trained on the embedded
# photographs with L1 + DISTS fidelity and a PatchGAN discriminator, run by the same job runner as
# `python -m asym_jax.main`; then the training curves, the final table against bicubic and the SR images.
#
# On Colab, set `REPO_URL` in the next cell. `ASYM_NOTEBOOK_SMALL=1` trains the `tiny` preset for 200 steps.

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
NOTEBOOK = "02_train_sr"

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
# ## 1. The configuration
#
# `configs/sr_patchgan.py` is an ordinary ml_collections config file: `get_config(preset)` with the
# presets `sample` (embedded photographs, a small RRDBNet, 300 steps: about 7 minutes on a 2-core CPU),
# `paper` and `tiny`. `load_job_config("file.py:preset", overrides)` loads it as
# `python -m asym_jax.main --config=file.py:preset --config.FIELD=VALUE` would; an override that names no
# field is refused. Small mode trains the tiny preset (an 8-channel RRDBNet, SSIM fidelity, 32-px crops)
# for 200 steps (150 generator-only, then adversarial; generator LR 2e-3, EMA 0.9): about a minute on a
# 2-core CPU, close to bicubic but not past it.

# %%
from asym_jax.experiments.cells import load_job_config

if SMALL:
    CONFIG = "configs/sr_patchgan.py:tiny"
    OVERRIDES = {"num_train_steps": 200, "adversarial_start_step": 150, "log_every_steps": 10,
                 "eval_every_steps": 200, "checkpoint_every_steps": 200, "eval_limit": 2, "log_images": 0,
                 "ema_decay": 0.9}
    G_LR = 2e-3
else:
    CONFIG = "configs/sr_patchgan.py:sample"
    OVERRIDES, G_LR = {}, None
OVERRIDES["data_dir"] = DATA_DIR
config = load_job_config(CONFIG, OVERRIDES)
if G_LR is not None:
    config.g_optimizer.lr = G_LR  # a nested field: --config.g_optimizer.lr=... on the command line
RUN = WORKDIR / "sr_patchgan"

print("python -m asym_jax.main --config=" + CONFIG + f" --workdir={RUN} "
      + " ".join(f"--config.{k}={v}" for k, v in OVERRIDES.items() if v != "")
      + (f" --config.g_optimizer.lr={G_LR}" if G_LR is not None else ""))
for field in ("generator", "generator_options", "discriminator", "discriminator_options", "fidelity",
              "gan_weight", "hr_size", "batch_size", "num_train_steps", "adversarial_start_step", "eval_metrics"):
    print(f"  {field:24s} {config[field]}")

# %% [markdown]
# ## 2. Training
#
# The same runner as the command line (`asym_jax.jobs.job_runners()`, which `asym_jax.main` dispatches
# to). Running the cell again resumes from `RUN/checkpoints`; a finished run only re-evaluates.

# %%
from asym_jax.jobs import job_runners

final = job_runners()[config.job](config, str(RUN))

# %% [markdown]
# ## 3. The training scalars (`train_log.jsonl`)
#
# One JSON line per logging step: the generator's total loss and its terms, the discriminator's loss and
# its mean outputs on real and SR crops. The same scalars are in `RUN/tensorboard` (on Colab:
# `%load_ext tensorboard` then `%tensorboard --logdir RUN/tensorboard`).

# %%
import json

import matplotlib.pyplot as plt
import numpy as np

log = [json.loads(line) for line in (RUN / "train_log.jsonl").read_text().splitlines() if line.strip()]
steps = [row["step"] for row in log]
panels = {"generator": ("g_total", "pixel", "fidelity", "g_gan"), "discriminator": ("d_loss",),
          "D outputs (logits)": ("d_real", "d_fake")}
fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2))
for ax, (title, keys) in zip(axes, panels.items()):
    for key in keys:
        if key in log[0]:
            ax.plot(steps, [row[key] for row in log], marker=".", label=key)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The final evaluation (`eval/final.json`)
#
# The EMA generator and bicubic on the held-out photographs: PSNR-Y and SSIM on MATLAB's Y with
# `crop_border=scale` (and LPIPS-VGG and DISTS in the `sample` preset).

# %%
from IPython.display import Markdown, display

final = json.loads((RUN / "eval" / "final.json").read_text())
names = list(next(iter(final["methods"].values())))
table = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
table += [f"| {method} | " + " | ".join(f"{values[n]:.4f}" for n in names) + " |"
          for method, values in final["methods"].items()]
table += ["", f"step {final['step']}; {final['convention']}", "",
          "| image | " + " | ".join(f"{m}/{n}" for m in final["methods"] for n in names) + " |",
          "|---|" + "---|" * (len(names) * len(final["methods"]))]
table += [f"| {row['name']} | " + " | ".join(f"{row[f'{m}/{n}']:.4f}" for m in final["methods"] for n in names) + " |"
          for row in final["images"]]
display(Markdown("\n".join(table)))

# %% [markdown]
# ## 5. The SR images (`eval/images/`)
#
# Bicubic and the model's output for each held-out photograph, with the high-resolution original; the
# lower row zooms into the centre.

# %%
from PIL import Image

from asym_jax import data

images = sorted((RUN / "eval" / "images").glob("*_sr.png"))
fig, axes = plt.subplots(2 * len(images), 3, figsize=(12, 5.6 * len(images)), squeeze=False)
for i, sr_path in enumerate(images):
    name = sr_path.name[:-len("_sr.png")]
    sr = np.asarray(Image.open(sr_path))
    bicubic = np.asarray(Image.open(sr_path.with_name(f"{name}_bicubic.png")))
    hr = data.sample_image(name)[:sr.shape[0], :sr.shape[1]]
    h, w = sr.shape[:2]
    zoom = (slice(h // 2 - h // 8, h // 2 + h // 8), slice(w // 2 - w // 8, w // 2 + w // 8))
    for j, (title, image) in enumerate((("bicubic", bicubic), ("model", sr), ("HR", hr))):
        axes[2 * i, j].imshow(image)
        axes[2 * i, j].set_title(f"{name}: {title}")
        axes[2 * i + 1, j].imshow(image[zoom])
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout()
plt.show()

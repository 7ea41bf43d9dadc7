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
# # asym_jax quickstart: score images, plot the scores, use a metric as a loss
#
# Every fidelity metric of the registry (PSNR, SSIM, MS-SSIM, GMSD, LPIPS, DISTS, ...) on the embedded
# sample photographs under blur, noise and JPEG; the scores plotted against the distortion level; the
# score command line on image files; and SSIM and DISTS as losses under `jax.grad`.
#
# On Colab, set `REPO_URL` in the next cell (the runtime's accelerator is detected). `ASYM_NOTEBOOK_SMALL=1`
# runs a reduced version (fewer photographs and levels, fewer gradient steps), as CI does.

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
NOTEBOOK = "01_quickstart"

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
# ## 1. The metrics of the registry
#
# `python -m asym_jax.score --list` prints every registered metric with its direction and the reference
# implementation it reproduces; `asym_jax.metrics.names()` and `info(name)` give the same in Python.
# `nr` is a no-reference metric made from a trained NR-IQA run (notebook 04); the others compare an image
# with its reference.

# %%
print(subprocess.run([sys.executable, "-m", "asym_jax.score", "--list"], capture_output=True, text=True,
                     check=True).stdout)

from asym_jax import metrics

FR_METRICS = [n for n in metrics.names() if metrics.info(n).needs_reference]
print(FR_METRICS)

# %% [markdown]
# ## 2. Images: the embedded sample photographs under synthetic distortions
#
# The package ships scikit-image's photographs (`asym_jax.data.sample_image`) and six synthetic
# distortions at five levels (`asym_jax.data.distort`). Here: Gaussian blur, Gaussian noise and JPEG.
# MS-SSIM needs at least 161 px and CW-SSIM's default (the authors' six levels) 256 px, so the crops are 256 px.

# %%
import matplotlib.pyplot as plt
import numpy as np

from asym_jax import data

PHOTOS = ("astronaut", "coffee") if SMALL else ("astronaut", "chelsea", "coffee", "rocket")
KINDS = ("blur", "noise", "jpeg")
LEVELS = (0, 2, 4) if SMALL else (0, 1, 2, 3, 4)
CROP = 256

rows, refs, dists_ = [], [], []
for name, kind, level, ref, dist in data.sample_pairs(PHOTOS, KINDS, LEVELS, crop=CROP):
    rows.append((name, kind, level))
    refs.append(ref)
    dists_.append(dist)
Y, X = np.stack(refs), np.stack(dists_)
print(f"{len(rows)} pairs of {CROP} x {CROP} images")

fig, axes = plt.subplots(len(KINDS), len(LEVELS) + 1, figsize=(2.2 * (len(LEVELS) + 1), 2.2 * len(KINDS)))
for i, kind in enumerate(KINDS):
    axes[i, 0].imshow(Y[0])
    axes[i, 0].set_title("reference", fontsize=8)
    for j, level in enumerate(LEVELS):
        k = rows.index((PHOTOS[0], kind, level))
        axes[i, j + 1].imshow(X[k])
        axes[i, j + 1].set_title(f"{kind}, level {level}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Every metric on every pair
#
# `metrics.get(name)` returns the metric with its weights as a pytree; passing it as an argument of a
# jitted function shares one compiled program between calls. Scores are one per image.

# %%
import time

score_fn = jax.jit(lambda metric, x, y: metric(x, y))
BATCH = 6

scores = {}
for name in FR_METRICS:
    start = time.perf_counter()
    metric = metrics.get(name)
    scores[name] = np.concatenate([np.asarray(score_fn(metric, X[i:i + BATCH], Y[i:i + BATCH]))
                                   for i in range(0, len(X), BATCH)])
    print(f"{name:12s} {time.perf_counter() - start:6.1f} s")

# %%
from IPython.display import Markdown, display

header = "| photo | distortion | level | " + " | ".join(FR_METRICS) + " |"
lines = [header, "|" + "---|" * (3 + len(FR_METRICS))]
lines.append("| | | direction | " + " | ".join("higher" if metrics.info(n).higher_is_better else "lower"
                                               for n in FR_METRICS) + " |")
for k, (name, kind, level) in enumerate(rows):
    lines.append(f"| {name} | {kind} | {level} | " + " | ".join(f"{scores[n][k]:.4g}" for n in FR_METRICS) + " |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ### Scores against the distortion level
#
# Each panel is one metric: the mean over the photographs for each distortion and level. A good metric
# moves monotonically with the level (up for distances, down for similarities).

# %%
cols = 4
fig, axes = plt.subplots(int(np.ceil(len(FR_METRICS) / cols)), cols, figsize=(3.4 * cols, 2.6 * np.ceil(len(FR_METRICS) / cols)))
for ax, name in zip(axes.flat, FR_METRICS):
    for kind in KINDS:
        means = [np.mean([scores[name][k] for k, r in enumerate(rows) if r[1:] == (kind, level)]) for level in LEVELS]
        ax.plot(LEVELS, means, marker="o", label=kind)
    ax.set_title(f"{name} ({'higher' if metrics.info(name).higher_is_better else 'lower'} is better)", fontsize=9)
    ax.set_xlabel("level")
for ax in axes.flat[len(FR_METRICS):]:
    ax.axis("off")
axes.flat[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Your own images, from the command line
#
# `python -m asym_jax.score` scores image files (or two folders matched by name). Here two PNGs written
# from the arrays above; replace them with your own reference and distorted images.

# %%
from PIL import Image

own = WORKDIR / "own_images"
own.mkdir(exist_ok=True)
k = rows.index((PHOTOS[0], "jpeg", LEVELS[-1]))
Image.fromarray(np.round(Y[k] * 255).astype(np.uint8)).save(own / "reference.png")
Image.fromarray(np.round(X[k] * 255).astype(np.uint8)).save(own / "distorted.png")
out = subprocess.run([sys.executable, "-m", "asym_jax.score", "--metric", "psnr", "--metric", "ssim",
                      "--metric", "lpips_vgg", str(own / "reference.png"), str(own / "distorted.png")],
                     capture_output=True, text=True, check=False)
print(out.stdout, out.stderr[-2000:] if out.returncode else "")
assert out.returncode == 0

# %% [markdown]
# ## 5. A metric as a loss
#
# `metrics.as_loss(name)` is a lower-is-better scalar (`1 - SSIM` on RGB and the float path, the DISTS
# distance itself, ...) that `jax.grad` differentiates. Starting from the noisy image, a few steps of Adam on
# the pixels themselves pull it towards the reference; the other metrics follow.

# %%
import optax

SIZE = 96 if SMALL else 192
STEPS = {"ssim": 30 if SMALL else 200, "dists": 15 if SMALL else 100}
k = rows.index((PHOTOS[0], "noise", LEVELS[-1]))
y0 = jax.numpy.asarray(Y[k:k + 1, :SIZE, :SIZE])
x0 = jax.numpy.asarray(X[k:k + 1, :SIZE, :SIZE])

optimizer = optax.adam(1e-2)


@jax.jit
def step(loss, x, y, opt_state):
    """One Adam step on the pixels of ``x``; the loss (a pytree: its weights) travels as an argument."""
    value, grad = jax.value_and_grad(loss)(x, y)
    updates, opt_state = optimizer.update(grad, opt_state)
    return jax.numpy.clip(optax.apply_updates(x, updates), 0.0, 1.0), opt_state, value


results = {}
for name, steps in STEPS.items():
    loss = metrics.as_loss(name)
    x, opt_state, history = x0, optimizer.init(x0), []
    for _ in range(steps):
        x, opt_state, value = step(loss, x, y0, opt_state)
        history.append(float(value))
    results[name] = (x, history)
    psnr = metrics.get("psnr")
    print(f"{name}: loss {history[0]:.4f} -> {history[-1]:.4f} in {steps} steps; "
          f"PSNR {float(psnr(x0, y0)[0]):.2f} -> {float(psnr(x, y0)[0]):.2f} dB")

fig, axes = plt.subplots(1, 2 + len(results) + 1, figsize=(3 * (3 + len(results)), 3))
axes[0].imshow(np.asarray(x0[0]))
axes[0].set_title("start: noisy")
for ax, (name, (x, _)) in zip(axes[1:], results.items()):
    ax.imshow(np.asarray(x[0]))
    ax.set_title(f"after {len(results[name][1])} steps of {name}")
axes[len(results) + 1].imshow(np.asarray(y0[0]))
axes[len(results) + 1].set_title("reference")
for ax in axes[:-1]:
    ax.axis("off")
for name, (_, history) in results.items():
    axes[-1].plot(np.asarray(history) / history[0], label=name)
axes[-1].set_title("loss / initial loss")
axes[-1].set_xlabel("step")
axes[-1].legend()
plt.tight_layout()
plt.show()

"""Do reported numbers depend on the accelerator's precision defaults? A check for GPUs and TPUs.

    python benchmarks/eval_precision.py --data_dir DIR [--json FILE]

On a GPU, float32 matmuls and convolutions run at TF32 by default (a bf16 pass on TPU); every reported
number must not (``eval.scoring`` and ``Trainer.upscale`` trace at ``Precision.HIGHEST``). On the default
backend this prints, per metric, the relative difference between

* the scorer (HIGHEST) on the accelerator and the same scorer on the CPU backend of the same machine
  (what is left is the two backends' float32 arithmetic: summation order, convolution algorithms), and
* the bare metric at the backend's default precision and the CPU scorer (equal to the first where the
  metric pins its own precision, as the deep metrics do),

and how far 1e-6 of input noise moves the CPU score (the float32 floor of an ill-conditioned metric);
then the same for the generator's evaluation forward pass, and finally whether a bf16 run's evaluation
equals the float32 evaluation of the same parameters (``sr_gan.evaluate``, exact equality). Trunks are
random (``weights=random``), so that no weights need to travel; random trunks give near-0, ill-conditioned
scores (differences of nearly equal numbers), hence the noise column.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from asym_jax import metrics  # noqa: E402
from asym_jax.data import distort, sample_image  # noqa: E402
from asym_jax.eval.scoring import jitted_score  # noqa: E402

SPECS = ("psnr_y", "ssim", "lpips_vgg:weights=random", "dists_style:backbone=vgg16,weights=random,alpha_beta=dists",
         "dists_style:backbone=resnet50,weights=random,alpha_beta=uniform",
         "dists_style:backbone=dinov2_s14,weights=random,alpha_beta=uniform")


def _pairs(size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    refs, dists = [], []
    for name, kind in (("astronaut", "blur"), ("coffee", "noise"), ("chelsea", "jpeg"), ("rocket", "contrast")):
        image = sample_image(name)
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crop = image[top:top + size, left:left + size]
        refs.append(crop)
        dists.append(distort(crop, kind, 2))
    return np.stack(dists).astype(np.float32) / 255.0, np.stack(refs).astype(np.float32) / 255.0


def _rel(a, b) -> float:
    """Largest difference relative to the reference's largest magnitude (per-element ratios blow up
    where the reference is near 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def _on(device, tree):
    return jax.device_put(tree, device)


def _trainer_rows(data_dir: str, accelerator, cpu) -> list[dict]:
    """The generator's evaluation pass (HIGHEST and default precision vs CPU) after one bf16 step, and
    bf16 evaluation == float32 evaluation of the same parameters."""
    from helpers import load_config, tiny

    from asym_jax.train import sr_gan

    eval_metrics = SPECS[:4]
    with tempfile.TemporaryDirectory() as workdir:
        config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, dtype="bfloat16", eval_metrics=eval_metrics)
        bf16 = sr_gan.build(config, os.path.join(workdir, "bf16"))
        sr_gan.train_step(bf16)
        float32 = sr_gan.build(tiny(load_config("sr_patchgan.py", "tiny"), data_dir, eval_metrics=eval_metrics),
                               os.path.join(workdir, "float32"))
        float32.state, float32.step = bf16.state, bf16.step
        equal = sr_gan.evaluate(bf16)["methods"] == sr_gan.evaluate(float32)["methods"]
        ema = jax.device_get(bf16.state.g_ema)
        lr = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (2, 48, 48, 3)), np.float32)
        reference = np.asarray(bf16.upscale(*_on(cpu, (ema, lr))))
        highest = np.asarray(bf16.upscale(*_on(accelerator, (ema, lr))))
        inner = bf16.upscale  # jit(highest_precision(eval_apply)): unwrapped, the backend's default precision
        while hasattr(inner, "__wrapped__"):
            inner = inner.__wrapped__
        default = np.asarray(jax.jit(inner)(*_on(accelerator, (ema, lr))))
        row = {"what": "generator evaluation pass (tiny generator, LR 48 px)",
               "highest_vs_cpu": _rel(highest, reference), "default_vs_cpu": _rel(default, reference)}
    return [row, {"what": "bf16 run's evaluation == float32 evaluation (sr_gan.evaluate)", "equal": bool(equal)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="TFDS data_dir holding the prepared `sample` set")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    accelerator, cpu = jax.devices()[0], jax.devices("cpu")[0]
    print(f"# {accelerator.device_kind} ({accelerator.platform}) vs {cpu.device_kind} (cpu), JAX {jax.__version__}")
    x, y = _pairs()
    rows = []
    bare = jax.jit(lambda metric, a, b: metric(a, b))  # the backend's default precision
    # How far 1e-6 of input noise moves the score on the CPU: the float32 floor of an ill-conditioned metric
    # (random trunks give near-0 scores, differences of nearly equal numbers).
    noise = np.random.default_rng(0).uniform(-1e-6, 1e-6, x.shape).astype(np.float32)
    for spec in SPECS:
        metric = metrics.from_spec(spec)
        reference = np.asarray(jitted_score()(*_on(cpu, (metric, x, y))))
        highest = np.asarray(jitted_score()(*_on(accelerator, (metric, x, y))))
        default = np.asarray(bare(*_on(accelerator, (metric, x, y))))
        noisy = np.asarray(jitted_score()(*_on(cpu, (metric, x + noise, y))))
        rows.append({"what": spec, "highest_vs_cpu": _rel(highest, reference), "default_vs_cpu": _rel(default, reference),
                     "cpu_noise_floor": _rel(noisy, reference)})

    rows += _trainer_rows(args.data_dir, accelerator, cpu)

    print(f"{'what':<66} {'HIGHEST vs CPU':>15} {'default vs CPU':>15} {'CPU 1e-6 noise':>15}")
    for row in rows:
        if "equal" in row:
            print(f"{row['what']:<66} {'equal' if row['equal'] else 'DIFFERENT':>15}")
        else:
            floor = f"{row['cpu_noise_floor']:>15.2e}" if "cpu_noise_floor" in row else f"{'-':>15}"
            print(f"{row['what']:<66} {row['highest_vs_cpu']:>15.2e} {row['default_vs_cpu']:>15.2e} {floor}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": accelerator.device_kind, "jax": jax.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""The sr_gan trainer: every config family for one step, sharded and resumed equivalence, divergence."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from asym_jax.train import sr_gan
from asym_jax.train.config import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_config(file: str, arg: str | None = None):
    spec = importlib.util.spec_from_file_location("config_under_test", ROOT / "configs" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()


def tiny(config, data_dir, **overrides):
    config.data_dir = str(data_dir)
    for key, value in overrides.items():
        config[key] = value
    return config


FAMILIES = [
    ("sr_patchgan.py", "tiny"),
    ("sr_unet_sn.py", "tiny"),
    ("sr_backbone.py", "vgg16,image,tiny"),
    ("sr_backbone.py", "dinov2_s14,patch,tiny"),
    ("sr_fidelity.py", "vgg16r,tiny"),
    ("sr_fidelity.py", "lpips,tiny"),
    ("sr_realesrgan.py", "tiny"),
]


@pytest.mark.parametrize("file,arg", FAMILIES, ids=[f"{f}:{a}" for f, a in FAMILIES])
def test_one_step_of_every_config_family(file, arg, data_dir, tmp_path):
    config = tiny(load_config(file, arg), data_dir, num_train_steps=1)
    result = sr_gan.run_job(config, tmp_path)
    final = json.loads((tmp_path / "eval" / "final.json").read_text())
    assert final["step"] == 1 and set(final["methods"]) == {"bicubic", "model"}
    assert set(final["methods"]["model"]) == {"psnr_y", "ssim"}
    assert all(np.isfinite(v) for m in final["methods"].values() for v in m.values())
    assert result["methods"] == final["methods"]
    assert (tmp_path / "eval" / "images" / "coffee_sr.png").is_file()
    assert any((tmp_path / "tensorboard").iterdir())


def test_paper_and_sample_presets_are_consistent():
    for file, arg in [("sr_patchgan.py", "paper"), ("sr_realesrgan.py", "paper"), ("sr_patchgan.py", "sample"),
                      ("sr_backbone.py", "dinov2_s14,image,paper"), ("sr_fidelity.py", "ms_ssim,sample")]:
        config = load_config(file, arg)
        assert config.hr_size % config.scale == 0 and config.job == "sr_gan"
    paper = load_config("sr_patchgan.py", "paper")
    assert paper.generator == "swinir_m" and paper.dataset == "df2k" and paper.hr_size == 256


def test_missing_pretrained_trunk_fails_before_compiling(data_dir, tmp_path, monkeypatch):
    config = tiny(load_config("sr_backbone.py", "resnet50,patch,tiny"), data_dir, init="pretrained",
                  weights_dir=str(tmp_path / "weights"))
    compiled = []
    monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
    with pytest.raises(ConfigError, match=r"needs pretrained resnet50 weights.*weights/resnet50.*python -m "
                                          r"asym_jax.weights convert --arch resnet50 .*--config.init=random"):
        sr_gan.build(config, tmp_path / "run")
    assert not compiled
    config = tiny(load_config("sr_realesrgan.py", "tiny"), data_dir, init="pretrained",
                  weights_dir=str(tmp_path / "weights"))
    with pytest.raises(ConfigError, match=r"fidelity loss 'perceptual_vgg19' needs pretrained vgg19 weights"):
        sr_gan.build(config, tmp_path / "run")


def test_bad_config_values_are_refused(data_dir, tmp_path):
    for key, value, message in [("adversarial", "wgan", "adversarial must be one of"),
                                ("hr_size", 30, "multiple of scale"), ("batch_size", 7, "multiple of the 8 devices"),
                                ("fidelity", "nonsense", "unknown")]:
        config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, **{key: value})
        with pytest.raises(ConfigError, match=message):
            sr_gan.build(config, tmp_path)


def _params(trainer):
    return jax.tree.map(np.asarray, {"g": trainer.state.g_params, "d": trainer.state.d_params,
                                     "d_state": trainer.state.d_state, "ema": trainer.state.g_ema})


def test_eight_devices_equal_one_device(data_dir, tmp_path):
    """Two steps with the batch split over 8 CPU devices equal two steps on one (same global batch)."""
    assert jax.device_count() == 8
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        config = tiny(load_config("sr_unet_sn.py", "tiny"), data_dir)  # spectral norm: a stateful discriminator
        trainer = sr_gan.build(config, tmp_path / str(len(devices)), devices=devices)
        metrics = [jax.device_get(sr_gan.train_step(trainer)) for _ in range(2)]
        results.append((_params(trainer), metrics))
    (one, m1), (eight, m8) = results
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6), one, eight)
    for a, b in zip(m1, m8):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=1e-6, err_msg=key)


def _main(workdir, data_dir, *overrides):
    return [sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny", f"--workdir={workdir}",
            f"--config.data_dir={data_dir}", "--config.num_train_steps=40", "--config.checkpoint_every_steps=2",
            "--config.log_every_steps=2", *overrides]


def test_killed_run_resumes_to_the_same_result(data_dir, tmp_path):
    from asym_jax.data import datasets
    datasets.prepare("sample", data_dir=data_dir)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    whole = subprocess.run(_main(tmp_path / "whole", data_dir), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]

    process = subprocess.Popen(_main(tmp_path / "killed", data_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "checkpoints" / "2" / "commit_success.txt"
    deadline = time.time() + 600
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (tmp_path / "killed" / "eval" / "final.json").exists()
    resumed = subprocess.run(_main(tmp_path / "killed", data_dir), cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from the checkpoint at step" in resumed.stdout
    a = json.loads((tmp_path / "whole" / "eval" / "final.json").read_text())
    b = json.loads((tmp_path / "killed" / "eval" / "final.json").read_text())
    assert a["step"] == b["step"] == 40
    for method in a["methods"]:
        for metric, value in a["methods"][method].items():
            np.testing.assert_allclose(b["methods"][method][metric], value, rtol=1e-6, err_msg=f"{method}/{metric}")


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(data_dir, tmp_path):
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, num_train_steps=6, checkpoint_every_steps=1)
    config.g_optimizer.lr = 3e38
    with pytest.raises(sr_gan.DivergedError, match=r"NaN or Inf at step \d.*last good checkpoint \(step \d\) is kept"):
        sr_gan.run_job(config, tmp_path)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and max(steps) < 6


def test_main_reports_config_errors_in_one_line(data_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny",
                          f"--workdir={tmp_path}", f"--config.data_dir={data_dir}", "--config.adversarial=wgan"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: adversarial must be one of")
    unknown = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny",
                              "--config.no_such_field=1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert unknown.returncode != 0 and "no_such_field" in unknown.stderr


def test_sample_preset_learns(tmp_path):
    """The README's main job, as a user runs it (one device): after the full `:sample` preset the model's
    DISTS on the held-out photographs is lower than bicubic's."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py",
                          f"--workdir={tmp_path / 'run'}", f"--config.data_dir={tmp_path / 'tfds'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    final = json.loads((tmp_path / "run" / "eval" / "final.json").read_text())
    assert final["step"] == 500
    model, bicubic = final["methods"]["model"], final["methods"]["bicubic"]
    print(json.dumps(final["methods"]))
    assert model["dists"] < bicubic["dists"], final["methods"]


def test_bfloat16_compute_and_every_adversarial_objective(data_dir, tmp_path):
    """bf16 compute runs and stays finite; hinge, LSGAN and relativistic objectives each take a step;
    the warm-up phase leaves the discriminator untouched."""
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, dtype="bfloat16", warmup_steps=1)
    trainer = sr_gan.build(config, tmp_path / "bf16")
    d_before = jax.tree.map(np.asarray, trainer.state.d_params)
    warm = jax.device_get(sr_gan.train_step(trainer))
    assert "d_loss" not in warm and warm["finite"] == 1.0
    jax.tree.map(np.testing.assert_array_equal, d_before, jax.tree.map(np.asarray, trainer.state.d_params))
    adversarial = jax.device_get(sr_gan.train_step(trainer))
    assert adversarial["finite"] == 1.0 and np.isfinite(adversarial["d_loss"])
    for kind in ("hinge", "lsgan", "relativistic"):
        config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, adversarial=kind)
        trainer = sr_gan.build(config, tmp_path / kind)
        metrics = jax.device_get(sr_gan.train_step(trainer))
        assert metrics["finite"] == 1.0 and metrics["d_loss"] > 0, (kind, metrics)

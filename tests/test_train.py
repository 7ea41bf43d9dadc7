"""The sr_gan trainer: every config family for one step, sharded and resumed equivalence, divergence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from asym_jax.train import sr_gan
from asym_jax.train.config import ConfigError

from helpers import ROOT, assert_float32_highest, kill_when, load_config, tiny


# Each family with the trunks its manifest must record: {role: (backbone, source)}.
FAMILIES = [
    ("sr_patchgan.py", "tiny", {}),
    ("sr_unet_sn.py", "tiny", {}),
    ("sr_backbone.py", "vgg16,image,tiny", {"discriminator": ("vgg16", "random")}),
    ("sr_backbone.py", "dinov2_s14,patch,tiny", {"discriminator": ("dinov2_s14", "random")}),
    ("sr_fidelity.py", "vgg16r,tiny", {"fidelity": ("vgg16", "random")}),
    ("sr_fidelity.py", "lpips,tiny", {"fidelity": ("vgg16", "imagenet")}),
    ("sr_realesrgan.py", "tiny", {"fidelity": ("vgg19", "random")}),
]


@pytest.mark.parametrize("file,arg,trunks", FAMILIES, ids=[f"{f}:{a}" for f, a, _ in FAMILIES])
def test_one_step_of_every_config_family(file, arg, trunks, data_dir, tmp_path, capsys):
    from asym_jax.seeds import component_seed
    from asym_jax.weights import ASSETS

    config = tiny(load_config(file, arg), data_dir, num_train_steps=1)
    result = sr_gan.run_job(config, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    out = capsys.readouterr().out
    assert {role: (r["backbone"], r["source"]) for role, r in manifest["trunks"].items()} == trunks
    for role, record in manifest["trunks"].items():
        if record["source"] == "random":  # seeded by purpose: never the discriminator's and the loss's alike
            assert (record["seed"], record["sha256"]) == (component_seed(config.seed, f"{role}_trunk"), None)
        else:
            assert record["sha256"] == ASSETS["vgg16_imagenet"].sha256 and record["seed"] is None
        assert f"trunk {role}: {record['backbone']} from {record['source']}" in out
    assert manifest["devices"]["count"] == 8 and manifest["versions"]["jax"] == jax.__version__
    assert manifest["command"] and manifest["resumes"] == []
    final = json.loads((tmp_path / "eval" / "final.json").read_text())
    assert final["step"] == 1 and set(final["methods"]) == {"bicubic", "model"}
    assert set(final["methods"]["model"]) == {"psnr_y", "ssim"}
    assert all(np.isfinite(v) for m in final["methods"].values() for v in m.values())
    assert result["methods"] == final["methods"]
    assert (tmp_path / "eval" / "images" / "coffee_sr.png").is_file()
    assert any((tmp_path / "tensorboard").iterdir())


@pytest.mark.parametrize("fidelity", ["nlpd", "ms_ssim", "vif"])
def test_sample_preset_steps_with_a_classic_fidelity_loss(fidelity, data_dir, tmp_path):
    """The classic models Ding et al. (IJCV 2021) optimised, as the fidelity loss of the ``:sample`` preset (64-px
    HR crops): one step whose losses, gradient norms and updated parameters are finite (the step's ``finite``
    flag, checked before the run ends), and whose fidelity term is a real, positive loss."""
    config = tiny(load_config("sr_fidelity.py", f"{fidelity},sample"), data_dir, num_train_steps=1, eval_limit=1,
                  eval_metrics=("psnr_y",))
    assert config.fidelity.split(":")[0] == fidelity and config.hr_size == 64
    sr_gan.run_job(config, tmp_path)
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert logged[-1]["step"] == 1, logged
    assert np.isfinite(logged[-1]["fidelity"]) and logged[-1]["fidelity"] > 0, logged
    assert np.isfinite(logged[-1]["g_grad_norm"]) and logged[-1]["g_grad_norm"] > 0, logged


def test_paper_and_sample_presets_are_consistent():
    for file, arg in [("sr_patchgan.py", "paper"), ("sr_realesrgan.py", "paper"), ("sr_patchgan.py", "sample"),
                      ("sr_backbone.py", "dinov2_s14,image,paper"), ("sr_fidelity.py", "ms_ssim,sample")]:
        config = load_config(file, arg)
        assert config.hr_size % config.scale == 0 and config.job == "sr_gan"
    paper = load_config("sr_patchgan.py", "paper")
    assert paper.generator == "swinir_m" and paper.dataset == "df2k" and paper.hr_size == 256


def test_missing_pretrained_trunk_fails_before_compiling(data_dir, tmp_path, monkeypatch):
    config = tiny(load_config("sr_backbone.py", "resnet50,patch,tiny"), data_dir, d_init="pretrained",
                  weights_dir=str(tmp_path / "weights"))
    compiled = []
    monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
    with pytest.raises(ConfigError, match=r"needs pretrained resnet50 weights.*weights/resnet50.*python -m "
                                          r"asym_jax.weights convert --arch resnet50 .*--config.d_init=random"):
        sr_gan.build(config, tmp_path / "run")
    assert not compiled
    config = tiny(load_config("sr_realesrgan.py", "tiny"), data_dir, fidelity="perceptual_vgg19",
                  weights_dir=str(tmp_path / "weights"))
    with pytest.raises(ConfigError, match=r"fidelity loss 'perceptual_vgg19' needs pretrained vgg19 weights.*"
                                          r"weights=random"):
        sr_gan.build(config, tmp_path / "run")


def test_bad_config_values_are_refused(data_dir, tmp_path):
    for key, value, message in [("adversarial", "wgan", "adversarial must be one of"),
                                ("hr_size", 30, "multiple of scale"), ("batch_size", 7, "multiple of the 8 devices"),
                                ("fidelity", "nonsense", "unknown"),
                                ("hr_size", 512, "larger than the 480-px training sub-images; set "
                                                 "--config.train_subimages=False"),
                                ("scale", 8, "train_subimages needs scale 2, 3 or 4")]:
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
    # Adam divides each gradient by its own size: where a gradient is within summation-order noise of 0, the
    # two runs may step a parameter in opposite directions (at most 2 steps x lr 1e-4 apart after 2 steps).
    # A wrong split of the batch moves most parameters by whole steps; so nearly all must agree to 2e-4
    # relative (the check that carries the weight; the losses and gradient norms below agree tightly too).
    a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)]) for tree in (one, eight))
    far = np.abs(a - b) > 2e-4 * np.abs(a) + 1e-6
    assert far.mean() <= 0.005, (far.sum(), a.size, np.abs(a - b).max())
    for a, b in zip(m1, m8):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=1e-6, err_msg=key)


def _main(workdir, data_dir, *overrides):
    return [sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny", f"--workdir={workdir}",
            f"--config.data_dir={data_dir}", "--config.num_train_steps=12", "--config.checkpoint_every_steps=2",
            "--config.log_every_steps=2", *overrides]


def test_stopped_and_killed_run_resumes_to_the_same_result(data_dir, tmp_path):
    """The same run stopped by SIGTERM (a checkpoint at its current step, status 143), resumed, then killed with
    SIGKILL (no warning: back to its last periodic checkpoint), resumed again: it ends equal to an uninterrupted
    run, with the same training log."""
    import re
    import signal

    from asym_jax.data import datasets
    datasets.prepare("sample", data_dir=data_dir)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    whole = subprocess.run(_main(tmp_path / "whole", data_dir, "--config.profile_steps=2"), cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert list((tmp_path / "whole" / "profile").rglob("*.xplane.pb")), "no profiler trace"  # steps 10-12

    run = tmp_path / "killed"
    stopped = subprocess.Popen(_main(run, data_dir), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    while not (run / "checkpoints" / "2" / "commit_success.txt").exists() and stopped.poll() is None:
        time.sleep(0.01)
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=600)
    assert stopped.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM received: saving a checkpoint after this step" in out
    found = re.search(r"stopped: stopped by SIGTERM at step (\d+); the checkpoint at step \1 is saved in ", err)
    assert found, err[-3000:]
    at = int(found.group(1))
    assert 2 <= at <= 8 and (run / "checkpoints" / str(at) / "commit_success.txt").exists()
    assert not (run / "eval" / "final.json").exists()

    again = (at // 2 + 1) * 2  # the next periodic checkpoint after the resume
    kill_when(_main(run, data_dir), run / "checkpoints" / str(again) / "commit_success.txt", env=env)
    assert not (run / "eval" / "final.json").exists()
    resumed = subprocess.run(_main(run, data_dir), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from the checkpoint at step {again}" in resumed.stdout
    a = json.loads((tmp_path / "whole" / "eval" / "final.json").read_text())
    b = json.loads((run / "eval" / "final.json").read_text())
    assert a["step"] == b["step"] == 12
    for method in a["methods"]:
        for metric, value in a["methods"][method].items():
            np.testing.assert_allclose(b["methods"][method][metric], value, rtol=1e-6, err_msg=f"{method}/{metric}")
    # The training log holds every logging step once (the killed run's lost steps dropped at its resume); a
    # stop between logging steps logs the steps before it there, so the next line covers the steps after it.
    from asym_jax.train.progress import read_train_log
    whole_log, run_log = (read_train_log(tmp_path / name / "train_log.jsonl") for name in ("whole", "killed"))
    assert [r["step"] for r in whole_log] == list(range(2, 13, 2))
    assert [r["step"] for r in run_log] == sorted({*range(2, 13, 2), at})
    cut = {at, at + 1} if at % 2 else set()
    for x, y in zip(whole_log, [r for r in run_log if r["step"] % 2 == 0]):
        assert set(x) == set(y) and "d_real" in x and x["step"] == y["step"]
        if x["step"] not in cut:
            np.testing.assert_allclose([y[k] for k in x], list(x.values()), rtol=1e-5, err_msg=str(x["step"]))


def test_nan_loss_stops_before_any_evaluation_or_checkpoint(data_dir, tmp_path, monkeypatch):
    """Evaluations and checkpoints at every step, logs rarely: a non-finite step (injected at step 3) is
    caught before it is evaluated or saved, the last good checkpoint is kept, the manager is closed."""
    import orbax.checkpoint as ocp

    closed = []
    close = ocp.CheckpointManager.close
    monkeypatch.setattr(ocp.CheckpointManager, "close", lambda self: (closed.append(1), close(self))[1])
    step = sr_gan.train_step

    def poisoned(trainer):
        metrics = step(trainer)
        return {**metrics, "g_total": np.float32("nan"), "finite": np.float32(0)} if trainer.step == 3 else metrics

    monkeypatch.setattr(sr_gan, "train_step", poisoned)
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, num_train_steps=6, checkpoint_every_steps=1,
                  log_every_steps=1000, eval_every_steps=1)
    with pytest.raises(sr_gan.DivergedError, match=r"NaN or Inf at step 3 \(g_total\).*last good checkpoint "
                                                   r"\(step 2\) is kept"):
        sr_gan.run_job(config, tmp_path)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    evaluated = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "eval").glob("step_*.json"))
    assert steps == evaluated == [1, 2] and closed == [1]


def test_main_reports_errors_in_one_line_with_their_own_status(data_dir, tmp_path, capsys):
    """Bad input: status 2 and one line; a diverged run: status 3; a renamed field names its new name."""
    from asym_jax import main

    out = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny",
                          f"--workdir={tmp_path}", f"--config.data_dir={data_dir}", "--config.adversarial=wgan"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: adversarial must be one of")
    unknown = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny",
                              "--config.g_optimizer.no_such_field=1"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
        "error: --config.g_optimizer.no_such_field: the config has no such field (an override cannot add one)"]
    diverged = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/sr_patchgan.py:tiny",
                               f"--workdir={tmp_path / 'nan'}", f"--config.data_dir={data_dir}",
                               "--config.g_optimizer.lr=3e38", "--config.num_train_steps=3"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert diverged.returncode == 3, diverged.stderr[-2000:]
    # Step 1's loss is finite, but its update overflows the parameters: caught there, before anything is saved.
    assert diverged.stderr.strip().splitlines()[-1].startswith(
        "error: the loss became NaN or Inf at step 1 (g_param_norm"), diverged.stderr[-2000:]
    with pytest.raises(SystemExit) as exited:
        main.parse_flags(["main", "--config=configs/sr_patchgan.py", "--config.warmup_steps=100"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: config field 'warmup_steps' was renamed: use "
                                               "adversarial_start_step (the generator-only phase; "
                                               "g_optimizer.warmup_steps and d_optimizer.warmup_steps are the "
                                               "learning-rate warm-ups)")


def test_bfloat16_compute_and_every_adversarial_objective(data_dir, tmp_path):
    """bf16 compute runs and stays finite, and its evaluation equals the float32 evaluation of the same
    parameters (every matmul and convolution of the evaluation is float32 at HIGHEST); hinge, LSGAN and
    relativistic objectives each take a step. (The generator-only phase leaving D untouched is checked in
    test_train_semantics.py.)"""
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, dtype="bfloat16")
    bf16 = sr_gan.build(config, tmp_path / "bf16")
    metrics = jax.device_get(sr_gan.train_step(bf16))
    assert metrics["finite"] == 1.0 and np.isfinite(metrics["d_loss"])
    float32 = sr_gan.build(tiny(load_config("sr_patchgan.py", "tiny"), data_dir), tmp_path / "float32")
    float32.state, float32.step = bf16.state, bf16.step
    assert sr_gan.evaluate(bf16)["methods"] == sr_gan.evaluate(float32)["methods"]
    lr = jax.numpy.zeros((1, 8, 8, 3), jax.numpy.float32)
    with jax.default_matmul_precision("bfloat16"):
        assert_float32_highest(jax.make_jaxpr(bf16.upscale)(bf16.state.g_ema, lr), "bf16 run's evaluation")
    for kind in ("hinge", "lsgan", "relativistic"):
        config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, adversarial=kind)
        trainer = sr_gan.build(config, tmp_path / kind)
        metrics = jax.device_get(sr_gan.train_step(trainer))
        assert metrics["finite"] == 1.0 and metrics["d_loss"] > 0, (kind, metrics)


def test_the_train_log_keeps_the_steps_behind_the_restored_weights(tmp_path):
    from asym_jax.train.progress import TrainLog, read_train_log
    path = tmp_path / "train_log.jsonl"
    log = TrainLog(path, 0)
    log.append(2, {"d_real": 1.0})
    log.append(4, {"d_real": 2.0})
    with open(path, "a") as f:
        f.write('{"step": 6, "d_re')  # killed in the middle of a line
    assert [r["step"] for r in read_train_log(path)] == [2, 4]
    TrainLog(path, 2)  # resumed from the checkpoint at step 2
    assert read_train_log(path) == [{"step": 2, "d_real": 1.0}]
    assert read_train_log(tmp_path / "none.jsonl") == []

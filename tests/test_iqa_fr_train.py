"""The iqa_fr_train job: alpha/beta learned on a frozen trunk beat uniform weights on the test split, the
result loads as a metric everywhere (equal to the job's own evaluation), and a resumed run ends where an
uninterrupted one does."""

import json

import numpy as np
import pytest
from helpers import load_config, tiny

from asym_jax import metrics
from asym_jax.errors import InputError
from asym_jax.eval import iqa_fr
from asym_jax.train import iqa_fr_train


@pytest.fixture(scope="module")
def learned(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("iqa_fr_train")
    config = tiny(load_config("iqa_fr_train.py", "tiny"), data_dir)
    return workdir, config, iqa_fr_train.run_job(config, str(workdir))


def test_learned_weights_beat_uniform_on_the_test_split(learned, capsys):
    workdir, config, result = learned
    losses = [loss for _, loss in result["train_loss"]]
    # Every 20 steps, and at the checkpoint at 30: no checkpoint holds losses that were not checked.
    assert [step for step, _ in result["train_loss"]] == [20, 30, 40, 60] and losses[-1] < 0.8 * losses[0], losses
    rows = {r["weights"]: r for r in result["results"]}
    assert rows["learned"]["split"] == "seed0/test" and rows["learned"]["n"] == 60
    assert rows["learned"]["srcc"] > rows["uniform"]["srcc"] + 0.01, rows
    info = json.loads((workdir / "metric.json").read_text())
    assert info["backbone"] == "alexnet" and info["trunk"]["source"] == "imagenet"
    assert info["trained_on"] == {"dataset": "ranking", "split": "seed0/train", "loss": "ranking", "steps": 60,
                                  "seed": 0}
    with np.load(workdir / "alpha_beta.npz") as ab:
        assert ab["alpha"].min() >= 0 and ab["beta"].min() >= 0 and ab["alpha"].size == 3 + 64 + 192 + 384 + 256 + 256


def test_the_learned_metric_loads_by_its_workdir_and_agrees_with_the_job(learned, data_dir, tmp_path):
    workdir, _, result = learned
    spec = f"dists_style:backbone=alexnet,weights=imagenet,alpha_beta={workdir}"
    assert result["spec"] == spec
    metric = metrics.from_spec(spec)
    with np.load(workdir / "alpha_beta.npz") as ab:
        np.testing.assert_array_equal(np.asarray(metric.params["alpha"]), ab["alpha"])
    # The same metric through the FR-IQA job (full images through the trunk) gives the job's own figure,
    # computed from the cached similarities.
    config = tiny(load_config("iqa_fr.py", "tiny"), data_dir, metrics=(spec,), split="seed0/test",
                  bootstrap_resamples=0, plots=False)
    row = iqa_fr.run_job(config, str(tmp_path / "fr"))["results"][0]
    learned_row = next(r for r in result["results"] if r["weights"] == "learned")
    assert row["srcc"] == pytest.approx(learned_row["srcc"], abs=1e-6)
    assert row["plcc"] == pytest.approx(learned_row["plcc"], abs=1e-5)
    with pytest.raises(InputError, match="learned on backbone 'alexnet', not 'vgg16'"):
        metrics.from_spec(f"dists_style:backbone=vgg16,weights=random,alpha_beta={workdir}")


def test_a_run_stopped_by_sigterm_resumes_and_ends_where_an_uninterrupted_one_does(learned, data_dir, tmp_path,
                                                                                     capsys, monkeypatch):
    """SIGTERM in step 20 (between the checkpoints at 0 and 30): a checkpoint at step 20, Stopped; the same
    command resumes there and ends equal to the uninterrupted run."""
    import signal

    from asym_jax.errors import Stopped

    workdir, config, whole = learned
    draw = iqa_fr_train._draw

    def draw_and_signal(step, *args):
        if step == 19:  # the rows of step 20
            signal.raise_signal(signal.SIGTERM)
        return draw(step, *args)

    monkeypatch.setattr(iqa_fr_train, "_draw", draw_and_signal)
    again = tiny(load_config("iqa_fr_train.py", "tiny"), data_dir)
    with pytest.raises(Stopped, match="stopped by SIGTERM at step 20; the checkpoint at step 20 is saved in "):
        iqa_fr_train.run_job(again, str(tmp_path))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["20"]
    assert not (tmp_path / "results.json").exists()
    monkeypatch.setattr(iqa_fr_train, "_draw", draw)
    capsys.readouterr()
    resumed = iqa_fr_train.run_job(again, str(tmp_path))
    assert "resumed from the checkpoint at step 20" in capsys.readouterr().out
    with np.load(workdir / "alpha_beta.npz") as a, np.load(tmp_path / "alpha_beta.npz") as b:
        np.testing.assert_array_equal(a["alpha"], b["alpha"])
        np.testing.assert_array_equal(a["beta"], b["beta"])
    assert resumed["train_loss"] == whole["train_loss"]  # the same logging steps, the same means


def test_losses_are_zero_or_small_for_a_perfect_prediction():
    import jax.numpy as jnp

    target = jnp.asarray([1.0, 2.0, 3.0, 4.0, 1.0, 5.0])
    groups = jnp.asarray([0, 0, 0, 0, 1, 1])
    quality = (target - 6.0) / 5.0  # -distance in [-1, 0], ordered as the targets
    assert float(iqa_fr_train.loss_value("plcc", quality, target, groups)) == pytest.approx(0.0, abs=1e-7)
    assert float(iqa_fr_train.loss_value("mse", quality, target, groups, score_range=(1.0, 6.0))) == pytest.approx(
        0.0, abs=1e-12)
    good = float(iqa_fr_train.loss_value("ranking", quality, target, groups, rank_scale=100.0))
    bad = float(iqa_fr_train.loss_value("ranking", -quality, target, groups, rank_scale=100.0))
    assert good < 1e-6 < 1.0 < bad


@pytest.mark.parametrize("field, value, message", [
    ("loss", "hinge", "loss must be one of"),
    ("dataset", "koniq10k", "has no reference images"),
    ("backbone", "no_such_net", "backbone 'no_such_net'"),
    ("images_per_ref", 1, "images_per_ref >= 2"),
])
def test_bad_config_is_refused(field, value, message, data_dir):
    config = tiny(load_config("iqa_fr_train.py", "tiny"), data_dir)
    config[field] = value
    with pytest.raises(InputError, match=message):
        iqa_fr_train.check_config(config)


def test_the_learned_metric_trains_an_sr_model_as_its_fidelity_loss(learned, data_dir, tmp_path):
    """``alpha_beta=<workdir>`` in the SR trainer's fidelity spec: the loss carries the learned weights, its
    trunk is the run's fidelity trunk (recorded in its manifest), and a step is finite."""
    import jax

    from asym_jax.train import sr_gan

    workdir, _, _ = learned
    spec = f"dists_style:backbone=alexnet,alpha_beta={workdir}"
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, fidelity=spec)
    trainer = sr_gan.build(config, tmp_path / "sr")
    with np.load(workdir / "alpha_beta.npz") as ab:
        np.testing.assert_array_equal(np.asarray(trainer.losses.fidelity.metric.params["beta"]), ab["beta"])
    step = jax.device_get(sr_gan.train_step(trainer))
    assert step["finite"] == 1.0 and np.isfinite(step["fidelity"]), step
    record = trainer.trunks["fidelity"].provenance()  # what the run's manifest records
    assert record["backbone"] == "alexnet" and record["source"] == "imagenet"

"""The classic FR-IQA models (the objectives Ding et al., IJCV 2021, compared, and their kin) as registry metrics:
metadata, jit / vmap / eager agreement, lower-is-better losses, the score CLI and the iqa_fr job. Each model's
parity with piq or with a float64 transcription of its authors' code is in its own test module; gradients are in
test_gradients.py."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import load_config
from iqa_fixtures import write_noisy_tid2013

from asym_jax import metrics, score
from asym_jax.data import distort, sample_image
from asym_jax.eval import iqa_fr

CLASSIC = ["vif", "fsim", "fsimc", "vsi", "mdsi", "haarpsi", "ms_gmsd", "nlpd", "cw_ssim", "mad"]
SIMILARITIES = {"vif", "fsim", "fsimc", "vsi", "haarpsi", "cw_ssim"}
# CW-SSIM's default (the authors' 6 levels) needs 256 px; Ding et al.'s 4 levels fit these small images.
SMALL = {"cw_ssim": "cw_ssim:level=4"}


def test_every_classic_model_is_registered_as_a_loss_with_its_reference():
    assert set(CLASSIC) <= set(metrics.names())
    for name in CLASSIC:
        meta = metrics.info(name)
        assert meta.differentiable and meta.needs_reference and meta.load_params is None
        assert meta.higher_is_better == (name in SIMILARITIES), name
        assert len(meta.reference) > 20 and meta.loss_form, name


@pytest.fixture(scope="module")
def photo_pair():
    """Two 128 x 128 photograph crops and their blurred and noisy versions."""
    refs = np.stack([sample_image("astronaut")[100:228, 180:308], sample_image("coffee")[150:278, 200:328]])
    dists = np.stack([distort(refs[0], "blur", 2), distort(refs[1], "noise", 2)])
    return jnp.asarray(dists), jnp.asarray(refs)


@pytest.mark.parametrize("name", CLASSIC)
def test_jit_vmap_and_eager_agree_and_the_loss_orders_distortions(name, photo_pair):
    x, y = photo_pair
    metric = metrics.from_spec(SMALL.get(name, name))
    eager = np.asarray(metric(x, y))
    assert eager.shape == (2,) and np.all(np.isfinite(eager)), (name, eager)
    jitted = jax.jit(lambda m, a, b: m(a, b))(metric, x, y)
    mapped = jax.vmap(lambda a, b: metric(a[None], b[None])[0])(x, y)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mapped, eager, rtol=1e-4, atol=1e-6)
    ideal = np.asarray(metric(y, y))
    assert np.all((ideal > eager) if metric.higher_is_better else (ideal < eager)), (name, ideal, eager)
    loss = metrics.as_loss(name)
    near = y + 0.25 * (x - y)
    assert float(loss(near, y)) < float(loss(x, y)) and loss(x, y).shape == ()
    assert float(loss(y, y)) < float(loss(near, y)), name


def test_score_cli_lists_and_runs_every_classic_model(tmp_path, capsys):
    info = write_noisy_tid2013(tmp_path / "manual", size=(96, 128), photographs=True)
    assert score.main(["--list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert set(CLASSIC) <= listed
    item = info["items"][-1]
    table = tmp_path / "scores.csv"
    args = [a for name in CLASSIC for a in ("--metric", SMALL.get(name, name))]
    assert score.main([*args, "--csv", str(table), str(item["ref"]), str(item["dist"])]) == 0
    with open(table) as f:
        (row,) = list(csv.DictReader(f))
    assert all(np.isfinite(float(row[SMALL.get(name, name)])) for name in CLASSIC), row


def test_iqa_fr_job_runs_every_classic_model(tmp_path):
    """Noise of known strength on photographs in an official-layout TID2013 copy: every model follows the
    noise level."""
    write_noisy_tid2013(tmp_path / "manual", size=(96, 128), photographs=True)
    config = load_config("iqa_fr.py", "tiny")
    config.datasets, config.metrics, config.bootstrap_resamples, config.plots = ("tid2013",), tuple(SMALL.get(n, n) for n in CLASSIC), 0, False
    config.manual_dir, config.data_dir = str(tmp_path / "manual"), str(tmp_path / "tfds")
    rows = {row["metric"]: row for row in iqa_fr.run_job(config, str(tmp_path / "run"))["results"]}
    assert set(rows) == {SMALL.get(n, n) for n in CLASSIC}
    assert set(CLASSIC) <= set(load_config("iqa_fr.py", "classic_models").metrics)
    for name, row in rows.items():
        assert row["n"] == 27 and row["srcc"] > 0.5, (name, row)


def test_fidelity_losses_fit_the_crops_or_are_refused_before_compiling():
    """``configs/sr_fidelity.py:<model>,tiny`` (32-px HR crops): NLPD and CW-SSIM take fewer levels, MS-SSIM
    fewer scales; VIF (41 px) and MAD (34 px) are refused by the trainer's set-up, naming the size."""
    from asym_jax.train import setup
    from asym_jax.train.config import ConfigError

    for name, spec in (("nlpd", "nlpd:levels=5"), ("cw_ssim", "cw_ssim:level=3"), ("ms_ssim", "ms_ssim:num_scales=2"),
                       ("fsim", "fsim")):
        config = load_config("sr_fidelity.py", f"{name},tiny")
        assert config.fidelity == spec
        losses, _ = setup.build_losses(config)
        assert losses.fidelity is not None
    for name, size in (("vif", 41), ("mad", 34)):
        with pytest.raises(ConfigError, match=rf"fidelity loss '{name}' on 32-px HR crops .*{size} x {size}"):
            setup.build_losses(load_config("sr_fidelity.py", f"{name},tiny"))

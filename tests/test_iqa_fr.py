"""The iqa_fr job: metrics scored as FR-IQA models on the embedded `ranking` set and on an official-layout
fixture, per-image scores reused on a rerun, bad input refused."""

import csv
import json

import numpy as np
import pytest
from helpers import load_config, tiny
from iqa_fixtures import write_noisy_tid2013
from PIL import Image
from scipy import stats

from asym_jax.data.samples import DISTORTIONS
from asym_jax.errors import InputError
from asym_jax.eval import iqa_fr


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ranking_run(data_dir, tmp_path_factory):
    """The default preset, as it ships and as a user runs it (the command line, one CPU device): every
    library metric, 1000 bootstrap resamples, plots."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    workdir = tmp_path_factory.mktemp("iqa_fr_ranking")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/iqa_fr.py", f"--workdir={workdir}",
                          f"--config.data_dir={data_dir}"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    config = tiny(load_config("iqa_fr.py"), data_dir)
    return workdir, config, json.loads((workdir / "results.json").read_text())


def test_default_preset_reports_every_statistic(ranking_run):
    from asym_jax import metrics

    workdir, config, result = ranking_run
    saved = result  # results.json, as the command line wrote it
    assert json.loads((workdir / "config.json").read_text())["job"] == "iqa_fr"
    assert set(json.loads((workdir / "manifest.json").read_text())["trunks"]) == {
        "metric/lpips_vgg", "metric/lpips_alex", "metric/dists"}
    assert [r["metric"] for r in saved["results"]] == list(config.metrics)
    assert {"psnr", "ssim", "ms_ssim", "gmsd", "lpips_vgg", "lpips_alex", "dists"} <= set(config.metrics)
    assert config.bootstrap_resamples == 1000 and "1000 resamples" in saved["conventions"]["bootstrap"]
    for row in saved["results"]:
        assert row["dataset"] == "ranking" and row["split"] == "full" and row["n"] == 240
        for key in ("srcc", "krcc", "plcc", "plcc_logistic", "rmse_logistic"):
            assert np.isfinite(row[key]), (row["metric"], key)
        assert row["srcc"] > 0.3, row  # aligned: distances (gmsd) and similarities agree in sign
        lo, hi = row["srcc_ci95"]
        assert lo < row["srcc"] < hi and row["plcc_ci95"][0] < row["plcc"] < row["plcc_ci95"][1]
        assert set(row["per_distortion"]) == set(DISTORTIONS)
        assert all(v["n"] == 40 and np.isfinite(v["srcc"]) for v in row["per_distortion"].values())
        scores = _rows(workdir / "scores" / "ranking" / f"{row['metric']}.csv")
        assert len(scores) == 240
        mos = np.array([float(s["score"]) for s in scores])
        prediction = np.array([float(s["prediction"]) for s in scores])
        sign = 1.0 if metrics.info(row["metric"]).higher_is_better else -1.0  # distances: lower is better
        assert row["srcc"] == pytest.approx(stats.spearmanr(sign * prediction, mos).statistic, abs=1e-12)
        assert (workdir / "plots" / f"ranking__{row['metric']}.png").stat().st_size > 1000
    assert "bootstrap" in saved["conventions"] and "logistic" in saved["conventions"]
    table = (workdir / "results.md").read_text()
    assert "| `psnr` |" in table and "not human opinion" in table
    assert _rows(workdir / "results.csv")[0]["metric"] == "psnr"


def test_rerun_scores_only_what_is_missing(ranking_run, monkeypatch):
    workdir, config, result = ranking_run
    before = {p.name: p.stat().st_mtime_ns for p in (workdir / "scores" / "ranking").iterdir()}
    from asym_jax.eval import scoring
    calls = []
    original = scoring.jitted_score()
    monkeypatch.setattr(scoring, "jitted_score", lambda: (lambda m, x, y: calls.append(m.name) or original(m, x, y)))
    config.metrics = (*config.metrics, "psnr_y")
    again = iqa_fr.run_job(config, str(workdir))
    assert set(calls) == {"psnr_y"}  # the others were read back
    after = {p.name: p.stat().st_mtime_ns for p in (workdir / "scores" / "ranking").iterdir()}
    assert all(after[name] == mtime for name, mtime in before.items()) and "psnr_y.csv" in after
    assert [r["srcc"] for r in again["results"][:-1]] == [r["srcc"] for r in result["results"]]
    assert json.loads((workdir / "results.json").read_text()) == json.loads(json.dumps(again))  # what it returns


def test_psnr_srcc_on_an_official_layout_equals_an_independent_computation(tmp_path):
    info = write_noisy_tid2013(tmp_path / "manual")
    config = load_config("iqa_fr.py", "tiny")
    config.datasets, config.metrics, config.bootstrap_resamples, config.plots = ("tid2013",), ("psnr",), 0, False
    config.manual_dir, config.data_dir = str(tmp_path / "manual"), str(tmp_path / "tfds")
    row = iqa_fr.run_job(config, str(tmp_path / "run"))["results"][0]
    psnr, mos = [], []
    text = (info["root"] / "mos_with_names.txt").read_text()
    score_of = {name: float(score) for score, name in (line.split() for line in text.splitlines())}
    for item in info["items"]:
        ref = np.asarray(Image.open(item["ref"]).convert("RGB"), np.float64)
        dist = np.asarray(Image.open(item["dist"]).convert("RGB"), np.float64)
        psnr.append(10 * np.log10(255.0 ** 2 / np.mean((ref - dist) ** 2)))
        mos.append(score_of[item["name"]])
    assert row["n"] == len(psnr) == 27
    assert row["srcc"] == pytest.approx(stats.spearmanr(psnr, mos).statistic, abs=1e-12)
    assert row["srcc"] > 0.9  # PSNR follows the noise strength
    assert "srcc_ci95" not in row


@pytest.mark.parametrize("field, value, message", [
    ("metrics", ("no_such_metric",), "unknown metric 'no_such_metric'"),
    ("datasets", ("koniq10k",), "koniq10k' is a no-reference set"),
    ("datasets", ("sample",), "'sample' is a super-resolution set"),
    ("split", "train", "unknown split 'train'"),
    ("logistic", "3", "logistic must be one of"),
])
def test_bad_input_is_refused_with_one_message(field, value, message, data_dir, tmp_path):
    config = tiny(load_config("iqa_fr.py", "tiny"), data_dir, bootstrap_resamples=0, plots=False)
    config[field] = value
    with pytest.raises(InputError, match=message):
        iqa_fr.run_job(config, str(tmp_path))


def test_unknown_field_and_foreign_score_file_are_refused(data_dir, tmp_path):
    config = tiny(load_config("iqa_fr.py", "tiny"), data_dir, bootstrap_resamples=0, plots=False)
    config.unknown_field = 1
    with pytest.raises(InputError, match="unknown config field 'unknown_field'"):
        iqa_fr.check_config(config)
    config = tiny(load_config("iqa_fr.py", "tiny"), data_dir, bootstrap_resamples=0, plots=False, metrics=("psnr",))
    path = tmp_path / "scores" / "ranking" / "psnr.csv"
    path.parent.mkdir(parents=True)
    path.write_text("metric,index,name,ref_id,distortion,score,prediction\npsnr,0,other.png,a,b,1,2\n")
    with pytest.raises(InputError, match="does not match the prepared dataset"):
        iqa_fr.run_job(config, str(tmp_path))


def test_metric_file_names_are_safe_and_distinct():
    a = iqa_fr.metric_file_name("dists_style:backbone=vgg16,weights=/a/b")
    b = iqa_fr.metric_file_name("dists_style:backbone=vgg16,weights=/a_b")
    assert a != b and "/" not in a and ":" not in a
    assert iqa_fr.metric_file_name("psnr") == "psnr"


def test_a_metric_that_fails_names_itself_and_keeps_the_scores_made(tmp_path):
    write_noisy_tid2013(tmp_path / "manual")
    config = load_config("iqa_fr.py", "tiny")
    config.datasets, config.metrics = ("tid2013",), ("psnr", "ms_ssim")
    config.bootstrap_resamples, config.plots = 0, False
    config.manual_dir, config.data_dir = str(tmp_path / "manual"), str(tmp_path / "tfds")
    with pytest.raises(InputError, match=r"ms_ssim on tid2013/full \(\(48, 64\) images\)"):
        iqa_fr.run_job(config, str(tmp_path / "run"))
    kept = _rows(tmp_path / "run" / "scores" / "tid2013" / "psnr.csv")
    assert len(kept) == config.batch_size and all(np.isfinite(float(r["prediction"])) for r in kept)


def test_command_line_lists_of_metrics_and_datasets():
    """``--config.metrics=dists,lpips_vgg`` names two metrics (ml_collections alone keeps the one string
    ``("dists,lpips_vgg",)``), and the options of a spec stay with it."""
    from asym_jax import main

    assert main.split_listed("psnr, dists_style:backbone=vgg16,weights=random,nr:/runs/a@5,ssim") == (
        "psnr", "dists_style:backbone=vgg16,weights=random", "nr:/runs/a@5", "ssim")
    config = load_config("iqa_fr.py", "tiny")
    config.metrics, config.datasets = ("dists,ms_ssim:num_scales=4",), ("live,csiq",)  # as the flags leave them
    main.expand_listed_fields(config)
    assert config.metrics == ("dists", "ms_ssim:num_scales=4") and config.datasets == ("live", "csiq")
    assert load_config("iqa_fr.py", "tiny").metrics == ("psnr", "ssim", "gmsd")
    main.expand_listed_fields(config)  # idempotent
    iqa_fr.check_config(config)

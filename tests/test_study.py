"""The study driver: the plan and its commands, claims between processes, the ranking statistics against
scipy, and the tiny study end to end (every experiment; a rerun trains nothing and reports the same)."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from helpers import ROOT, kill_when, load_config
from scipy import stats as scipy_stats

from asym_jax.errors import ConfigError, InputError
from asym_jax.eval import stats
from asym_jax.experiments import cells as cells_module
from asym_jax.experiments import study
from asym_jax.experiments.plan import plan


def _tiny(data_dir, **overrides):
    config = load_config("study.py", "tiny")
    config.data_dir = str(data_dir)
    for key, value in overrides.items():
        config[key] = value
    return config


def test_ranking_agreement_equals_scipy_and_its_interval_covers_the_resamples():
    rng = np.random.default_rng(3)
    assessment = np.asarray([0.2, 0.5, 0.9, 0.4, 0.7])
    optimisation = assessment[:, None, None] + 0.3 * rng.normal(size=(5, 3, 8))
    row = stats.ranking_agreement(assessment, optimisation, n_resamples=200, seed=1)
    means = optimisation.mean(axis=(1, 2))
    assert row["kendall_tau"] == pytest.approx(scipy_stats.kendalltau(assessment, means).statistic, abs=1e-12)
    assert row["srcc"] == pytest.approx(scipy_stats.spearmanr(assessment, means).statistic, abs=1e-12)
    assert (row["n_methods"], row["seeds"], row["images"], row["resamples"]) == (5, 3, 8, 200)
    lo, hi = row["kendall_tau_ci95"]
    assert -1 <= lo <= hi <= 1 and row == stats.ranking_agreement(assessment, optimisation, n_resamples=200, seed=1)
    # One seed and one image: nothing to resample, the interval is the point.
    single = stats.ranking_agreement(assessment, means[:, None, None], n_resamples=20)
    assert single["kendall_tau_ci95"] == [single["kendall_tau"]] * 2
    with pytest.raises(InputError, match="at least 3 methods"):
        stats.ranking_agreement(assessment[:2], optimisation[:2])
    with pytest.raises(InputError, match=r"need assessment \(M,\)"):
        stats.ranking_agreement(assessment, means)


def test_the_plan_names_every_cell_and_the_command_that_runs_it(data_dir, tmp_path, capsys):
    config = _tiny(data_dir, plan_only=True)
    result = study.run_job(config, str(tmp_path))
    names = list(result["cells"])
    # The NR judge (an iqa_nr cell of the study) first, then the cells in plan order, each after what it reads.
    assert names == ["nr-alexnet-random", "pretrain", "d-patchgan-gan0.05-seed0", "d-alexnet_image-gan0.05-seed0",
                     "nr-alexnet-from-d-alexnet_image-gan0.05-seed0",
                     "dists-alexnet-from-d-alexnet_image-gan0.05-seed0", "dists-alexnet-random", "fr-iqa",
                     "sr-l1-gan0-seed0", "sr-ssim-gan0-seed0", "sr-gmsd-gan0-seed0"]
    assert set(result["cells"].values()) == {"missing"} and not (tmp_path / "cells").exists()
    out = capsys.readouterr().out
    assert ("python -m asym_jax.main --config=configs/sr_patchgan.py:tiny "
            f"--workdir={tmp_path}/cells/sr-ssim-gan0-seed0") in out
    assert "--config.fidelity=ssim" in out and "--config.eval_metrics=(" in out
    planned = {c["name"]: c for c in json.loads((tmp_path / "plan.json").read_text())["cells"]}
    source = f"discriminator:{tmp_path}/cells/d-alexnet_image-gan0.05-seed0"
    nr, dists = (planned[f"{m}-alexnet-from-d-alexnet_image-gan0.05-seed0"] for m in ("nr", "dists"))
    assert (nr["overrides"]["init"], dists["overrides"]["weights"]) == (source, source)
    assert nr["needs"] == dists["needs"] == ["d-alexnet_image-gan0.05-seed0"]
    assert (dists["job"], dists["config"]) == ("iqa_fr_train", "configs/iqa_fr_train.py:tiny")
    judge = planned["sr-l1-gan0-seed0"]
    assert judge["overrides"]["eval_metrics"][-1] == f"nr:{tmp_path}/cells/nr-alexnet-random"
    assert judge["needs"] == ["nr-alexnet-random", "pretrain"]
    assert judge["overrides"]["g_init"] == f"generator:{tmp_path}/cells/pretrain"
    pretrain = planned["pretrain"]["overrides"]
    assert (pretrain["num_train_steps"], pretrain["gan_weight"], pretrain["fidelity_weight"]) == (1, 0.0, 0.0)
    assert "g_init" not in pretrain
    # With every seeded split, the NR cells run ten splits and a cell judge is the first split's model.
    every = {c.name: c for c in plan(_tiny(data_dir, nr_splits="all"), tmp_path)}
    assert dict(every["nr-alexnet-random"].overrides)["splits"] == "all"
    assert dict(every["sr-l1-gan0-seed0"].overrides)["eval_metrics"][-1] == \
        f"nr:{tmp_path}/cells/nr-alexnet-random/splits/seed0"
    # A cell's own command runs it as an ordinary job: its overrides load into that config.
    cell = next(c for c in plan(config, tmp_path) if c.name == "d-alexnet_image-gan0.05-seed0")
    job_config = cell.job_config()
    assert (job_config.discriminator, job_config.gan_weight, dict(job_config.discriminator_options)) == \
        ("alexnet_image", 0.05, {})
    # The command line plans the same cells (the study runs other jobs in-process: one entry point).
    out = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/study.py:tiny",
                          f"--workdir={tmp_path}", f"--config.data_dir={data_dir}", "--config.plan_only=True",
                          "--config.cells=nr-*,fr-iqa"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["nr-alexnet-random", names[4], "fr-iqa"]
    with pytest.raises(ConfigError, match="matches none of the 11 cells"):
        study.run_job(_tiny(data_dir, plan_only=True, cells="nothing*"), str(tmp_path))
    with pytest.raises(ConfigError, match="has no field 'no_such_field'"):
        study.run_job(_tiny(data_dir, plan_only=True, sr_overrides={"no_such_field": 1}), str(tmp_path))
    # An NR judge must be an iqa_nr cell of the study, and not one trained from a discriminator it judges.
    with pytest.raises(ConfigError, match="names no iqa_nr cell of this study"):
        study.run_job(_tiny(data_dir, plan_only=True, nr_judges=("cell:dists-alexnet-random",)), str(tmp_path))
    with pytest.raises(ConfigError, match="wait for each other"):
        study.run_job(_tiny(data_dir, plan_only=True,
                            nr_judges=("cell:nr-alexnet-from-d-alexnet_image-gan0.05-seed0",)), str(tmp_path))


def test_a_report_of_a_study_not_yet_run_lists_every_cell_as_missing(data_dir, tmp_path, capsys):
    result = study.run_job(_tiny(data_dir, report_only=True), str(tmp_path))
    assert set(result["cells"].values()) == {"missing"}
    section = result["report"]["fidelity"]["by_gan_weight"][0]
    assert all(r["iqa_srcc"] is None and r["seeds_done"] == 0 for r in section["rows"])
    assert "needs 3 metrics" in section["asymmetry"]["ssim"]["note"]
    text = (tmp_path / "report.md").read_text()
    assert text.split("## Cells")[1].count("| missing |") == 11 and not (tmp_path / "cells").exists()
    # A cell whose input diverged is blocked (said, and marked in the report), not left waiting for ever.
    config = _tiny(data_dir, cells="d-patchgan-*")
    pretrain = next(c for c in plan(config, tmp_path) if c.name == "pretrain")
    pretrain.workdir(tmp_path).mkdir(parents=True)
    (pretrain.workdir(tmp_path) / "cell.json").write_text(json.dumps(pretrain.record()))
    (pretrain.workdir(tmp_path) / "diverged.json").write_text(json.dumps({"message": "NaN at step 1"}))
    result = study.run_job(config, str(tmp_path))
    assert "cell d-patchgan-gan0.05-seed0: blocked, pretrain diverged" in capsys.readouterr().out
    assert result["cells"]["pretrain"] == "diverged" and result["cells"]["d-patchgan-gan0.05-seed0"] == "blocked"
    assert result["cells"]["fr-iqa"] == "missing"  # reads no diverged cell


def test_a_cell_is_claimed_by_one_process(tmp_path):
    folder = tmp_path / "cell"
    assert cells_module.claim(folder) is None
    holder = cells_module.claim(folder)  # this process is alive: its own claim holds
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    cells_module.release(folder)
    # A claim left by a dead process of this host is taken over; another host's claim is respected.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / ".claim").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "since": "x"}))
    assert cells_module.claim(folder) is None
    assert json.loads((folder / ".claim").read_text())["pid"] == os.getpid()
    (folder / ".claim").write_text(json.dumps({"host": "another-host", "pid": 1, "since": "x"}))
    assert cells_module.claim(folder)["host"] == "another-host"


def test_the_tiny_study_killed_in_a_cell_resumes_and_reports_every_experiment(data_dir, tmp_path, capsys):
    """The tiny study's command killed (SIGKILL) inside an SR cell, between its checkpoint at step 1 and its
    step 2; rerun, it resumes that cell, runs the rest, and the cell's numbers equal an uninterrupted run's.
    Then the report of every experiment, a rerun that trains nothing, and a changed setting refused."""
    from asym_jax.data import datasets
    datasets.prepare("sample", data_dir=data_dir)
    datasets.prepare("ranking", data_dir=data_dir)
    root = tmp_path / "study"
    killed = root / "cells" / "d-patchgan-gan0.05-seed0"
    pid = kill_when([sys.executable, "-m", "asym_jax.main", "--config=configs/study.py:tiny", f"--workdir={root}",
                     f"--config.data_dir={data_dir}"], killed / "checkpoints" / "1" / "commit_success.txt")
    assert not (killed / "eval" / "final.json").exists()
    assert json.loads((killed / ".claim").read_text())["pid"] == pid  # left behind by the killed process
    config = _tiny(data_dir)
    capsys.readouterr()
    first = study.run_job(config, str(root))
    out = capsys.readouterr().out
    assert set(first["cells"].values()) == {"done"}, first["cells"]
    assert "cell nr-alexnet-random: done, skipped" in out and "resumed from the checkpoint at step 1" in out
    assert list(killed.glob(".claim.stale-*"))  # the dead process's claim, taken over
    # The killed cell equals the same cell run without interruption (judged by the same NR model).
    whole = tmp_path / "whole"
    study.run_job(_tiny(data_dir, cells="pretrain,d-patchgan-*", nr_judges=(f"nr:{root}/cells/nr-alexnet-random",)),
                  str(whole))
    a, b = (json.loads((r / "cells" / killed.name / "eval" / "final.json").read_text()) for r in (whole, root))
    assert a["step"] == b["step"] == 2 and list(a["methods"]["model"]) == list(b["methods"]["model"])
    for method in a["methods"]:
        for metric, value in a["methods"][method].items():
            np.testing.assert_allclose(b["methods"][method][metric], value, rtol=1e-6, err_msg=f"{method}/{metric}")
    rows = {r: json.loads((r / "report.json").read_text())["discriminator"]["rows"][0] for r in (whole, root)}
    assert [t[0] for t in rows[root]["d_gap_trace"]] == [1, 2]
    np.testing.assert_allclose(rows[root]["d_gap_trace"], rows[whole]["d_gap_trace"], rtol=1e-5)
    report = json.loads((root / "report.json").read_text())
    section = report["fidelity"]["by_gan_weight"][0]
    assert [r["metric"] for r in section["rows"]] == ["l1", "ssim", "gmsd"]
    fr = json.loads((root / "cells" / "fr-iqa" / "results.json").read_text())["results"]
    for row in section["rows"]:  # the IQA side is the iqa_fr cell's SRCC, the SR side each cell's evaluation
        assert row["iqa_srcc"] == next(r["srcc"] for r in fr if r["metric"] == row["metric"])
        final = json.loads((root / "cells" / f"sr-{row['metric']}-gan0-seed0" / "eval" / "final.json").read_text())
        assert row["psnr_y"] == final["methods"]["model"]["psnr_y"]
    assert len({r["psnr_y"] for r in section["rows"]}) == 3  # three losses, three different models
    asymmetry = section["asymmetry"]["ssim"]
    means = [r["ssim"] for r in section["rows"]]
    assert asymmetry["kendall_tau"] == pytest.approx(
        scipy_stats.kendalltau([r["iqa_srcc"] for r in section["rows"]], means).statistic, abs=1e-12)
    judge = f"nr:{root}/cells/nr-alexnet-random"  # the study's own NR model judges every SR model
    assert report["judge_labels"][judge] == "nr:cells/nr-alexnet-random"
    for row in section["rows"]:
        final = json.loads((root / "cells" / f"sr-{row['metric']}-gan0-seed0" / "eval" / "final.json").read_text())
        assert row[judge] == final["methods"]["model"][judge]
    assert "| nr:cells/nr-alexnet-random |" in (root / "report.md").read_text()
    init = {(r["model"], r["init"]): r for r in report["init"]["rows"]}
    assert set(init) == {(m, i) for m in ("nr", "dists") for i in ("discriminator", "random")}
    assert all(r["srcc"] is not None and r["initial_srcc"] is not None for r in init.values())
    learned = json.loads((root / "cells" / "dists-alexnet-random" / "results.json").read_text())["results"]
    assert init["dists", "random"]["srcc"] == next(r["srcc"] for r in learned if r["weights"] == "learned")
    assert init["dists", "random"]["initial_srcc"] == next(r["srcc"] for r in learned if r["weights"] == "uniform")
    assert all(r["d_gap"] is not None for r in report["discriminator"]["rows"])
    manifest = json.loads((root / "cells" / "nr-alexnet-from-d-alexnet_image-gan0.05-seed0" /
                           "manifest.json").read_text())
    assert manifest["trunks"]["trunk"]["source"].startswith(f"discriminator:{root}/cells/d-alexnet_image")
    text = (root / "report.md").read_text()
    assert "Kendall tau" in text and "demonstration" in text
    assert "d-patchgan-gan0.05-seed0 | discriminator | done" in text
    for plot in ("quality_vs_gan_weight_ssim.png", "iqa_vs_optimisation_gan0_ssim.png", "init_comparison.png",
                 "sr_crops.png", "stability.png", "quality_vs_gan_weight_nr-cells-nr-alexnet-random.png"):
        assert (root / "plots" / plot).is_file() and f"(plots/{plot})" in text, plot
    assert [label for label, _ in report["sr_crops"]["tiles"]][:3] == \
        ["bicubic", "pre-trained start (pixel loss)", "patchgan, GAN 0.05, seed 0"]
    # Every SR cell started from the pre-trained generator's EMA weights, recorded in its manifest.
    from asym_jax.train import sr_gan
    from asym_jax.weights.runs import restore_subtree, tree_digest
    start = restore_subtree(root / "cells" / "pretrain", 1, [("g_ema",)])[("g_ema",)]
    cell = next(c for c in plan(config, root) if c.name == "sr-l1-gan0-seed0")
    recorded = json.loads((cell.workdir(root) / "manifest.json").read_text())["trunks"]["generator"]
    assert recorded == {"backbone": "rrdbnet", "source": f"generator:{root}/cells/pretrain@1", "seed": None,
                        "sha256": tree_digest(start)}
    trainer = sr_gan.build(cell.job_config(), root / "built")
    for a, b in zip(jax.tree.leaves(start), jax.tree.leaves(jax.device_get(trainer.state.g_params))):
        np.testing.assert_array_equal(a, b)
    assert "| *pre-trained start* |" in text
    from asym_jax.train import setup
    from asym_jax.train.config import check_config
    other = cell.job_config()
    other.generator_options.num_feat = 16
    with pytest.raises(InputError, match="trained another generator .*num_feat"):
        setup.generator_init(other)
    other = cell.job_config()
    other.g_init = f"generator:{root}/cells/pretrain@7"
    with pytest.raises(InputError, match="has no checkpoint at step 7; it has steps 1"):
        setup.generator_init(other)
    other.g_init = f"discriminator:{root}/cells/pretrain"
    with pytest.raises(ConfigError, match="g_init must be"):
        check_config(other)
    assert len(report["sr_crops"]["tiles"]) == 7  # bicubic, the pre-trained start and the five SR cells
    # A rerun trains nothing and reports the same numbers; a changed cell setting is refused.
    capsys.readouterr()
    again = study.run_job(config, str(root))
    out = capsys.readouterr().out
    assert out.count("skipped") == 11 and "training from" not in out
    assert again["report"] == first["report"]
    changed = _tiny(data_dir, judges=("psnr_y",))
    with pytest.raises(ConfigError, match="was made with other settings"):
        study.run_job(changed, str(root))


def test_the_init_table_reads_medians_over_splits_and_the_learned_dists_weights():
    from asym_jax.experiments import report
    values = [0.61, 0.70, 0.55, 0.80, 0.66]
    summary = {"summary": [{"dataset": "koniq10k", "splits": 5, "srcc": {"median": float(np.median(values)),
                                                                          "values": values},
                            "plcc": {"median": 0.7, "values": [0.7] * 5}}],
               "splits": {f"seed{k}": {"results": [{"initial_srcc": 0.1 * k}]} for k in range(5)}}
    row = report._nr_figures(summary)
    assert (row["srcc"], row["plcc"], row["splits"], row["initial_srcc"]) == (0.66, 0.7, 5, 0.2)
    assert row["srcc_ci95"] == pytest.approx(list(np.percentile(values, [2.5, 97.5])))
    single = report._nr_figures({"results": [{"srcc": 0.5, "plcc": 0.4, "srcc_ci95": [0.3, 0.6],
                                              "initial_srcc": 0.1}]})
    assert (single["srcc"], single["srcc_ci95"], single["initial_srcc"], single["splits"]) == (0.5, [0.3, 0.6], 0.1, 1)
    rows = [{"weights": "learned", "dataset": "kadid10k", "split": "seed0/test", "srcc": 0.8, "plcc": 0.79},
            {"weights": "uniform", "dataset": "kadid10k", "split": "seed0/test", "srcc": 0.7, "plcc": 0.69},
            {"weights": "learned", "dataset": "live", "split": "full", "srcc": 0.9, "plcc": 0.88},
            {"weights": "uniform", "dataset": "live", "split": "full", "srcc": 0.85, "plcc": 0.84}]
    dists = report._dists_figures({"results": rows})
    assert (dists["srcc"], dists["plcc"], dists["initial_srcc"]) == (0.8, 0.79, 0.7)


@pytest.mark.manual
def test_the_sample_study_end_to_end(tmp_path):
    """The README's `:sample` study as a user runs it (one device), every cell finished and every table
    filled. About half an hour on a 2-core CPU: `python -m pytest tests/test_study.py --run-manual -k sample`."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/study.py",
                          f"--workdir={tmp_path / 'study'}", f"--config.data_dir={tmp_path / 'tfds'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=3 * 3600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "study" / "report.json").read_text())
    assert {c["status"] for c in report["cells"]} == {"done"}, report["cells"]
    for section in report["fidelity"]["by_gan_weight"]:
        assert all("kendall_tau" in a for a in section["asymmetry"].values()), section["asymmetry"]
    assert all(r["d_gap"] is not None for r in report["discriminator"]["rows"])
    assert all(r["srcc"] is not None for r in report["init"]["rows"])

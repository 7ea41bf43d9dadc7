"""The iqa_nr job and the discriminator -> IQA transfer: a trained discriminator's trunk (and head) restored
alone and exactly, imagenet / random trunks as they say, the partial restore reads only the trunk, bad
sources refused with one message each, resume, cross-dataset evaluation and the ten seeded splits, the
trained model as the ``nr:<workdir>`` metric (score CLI, iqa_fr tables, SR evaluation), and the default
preset learns."""

import csv
import json
import os
import types

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import load_config, tiny
from iqa_fixtures import write_noisy_tid2013
from PIL import Image
from scipy import stats

from asym_jax.errors import ConfigError, InputError
from asym_jax.train import iqa_nr, sr_gan
from asym_jax.weights import runs


def _nr_config(data_dir, **overrides):
    return tiny(load_config("iqa_nr.py", "tiny"), data_dir, **overrides)


@pytest.fixture(scope="module")
def nr_run(data_dir, tmp_path_factory):
    """The tiny preset (4 steps on `ranking`), evaluated across datasets on an official-layout TID2013 copy
    (distorted images = reference + noise of known strength), prepared in the session's TFDS folder (no
    other test prepares a TID2013 there)."""
    root = tmp_path_factory.mktemp("nr")
    info = write_noisy_tid2013(root / "manual")
    config = _nr_config(data_dir, bootstrap_resamples=0, eval_datasets=("tid2013",), manual_dir=str(root / "manual"))
    result = iqa_nr.run_job(config, str(root / "run"))
    return types.SimpleNamespace(workdir=root / "run", config=config, result=result, info=info)


@pytest.fixture(scope="module")
def gan_run(data_dir, nr_run, tmp_path_factory):
    """Two steps of sr_gan with an image-level AlexNet discriminator (ImageNet trunk, then trained); its
    evaluation also judges the SR outputs by the NR-IQA model of ``nr_run``."""
    workdir = tmp_path_factory.mktemp("gan")
    config = tiny(load_config("sr_backbone.py", "alexnet,image,tiny"), data_dir, d_init="pretrained",
                  eval_metrics=("psnr_y", f"nr:{nr_run.workdir}"))
    sr_gan.run_job(config, str(workdir))
    assert runs.checkpoint_steps(workdir) == [2]
    return workdir


def _state(workdir, step):
    return ocp.StandardCheckpointer().restore((workdir / "checkpoints" / str(step) / "state").absolute())


def _same(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_transfer_starts_from_exactly_the_discriminator(gan_run, data_dir, tmp_path):
    config = _nr_config(data_dir, init=f"discriminator:{gan_run}", head_init="discriminator", num_train_steps=0,
                        hidden=256)
    result = iqa_nr.run_job(config, str(tmp_path / "nr"))
    gan, nr = _state(gan_run, 2), _state(tmp_path / "nr", 0)
    _same(nr["params"]["backbone"], gan["d_params"]["backbone"])
    _same(nr["params"]["head_fc1"], gan["d_params"]["head_fc1"])
    _same(nr["params"]["head_fc2"], gan["d_params"]["head_fc2"])
    # The trained trunk differs from the ImageNet one it started from (two steps of training).
    from asym_jax.weights.trunks import backbone_variables
    imagenet = backbone_variables("alexnet", "imagenet")["params"]
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
               zip(jax.tree.leaves(imagenet), jax.tree.leaves(nr["params"]["backbone"])))
    # The model is the discriminator: its score is the discriminator's logit.
    from asym_jax.models import discriminators
    image = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    d = discriminators.get("alexnet_image", frozen=False)
    logits = d.apply({"params": gan["d_params"]}, image, train=False)[:, 0]
    score = iqa_nr.build_model(config).apply({"params": nr["params"]}, image)
    np.testing.assert_allclose(score, logits, rtol=1e-5, atol=1e-6)
    manifest = json.loads((tmp_path / "nr" / "manifest.json").read_text())
    assert manifest["trunks"]["trunk"]["source"] == f"discriminator:{gan_run.absolute()}@2"
    assert manifest["trunks"]["trunk"]["sha256"] == runs.tree_digest({"params": gan["d_params"]["backbone"]})
    assert result["results"][0]["initial_srcc"] == result["results"][0]["srcc"]  # step 0 is the model scored
    again = iqa_nr.run_job(config, str(tmp_path / "nr"))  # a rerun of a finished step-0 run changes nothing
    assert again["results"][0]["srcc"] == result["results"][0]["srcc"]


def test_imagenet_and_random_trunks_are_what_they_say(data_dir, tmp_path):
    """Also: a frozen trunk is left exactly as loaded by training with weight decay (the head learns)."""
    from asym_jax.seeds import component_seed
    from asym_jax.weights.trunks import backbone_variables

    random = backbone_variables("alexnet", "random", seed=component_seed(0, "iqa_trunk"))
    iqa_nr.run_job(_nr_config(data_dir, init="random", num_train_steps=0, bootstrap_resamples=0), str(tmp_path / "r"))
    _same(_state(tmp_path / "r", 0)["params"]["backbone"], random["params"])
    frozen = _nr_config(data_dir, init="imagenet", frozen=True, num_train_steps=2, bootstrap_resamples=0)
    frozen.optimizer.weight_decay = 0.1
    iqa_nr.run_job(frozen, str(tmp_path / "i"))
    trained = _state(tmp_path / "i", 2)["params"]
    _same(trained["backbone"], backbone_variables("alexnet", "imagenet")["params"])
    initial = _state(tmp_path / "r", 0)["params"]["head_fc2"]  # the same seed draws the same head
    assert not np.array_equal(np.asarray(trained["head_fc2"]["kernel"]), np.asarray(initial["kernel"]))


def _read_bytes() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux /proc/self/io to count bytes read")
def test_the_partial_restore_reads_only_the_trunk(gan_run):
    state = _state(gan_run, 2)
    nbytes = lambda tree: sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))  # noqa: E731
    trunk = nbytes(state["d_params"]["backbone"])
    rest = nbytes(state) - trunk  # the generator, its EMA, both optimisers (Adam moments: twice the trunk)
    assert rest > 2 * trunk
    runs.restore_subtree(gan_run, 2, [("d_params", "backbone")])  # warm-up: imports, metadata caches
    before = _read_bytes()
    runs.restore_subtree(gan_run, 2, [("d_params", "backbone")])
    read = _read_bytes() - before
    # OCDBT chunks may be compressed: the trunk's bytes on disk can be a little fewer than in memory.
    assert 0.5 * trunk <= read < trunk + 0.25 * rest, (read, trunk, rest)


def test_bad_sources_are_refused_with_one_message(gan_run, data_dir, tmp_path):
    cases = [
        (f"discriminator:{gan_run}@7", "has no checkpoint at step 7; it has steps 2"),
        (f"discriminator:{tmp_path}", "has no config.json"),
        ("discriminator:", "no workdir"),
    ]
    for init, message in cases:
        with pytest.raises(InputError, match=message):
            iqa_nr.run_job(_nr_config(data_dir, init=init), str(tmp_path / "nr"))
    with pytest.raises(InputError, match="has a alexnet trunk, not the requested vgg16"):
        iqa_nr.run_job(_nr_config(data_dir, init=f"discriminator:{gan_run}", backbone="vgg16"), str(tmp_path / "nr"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"job": "sr_gan", "discriminator": "alexnet_image"}))
    with pytest.raises(InputError, match="has no checkpoint"):
        iqa_nr.run_job(_nr_config(data_dir, init=f"discriminator:{empty}"), str(tmp_path / "nr"))
    (empty / "config.json").write_text(json.dumps({"job": "sr_gan", "discriminator": "patchgan"}))
    with pytest.raises(InputError, match="'patchgan', which has no backbone trunk"):
        iqa_nr.run_job(_nr_config(data_dir, init=f"discriminator:{empty}"), str(tmp_path / "nr"))
    with pytest.raises(ConfigError, match="head_init='discriminator' takes the head"):
        iqa_nr.run_job(_nr_config(data_dir, head_init="discriminator"), str(tmp_path / "nr"))
    with pytest.raises(ConfigError, match="unknown config field 'lr'"):
        config = _nr_config(data_dir)
        config.lr = 1.0
        iqa_nr.run_job(config, str(tmp_path / "nr"))


def test_a_discriminator_trunk_is_a_source_for_metrics_too(gan_run, data_dir):
    """Metric specs and the SR trainer's d_init take it too; a resolved source is pinned to its step."""
    from asym_jax import metrics
    from asym_jax.train.config import check_config
    from asym_jax.weights.selection import resolve_spec, resolve_trunk

    metric = metrics.from_spec(f"dists_style:backbone=alexnet,weights=discriminator:{gan_run}")
    _same(metric.params["trunk"]["params"], _state(gan_run, 2)["d_params"]["backbone"])
    config = tiny(load_config("sr_backbone.py", "alexnet,image,tiny"), data_dir, d_init=f"discriminator:{gan_run}")
    check_config(config)
    trunk = resolve_trunk("alexnet", config.d_init, "discriminator", config, what="d_init", alternative="")
    assert trunk.weights == f"discriminator:{gan_run}@2"
    _, options, _ = resolve_spec(f"lpips_alex:weights=discriminator:{gan_run}", "fidelity", config)
    assert options["weights"] == f"discriminator:{gan_run}@2"


def test_a_run_stopped_by_sigterm_resumes_and_ends_where_an_uninterrupted_one_does(nr_run, tmp_path, capsys,
                                                                                     monkeypatch):
    """SIGTERM in step 2 of 4, checkpoints every 4 steps: a checkpoint at step 2, Stopped; the same command
    resumes there (model and data iterator) and ends equal to the uninterrupted run."""
    import signal

    from asym_jax.errors import Stopped

    half = nr_run.config.copy_and_resolve_references()
    half.checkpoint_every_steps = 4
    make_steps = iqa_nr.make_steps

    def signalling_steps(config, tx):
        train_step, predict = make_steps(config, tx)
        calls = []

        def step(state, batch):
            calls.append(1)
            if len(calls) == 2:
                signal.raise_signal(signal.SIGTERM)
            return train_step(state, batch)
        return step, predict

    monkeypatch.setattr(iqa_nr, "make_steps", signalling_steps)
    with pytest.raises(Stopped, match="stopped by SIGTERM at step 2; the checkpoint at step 2 is saved in "):
        iqa_nr.run_job(half, str(tmp_path / "half"))
    assert runs.checkpoint_steps(tmp_path / "half") == [2]
    monkeypatch.setattr(iqa_nr, "make_steps", make_steps)
    capsys.readouterr()
    resumed = iqa_nr.run_job(half, str(tmp_path / "half"))
    assert "resumed from the checkpoint at step 2" in capsys.readouterr().out
    _same(_state(tmp_path / "half", 4)["params"], _state(nr_run.workdir, 4)["params"])
    for ours, whole in zip(resumed["results"], nr_run.result["results"]):
        assert ours["srcc"] == whole["srcc"] and ours.get("initial_srcc") == whole.get("initial_srcc")
    # The loss history spans the resume: steps 2 (before it) and 4, as the uninterrupted run's.
    assert [s for s, _ in resumed["train_loss"]] == [s for s, _ in nr_run.result["train_loss"]] == [2, 4]
    np.testing.assert_allclose(resumed["train_loss"], nr_run.result["train_loss"], rtol=1e-5)


def _predictions(workdir, name):
    with open(workdir / "predictions" / f"{name}.csv") as f:
        return {row["name"]: float(row["prediction"]) for row in csv.DictReader(f)}


def test_cross_dataset_evaluation_and_clu_logs(nr_run):
    rows = nr_run.result["results"]
    assert [(r["dataset"], r["split"], r["n"]) for r in rows] == [("ranking", "seed0/test", 60), ("tid2013", "full", 27)]
    predicted = _predictions(nr_run.workdir, "tid2013__full")
    mos = {item["name"]: float(line.split()[0]) for item, line in
           zip(nr_run.info["items"], (nr_run.info["root"] / "mos_with_names.txt").read_text().splitlines())}
    names = sorted(mos)
    assert rows[1]["srcc"] == pytest.approx(stats.spearmanr([predicted[n] for n in names],
                                                            [mos[n] for n in names]).statistic, abs=1e-12)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(nr_run.workdir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"train/mse", "train/lr", "train/steps_per_sec", "eval/ranking/srcc", "eval/tid2013/plcc"} <= tags, tags
    assert [e.step for e in events.Tensors("train/mse")] == [2, 4]


def test_the_model_is_a_no_reference_metric(nr_run, tmp_path, capsys):
    """``nr:<workdir>`` scores as the job evaluated: through the registry, the score CLI (one folder, no
    reference) and mixed with full-reference metrics; bad specs end with one line."""
    from asym_jax import metrics, score
    from asym_jax.eval.scoring import score_batch

    workdir, predicted = nr_run.workdir, _predictions(nr_run.workdir, "tid2013__full")
    items = nr_run.info["items"]
    images = np.stack([np.asarray(Image.open(i["dist"]).convert("RGB"), np.float32) / 255 for i in items[:4]])
    metric = metrics.from_spec(f"nr:{workdir}")
    assert metric.higher_is_better and not metric.info.needs_reference
    np.testing.assert_allclose(score_batch(metric, images, None), [predicted[i["name"]] for i in items[:4]],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="full-reference metric: it needs a reference"):
        metrics.get("ssim")(images)
    folder = items[0]["dist"].parent
    assert score.main(["--metric", f"nr:{workdir}", str(folder), "--csv", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 27
    by_stem = {k.lower(): v for k, v in predicted.items()}
    for row in rows:  # on disk the last reference's images are upper case, the label file names them in lower
        assert float(row[f"nr:{workdir}"]) == pytest.approx(by_stem[row["name"].lower()], rel=1e-5, abs=1e-6)
    assert score.main(["--metric", "psnr", "--metric", f"nr:{workdir}@2", str(items[0]["ref"]),
                       str(items[0]["dist"])]) == 0
    capsys.readouterr()
    (tmp_path / "gan").mkdir()
    (tmp_path / "gan" / "config.json").write_text(json.dumps({"job": "sr_gan"}))
    for args, message in [
        (["--metric", "ssim", str(folder)], "ssim is a full-reference metric: give REF and DIST"),
        (["--metric", f"nr:{tmp_path}", str(folder)], "has no config.json"),
        (["--metric", f"nr:{tmp_path / 'gan'}", str(folder)], "is a 'sr_gan' run, not an iqa_nr run"),
        (["--metric", f"nr:{workdir}@3", str(folder)], "has no checkpoint at step 3; it has steps 2, 4"),
        (["--metric", "nr", str(folder)], "name the iqa_nr run"),
        (["--metric", f"nr:run={workdir},crop=2", str(folder)], "unknown options ['crop']"),
    ]:
        assert score.main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (args, err)


def test_an_nr_model_in_iqa_fr_tables_and_sr_evaluation(nr_run, gan_run, tmp_path):
    """The iqa_fr job scores the distorted images alone with it (the same figures as the iqa_nr job's
    cross-dataset row); the SR trainer's evaluation judges SR and bicubic outputs with it; both manifests
    record the model pinned to its step."""
    from asym_jax.eval import iqa_fr
    from asym_jax.train import setup

    spec = f"nr:{nr_run.workdir}"
    source = f"nr:{nr_run.workdir.absolute()}@4"
    config = load_config("iqa_fr.py", "tiny")
    config.datasets, config.metrics, config.bootstrap_resamples, config.plots = ("tid2013",), ("psnr", spec), 0, False
    config.manual_dir, config.data_dir = nr_run.config.manual_dir, nr_run.config.data_dir
    rows = iqa_fr.run_job(config, str(tmp_path / "fr"))["results"]
    ours = next(r for r in rows if r["metric"] == spec)
    assert ours["srcc"] == pytest.approx(nr_run.result["results"][1]["srcc"], abs=1e-12)
    assert json.loads((tmp_path / "fr" / "manifest.json").read_text())["trunks"][f"metric/{spec}"]["source"] == source
    final = json.loads((gan_run / "eval" / "final.json").read_text())
    for method in ("model", "bicubic"):
        assert np.isfinite(final["methods"][method][spec]), final["methods"]
    manifest = json.loads((gan_run / "manifest.json").read_text())
    assert manifest["trunks"][f"eval/{spec}"]["source"] == source
    bad = tiny(load_config("sr_patchgan.py", "tiny"), nr_run.config.data_dir, eval_metrics=(f"nr:{tmp_path}",))
    with pytest.raises(ConfigError, match="evaluation metric 'nr:.*has no config.json"):
        setup.eval_metrics(bad)


def test_ten_seeded_splits_in_one_run(nr_run, tmp_path, monkeypatch):
    """``splits="all"``: one run per seeded split under splits/seed<k> and their median, mean and spread
    (three splits here, of the initial model); its top-level workdir is no single model."""
    from asym_jax import metrics

    monkeypatch.setattr(iqa_nr, "SEEDED_SPLITS", 3)
    config = nr_run.config.copy_and_resolve_references()
    config.splits, config.num_train_steps, config.eval_datasets = "all", 0, ()
    result = iqa_nr.run_job(config, str(tmp_path))
    per_split = [json.loads((tmp_path / "splits" / f"seed{k}" / "results.json").read_text())["results"][0]["srcc"]
                 for k in range(3)]
    assert [r["results"][0]["split"] for r in result["splits"].values()] == [f"seed{k}/test" for k in range(3)]
    summary = result["summary"][0]["srcc"]
    assert summary["values"] == per_split and len(set(per_split)) == 3  # other test images, other figures
    assert summary["median"] == pytest.approx(np.median(per_split)) and summary["std"] == pytest.approx(np.std(per_split))
    assert "SRCC median" in (tmp_path / "results.md").read_text()
    with pytest.raises(InputError, match="a run over the seeded splits, one model each; give one of them"):
        metrics.from_spec(f"nr:{tmp_path}")
    assert metrics.from_spec(f"nr:{tmp_path / 'splits' / 'seed1'}").params.backbone == "alexnet"


def test_the_default_preset_learns(data_dir, tmp_path):
    config = tiny(load_config("iqa_nr.py"), data_dir, plots=False, bootstrap_resamples=0)
    row = iqa_nr.run_job(config, str(tmp_path))["results"][0]
    assert row["split"] == "seed0/test" and row["n"] == 60
    assert row["srcc"] > row["initial_srcc"] + 0.1, row

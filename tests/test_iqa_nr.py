"""The iqa_nr job and the discriminator -> IQA transfer: a trained discriminator's trunk (and head) restored
alone and exactly, imagenet / random trunks as they say, the partial restore reads only the trunk, bad
sources refused with one message each, resume, and the default preset learns."""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import load_config, tiny

from asym_jax.errors import ConfigError, InputError
from asym_jax.train import iqa_nr, sr_gan
from asym_jax.weights import runs


@pytest.fixture(scope="module")
def gan_run(data_dir, tmp_path_factory):
    """Two steps of sr_gan with an image-level AlexNet discriminator (ImageNet trunk, then trained)."""
    workdir = tmp_path_factory.mktemp("gan")
    config = tiny(load_config("sr_backbone.py", "alexnet,image,tiny"), data_dir, d_init="pretrained")
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


def _nr_config(data_dir, **overrides):
    return tiny(load_config("iqa_nr.py", "tiny"), data_dir, **overrides)


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


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(data_dir, tmp_path, capsys):
    whole = iqa_nr.run_job(_nr_config(data_dir, bootstrap_resamples=0), str(tmp_path / "whole"))
    half = _nr_config(data_dir, bootstrap_resamples=0, num_train_steps=2)
    iqa_nr.run_job(half, str(tmp_path / "half"))
    half.num_train_steps = 4
    capsys.readouterr()
    resumed = iqa_nr.run_job(half, str(tmp_path / "half"))
    assert "resumed from the checkpoint at step 2" in capsys.readouterr().out
    _same(_state(tmp_path / "half", 4)["params"], _state(tmp_path / "whole", 4)["params"])
    assert resumed["results"][0]["srcc"] == whole["results"][0]["srcc"]
    assert resumed["results"][0]["initial_srcc"] == whole["results"][0]["initial_srcc"]


def test_the_default_preset_learns(data_dir, tmp_path):
    config = tiny(load_config("iqa_nr.py"), data_dir, plots=False, bootstrap_resamples=0)
    row = iqa_nr.run_job(config, str(tmp_path))["results"][0]
    assert row["split"] == "seed0/test" and row["n"] == 60
    assert row["srcc"] > row["initial_srcc"] + 0.1, row

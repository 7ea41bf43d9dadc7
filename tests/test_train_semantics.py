"""What a run means: each trunk set by its own field, seeds by purpose, one step axis for both optimisers,
the EMA and the discriminator's update as specified, a sharded batch, one compilation per phase,
float32 evaluation whatever the training dtype, provenance in the manifest."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

from asym_jax import seeds
from asym_jax.train import setup, sr_gan
from asym_jax.train.config import ConfigError, check_config
from asym_jax.train.state import make_optimizer
from asym_jax.weights.selection import resolve_spec
from helpers import assert_float32_highest, load_config, tiny

START, STEPS, MILESTONE = 1, 5, 3


@pytest.fixture(scope="module")
def recorded(data_dir, tmp_path_factory):
    """A tiny PatchGAN run over 8 devices: one generator-only step, then four adversarial steps; G and D share
    a multistep schedule whose milestone (gamma 0) stops both at the same global step. Host copies of the
    state before and after every step, and of every batch."""
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, adversarial_start_step=START,
                  num_train_steps=STEPS)
    for o in (config.g_optimizer, config.d_optimizer):
        o.schedule, o.milestones, o.gamma = "multistep", (MILESTONE,), 0.0
    trainer = sr_gan.build(config, tmp_path_factory.mktemp("recorded"))
    batches, states, metrics = [], [jax.device_get(trainer.state)], []
    original = trainer.data_iterator.to_device

    def keep(local):
        batch = original(local)
        batches.append(batch)
        return batch

    trainer.data_iterator.to_device = keep  # batches[i] is step i's (one more is drawn ahead at the end)
    for _ in range(STEPS):
        metrics.append(jax.device_get(sr_gan.train_step(trainer)))
        states.append(jax.device_get(trainer.state))
    return {"trainer": trainer, "config": config, "states": states, "metrics": metrics, "batches": batches}


def _moved(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_ema_is_the_decayed_average_of_the_new_parameters(recorded):
    decay = recorded["config"].ema_decay
    states = recorded["states"]
    for before, after in zip(states[:-1], states[1:]):
        expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, before.g_ema, after.g_params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), after.g_ema, expected)
    assert _moved(states[0].g_ema, states[1].g_ema)


def test_remat_loss_recomputes_the_same_step(recorded, tmp_path):
    """remat_loss (the fidelity loss under jax.checkpoint) changes memory, not the step: the same losses, and
    the same update up to float32 rounding of the gradients (Adam's first step is lr * g / (|g| + eps), so
    where g is near 0 a rounding difference can move a weight by up to 2 lr; nearly all agree to 1e-4)."""
    config = recorded["config"].copy_and_resolve_references()
    config.remat_loss = True
    trainer = sr_gan.build(config, tmp_path)
    metrics = jax.device_get(sr_gan.train_step(trainer))
    for key in ("pixel", "fidelity", "g_total"):
        np.testing.assert_allclose(metrics[key], recorded["metrics"][0][key], rtol=1e-6)
    new = np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(trainer.state.g_params))])
    old = np.concatenate([np.ravel(x) for x in jax.tree.leaves(recorded["states"][1].g_params)])
    assert np.mean(np.isclose(new, old, rtol=1e-4, atol=1e-7)) > 0.99
    np.testing.assert_allclose(new, old, atol=2 * config.g_optimizer.lr)


def test_discriminator_steps_down_its_own_loss_gradient(recorded):
    """The first adversarial step moves D's parameters by Optax's update of D's own gradients (computed here
    independently from the step's inputs), not up the loss."""
    from asym_jax.losses import discriminator_loss
    from asym_jax.train.step import to_unit

    trainer, config = recorded["trainer"], recorded["config"]
    before, after = recorded["states"][START], recorded["states"][START + 1]
    batch = jax.device_get(recorded["batches"][START])
    lr, hr = to_unit(jnp.asarray(batch["lr"])), to_unit(jnp.asarray(batch["hr"]))
    sr = trainer.networks.g_apply(before.g_params, lr, None, True)  # D trains on G's output before G's update

    def d_objective(d_params):
        real, d_state = trainer.networks.d_apply({"params": d_params, **before.d_state}, hr, True)
        fake, _ = trainer.networks.d_apply({"params": d_params, **d_state}, sr, True)
        return discriminator_loss(config.adversarial, real, fake)

    loss_before, grads = jax.jit(jax.value_and_grad(d_objective))(before.d_params)
    d_tx, _ = make_optimizer(config.d_optimizer, config.num_train_steps, first_step=START)
    updates, _ = d_tx.update(grads, before.d_opt, before.d_params)
    expected = optax.apply_updates(before.d_params, updates)
    moved = jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), after.d_params, before.d_params)
    alignment = sum(float(np.vdot(m, g)) for m, g in zip(jax.tree.leaves(moved), jax.tree.leaves(grads)))
    assert alignment < 0, "D's parameters moved up its loss gradient"
    step_size = config.d_optimizer.lr
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=0.05 * step_size), after.d_params, expected)
    assert float(jax.jit(d_objective)(after.d_params)) < float(loss_before)


def test_batch_is_split_over_the_data_axis(recorded):
    trainer, config = recorded["trainer"], recorded["config"]
    batch = recorded["batches"][-1]
    devices = len(jax.devices())
    assert devices == 8
    for name, array in batch.items():
        assert array.sharding.spec == PartitionSpec("data"), name
        assert [s.data.shape[0] for s in array.addressable_shards] == [config.batch_size // devices] * devices
    compiled = trainer.steps[True].lower(trainer.state, trainer.losses, batch).compile()
    args, _ = compiled.input_shardings
    assert all(s.spec == PartitionSpec("data") for s in jax.tree.leaves(args[2]))


def test_each_phase_compiles_once(recorded):
    assert recorded["trainer"].steps[False]._cache_size() == 1
    assert recorded["trainer"].steps[True]._cache_size() == 1


def test_both_optimisers_reach_a_milestone_at_the_same_global_step(recorded):
    states, metrics = recorded["states"], recorded["metrics"]
    g_moves = [_moved(a.g_params, b.g_params) for a, b in zip(states[:-1], states[1:])]
    d_moves = [_moved(a.d_params, b.d_params) for a, b in zip(states[:-1], states[1:])]
    _, schedule = make_optimizer(recorded["config"].g_optimizer, STEPS)
    live = [float(schedule(step)) > 0 for step in range(STEPS)]
    assert live[START] and not live[-1], "the milestone must fall inside the adversarial phase"
    assert g_moves == live
    assert d_moves == [step >= START and live[step] for step in range(STEPS)]
    assert [m["lr_g"] for m in metrics[START:]] == [m["lr_d"] for m in metrics[START:]]


@pytest.mark.parametrize("first_step,warmup", [(0, 0), (7, 0), (0, 3), (7, 3)])
def test_optimizer_schedule_counts_global_steps(first_step, warmup):
    """A milestone at step 10 halves the rate from global step 10 on, with or without a warm-up, whatever step
    the optimiser starts at. With a constant gradient Adam's update is the learning rate itself, so the
    applied rate is read off the updates."""
    import ml_collections
    o = ml_collections.ConfigDict({"lr": 0.1, "b1": 0.9, "b2": 0.99, "weight_decay": 0.0, "schedule": "multistep",
                                   "milestones": (10,), "gamma": 0.5, "warmup_steps": warmup, "clip_norm": 0.0})
    tx, schedule = make_optimizer(o, 20, first_step=first_step)
    assert (float(schedule(9)), float(schedule(10)), float(schedule(11))) == pytest.approx((0.1, 0.05, 0.05))
    params = jnp.zeros(())
    state = tx.init(params)
    for step in range(first_step, 16):
        updates, state = tx.update(jnp.ones(()), state, params)
        np.testing.assert_allclose(-float(updates), float(schedule(step)), rtol=1e-5, atol=1e-9,
                                   err_msg=f"step {step}")


def test_each_trunk_follows_its_own_field(data_dir, tmp_path):
    """d_init=random randomises the discriminator's trunk only; the fidelity spec's trunk stays ImageNet
    VGG-16; a random fidelity trunk draws from another seed than a random discriminator trunk."""
    from asym_jax.weights import backbone_variables

    config = load_config("sr_backbone.py", "vgg16,patch,tiny")
    config.d_init = "random"
    config.fidelity = "dists_style:backbone=vgg16,alpha_beta=dists"
    networks = setup.build_networks(config)
    d_trunk = setup.discriminator_trunk(config, networks)
    losses, trunks = setup.build_losses(config)
    assert (d_trunk.weights, trunks["fidelity"].weights) == ("random", "imagenet")
    imagenet = backbone_variables("vgg16", "imagenet")
    jax.tree.map(np.testing.assert_array_equal, losses.fidelity.metric.params["trunk"], imagenet)
    _, d_params, _ = setup.init_variables(config, networks, d_trunk)
    assert not np.array_equal(d_params["backbone"]["conv1_1"]["kernel"], imagenet["params"]["conv1_1"]["kernel"])

    config.fidelity = "dists_style:backbone=vgg16,weights=random,alpha_beta=dists"
    losses, trunks = setup.build_losses(config)
    assert trunks["fidelity"].seed == seeds.component_seed(config.seed, "fidelity_trunk") != d_trunk.seed
    fidelity_kernel = losses.fidelity.metric.params["trunk"]["params"]["conv1_1"]["kernel"]
    assert not np.array_equal(d_params["backbone"]["conv1_1"]["kernel"], fidelity_kernel)
    _, options, trunk = resolve_spec("dists_style:backbone=vgg16,weights=random,seed=5", "fidelity", config)
    assert trunk.seed == options["seed"] == 5  # a spec's own seed is kept

    patchgan = load_config("sr_patchgan.py", "tiny")
    patchgan.d_init = "random"  # a field that would do nothing is refused
    with pytest.raises(ConfigError, match="d_init='random' sets a discriminator's backbone trunk.*'patchgan' has none"):
        setup.discriminator_trunk(patchgan, setup.build_networks(patchgan))

    config.d_init = "pretrained"
    config.fidelity = "dists_style:backbone=resnet50"
    config.weights_dir = str(tmp_path / "weights")
    with pytest.raises(ConfigError, match=r"fidelity loss 'dists_style:backbone=resnet50' needs pretrained resnet50.*"
                                          r"python -m asym_jax.weights convert --arch resnet50"):
        setup.build_losses(config)


def test_device_feed_draws_ahead_and_checkpoints_the_batch_it_holds(data_dir):
    """The feed holds the next batch on the device; its saved state is the grain state before that batch, so
    a restored feed (in a fresh pipeline) gives exactly the batches the first one would have."""
    from asym_jax.data import datasets, pipeline
    from asym_jax.train.feed import DeviceFeed

    source = datasets.sr_source("sample", "train", data_dir=data_dir, config="sub_x4")

    def feed():
        it = iter(pipeline.sr_train_dataset(source, hr_size=32, scale=4, batch_size=2, seed=5))
        return DeviceFeed(it, lambda b: jax.tree.map(jnp.asarray, b))

    first = feed()
    taken = [first.take()["hr"] for _ in range(2)]
    first.fill()
    saved = first.get_state()
    ahead = [first.take()["hr"] for _ in range(3)]
    again = feed()
    again.set_state(saved)
    assert not np.array_equal(taken[-1], ahead[0])
    for expected in ahead:
        np.testing.assert_array_equal(again.take()["hr"], expected)
    assert json.loads(saved) != json.loads(feed().get_state())  # JSON of the grain state, advanced


def test_component_seeds_are_distinct_and_stable():
    values = [seeds.component_seed(0, name) for name in seeds.COMPONENTS]
    assert len(set(values)) == len(values)
    assert seeds.component_seed(0, "generator") != seeds.component_seed(1, "generator")
    # Pinned: a change of the derivation would silently change every run's initialisation.
    assert seeds.component_seed(0, "generator") == 2104705257 and seeds.data_seed(0, 1) == 853916556
    hosts = [seeds.data_seed(0, host) for host in range(4)]
    assert len(set(hosts)) == 4


def test_host_shards_are_disjoint_and_deterministic(data_dir):
    """Each host reads its own slice of the records with its own seed; the same seed gives the same batches."""
    from asym_jax.data import datasets, pipeline

    source = datasets.sr_source("sample", "train", data_dir=data_dir)

    def first_batches(host, count=2):
        dataset = pipeline.sr_train_dataset(source, hr_size=32, scale=4, batch_size=2, seed=seeds.data_seed(0, host),
                                            shard_index=host, shard_count=2)
        iterator = iter(dataset)
        return [next(iterator)["hr"] for _ in range(count)]

    host0, host1 = first_batches(0), first_batches(1)
    np.testing.assert_array_equal(np.stack(host0), np.stack(first_batches(0)))
    assert not any(np.array_equal(a, b) for a in host0 for b in host1)
    records = [source[i]["hr"] for i in range(len(source))]
    for crops, host in ((host0, 0), (host1, 1)):
        mine = records[host::2]
        for crop in np.concatenate(crops):
            assert any(_contains(record, crop) for record in mine), f"host {host} read another host's image"


def _contains(image: np.ndarray, crop: np.ndarray) -> bool:
    """Whether ``crop`` (possibly flipped/transposed) is a crop of ``image``."""
    size = crop.shape[0]
    variants = [crop, crop[:, ::-1], crop[::-1], crop[::-1, ::-1]]
    variants += [v.transpose(1, 0, 2) for v in variants]
    for v in variants:
        hits = np.argwhere(np.all(image[:image.shape[0] - size + 1, :image.shape[1] - size + 1] == v[0, 0], axis=-1))
        if any(np.array_equal(image[t:t + size, l:l + size], v) for t, l in hits):
            return True
    return False


def test_renamed_and_unknown_fields_are_refused():
    config = load_config("sr_patchgan.py", "tiny")
    config.warmup_steps = 3  # a config file (not locked) can add a stale field
    with pytest.raises(ConfigError, match="'warmup_steps' was renamed: use adversarial_start_step"):
        check_config(config)
    config = load_config("sr_patchgan.py", "tiny")
    config.init = "random"
    with pytest.raises(ConfigError, match="'init' was renamed: use d_init"):
        check_config(config)
    config = load_config("sr_patchgan.py", "tiny")
    config.typo_field = 1
    with pytest.raises(ConfigError, match="unknown config field 'typo_field'"):
        check_config(config)


def test_workdir_is_required_on_several_hosts():
    from asym_jax.errors import InputError
    from asym_jax.main import resolve_workdir
    assert resolve_workdir("w", "sr_gan", 4) == "w"
    assert resolve_workdir(None, "sr_gan", 1).startswith("runs/sr_gan-")
    with pytest.raises(InputError, match="--workdir is required on 4 hosts"):
        resolve_workdir(None, "sr_gan", 4)


def test_reported_metrics_are_float32_at_highest_precision():
    """Every matmul and convolution of the scorer behind every reported number (``eval.scoring``) is float32
    at Precision.HIGHEST, whatever the precision context, on convolutional and transformer trunks (the
    generator's side is checked in test_train.py on a bf16 run)."""
    from asym_jax import metrics
    from asym_jax.eval.scoring import jitted_score

    x = jnp.full((1, 56, 56, 3), 0.5, jnp.float32)  # a multiple of the ViT patch (14)
    for spec in ("lpips_alex", "dists", "dists_style:backbone=dinov2_s14,weights=random"):
        with jax.default_matmul_precision("bfloat16"):
            assert_float32_highest(jax.make_jaxpr(jitted_score())(metrics.from_spec(spec), x, x), spec)


def test_training_losses_run_their_trunk_in_the_run_dtype_at_default_precision(data_dir):
    """In training, a loss's feature network follows the run's compute dtype at the platform's default
    precision (PyTorch autocast / TF32); the final float32 contractions stay HIGHEST, and the same metric as
    a score is float32 HIGHEST (test above)."""
    from helpers import _dots_and_convs

    x = jnp.full((1, 32, 32, 3), 0.5, jnp.float32)
    for dtype in ("float32", "bfloat16"):
        for spec in ("lpips_alex", "dists_style:backbone=alexnet,weights=random"):
            config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, fidelity=spec, dtype=dtype)
            losses, _ = setup.build_losses(config)
            convs = [e for e in _dots_and_convs(jax.make_jaxpr(losses.fidelity)(x, x).jaxpr)
                     if e.primitive.name == "conv_general_dilated"]
            assert convs, spec
            for eqn in convs:
                precision = eqn.params["precision"]
                assert precision is None or all(p == jax.lax.Precision.DEFAULT for p in precision), (spec, dtype, eqn)
                assert str(eqn.invars[1].aval.dtype) == dtype, (spec, dtype, eqn)
    # A spec may still ask for HIGHEST.
    config = tiny(load_config("sr_patchgan.py", "tiny"), data_dir, fidelity="lpips_alex:precision=highest")
    losses, _ = setup.build_losses(config)
    assert_float32_highest(jax.make_jaxpr(lambda a, b: losses.fidelity.per_image(a, b))(x, x), "precision=highest")


def test_manifest_is_checked_before_a_resume_and_records_evaluation_trunks(data_dir, tmp_path):
    """A resume must find the trunks the run started with, checked before anything is restored or written;
    the evaluation metrics' trunks are recorded too. (Every config family's records: test_train.py.)"""
    from asym_jax.manifest import ManifestError, write_manifest
    from asym_jax.weights import ASSETS

    config = tiny(load_config("sr_fidelity.py", "lpips,tiny"), data_dir, num_train_steps=1,
                  eval_metrics=("psnr_y", "lpips_alex"))
    sr_gan.run_job(config, tmp_path)
    path = tmp_path / "manifest.json"
    original = json.loads(path.read_text())
    assert original["trunks"]["eval/lpips_alex"] == {"backbone": "alexnet", "source": "imagenet", "seed": None,
                                                     "sha256": ASSETS["alexnet_imagenet"].sha256}
    tampered = json.loads(path.read_text())
    tampered["trunks"]["fidelity"]["sha256"] = "0" * 64  # as if the weights had changed since the run started
    path.write_text(json.dumps(tampered))
    config.num_train_steps = 2
    with pytest.raises(ManifestError, match="other trunk weights \\(fidelity\\)"):
        sr_gan.run_job(config, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["num_train_steps"] == 1  # nothing was rewritten

    path.write_text(json.dumps(original))
    sr_gan.run_job(config, tmp_path)
    resumed = json.loads(path.read_text())
    assert resumed["trunks"] == original["trunks"] and [r["step"] for r in resumed["resumes"]] == [1]
    # A start without a checkpoint to resume is a new run: a new manifest, whatever the old one said.
    fresh = write_manifest(tmp_path, {"fidelity": tampered["trunks"]["fidelity"]}, resumed_step=None)
    assert fresh["trunks"] == {"fidelity": tampered["trunks"]["fidelity"]} and fresh["resumes"] == []


_HOST = """
import sys
sys.path.insert(0, {tests!r})
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address="127.0.0.1:{port}", num_processes=2, process_id=int(sys.argv[1]))
from helpers import assert_float32_highest, load_config, tiny
from asym_jax.train import sr_gan
config = tiny(load_config("sr_patchgan.py", "tiny"), {data_dir!r}, num_train_steps=4, checkpoint_every_steps=2,
              eval_every_steps=2)
result = sr_gan.run_job(config, {workdir!r})
print("returned", None if result is None else result["evaluated_on"])
"""


def test_two_hosts_share_one_workdir_and_evaluate_once(data_dir, tmp_path):
    """Two processes (2 CPU devices each) joined by jax.distributed train one run in one workdir: both save
    the checkpoints, only process 0 evaluates and writes the reports."""
    import os
    import socket
    import subprocess
    import sys

    from asym_jax.data import datasets
    from helpers import ROOT

    datasets.prepare("sample", data_dir=data_dir)  # once, before two processes read it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = _HOST.format(tests=str(ROOT / "tests"), port=port, data_dir=str(data_dir), workdir=str(tmp_path / "run"))
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    hosts = [subprocess.Popen([sys.executable, "-c", script, str(i)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [host.communicate(timeout=600) for host in hosts]
    for host, (out, err) in zip(hosts, outputs):
        assert host.returncode == 0, err[-3000:]
    assert "returned process 0 of 2, float32 at Precision.HIGHEST" in outputs[0][0]
    assert "returned None" in outputs[1][0] and "step 4/4" not in outputs[1][0]  # quiet, no evaluation
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "eval").glob("*.json")) == ["final.json", "step_2.json"]
    assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["devices"]["count"] == 4 and manifest["devices"]["processes"] == 2

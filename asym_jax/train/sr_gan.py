"""The ``sr_gan`` job: train an SR generator with pixel + fidelity + adversarial losses, resumable.

    python -m asym_jax.main --config=configs/sr_patchgan.py[:preset] --workdir=DIR

Sharding: a ``Mesh`` over every device with one ``data`` axis; the global batch is split over it and the
state is replicated (jit with ``NamedSharding``). Each host reads its own shard of the data
(``jax.make_array_from_process_local_data``). The same code runs on one CPU, 8 forced CPU devices, one
GPU and a multi-host TPU slice (``--multihost`` calls ``jax.distributed.initialize()``; every host must be
given the same ``--workdir``). Data: the ``sub_x<scale>`` form of the training set (``train_subimages``), each
batch copied to the devices while the step before it runs (:class:`~asym_jax.train.feed.DeviceFeed`).

Checkpoints: an Orbax ``CheckpointManager`` in ``<workdir>/checkpoints`` saves the whole train state and
the grain iterator; running the same command again resumes from the latest one. The losses of every step
are checked before each log, evaluation and checkpoint: a NaN or Inf stops the run with
:class:`DivergedError` before anything non-finite is evaluated or saved, keeping the last good checkpoint.
SIGTERM or Ctrl-C saves a checkpoint at the current step and stops (:mod:`asym_jax.train.checkpoints`: also
the fallback past a damaged checkpoint, and write errors).

Evaluation (periodic and final) runs on process 0 only, on its local copy of the EMA generator, in
float32 at ``Precision.HIGHEST`` whatever ``config.dtype`` says; the other hosts go on training.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from asym_jax.errors import DivergedError, InputError
from asym_jax.io import WorkPath, holds_workdir, workdir_path
from asym_jax.ops import highest_precision
from asym_jax import seeds
from asym_jax.train import setup
from asym_jax.train.checkpoints import Checkpoints, StopSignals
from asym_jax.train.config import check_config
from asym_jax.train.feed import DeviceFeed
from asym_jax.train.state import TrainState, make_optimizer
from asym_jax.train.step import StepConfig, make_train_step

__all__ = ["DivergedError", "Trainer", "build", "evaluate", "run_job", "train_step"]


@dataclasses.dataclass
class Trainer:
    """A built run: networks, losses and their trunks, the two compiled steps, shardings, data and the state."""

    config: object
    workdir: WorkPath            # local pathlib.Path, or an epath.Path for gs:// (asym_jax.io.workdir_path)
    mesh: Mesh
    networks: setup.Networks
    losses: object
    trunks: dict                 # {role: weights.selection.Trunk}: every trunk (D, losses, eval metrics)
    steps: dict                  # {adversarial: jitted step}
    state: TrainState
    data_iterator: object        # feed.DeviceFeed over the grain iterator: device batches, one step ahead
    eval_pairs: list
    batch_sharding: NamedSharding
    upscale: object              # jitted (generator params, LR NHWC float32) -> SR: float32, Precision.HIGHEST
    eval_metrics: dict           # bound evaluation metrics (weights loaded once)
    step: int = 0                # host copy of state.step: reading the device value would wait for it
    baseline: dict = dataclasses.field(default_factory=dict)  # bicubic's scores, computed at the first evaluation

    def global_batch(self, local: dict) -> dict:
        return jax.tree.map(lambda x: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(x)),
                            local)

    def with_feed(self, host_batches) -> Trainer:
        """Sets the data: an iterator of this host's batches (the grain iterator), fed to the devices one
        step ahead (:class:`~asym_jax.train.feed.DeviceFeed`)."""
        self.data_iterator = DeviceFeed(host_batches, self.global_batch)
        return self


def build(config, workdir, *, devices=None) -> Trainer:
    """Everything up to the first step; weights and data are checked before anything compiles."""
    from asym_jax.data import datasets, pipeline

    check_config(config)
    devices = jax.devices() if devices is None else devices
    if config.batch_size % len(devices):
        raise InputError(f"batch_size {config.batch_size} must be a multiple of the {len(devices)} devices")
    networks = setup.build_networks(config)
    d_trunk = setup.discriminator_trunk(config, networks)
    g_init = setup.generator_init(config)
    losses, loss_trunks = setup.build_losses(config)
    eval_metrics, eval_trunks = setup.eval_metrics(config)
    trunks = (({"generator": g_init} if g_init is not None else {}) |
              ({"discriminator": d_trunk} if d_trunk is not None else {}) | loss_trunks | eval_trunks)
    workdir = workdir_path(workdir)

    data_dir = config.data_dir or None
    manual_dir = config.manual_dir or None
    source = datasets.sr_source(config.dataset, config.train_split, data_dir=data_dir, manual_dir=manual_dir,
                                config=f"sub_x{config.scale}" if config.train_subimages else "hr")
    if jax.process_count() > 1 and config.batch_size % jax.process_count():
        raise InputError(f"batch_size {config.batch_size} must be a multiple of the {jax.process_count()} hosts")
    dataset = pipeline.sr_train_dataset(source, hr_size=config.hr_size, scale=config.scale,
                                        batch_size=config.batch_size // jax.process_count(),
                                        seed=seeds.data_seed(config.seed, jax.process_index()),
                                        num_workers=config.num_workers, shard_index=jax.process_index(),
                                        shard_count=jax.process_count())
    eval_source = datasets.sr_source(config.eval_dataset, config.eval_split, data_dir=data_dir, manual_dir=manual_dir)
    eval_pairs = list(pipeline.sr_eval_pairs(eval_source, config.scale, limit=config.eval_limit or None))

    mesh = Mesh(np.asarray(devices), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))

    g_params, d_params, d_state = setup.init_variables(config, networks, d_trunk, g_init)
    g_tx, g_schedule = make_optimizer(config.g_optimizer, config.num_train_steps)
    d_tx, d_schedule = make_optimizer(config.d_optimizer, config.num_train_steps,
                                      first_step=config.adversarial_start_step,
                                      frozen=setup.frozen_mask(networks, d_params))
    state = TrainState(step=jnp.zeros((), jnp.int32), g_params=g_params,
                       g_ema=jax.tree.map(jnp.copy, g_params), g_opt=g_tx.init(g_params),
                       d_params=d_params, d_state=d_state, d_opt=d_tx.init(d_params),
                       rng=seeds.component_key(config.seed, "step"))
    state = jax.device_put(state, replicated)
    losses = jax.device_put(losses, replicated)

    step_config = StepConfig(g_apply=networks.g_apply, d_apply=networks.d_apply, g_tx=g_tx, d_tx=d_tx,
                             g_schedule=g_schedule, d_schedule=d_schedule, adversarial_kind=config.adversarial,
                             pixel_weight=config.pixel_weight, fidelity_weight=config.fidelity_weight,
                             gan_weight=config.gan_weight, ema_decay=config.ema_decay, remat_loss=config.remat_loss)
    steps = {adversarial: jax.jit(make_train_step(step_config, adversarial=adversarial),
                                  in_shardings=(replicated, replicated, batch_sharding),
                                  out_shardings=(replicated, replicated), donate_argnums=(0,))
             for adversarial in (False, True)}
    upscale = jax.jit(highest_precision(networks.eval_apply))
    return Trainer(config=config, workdir=workdir, mesh=mesh, networks=networks, losses=losses, trunks=trunks,
                   steps=steps, state=state, data_iterator=None, eval_pairs=eval_pairs,
                   batch_sharding=batch_sharding, upscale=upscale, eval_metrics=eval_metrics).with_feed(iter(dataset))


def train_step(trainer: Trainer) -> dict:
    """One step on the next batch; returns the step's metrics (device arrays)."""
    adversarial = trainer.step >= trainer.config.adversarial_start_step and trainer.config.gan_weight > 0
    batch = trainer.data_iterator.take()
    trainer.state, metrics = trainer.steps[adversarial](trainer.state, trainer.losses, batch)
    trainer.data_iterator.fill()  # the next batch's copy overlaps the step just dispatched
    trainer.step += 1
    return metrics


def _save(checkpoints, trainer: Trainer) -> None:
    import grain
    import orbax.checkpoint as ocp
    checkpoints.save(trainer.step, ocp.args.Composite(state=ocp.args.StandardSave(trainer.state),
                                                      data=grain.checkpoint.CheckpointSave(trainer.data_iterator)))


def _restore(checkpoints, trainer: Trainer) -> int | None:
    """Restores the newest intact checkpoint (state and data iterator); returns its step."""
    import grain
    import orbax.checkpoint as ocp
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), trainer.state)
    step, restored = checkpoints.restore(lambda _: ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=grain.checkpoint.CheckpointRestore(trainer.data_iterator)))
    if step is not None:
        trainer.state = restored["state"]
        trainer.step = int(trainer.state.step)
    return step


def _local_copy(tree):
    """This process's copy of replicated arrays (each on its first local device), so evaluation runs on one
    host without a collective program that every host would have to join."""
    return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


def evaluate(trainer: Trainer, *, image_dir=None) -> dict:
    """The EMA generator and bicubic on the held-out pairs (see :mod:`asym_jax.eval.sr`), in float32 at
    ``Precision.HIGHEST``, on this process's devices only."""
    from asym_jax.eval.sr import evaluate_sr

    ema = _local_copy(trainer.state.g_ema)

    config = trainer.config
    result = evaluate_sr(lambda lr: trainer.upscale(ema, jnp.asarray(lr)), trainer.eval_pairs, scale=config.scale,
                         metric_names=list(config.eval_metrics), bound=trainer.eval_metrics, image_dir=image_dir,
                         baseline=trainer.baseline, bucket=config.eval_bucket, batch_size=config.eval_batch_size)
    return {"step": trainer.step, **result,
            "evaluated_on": f"process 0 of {jax.process_count()}, float32 at Precision.HIGHEST"}


def _check_finite(history: list[tuple[int, dict]], checkpoints) -> None:
    for step, metrics in history:
        if metrics["finite"] < 1.0:
            bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
            checkpoints.wait()  # a save in flight (always of a finite state) completes first
            kept = checkpoints.latest_step()
            where = (f"the last good checkpoint (step {kept}) is kept in {checkpoints.directory}"
                     if kept is not None else "no checkpoint had been saved yet")
            raise DivergedError(f"the loss became NaN or Inf at step {step} ({', '.join(bad)}); stopped, {where}. "
                                "Lower the learning rates or set g_optimizer.clip_norm, then rerun the same command "
                                "to resume")


def _start(trainer: Trainer, resumed: int | None, records: dict, primary: bool, writer) -> None:
    """config.json, the manifest and the start-up lines (process 0), hyperparameters of a new run."""
    from asym_jax.io import write_atomic
    from asym_jax.manifest import write_manifest

    config, workdir = trainer.config, trainer.workdir
    if primary:
        write_atomic(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n")
        write_manifest(workdir, records, resumed_step=resumed, devices_used=list(trainer.mesh.devices.flat))
        for role, trunk in trainer.trunks.items():
            print(trunk.describe(records[role]))
    if resumed is None:
        writer.write_hparams({k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))})
        if primary:
            print(f"training from scratch: {config.num_train_steps} steps, global batch {config.batch_size}, "
                  f"{len(trainer.mesh.devices.flat)} devices")
    elif primary:
        print(f"resumed from the checkpoint at step {resumed} in {workdir / 'checkpoints'}")


@holds_workdir
def run_job(config, workdir: str, *, devices=None) -> dict | None:
    """Trains (or resumes) and evaluates; returns the final evaluation (also in ``<workdir>/eval/final.json``)
    on process 0, ``None`` on the other hosts."""
    from clu import metric_writers, periodic_actions

    from asym_jax.eval.sr import format_panel
    from asym_jax.manifest import check_manifest
    from asym_jax.train.progress import Progress, TrainLog, print_line

    trainer = build(config, workdir, devices=devices)
    workdir = trainer.workdir
    primary = jax.process_index() == 0
    checkpoints = Checkpoints(workdir, trainer.config.keep_checkpoints)
    writer = None
    try:
        records = {role: trunk.provenance() for role, trunk in trainer.trunks.items()}
        if checkpoints.latest_step() is not None:  # every host refuses other weights before anything is restored
            check_manifest(workdir, records)
        resumed = _restore(checkpoints, trainer)
        writer = metric_writers.create_default_writer(workdir / "tensorboard", just_logging=not primary)
        _start(trainer, resumed, records, primary, writer)
        train_log = TrainLog(workdir / "train_log.jsonl", resumed or 0) if primary else None
        progress = Progress(num_train_steps=config.num_train_steps, every_steps=config.log_every_steps,
                            batch_size=config.batch_size, writer=writer,
                            print_fn=print_line if primary else (lambda line: None))
        profile = (periodic_actions.Profile(logdir=workdir / "profile", num_profile_steps=config.profile_steps,
                                            profile_duration_ms=None, first_profile=trainer.step + 10,
                                            every_secs=None)
                   if config.profile_steps and primary else None)
        step = trainer.step
        pending: list[tuple[int, dict]] = []
        with StopSignals() as stop:
            while step < config.num_train_steps:
                step = _one_step(trainer, step, pending, checkpoints, stop, writer, train_log, progress, profile)
        checkpoints.wait()
        result = None
        if primary:
            result = evaluate(trainer, image_dir=workdir / "eval" / "images")
            _log_eval(writer, step, result, workdir / "eval" / "final.json")
            _log_images(writer, trainer)
            print(format_panel(result))
            print(f"wrote {workdir / 'eval' / 'final.json'}")
        return result
    finally:
        if writer is not None:
            writer.close()
        checkpoints.close()


def _one_step(trainer, step, pending, checkpoints, stop, writer, train_log, progress, profile) -> int:
    """One step of the loop with what follows it: the finite check, log, checkpoint, evaluation, and the
    stop on a signal (a checkpoint at this step, then :class:`~asym_jax.errors.Stopped`)."""
    config = trainer.config
    metrics = train_step(trainer)
    step += 1
    pending.append((step, metrics))
    last = step == config.num_train_steps
    stopping = stop.requested(step) and not last
    checkpoint_now = step % config.checkpoint_every_steps == 0 or last or stopping
    eval_now = step % config.eval_every_steps == 0 and not last and not stopping
    if step % config.log_every_steps == 0 or checkpoint_now or eval_now:
        # Every step's losses are checked before anything is evaluated, logged or saved.
        history = [(s, {k: float(v) for k, v in jax.device_get(m).items()}) for s, m in pending]
        pending.clear()
        _check_finite(history, checkpoints)
        means = {k: float(np.mean([h[k] for _, h in history if k in h])) for k in history[-1][1] if k != "finite"}
        writer.write_scalars(step, {f"train/{k}": v for k, v in means.items()})
        if train_log is not None:
            train_log.append(step, means)
        progress.losses = means
    progress(step)
    if profile is not None:
        profile(step)
    if checkpoint_now:
        with progress.timed("checkpoint", wait_jax_async_dispatch=False):
            _save(checkpoints, trainer)
    if stopping:
        checkpoints.wait()
        raise stop.stopped(step, checkpoints)
    if eval_now and jax.process_index() == 0:
        with progress.timed("eval", wait_jax_async_dispatch=False):
            result = evaluate(trainer)
            _log_eval(writer, step, result, trainer.workdir / "eval" / f"step_{step}.json")
            _log_images(writer, trainer)
    return step


def _log_images(writer, trainer: Trainer) -> None:
    """The EMA generator's SR of the first ``log_images`` held-out images, to TensorBoard."""
    if not trainer.config.log_images:
        return
    from asym_jax.eval.sr import upscale_images

    ema = _local_copy(trainer.state.g_ema)
    pairs = trainer.eval_pairs[:trainer.config.log_images]
    srs = upscale_images(lambda lr: trainer.upscale(ema, jnp.asarray(lr)), [lr for _, _, lr in pairs],
                         bucket=trainer.config.eval_bucket, batch_size=trainer.config.eval_batch_size)
    writer.write_images(trainer.step, {f"sr/{name}": np.clip(sr, 0, 1)[None] for (name, _, _), sr in zip(pairs, srs)})


def _log_eval(writer, step, result, path) -> None:
    from asym_jax.eval.sr import format_panel
    from asym_jax.io import write_json
    writer.write_scalars(step, {f"eval/{method}/{metric}": value for method, values in result["methods"].items()
                                for metric, value in values.items()})
    logging.info("evaluation at step %d:\n%s", step, format_panel(result))
    write_json(path, result)

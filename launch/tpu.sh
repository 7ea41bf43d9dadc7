#!/usr/bin/env bash
# Cloud TPU VMs, one host or a pod slice: create, install, copy data, run on every worker, follow, delete.
#
#   launch/tpu.sh COMMAND [--env=FILE] [--flag=value ...] [--dry_run] [-- ARGS for asym_jax.main]
#
# Commands:
#   create   the TPU VM (--queued=true: a queued resource, waited for until ACTIVE; --spot=true: Spot)
#   setup    puts the code on every worker (--worker=all), installs Python (uv), jax[tpu] and the package
#   data     copies a TFDS data_dir prepared on this machine (--from=DIR) to $BUCKET/tfds
#   run      starts `python -m asym_jax.main ARGS --multihost` on every worker at once, detached; the
#            workdir must be on gs:// (a VM's disk goes with the VM, so only gs:// survives a preemption)
#   logs     follows worker 0's log of a run (--run=NAME; default: the workdir's last folder name)
#   watch    keeps a run (started with `run`) going: waits for it to end; when the VM is preempted,
#            terminated or gone (NOT_FOUND), it deletes, recreates, sets up and reruns it (the run resumes from
#            its last checkpoint in the workdir); a run stopped by SIGTERM (status 143, a checkpoint at its
#            step) on a VM still READY a poll later is rerun there; a failing gcloud call is retried, never
#            taken for a preemption
#   status   the VM's state
#   delete   the VM (or queued resource)
#
# Settings (flag, or KEY in the env file, see launch/env.example): --project PROJECT, --zone ZONE,
# --name TPU_NAME, --accelerator_type ACCELERATOR_TYPE (v4-8, v5litepod-256, ...), --runtime_version
# RUNTIME_VERSION, --bucket BUCKET (gs://...), --source SOURCE ("local": this checkout,
# copied to every worker; or a git URL, cloned there at --source_ref SOURCE_REF), installed editable in
# ~/asym_jax (jobs run from there, so configs/<file>.py resolve),
# --python_version PYTHON_VERSION (3.11), --spot SPOT, --queued QUEUED, --run RUN, --from FROM,
# --poll_seconds POLL_SECONDS (watch). --dry_run prints every command instead of running it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch/lib.sh
. "$HERE/lib.sh"

usage_if_asked 1 "$@"
COMMAND=$1
shift
load_env_from_args "$@"
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
SPOT=${SPOT:-false}
QUEUED=${QUEUED:-false}
POLL_SECONDS=${POLL_SECONDS:-60}
RUN=${RUN:-}
MAIN_ARGS=()
FROM=${FROM:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; MAIN_ARGS=("$@"); break ;;
    --dry_run) DRY_RUN=1 ;;
    --env=*) ;;
    --project=*) PROJECT=${1#*=} ;;
    --zone=*) ZONE=${1#*=} ;;
    --name=*) TPU_NAME=${1#*=} ;;
    --accelerator_type=*) ACCELERATOR_TYPE=${1#*=} ;;
    --runtime_version=*) RUNTIME_VERSION=${1#*=} ;;
    --bucket=*) BUCKET=${1#*=} ;;
    --source=*) SOURCE=${1#*=} ;;
    --source_ref=*) SOURCE_REF=${1#*=} ;;
    --python_version=*) PYTHON_VERSION=${1#*=} ;;
    --spot=*) SPOT=${1#*=} ;;
    --queued=*) QUEUED=${1#*=} ;;
    --run=*) RUN=${1#*=} ;;
    --from=*) FROM=${1#*=} ;;
    --poll_seconds=*) POLL_SECONDS=${1#*=} ;;
    *) die "unknown argument $1 (flags are --name=value; the job's arguments follow --; see launch/tpu.sh --help)" ;;
  esac
  shift
done
require PROJECT ZONE TPU_NAME

# Expanded on the workers, not here.
# shellcheck disable=SC2016
REMOTE_VENV='$HOME/asym_venv'
# shellcheck disable=SC2016
LOGS='$HOME/asym_logs'
# shellcheck disable=SC2016
REMOTE_SRC='$HOME/asym_jax'
TARBALL=${TMPDIR:-/tmp}/asym_jax-src.tar.gz
where=(--project="$PROJECT" --zone="$ZONE")

on_workers() {  # on_workers WORKER COMMAND: one command on the TPU VM's workers (all: in parallel)
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${where[@]}" --worker="$1" --command="$2"
}

create() {
  require ACCELERATOR_TYPE RUNTIME_VERSION
  local spot=()
  if [ "$SPOT" = true ]; then spot=(--spot); fi
  if [ "$QUEUED" = true ]; then
    run gcloud compute tpus queued-resources create "$TPU_NAME" --node-id="$TPU_NAME" "${where[@]}" \
      --accelerator-type="$ACCELERATOR_TYPE" --runtime-version="$RUNTIME_VERSION" "${spot[@]}"
    wait_active
  else
    run gcloud compute tpus tpu-vm create "$TPU_NAME" "${where[@]}" \
      --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION" "${spot[@]}"
  fi
}

wait_active() {
  local state=""
  while :; do
    state=$(run gcloud compute tpus queued-resources describe "$TPU_NAME" "${where[@]}" \
      --format='value(state.state)')
    if [ "$DRY_RUN" = 1 ]; then
      note "repeated every ${POLL_SECONDS} s until the state is ACTIVE"
      return 0
    fi
    case "$state" in
      ACTIVE) return 0 ;;
      FAILED | SUSPENDED) die "queued resource $TPU_NAME is $state" ;;
    esac
    echo "queued resource $TPU_NAME: $state; waiting" >&2
    sleep "$POLL_SECONDS"
  done
}

setup() {
  require SOURCE
  local fetch
  if [ "$SOURCE" = local ]; then
    run tar --create --gzip --file="$TARBALL" --exclude=.git --exclude=.venv --exclude=runs --exclude=dist \
      --directory="$HERE/.." .
    run gcloud compute tpus tpu-vm scp "$TARBALL" "$TPU_NAME:asym_jax-src.tar.gz" "${where[@]}" --worker=all
    fetch="mkdir -p $REMOTE_SRC && tar --extract --gzip --file=\$HOME/asym_jax-src.tar.gz --directory=$REMOTE_SRC"
  else
    fetch="git clone --quiet --depth=1 ${SOURCE_REF:+--branch=$(shell_quote "$SOURCE_REF") }$(shell_quote "$SOURCE") $REMOTE_SRC"
  fi
  # The checkout, not a wheel: jobs name their configs as configs/<file>.py, run from the checkout.
  on_workers all "set -e; rm -rf $REMOTE_SRC; $fetch; python3 -m pip install --user --quiet uv; \
\$HOME/.local/bin/uv venv --allow-existing --python $PYTHON_VERSION $REMOTE_VENV; \
\$HOME/.local/bin/uv pip install --python $REMOTE_VENV/bin/python 'jax[tpu]' --editable $REMOTE_SRC"
}

data() {
  require BUCKET
  [ -n "$FROM" ] || die "data needs --from=DIR, a TFDS data_dir prepared on this machine"
  [ "$DRY_RUN" = 1 ] || [ -d "$FROM" ] || die "no folder $FROM"
  run gcloud storage rsync --recursive "$FROM" "$BUCKET/tfds"
  note "give the job --config.data_dir=$BUCKET/tfds"
}

run_name() {
  if [ -n "$RUN" ]; then printf '%s' "$RUN"; return; fi
  local workdir
  workdir=$(workdir_of "${MAIN_ARGS[@]}")
  [ -n "$workdir" ] || die "give --run=NAME or a --workdir=gs://... after --"
  basename "$workdir"
}

start() {
  check_main_args "${MAIN_ARGS[@]}"
  local workdir name job
  workdir=$(workdir_of "${MAIN_ARGS[@]}")
  case "$workdir" in
    gs://*) ;;
    "") die "give --workdir=gs://BUCKET/runs/NAME after --: every worker writes there, and a rerun resumes from it" ;;
    *) die "--workdir=$workdir is not on gs://: a TPU VM's disk goes with the VM, and the workers must share the workdir" ;;
  esac
  name=$(run_name)
  job="cd $REMOTE_SRC && $REMOTE_VENV/bin/python -m asym_jax.main $(quote "${MAIN_ARGS[@]}") --multihost"
  # Detached (nohup, no terminal), so the run outlives this ssh session; its exit status lands beside the log.
  on_workers all "mkdir -p $LOGS && rm -f $LOGS/$name.status && nohup bash -c $(shell_quote "$job; echo \$? > $LOGS/$name.status") \
> $LOGS/$name.log 2>&1 < /dev/null &"
  note "follow it: launch/tpu.sh logs --name=$TPU_NAME --run=$name"
}

logs() {
  local name
  name=$(run_name)
  on_workers 0 "tail -n +1 -F $LOGS/$name.log"
}

vm_state() {
  if [ "$QUEUED" = true ]; then
    run gcloud compute tpus queued-resources describe "$TPU_NAME" "${where[@]}" --format='value(state.state)'
  else
    run gcloud compute tpus tpu-vm describe "$TPU_NAME" "${where[@]}" --format='value(state)'
  fi
}

delete() {
  if [ "$QUEUED" = true ]; then
    run gcloud compute tpus queued-resources delete "$TPU_NAME" "${where[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${where[@]}" --quiet
  fi
}

watch_run() {
  local name state code errors stopped=0
  name=$(run_name)
  check_main_args "${MAIN_ARGS[@]}"
  errors=$(mktemp)
  while :; do
    if ! state=$(vm_state 2>"$errors"); then
      if grep -q -i "not.found" "$errors"; then
        state=GONE
      else  # gcloud itself failed (network, credentials): never recreate a VM on that
        note "cannot read the state of $TPU_NAME ($(grep -v '^+' "$errors" | tail -n 1)); trying again"
        sleep "$POLL_SECONDS"
        continue
      fi
    fi
    if [ "$DRY_RUN" = 1 ]; then
      note "every ${POLL_SECONDS} s: READY or ACTIVE -> read worker 0's exit status:"
      on_workers 0 "cat $LOGS/$name.status"
      note "PREEMPTED, TERMINATED, SUSPENDED, FAILED or gone -> recreate and resume:"
      delete
      create
      setup
      start
      return 0
    fi
    case "$state" in
      READY | ACTIVE)
        code=$(on_workers 0 "cat $LOGS/$name.status 2>/dev/null || true" 2>/dev/null | tail -n 1 || true)
        if [ "$code" = 143 ] && [ "$stopped" = 0 ]; then  # SIGTERM: it saved a checkpoint; is the VM going?
          note "run $name stopped on SIGTERM (a checkpoint at its step); waiting ${POLL_SECONDS} s for the VM's state"
          stopped=1
        elif [ "$code" = 143 ]; then  # the VM stayed: resume on it
          note "TPU $TPU_NAME stayed $state after the stop: resuming run $name"
          stopped=0
          start
        elif [[ "$code" =~ ^[0-9]+$ ]]; then
          echo "run $name ended with status $code" >&2
          return "$code"
        fi
        ;;
      CREATING | PROVISIONING | WAITING_FOR_RESOURCES | ACCEPTED | STARTING | RESTARTING | REPAIRING) ;;
      *)
        stopped=0
        echo "TPU $TPU_NAME is ${state:-in no state}: recreating it and resuming run $name" >&2
        delete || true
        create
        setup
        start
        ;;
    esac
    sleep "$POLL_SECONDS"
  done
}

case "$COMMAND" in
  create) create ;;
  setup) setup ;;
  data) data ;;
  run) start ;;
  logs) logs ;;
  watch) watch_run ;;
  status) vm_state ;;
  delete) delete ;;
  *) die "unknown command $COMMAND (create, setup, data, run, logs, watch, status, delete)" ;;
esac

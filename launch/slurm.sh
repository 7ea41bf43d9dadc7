#!/usr/bin/env bash
# A multi-node (or one-node) GPU job under Slurm: submits launch/slurm.sbatch with one task per GPU.
#
#   launch/slurm.sh [--env=FILE] [--flag=value ...] [--dry_run] -- ARGS for asym_jax.main
#
# Settings (flag, or KEY in the env file, see launch/env.example): --nodes NODES (1), --gpus_per_node
# GPUS_PER_NODE (8), --partition SLURM_PARTITION, --account SLURM_ACCOUNT, --time SLURM_TIME (e.g.
# 2-00:00:00), --python ASYM_PYTHON (the venv's python on the cluster), --requeue REQUEUE (true: Slurm may
# requeue the job after a preemption or node failure; the rerun resumes from the workdir). The workdir must
# be on a file system every node sees (or gs://).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch/lib.sh
. "$HERE/lib.sh"

usage_if_asked 0 "$@"
load_env_from_args "$@"
MAIN_ARGS=()
parse_slurm_flags "$@"
check_main_args "${MAIN_ARGS[@]}"
[ -n "$(workdir_of "${MAIN_ARGS[@]}")" ] || die "give --workdir=DIR after --: every node must write to the same folder"
run sbatch "${SBATCH_FLAGS[@]}" --nodes="$NODES" --ntasks-per-node="$GPUS_PER_NODE" \
  --gpus-per-node="$GPUS_PER_NODE" "$HERE/slurm.sbatch" "${MAIN_ARGS[@]}"

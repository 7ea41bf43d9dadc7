#!/usr/bin/env bash
# A study spread over N machines that share its workdir, stage by stage, then its report regenerated.
#
#   launch/study.sh --target=tpu|slurm --machines=N [--plan=FILE] [--env=FILE] [--flag=value ...] [--dry_run] \
#       -- --config=configs/study.py[:preset] --workdir=DIR [--config.FIELD=value ...]
#
# 1. The plan: `python -m asym_jax.main ARGS --config.plan_only=True` here writes DIR/plan.json (or give
#    --plan=FILE, a copy of it). 2. `python -m asym_jax.experiments.split` groups the cells into stages (a
#    cell runs after the cells it reads) and deals each stage's cells over the machines. 3. Each stage runs:
#    machine i runs `python -m asym_jax.main ARGS --config.cells=<its cells>`. 4. The report is regenerated
#    from every finished cell (`--config.report_only=True`). A failed stage stops the launch; rerunning the
#    same command resumes (finished cells are skipped, started ones resume from their checkpoints).
#
# --target=tpu: single-host TPU VMs named $TPU_NAME-0 ... $TPU_NAME-(N-1), made and set up with
#   launch/tpu.sh create/setup --name=...; stages run over ssh from here (keep this shell alive: tmux), the
#   workdir on gs://. Settings as launch/tpu.sh: --project, --zone, --name.
# --target=slurm: each stage is an array job of N one-node tasks (one process that sees the node's GPUs),
#   each stage depending on the previous one, then a report job; this script returns after submitting.
#   The workdir must be on the cluster's shared file system. Settings as launch/slurm.sh: --gpus_per_node,
#   --partition, --account, --time, --python.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch/lib.sh
. "$HERE/lib.sh"

usage_if_asked 0 "$@"
load_env_from_args "$@"
MAIN_ARGS=()
ALLOW_EXTRA_FLAGS=1 parse_slurm_flags "$@"
TARGET="" MACHINES="" PLAN=""
for flag in "${EXTRA_FLAGS[@]}"; do
  case "$flag" in
    --target=*) TARGET=${flag#*=} ;;
    --machines=*) MACHINES=${flag#*=} ;;
    --plan=*) PLAN=${flag#*=} ;;
    --project=*) PROJECT=${flag#*=} ;;
    --zone=*) ZONE=${flag#*=} ;;
    --name=*) TPU_NAME=${flag#*=} ;;
    *) die "unknown argument $flag (see launch/study.sh --help)" ;;
  esac
done
[[ "$MACHINES" =~ ^[1-9][0-9]*$ ]] || die "give --machines=N (N >= 1)"
check_main_args "${MAIN_ARGS[@]}"
WORKDIR=$(workdir_of "${MAIN_ARGS[@]}")
[ -n "$WORKDIR" ] || die "give --workdir=DIR after --: the machines share the study's workdir"
PYTHON=${PYTHON:-python3}

case "$TARGET" in
  tpu)
    require PROJECT ZONE TPU_NAME
    case "$WORKDIR" in gs://*) ;; *) die "--workdir=$WORKDIR: TPU VMs share a study through gs:// only" ;; esac
    ;;
  slurm)
    case "$WORKDIR" in /*) ;; *) die "--workdir=$WORKDIR: give an absolute path on the cluster's shared file system" ;; esac
    ;;
  *) die "give --target=tpu or --target=slurm" ;;
esac

if [ -z "$PLAN" ]; then
  run "$PYTHON" -m asym_jax.main "${MAIN_ARGS[@]}" --config.plan_only=True >/dev/null
  PLAN=$WORKDIR/plan.json
fi
if [ "$DRY_RUN" = 1 ] && [ ! -f "$PLAN" ] && [[ "$PLAN" != gs://* ]]; then
  die "--dry_run needs the plan: give --plan=FILE (a plan.json from --config.plan_only=True)"
fi
echo "+ $PYTHON -m asym_jax.experiments.split $(shell_quote "$PLAN") --machines=$MACHINES" >&2
SPLIT=$("$PYTHON" -m asym_jax.experiments.split "$PLAN" --machines="$MACHINES") || exit $?
STAGES=$(printf '%s\n' "$SPLIT" | cut -d' ' -f1 | sort -n -u)
note "$(printf '%s\n' "$SPLIT" | wc -l) shares in $(printf '%s\n' "$STAGES" | wc -l) stages over $MACHINES machines"

tpu_run() {  # tpu_run MACHINE ARGS...: asym_jax.main on worker 0 of $TPU_NAME-MACHINE, in the background
  local machine=$1
  shift
  # shellcheck disable=SC2016  # expanded on the VM
  run_bg gcloud compute tpus tpu-vm ssh "$TPU_NAME-$machine" --project="$PROJECT" --zone="$ZONE" --worker=0 \
    --command="\$HOME/asym_venv/bin/python -m asym_jax.main $(quote "$@")"
}

if [ "$TARGET" = tpu ]; then
  for stage in $STAGES; do
    note "stage $stage"
    pids=()
    while read -r _ machine cells; do
      tpu_run "$machine" "${MAIN_ARGS[@]}" "--config.cells=$cells"
      pids+=("${!:-0}")
    done < <(printf '%s\n' "$SPLIT" | awk -v s="$stage" '$1 == s')
    if [ "$DRY_RUN" = 1 ]; then
      echo "+ wait" >&2
      continue
    fi
    for pid in "${pids[@]}"; do
      wait "$pid" || die "stage $stage failed on a machine (see its output above); rerun this command to resume"
    done
  done
  note "the report"
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME-0" --project="$PROJECT" --zone="$ZONE" --worker=0 \
    --command="\$HOME/asym_venv/bin/python -m asym_jax.main $(quote "${MAIN_ARGS[@]}" --config.report_only=True)"
  exit 0
fi

# Slurm: one array job per stage, chained; the stage files live in the shared workdir.
STAGE_DIR=$WORKDIR/launch
run mkdir -p "$STAGE_DIR"
previous=""
for stage in $STAGES; do
  file=$STAGE_DIR/stage-$stage.txt
  lines=$(printf '%s\n' "$SPLIT" | awk -v s="$stage" '$1 == s {print $3}')
  echo "+ (cells of stage $stage, one line per array task) > $file" >&2
  if [ "$DRY_RUN" = 1 ]; then
    printf '%s\n' "$lines" | sed 's/^/  /' >&2
  else
    printf '%s\n' "$lines" >"$file"
  fi
  count=$(printf '%s\n' "$lines" | wc -l)
  dependency=()
  if [ -n "$previous" ]; then dependency=(--dependency="afterok:$previous"); fi
  id=$(run sbatch "${SBATCH_FLAGS[@]/#--export=ALL/--export=ALL,ASYM_CELLS_FILE=$file}" "${dependency[@]}" \
    --array="0-$((count - 1))" --nodes=1 --ntasks=1 --gpus-per-node="$GPUS_PER_NODE" \
    --job-name="study-stage-$stage" "$HERE/slurm.sbatch" "${MAIN_ARGS[@]}")
  previous=${id:-STAGE_${stage}_JOB}
done
run sbatch "${SBATCH_FLAGS[@]}" --dependency="afterany:$previous" --nodes=1 --ntasks=1 --job-name=study-report \
  "$HERE/slurm.sbatch" "${MAIN_ARGS[@]}" --config.report_only=True
note "submitted; follow with squeue -u \$USER; the report lands in $WORKDIR/report.md"

# shellcheck shell=bash
# Shared by the scripts in launch/: settings from an env file and flags, --dry_run, one error format.
# Sourced, not run. Every external command goes through `run` (or `run_bg`), which prints it first on
# stderr as `+ cmd args...` (shell-quoted, as `set -x` would) and runs it unless --dry_run was given.
# Notes for the user (`note`) go to stderr too, so a command's own output can be captured.

DRY_RUN=0

# Prints the calling script's header comment (its usage) and exits 0 on --help or -h, or when a script
# that needs a command (usage_if_asked 1 "$@") got none.
usage_if_asked() {
  local needs_command=$1
  shift
  if { [ "$needs_command" = 1 ] && [ $# -lt 1 ]; } || [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
  fi
}

die() {
  echo "error: $*" >&2
  exit 2
}

note() {
  echo "# $*" >&2
}

# One argument quoted for a POSIX shell: as is when it is plain, else in single quotes.
shell_quote() {
  local text=$1 squote="'"
  if [[ -n "$text" && "$text" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$text"
  else
    printf "'%s'" "${text//$squote/$squote\\$squote$squote}"
  fi
}

run() {
  echo "+ $(quote "$@")" >&2
  if [ "$DRY_RUN" = 1 ]; then
    return 0
  fi
  "$@"
}

# Like run, in the background; the caller collects it with `wait`.
run_bg() {
  echo "+ $(quote "$@") &" >&2
  if [ "$DRY_RUN" = 1 ]; then
    return 0
  fi
  "$@" &
}

# Loads KEY=value lines (a launch/env.example copy). Values already set in the environment win over the
# file, and flags win over both (they are parsed after this).
load_env() {
  local file=$1 line key
  [ -f "$file" ] || die "no env file $file (copy launch/env.example and fill it in)"
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    key=${line%%=*}
    [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "$file: not a KEY=value line: $line"
    if [ -z "${!key+set}" ]; then
      export "$key=${line#*=}"
    fi
  done <"$file"
}

# Finds --env FILE (or ASYM_ENV) among the arguments and loads it before the flags are parsed.
load_env_from_args() {
  local file=${ASYM_ENV:-} previous=""
  for arg in "$@"; do
    if [ "$previous" = "--env" ]; then file=$arg; fi
    case "$arg" in --env=*) file=${arg#--env=} ;; esac
    previous=$arg
  done
  if [ -n "$file" ]; then load_env "$file"; fi
}

require() {
  local name flag
  for name in "$@"; do
    if [ -z "${!name:-}" ]; then
      flag=$(echo "$name" | tr '[:upper:]' '[:lower:]')
      die "$name is not set: give --$flag or set $name in the env file (see launch/env.example)"
    fi
  done
}

# One shell-quoted string of its arguments, for a command run remotely (ssh --command=..., bash -c ...).
quote() {
  local out="" arg
  for arg in "$@"; do
    out+=" $(shell_quote "$arg")"
  done
  printf '%s' "${out# }"
}

# Checks that the arguments for asym_jax.main name a config; a remote or shared workdir is the caller's check.
check_main_args() {
  local arg has_config=0
  for arg in "$@"; do
    case "$arg" in --config=*) has_config=1 ;; esac
  done
  [ "$has_config" = 1 ] || die "give the job after --, e.g. -- --config=configs/sr_patchgan.py:paper --workdir=gs://BUCKET/runs/x"
}

# The value of --workdir=... among asym_jax.main's arguments ("" if none).
workdir_of() {
  local arg
  for arg in "$@"; do
    case "$arg" in --workdir=*) printf '%s' "${arg#--workdir=}" ;; esac
  done
}

# Slurm settings shared by slurm.sh and study.sh: parses their flags (and the job's arguments after --
# into MAIN_ARGS) and fills SBATCH_FLAGS. Unknown flags are returned in EXTRA_FLAGS for the caller.
# shellcheck disable=SC2034  # MAIN_ARGS, SBATCH_FLAGS and EXTRA_FLAGS are read by the caller
parse_slurm_flags() {
  NODES=${NODES:-1}
  GPUS_PER_NODE=${GPUS_PER_NODE:-8}
  REQUEUE=${REQUEUE:-false}
  EXTRA_FLAGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --) shift; MAIN_ARGS=("$@"); break ;;
      --dry_run) DRY_RUN=1 ;;
      --env=*) ;;
      --nodes=*) NODES=${1#*=} ;;
      --gpus_per_node=*) GPUS_PER_NODE=${1#*=} ;;
      --partition=*) SLURM_PARTITION=${1#*=} ;;
      --account=*) SLURM_ACCOUNT=${1#*=} ;;
      --time=*) SLURM_TIME=${1#*=} ;;
      --python=*) ASYM_PYTHON=${1#*=} ;;
      --requeue=*) REQUEUE=${1#*=} ;;
      *) EXTRA_FLAGS+=("$1") ;;
    esac
    shift
  done
  SBATCH_FLAGS=(--parsable)
  if [ -n "${SLURM_PARTITION:-}" ]; then SBATCH_FLAGS+=(--partition="$SLURM_PARTITION"); fi
  if [ -n "${SLURM_ACCOUNT:-}" ]; then SBATCH_FLAGS+=(--account="$SLURM_ACCOUNT"); fi
  if [ -n "${SLURM_TIME:-}" ]; then SBATCH_FLAGS+=(--time="$SLURM_TIME"); fi
  if [ "$REQUEUE" = true ]; then SBATCH_FLAGS+=(--requeue); fi
  SBATCH_FLAGS+=(--export="ALL,ASYM_PYTHON=${ASYM_PYTHON:-python}")
  if [ "${#EXTRA_FLAGS[@]}" -gt 0 ] && [ "${ALLOW_EXTRA_FLAGS:-0}" != 1 ]; then
    die "unknown argument ${EXTRA_FLAGS[0]} (flags are --name=value; the job's arguments follow --)"
  fi
  return 0
}

#!/usr/bin/env bash
# One call on the GPU machine (Python 3.12, JAX, Flax, Optax, Orbax, PyTorch CUDA, timm and transformers
# preinstalled): installs the carried packages, prints the card, then, within a wall-clock budget:
#   train_bf16  benchmarks/train_step.py, both recipes (Real-ESRGAN; SwinIR-M + PatchGAN + DISTS), bf16, batch 16,
#               LR 64, vs PyTorch eager + compile bf16 of both recipes; GFLOP/step and TFLOP/s from XLA's
#               cost analysis in our rows (H200 dense peak: about 990 TFLOP/s bf16, 495 TF32)
#   train_fp32  the Real-ESRGAN recipe in float32 (PyTorch eager fp32 (TF32 convolutions, its default) +
#               compile fp32); the SwinIR recipe is left out of it to fit the budget
#   remat_b32   the Real-ESRGAN recipe with --remat (generator blocks and the VGG-19 loss) at batch 32 float32,
#               vs PyTorch eager fp32 at batch 32
#   models_fp32, models_bf16, metrics   the network and metric tables (benchmarks/models.py, metrics.py)
#   iqa_nr      (not in the default TASKS) the NR-IQA train step, ResNet-50 at 384 px, batch 16, vs PyTorch
#   loss_bf16   (not in the default TASKS) both recipes in bf16, the fidelity loss's trunk as the trainer runs
#               it (bf16, default precision) and forced to float32 Precision.HIGHEST (--loss_dtype both): what
#               the former policy cost; ours only
# JAX vs PyTorch in the same run each time. Prepare with benchmarks/prepare_gpu.sh (here: wheels and the
# TFDS sample set in .whl/), then run as one device call with `carry: [".whl"]`, e.g.
#   bash benchmarks/gpu.sh                       (timeout_s 600: about 8 minutes of budget + installs)
#   TASKS="train_bf16 models_bf16" BUDGET_S=300 bash benchmarks/gpu.sh
# BUDGET_S (default 470) bounds the tasks together, in TASKS order: each gets at most its cap (below) and
# what is left, and is skipped with less than its minimum left; the whole script ends within about
# BUDGET_S + 30 s (installs). The caps are estimates (compilation dominates: XLA for each recipe,
# Inductor for torch.compile of each recipe); raise BUDGET_S or trim TASKS if rows come back "skipped (time
# budget)". With the default budget train_bf16 (two recipes, each compiled by XLA and by Inductor) takes most
# of it: the tasks after it run on what is left, so name the ones wanted in TASKS.
# Timings on a GPU are compared only within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
BUDGET_S=${BUDGET_S:-470}
TASKS=${TASKS:-"train_bf16 train_fp32 remat_b32 models_fp32 models_bf16 metrics"}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/site .whl/basicsr-1.4.2.tar.gz
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
SECONDS=0
OUT_DIR=${OUT:-/tmp}
DATA=.whl/tfds  # the embedded sample set, prepared by prepare_gpu.sh (writing it needs TensorFlow)

# task NEED CAP COMMAND...: runs COMMAND for at most CAP seconds and what is left of the budget; skips it
# when less than NEED seconds are left.
task() {
  local need=$1 cap=$2 rest=$((BUDGET_S - SECONDS))
  shift 2
  if (( rest < need )); then
    echo "# skipped (${rest} s of the ${BUDGET_S} s budget left, needs ${need} s): $*"
    return 0
  fi
  echo "# [${SECONDS} s] $*"
  timeout -k 20 "$(( rest < cap ? rest : cap ))" "$@" 2>&1 | grep -v -i warn \
    || echo "# ended with status ${PIPESTATUS[0]}: $*"
}

# train NEED CAP NAME ARGS...: benchmarks/train_step.py, told its own budget (it starts no recipe or PyTorch
# mode near the end of it, and prints what it measured when stopped), with a JSON copy of its results.
train() {
  local need=$1 cap=$2 name=$3 rest=$((BUDGET_S - SECONDS))
  shift 3
  task "$need" "$cap" python3 benchmarks/train_step.py --data_dir "$DATA" \
    --budget_s $(( (rest < cap ? rest : cap) - 10 )) --json "$OUT_DIR/train_step_$name.json" "$@"
}

# Order within train_step.py: ours (each recipe), then PyTorch eager, then torch.compile (cut first).
for t in $TASKS; do
  case $t in
    train_bf16) train 150 390 bf16 --batch 16 --lr_size 64 --dtype bfloat16 --steps 10 --torch --compile ;;
    train_fp32) train 120 190 fp32 --batch 16 --lr_size 64 --dtype float32 --steps 10 --recipes realesrgan \
                  --torch --compile ;;
    remat_b32) train 90 150 remat_b32 --batch 32 --lr_size 64 --dtype float32 --steps 5 --remat \
                 --recipes realesrgan --torch --torch_modes eager-fp32 ;;
    loss_bf16) train 150 300 loss_bf16 --batch 16 --lr_size 64 --dtype bfloat16 --steps 10 --loss_dtype both ;;
    models_fp32) task 60 600 python3 benchmarks/models.py --lr 64 --batch 16 --repeats 10 ;;
    models_bf16) task 60 600 python3 benchmarks/models.py --lr 64 --batch 16 --repeats 10 --dtype bfloat16 ;;
    metrics) task 60 600 python3 benchmarks/metrics.py --batch 8 --size 256 --repeats 20 --random-trunks ;;
    iqa_nr) task 60 200 python3 benchmarks/iqa_nr.py --backbone resnet50 --crop 384 --batch 16 --steps 20 ;;
    *) echo "# unknown task $t" ;;
  esac
done
echo "# gpu.sh: ${SECONDS} s after the installs"

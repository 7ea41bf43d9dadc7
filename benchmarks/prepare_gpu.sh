#!/usr/bin/env bash
# Run HERE (not on the GPU machine): downloads what the GPU machine lacks into .whl/ (git-ignored), so
# that one device call can run benchmarks/gpu.sh with `carry: [".whl"]`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps -d .whl lpips==0.1.4 DISTS-pytorch==0.1 piq==0.8.0
python3 -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d .whl basicsr==1.4.2
ls -la .whl

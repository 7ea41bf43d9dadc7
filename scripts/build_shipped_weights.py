"""Rebuilds the small weight files shipped in ``asym_jax/weights/data`` from the reference wheels.

    pip download --no-deps lpips==0.1.4 DISTS-pytorch==0.1 -d wheels/
    python scripts/build_shipped_weights.py --lpips wheels/lpips-0.1.4-py3-none-any.whl \
        --dists wheels/DISTS_pytorch-0.1-py3-none-any.whl --out asym_jax/weights/data

The files are read with asym_jax's restricted PyTorch reader (no torch import), flattened to
float32 vectors and written as byte-reproducible npz files; their sha256 are printed and must equal
the ones recorded in ``asym_jax/weights/assets.py``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import zipfile

import numpy as np

from asym_jax.weights.assets import sha256_of
from asym_jax.weights.npz import save_npz
from asym_jax.weights.readers import read_torch_checkpoint


def _member(wheel: str, member: str, workdir: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        return archive.extract(member, workdir)


def build(lpips_wheel: str, dists_wheel: str, out: pathlib.Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    heads = {}
    with tempfile.TemporaryDirectory() as tmp:
        for version in ("0.0", "0.1"):
            for net in ("alex", "vgg"):
                state = read_torch_checkpoint(_member(lpips_wheel, f"lpips/weights/v{version}/{net}.pth", tmp))
                for layer in range(5):
                    weight = state[f"lin{layer}.model.1.weight"]  # (1, C, 1, 1)
                    heads[f"v{version}_{net}_{layer}"] = weight.reshape(-1).astype(np.float32)
        state = read_torch_checkpoint(_member(dists_wheel, "DISTS_pytorch/weights.pt", tmp))
        alpha_beta = {key: state[key].reshape(-1).astype(np.float32) for key in ("alpha", "beta")}
    save_npz(out / "lpips_heads.npz", heads)
    save_npz(out / "dists_alpha_beta.npz", alpha_beta)
    return {name: sha256_of(out / name) for name in ("lpips_heads.npz", "dists_alpha_beta.npz")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lpips", required=True, help="path to lpips-0.1.4-py3-none-any.whl")
    parser.add_argument("--dists", required=True, help="path to DISTS_pytorch-0.1-py3-none-any.whl")
    parser.add_argument("--out", default="asym_jax/weights/data")
    args = parser.parse_args(argv)
    for name, digest in build(args.lpips, args.dists, pathlib.Path(args.out)).items():
        print(f"{digest}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

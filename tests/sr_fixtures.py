"""Tiny copies of SR releases in their exact folder layouts (images generated here, not downloaded)."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

from asym_jax.data.imresize import bicubic_lr


def _photo(rng, height, width):
    """A smooth random image (so bicubic LR is meaningful), uint8 RGB."""
    base = rng.random((height // 4 + 2, width // 4 + 2, 3))
    image = np.kron(base, np.ones((4, 4, 1)))[:height, :width]
    return np.round(np.clip(image + 0.05 * rng.standard_normal(image.shape), 0, 1) * 255).astype(np.uint8)


def write_pair(hr_path: pathlib.Path, lr_path: pathlib.Path | None, rng, size=(24, 32), scale=4):
    hr = _photo(rng, *size)
    hr_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(hr).save(hr_path)
    if lr_path is not None:
        lr_path.parent.mkdir(parents=True, exist_ok=True)
        cropped = hr[:size[0] // scale * scale, :size[1] // scale * scale]
        lr = np.round(bicubic_lr(cropped.astype(np.float32) / 255.0, scale) * 255.0).astype(np.uint8)
        Image.fromarray(lr).save(lr_path)
    return hr


def write_benchmark(root: pathlib.Path, folder: str, count: int, *, scale: int | None = 4, size=(26, 33),
                    seed=0) -> dict[str, np.ndarray]:
    """``root/<folder>/HR/img_<i>.png`` (+ ``LR_bicubic/X<scale>/img_<i>x<scale>.png``); odd sizes on purpose."""
    rng = np.random.default_rng(seed)
    images = {}
    for i in range(count):
        name = f"img_{i:03d}"
        lr = root / folder / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png" if scale else None
        images[name] = write_pair(root / folder / "HR" / f"{name}.png", lr, rng, size=size, scale=scale or 4)
    return images


def write_div2k(root: pathlib.Path, *, lr_scale: int | None = None, seed=0) -> None:
    rng = np.random.default_rng(seed)
    for split, first, last in (("train", 1, 800), ("valid", 801, 900)):
        for i in range(first, last + 1):
            lr = (root / f"DIV2K_{split}_LR_bicubic" / f"X{lr_scale}" / f"{i:04d}x{lr_scale}.png") if lr_scale else None
            write_pair(root / f"DIV2K_{split}_HR" / f"{i:04d}.png", lr, rng, size=(8, 8), scale=lr_scale or 4)


def write_flickr2k(root: pathlib.Path, *, seed=0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(1, 2651):
        write_pair(root / "Flickr2K_HR" / f"{i:06d}.png", None, rng, size=(8, 8))

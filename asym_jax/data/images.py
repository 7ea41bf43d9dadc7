"""Reading image files into HWC float32 RGB arrays in [0, 1], with one-line errors."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from asym_jax.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "list_images", "read_image", "to_uint8"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


class ImageReadError(InputError):
    """An image file is missing, unreadable, or in a form that cannot be turned into RGB."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads PNG/JPEG/BMP (8- or 16-bit grey, RGB, palette; alpha only if fully opaque) to HWC RGB."""
    from PIL import Image, UnidentifiedImageError

    from asym_jax.io import workdir_path

    path = workdir_path(path)  # local, or in a gs:// workdir (the study report's SR crops)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with path.open("rb") as file, Image.open(file) as image:
            if any(";16" in str(tile.args) for tile in image.tile) and image.mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise ImageReadError(f"{path}: 16-bit colour PNGs are not supported (Pillow reads them as 8 bits); "
                                     "save it as 8-bit colour or 16-bit grey")
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, np.float64) / 65535.0  # 16-bit PNG (Pillow: I;16 or I)
                array = np.repeat(array[..., None], 3, axis=-1)
            elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
                rgba = np.asarray(image.convert("RGBA"))
                if np.any(rgba[..., 3] != 255):
                    raise ImageReadError(f"{path}: has transparent pixels; flatten it onto a background first")
                array = rgba[..., :3].astype(np.float64) / 255.0
            elif mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):
                array = np.asarray(image.convert("RGB"), np.float64) / 255.0
            else:
                raise ImageReadError(f"{path}: unsupported image mode {mode}")
    except ImageReadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{path}: cannot read image ({error.__class__.__name__}: {error})") from None
    if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
        raise ImageReadError(f"{path}: unexpected image shape {array.shape}")
    return array.astype(np.float32)


def list_images(folder: str | os.PathLike) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """Image files directly in ``folder`` (sorted), and every other entry (other files, subfolders),
    which is not read."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: no such folder")
    entries = sorted(folder.iterdir())
    images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return images, [p for p in entries if p not in images]


def to_uint8(image) -> np.ndarray:
    """[0, 1] floats -> 8-bit values as a saved PNG holds them (clipped, rounded half to even)."""
    return np.round(np.clip(np.asarray(image), 0.0, 1.0) * 255.0).astype(np.uint8)

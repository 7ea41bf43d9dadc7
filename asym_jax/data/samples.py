"""Embedded sample photographs (shipped inside scikit-image) and simple synthetic distortions.

No download: every image is read from scikit-image's own wheel. Images are HWC float32 in [0, 1].
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from asym_jax.errors import InputError

__all__ = ["DISTORTIONS", "SAMPLE_NAMES", "distort", "sample_image", "sample_pairs", "sample_photo"]

# Natural photographs bundled with scikit-image (loader name in skimage.data).
SAMPLE_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
                "motorcycle_left", "camera")


def sample_photo(name: str) -> np.ndarray:
    """A photograph shipped in scikit-image's wheel, as HWC uint8 RGB (grey ones repeated to 3 channels);
    ``motorcycle_left``/``motorcycle_right`` are the two views of its stereo pair."""
    import skimage.data

    if name in ("motorcycle_left", "motorcycle_right"):
        image = skimage.data.stereo_motorcycle()[0 if name == "motorcycle_left" else 1]
    elif name.startswith("_") or not callable(getattr(skimage.data, name, None)):
        raise InputError(f"{name!r} is not a scikit-image photograph")
    else:
        image = getattr(skimage.data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def sample_image(name: str) -> np.ndarray:
    """Returns the sample photograph ``name`` (one of ``SAMPLE_NAMES``) as HWC float32 RGB in [0, 1]."""
    if name not in SAMPLE_NAMES:
        raise InputError(f"unknown sample image {name!r}; known: {', '.join(SAMPLE_NAMES)}")
    return sample_photo(name).astype(np.float32) / 255.0


def _gaussian_blur(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    del rng
    return gaussian_filter(image, sigma=(level, level, 0), mode="reflect")


def _gaussian_noise(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    return image + rng.normal(0.0, level, image.shape).astype(np.float32)


def _jpeg(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image
    del rng
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=int(level))
    return np.asarray(Image.open(buffer), np.float32) / 255.0


def _contrast(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    del rng
    mean = image.mean(axis=(0, 1), keepdims=True)
    return mean + level * (image - mean)


def _colour(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    del rng
    grey = image @ np.asarray([0.299, 0.587, 0.114], np.float32)
    return grey[..., None] + level * (image - grey[..., None])


def _resize(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Bicubic down-sampling by ``level`` and back up (MATLAB imresize both ways), cut to the input size."""
    from asym_jax.data.imresize import imresize
    del rng
    small = imresize(image, 1.0 / level)
    up = imresize(small, float(level))
    if up.shape[0] < image.shape[0] or up.shape[1] < image.shape[1]:
        up = np.pad(up, ((0, max(0, image.shape[0] - up.shape[0])), (0, max(0, image.shape[1] - up.shape[1])), (0, 0)),
                    mode="edge")
    return up[:image.shape[0], :image.shape[1]]


# name -> (function, levels from mild to strong)
DISTORTIONS: dict[str, tuple[Callable, tuple[float, ...]]] = {
    "blur": (_gaussian_blur, (0.5, 1.0, 1.5, 2.5, 4.0)),
    "noise": (_gaussian_noise, (0.01, 0.02, 0.04, 0.07, 0.1)),
    "jpeg": (_jpeg, (75, 50, 30, 15, 5)),
    "contrast": (_contrast, (0.9, 0.75, 0.6, 0.45, 0.3)),
    "colour": (_colour, (0.8, 0.6, 0.4, 0.2, 0.0)),
    "resize": (_resize, (1.5, 2.0, 3.0, 4.0, 6.0)),
}


def distort(image: np.ndarray, kind: str, level: int, *, seed: int = 0) -> np.ndarray:
    """Distorts ``image`` with ``kind`` at ``level`` (0 mild .. 4 strong); 8-bit quantised result."""
    if kind not in DISTORTIONS:
        raise InputError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}")
    fn, levels = DISTORTIONS[kind]
    if not 0 <= level < len(levels):
        raise InputError(f"level must be in 0..{len(levels) - 1}, got {level}")
    out = fn(image, levels[level], np.random.default_rng(seed))
    return (np.round(np.clip(out, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def sample_pairs(names=SAMPLE_NAMES[:4], kinds=tuple(DISTORTIONS), levels=(1, 3), *, crop: int | None = None):
    """Yields ``(name, kind, level, reference, distorted)`` for the sample photographs.

    ``crop`` takes the central ``crop x crop`` region of each photograph first.
    """
    for name in names:
        image = sample_image(name)
        if crop is not None:
            if crop > min(image.shape[:2]):
                raise InputError(f"crop {crop} is larger than the {image.shape[0]} x {image.shape[1]} sample {name!r}")
            top, left = (image.shape[0] - crop) // 2, (image.shape[1] - crop) // 2
            image = image[top:top + crop, left:left + crop]
        for kind in kinds:
            for level in levels:
                yield name, kind, level, image, distort(image, kind, level, seed=level)

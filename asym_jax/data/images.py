"""Reading image files into HWC float32 RGB arrays in [0, 1], with one-line errors.

Every kind of file has one defined reading (``docs/reliability.md`` has the table and its tests):

* Formats: PNG, JPEG and BMP (:data:`IMAGE_FORMATS`, by content, not by file name). A camera JPEG with
  extra frames (MPO: previews, depth maps) is read as its primary image, as every JPEG decoder does. An
  animated PNG is refused; TIFF, GIF, WebP and the rest are refused.
* Pixels as stored: the EXIF orientation tag is not applied, as ``PIL.Image.open(...).convert('RGB')``,
  pyiqa and piq read, and as IQA datasets' scores were collected on their released pixels.
  :func:`check_pair` refuses a reference/distorted pair whose tags (or sizes) differ.
* Grey (1-, 8- or 16-bit) is replicated to three channels; a palette is looked up; CMYK JPEG is converted as
  Pillow converts it (Adobe polarity, marker or not); embedded ICC profiles are not applied. A 16-bit colour
  PNG is read losslessly by TensorFlow's PNG decoder (Pillow keeps only the high byte of each sample).
* An alpha channel or transparency key is accepted only if every pixel is opaque.
* More than :data:`MAX_PIXELS` pixels is refused from the header, before anything is decoded; a truncated
  file is refused (Pillow's ``LOAD_TRUNCATED_IMAGES`` stays False).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import struct

import numpy as np

from asym_jax.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "IMAGE_FORMATS", "MAX_PIXELS", "ImageHeader", "ImageReadError", "check_opened",
           "check_pair", "list_images", "read_header", "read_image", "stored_as_rgb8", "to_uint8"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "BMP")  # Pillow's names; MPO is a JPEG with extra frames
# The default bound on width x height (8192 x 8192, 64 Mpx: a 61-Mpx camera frame fits; read_image then holds
# about 2.4 GB of float64 and float32 copies). Below Pillow's own decompression-bomb bound, so this one speaks.
MAX_PIXELS = 8192 * 8192
ORIENTATION_TAG = 0x0112  # EXIF Orientation: 1 as stored, 2..8 mirrored and/or turned
_TURNS = {1: "shown as stored", 2: "shown mirrored", 3: "shown rotated 180", 4: "shown flipped",
          5: "shown transposed", 6: "shown rotated 90 clockwise", 7: "shown transversed",
          8: "shown rotated 90 anticlockwise"}
_GREY16 = ("I;16", "I;16B", "I;16L", "I")  # Pillow's modes for a 16-bit grey PNG


class ImageReadError(InputError):
    """An image file is missing, unreadable, or in a form that cannot be turned into RGB."""


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: Pillow's format and mode, (height, width) of the stored pixels, and
    the EXIF orientation tag (1 when absent or invalid)."""

    format: str
    mode: str
    size: tuple[int, int]
    orientation: int


def check_opened(image, path, *, max_pixels: int | None = None) -> None:
    """Refuses, from the header of an opened and not yet decoded Pillow image, what :func:`read_image` does
    not read: a format other than PNG/JPEG/BMP, an animated PNG, more than ``max_pixels`` pixels
    (default :data:`MAX_PIXELS`, read at call time)."""
    if image.format not in IMAGE_FORMATS:
        raise ImageReadError(f"{path}: {image.format} images are not read (PNG, JPEG and BMP are); "
                             "convert it to PNG (16-bit PNG keeps 16-bit samples)")
    frames = getattr(image, "n_frames", 1)
    if image.format == "PNG" and frames > 1:
        raise ImageReadError(f"{path}: an animated PNG ({frames} frames) is not a still image; "
                             "save the frame to use as a still PNG")
    bound = MAX_PIXELS if max_pixels is None else max_pixels
    width, height = image.size
    if width * height > bound:
        raise ImageReadError(f"{path}: {width} x {height} px is {width * height:,} pixels, over the bound of "
                             f"{bound:,} (asym_jax.data.images.MAX_PIXELS); crop or downscale it, or raise the bound")


def stored_as_rgb8(image) -> bool:
    """Whether an opened, not yet decoded Pillow image is 8-bit RGB with nothing to convert (PNG/JPEG/BMP, mode
    RGB, no transparency key, no 16-bit samples): its file's bytes then decode, in any decoder that ignores EXIF
    orientation (Pillow's, TensorFlow's, OpenCV's unchanged mode), to :func:`read_image`'s pixels."""
    return (image.format in ("PNG", "JPEG", "BMP") and image.mode == "RGB" and "transparency" not in image.info
            and not _png16_colour(image))


def read_header(path: str | os.PathLike, *, max_pixels: int | None = None) -> ImageHeader:
    """The header of an image file, checked as :func:`check_opened` checks it; no pixel is decoded."""
    from asym_jax.io import workdir_path

    path = workdir_path(path)
    with _opened(path, max_pixels) as image:
        return ImageHeader(image.format, image.mode, (image.height, image.width), _orientation(image))


def check_pair(ref: str | os.PathLike, dist: str | os.PathLike) -> None:
    """Refuses, from the headers, a reference/distorted pair that cannot be compared pixel for pixel:
    unequal EXIF orientation tags (pixels are compared as stored, so one image may be turned against the
    other, even where the sizes agree), or unequal sizes."""
    r, d = read_header(ref), read_header(dist)
    if r.orientation != d.orientation:
        raise ImageReadError(
            f"reference {ref} has EXIF orientation {r.orientation} ({_TURNS[r.orientation]}) but distorted {dist} "
            f"has {d.orientation} ({_TURNS[d.orientation]}); pixels are compared as stored (orientation is not "
            "applied, as in pyiqa and piq), so one may be turned against the other: save both with the same "
            "orientation tag (e.g. both through PIL.ImageOps.exif_transpose)")
    if r.size != d.size:
        raise ImageReadError(f"reference {ref} and distorted {dist} differ in size: reference is {r.size[1]} x "
                             f"{r.size[0]} px, distorted is {d.size[1]} x {d.size[0]} px; full-reference metrics "
                             "need equal sizes")


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Reads a PNG/JPEG/BMP file to HWC float32 RGB in [0, 1], as the module docstring describes; anything
    else raises :class:`ImageReadError` naming the file. ``max_pixels``: see :func:`check_opened`."""
    from asym_jax.io import workdir_path

    path = workdir_path(path)  # local, or in a gs:// workdir (the study report's SR crops)
    with _opened(path, max_pixels) as image:
        wide = _png16_colour(image)  # known from the header only, before decoding
        image.load()  # the whole file, with Pillow's refusal of truncated data, 16-bit colour PNGs included
        array = _png16_rgb(path, image) if wide else _rgb(path, image)
    if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
        raise ImageReadError(f"{path}: unexpected image shape {array.shape}")
    return array.astype(np.float32)


@contextlib.contextmanager
def _opened(path, max_pixels):
    """The opened and header-checked Pillow image of ``path``; Pillow's errors become one-line ImageReadErrors."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with path.open("rb") as file, Image.open(file) as image:
            check_opened(image, path, max_pixels=max_pixels)
            yield image
    except ImageReadError:
        raise
    except Image.DecompressionBombError as error:  # over Pillow's bound, which comes first: Image.open checks
        bound = MAX_PIXELS if max_pixels is None else max_pixels
        raise ImageReadError(f"{path}: too large to decode ({error}); the bound here is {bound:,} pixels "
                             "(asym_jax.data.images.MAX_PIXELS)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{path}: cannot read image ({error.__class__.__name__}: {error})") from None


def _orientation(image) -> int:
    """The EXIF orientation tag of an opened image's header (1 when absent, invalid or unparsable)."""
    from PIL import Image

    raw = image.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except (OSError, SyntaxError, ValueError, struct.error, IndexError, KeyError):
        return 1
    value = exif.get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and value in _TURNS else 1


def _png16_colour(image) -> bool:
    """A 16-bit PNG that is not plain grey (grey-alpha, RGB, RGBA): Pillow would keep only 8 bits of it."""
    return (image.format == "PNG" and image.mode not in _GREY16
            and any(";16" in str(tile.args) for tile in image.tile))


def _opaque(path, opaque) -> None:
    if opaque is not None and not np.all(opaque):
        raise ImageReadError(f"{path}: has transparent pixels; flatten it onto a background first")


def _rgb(path, image) -> np.ndarray:
    """A decoded 8-bit (or 16-bit grey) Pillow image as HWC float64 RGB in [0, 1]."""
    mode, key = image.mode, image.info.get("transparency")
    if mode in _GREY16:  # values 0..65535
        grey = np.asarray(image)
        _opaque(path, None if key is None else grey != key)
        return np.repeat(grey[..., None] / 65535.0, 3, axis=-1)
    if mode in ("RGBA", "LA", "PA") or (key is not None and mode in ("1", "L", "P", "RGB")):
        rgba = np.asarray(image.convert("RGBA"))  # applies a palette's or a colour key's transparency
        _opaque(path, rgba[..., 3] == 255)
        return rgba[..., :3] / 255.0
    if mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):
        return np.asarray(image.convert("RGB")) / 255.0
    raise ImageReadError(f"{path}: unsupported image mode {mode}")


def _png16_rgb(path, image) -> np.ndarray:
    """A 16-bit grey-alpha, RGB or RGBA PNG as HWC float64 RGB in [0, 1], every bit kept (TensorFlow's decoder,
    a dependency already; imported here only)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    try:
        array = tf.io.decode_png(path.read_bytes(), channels=0, dtype=tf.uint16).numpy()
    except tf.errors.OpError as error:
        raise ImageReadError(f"{path}: cannot read image ({error.__class__.__name__}: {error.message})") from None
    has_alpha = array.shape[-1] in (2, 4)
    colour = array[..., :-1] if has_alpha else array
    key = image.info.get("transparency")
    _opaque(path, array[..., -1] == 65535 if has_alpha
            else None if key is None else np.any(colour != np.asarray(key), axis=-1))
    return np.repeat(colour / 65535.0, 3 // colour.shape[-1], axis=-1)


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

"""Odd image files: one defined reading each, the same in read_image, the score CLI and the dataset builders.

Each class (EXIF orientation, CMYK, palette, 16-bit, grey against colour, multi-frame, huge, truncated, other
formats) is checked through :func:`read_image`, ``score.main`` in-process, and the builders' ``_open_checked``
and ``_image_size``, whose stored value must decode (as TFDS decodes it) to read_image's pixels.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from asym_jax import metrics, score
from asym_jax.data import DatasetError, images
from asym_jax.data.builders import _image_feature, _image_size, _open_checked
from asym_jax.data.images import ImageReadError, check_pair, read_header, read_image, to_uint8
from asym_jax.eval import score_job
from helpers import load_config

HEIGHT, WIDTH = 16, 24  # not square, so a turned image would show in its size


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A small 8-bit RGB image with structure in both directions (so mirroring or turning changes it)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = np.random.default_rng(0).integers(0, 40, (HEIGHT, WIDTH, 3))
    return np.clip(np.stack([x * 10, y * 15, (x + y) * 5], -1) + noise, 0, 255).astype(np.uint8)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = orientation
    return exif


def _png(path, width: int, height: int, bit_depth: int, colour_type: int, rows: bytes = b""):
    """A PNG written by hand (Pillow cannot write 16-bit colour, nor a header with no pixels behind it)."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bit_depth, colour_type, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def _png16(path, samples: np.ndarray):
    """A 16-bit PNG of HWC uint16 ``samples`` (2 channels: grey-alpha, 3: RGB, 4: RGBA), filter 0 per row."""
    colour_type = {2: 4, 3: 2, 4: 6}[samples.shape[-1]]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)
    return _png(path, samples.shape[1], samples.shape[0], 16, colour_type, rows)


def _builder_agrees(path) -> np.ndarray:
    """Checks that the builders store ``path`` as read_image reads it; returns the stored uint8 pixels."""
    value, size = _open_checked(path, "odd")
    stored = value if isinstance(value, np.ndarray) else _image_feature().decode_example_np(value)
    np.testing.assert_array_equal(stored, to_uint8(read_image(path)))
    assert size == stored.shape[:2] == _image_size(path, "odd")
    return stored


def _score(capsys, *paths) -> tuple[int, str]:
    status = score.main(["--metric", "psnr", *map(str, paths)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def _all_refuse(path, message: str, capsys, *, against=None, from_header: bool = True) -> None:
    """read_image, the score CLI (``path`` against ``against``, or itself) and the builders refuse ``path`` with
    ``message``, naming the file; ``_image_size`` too when the refusal comes ``from_header``."""
    with pytest.raises(ImageReadError, match=re.escape(message)) as error:
        read_image(path)
    assert str(path) in str(error.value)
    status, out = _score(capsys, against or path, path)
    assert status == 2 and message in out and path.name in out, out
    for function in (_open_checked, _image_size) if from_header else (_open_checked,):
        with pytest.raises(DatasetError, match=rf"^odd: .*{re.escape(path.name)}") as error:
            function(path, "odd")
        assert message in str(error.value)
    if not from_header:
        assert _image_size(path, "odd") == read_header(path).size


# ---------------------------------------------------------------- EXIF orientation


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_exif_orientation_is_not_applied(photo, tmp_path, ext, capsys):
    plain, turned = tmp_path / f"plain.{ext}", tmp_path / f"turned.{ext}"
    Image.fromarray(photo).save(plain, quality=95)
    Image.fromarray(photo).save(turned, quality=95, exif=_exif(6))
    assert read_header(turned).orientation == 6 and read_header(plain).orientation == 1
    pixels = read_image(turned)
    assert pixels.shape == (HEIGHT, WIDTH, 3)  # as stored, not turned to 24 x 16
    np.testing.assert_array_equal(to_uint8(pixels), np.asarray(Image.open(turned).convert("RGB")))  # as pyiqa
    np.testing.assert_array_equal(pixels, read_image(plain))
    value, size = _open_checked(turned, "odd")
    assert value == turned.read_bytes() and size == (HEIGHT, WIDTH)  # stored unchanged; decodes as stored
    _builder_agrees(turned)
    other = tmp_path / f"other.{ext}"
    Image.fromarray(photo).save(other, quality=95, exif=_exif(6))
    assert _score(capsys, turned, other)[0] == 0  # equal tags: compared as stored


def test_pairs_whose_orientation_tags_differ_are_refused_naming_both(photo, tmp_path, capsys):
    ref, dist = tmp_path / "ref.jpg", tmp_path / "dist.jpg"
    Image.fromarray(photo).save(ref, quality=95, exif=_exif(6))
    Image.fromarray(photo).save(dist, quality=90)  # a re-encoding that dropped the tag: same stored pixels
    with pytest.raises(ImageReadError, match="EXIF orientation 6 .* has 1 ") as error:
        check_pair(ref, dist)
    assert str(ref) in str(error.value) and str(dist) in str(error.value)
    status, out = _score(capsys, ref, dist)
    assert status == 2 and "ref.jpg has EXIF orientation 6" in out and "dist.jpg" in out
    # The score job checks the same way, before scoring anything.
    config = load_config("score.py", "tiny")
    config.ref, config.dist = str(ref), str(dist)
    with pytest.raises(ImageReadError, match="orientation"):
        score_job.run_job(config, str(tmp_path / "job"))


# ---------------------------------------------------------------- CMYK and palette


def _without_adobe_marker(data: bytes) -> bytes:
    """The JPEG ``data`` without its APP14 'Adobe' segment (a CMYK JPEG that does not say its polarity)."""
    at = data.index(b"\xff\xee")
    return data[:at] + data[at + 2 + int.from_bytes(data[at + 2:at + 4], "big"):]


@pytest.mark.parametrize("marker", [True, False], ids=["adobe", "no_marker"])
def test_cmyk_jpeg_converts_to_known_rgb(tmp_path, marker, capsys):
    # Flat 8-px blocks (exact through JPEG at quality 100, up to rounding): cyan, red, 50% black, white.
    inks = [(255, 0, 0, 0), (0, 255, 255, 0), (0, 0, 0, 128), (0, 0, 0, 0)]
    expected = np.array([(0, 255, 255), (255, 0, 0), (127, 127, 127), (255, 255, 255)], np.uint8)
    cmyk = np.repeat(np.array(inks, np.uint8)[None, :, None, :], 8, axis=2).reshape(1, 32, 4).repeat(8, 0)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, "CMYK").save(path, quality=100)  # Pillow writes Adobe-inverted CMYK, with the marker
    if not marker:
        path.write_bytes(_without_adobe_marker(path.read_bytes()))
    with Image.open(path) as opened:
        assert opened.mode == "CMYK" and ("adobe" in opened.info) == marker
    rgb = to_uint8(read_image(path))
    np.testing.assert_allclose(rgb[4, 4::8].astype(int), expected, atol=3)  # read with Adobe polarity both ways
    stored = _builder_agrees(path)
    assert stored.shape == (8, 32, 3)
    reference = tmp_path / "rgb.png"
    Image.fromarray(np.repeat(expected[None, :, None], 8, 2).reshape(1, 32, 3).repeat(8, 0)).save(reference)
    status, out = _score(capsys, reference, path)
    assert status == 0 and float(out.splitlines()[1].split()[1]) > 40  # PSNR: the same colours


def _palette_image(transparency: int | None):
    palette = [(255, 0, 0), (0, 128, 255), (20, 200, 30), (9, 9, 9)]
    index = (np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) // 7) % 3  # uses entries 0..2, never 3
    image = Image.fromarray(index.astype(np.uint8), "P")
    image.putpalette([v for rgb in palette for v in rgb])
    return image, np.array(palette, np.uint8)[index], {} if transparency is None else {"transparency": transparency}


@pytest.mark.parametrize("transparency", [None, 3], ids=["opaque", "unused_index_transparent"])
def test_palette_png_is_looked_up(tmp_path, transparency, capsys):
    image, expected, options = _palette_image(transparency)
    path = tmp_path / "palette.png"
    image.save(path, **options)
    with Image.open(path) as opened:
        assert opened.mode == "P" and ("transparency" in opened.info) == (transparency is not None)
    np.testing.assert_array_equal(to_uint8(read_image(path)), expected)
    _builder_agrees(path)
    reference = tmp_path / "rgb.png"
    Image.fromarray(expected).save(reference)
    status, out = _score(capsys, reference, path)
    assert status == 0 and float(out.splitlines()[1].split()[1]) == 100.0  # PSNR's cap: identical pixels


def test_palette_png_with_a_transparent_pixel_is_refused(tmp_path, capsys):
    image, _, options = _palette_image(1)
    path = tmp_path / "see_through.png"
    image.save(path, **options)
    _all_refuse(path, "has transparent pixels; flatten it onto a background first", capsys, from_header=False)


# ---------------------------------------------------------------- 16-bit


def test_sixteen_bit_grey_png_is_read_losslessly(tmp_path, capsys):
    grey = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH) * 173
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    pixels = read_image(path)
    np.testing.assert_array_equal(pixels, np.repeat((grey / 65535.0).astype(np.float32)[..., None], 3, -1))
    _builder_agrees(path)
    assert _score(capsys, path, path)[0] == 0


@pytest.mark.parametrize("channels", [2, 3, 4], ids=["grey_alpha", "rgb", "rgba"])
def test_sixteen_bit_colour_png_is_read_losslessly(photo, tmp_path, channels, capsys):
    samples = (photo.astype(np.uint16) * 257 + np.arange(WIDTH, dtype=np.uint16)[:, None])[..., :min(channels, 3)]
    if channels in (2, 4):  # opaque alpha
        samples = np.concatenate([samples[..., :channels - 1], np.full((HEIGHT, WIDTH, 1), 65535, np.uint16)], -1)
    path = _png16(tmp_path / "colour16.png", samples)
    colour = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, -1)
    np.testing.assert_array_equal(read_image(path), (colour / 65535.0).astype(np.float32))  # every bit kept
    value, _ = _open_checked(path, "odd")
    assert isinstance(value, np.ndarray)  # never stored as its bytes: decoders would keep 8 bits, or wrap
    _builder_agrees(path)
    eight = tmp_path / "colour8.png"
    Image.fromarray(to_uint8(read_image(path))).save(eight)
    status, out = _score(capsys, eight, path)
    assert status == 0 and float(out.splitlines()[1].split()[1]) > 50


def test_sixteen_bit_png_with_a_transparent_pixel_is_refused(photo, tmp_path, capsys):
    samples = np.concatenate([photo.astype(np.uint16) * 257, np.full((HEIGHT, WIDTH, 1), 65535, np.uint16)], -1)
    samples[3, 5, 3] = 1000
    path = _png16(tmp_path / "rgba16.png", samples)
    _all_refuse(path, "has transparent pixels", capsys, from_header=False)


@pytest.mark.parametrize("kind", ["tiff16", "gif"])
def test_other_formats_are_refused(photo, tmp_path, kind, capsys):
    if kind == "tiff16":
        path = tmp_path / "grey16.tif"
        Image.fromarray(photo[..., 0].astype(np.uint16) * 257).save(path)
    else:
        path = tmp_path / "still.gif"
        Image.fromarray(photo).convert("P").save(path)
    fmt = "TIFF" if kind == "tiff16" else "GIF"
    _all_refuse(path, f"{fmt} images are not read (PNG, JPEG and BMP are)", capsys)


# ---------------------------------------------------------------- grey against colour


def test_grey_against_colour_is_scored_with_grey_replicated(photo, tmp_path, capsys):
    ref, dist = tmp_path / "ref.png", tmp_path / "dist.png"
    Image.fromarray(photo).save(ref)
    Image.fromarray(photo).convert("L").save(dist)
    grey = read_image(dist)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])
    status, out = _score(capsys, ref, dist)
    expected = float(metrics.psnr(grey[None], read_image(ref)[None])[0])
    assert status == 0 and float(out.splitlines()[1].split()[1]) == pytest.approx(expected, rel=1e-4)
    _builder_agrees(dist)


def test_size_mismatch_is_refused_naming_both_files(photo, tmp_path, capsys):
    ref, dist = tmp_path / "ref.png", tmp_path / "dist.jpg"
    Image.fromarray(photo).save(ref)
    Image.fromarray(photo[:8]).convert("L").save(dist)
    status, out = _score(capsys, ref, dist)
    assert status == 2 and f"reference {ref} and distorted {dist} differ in size" in out
    assert "reference is 24 x 16 px, distorted is 24 x 8 px" in out


# ---------------------------------------------------------------- multi-frame


def test_animated_png_is_refused(photo, tmp_path, capsys):
    path = tmp_path / "anim.png"
    Image.fromarray(photo).save(path, save_all=True, append_images=[Image.fromarray(255 - photo)])
    single = tmp_path / "still.png"
    Image.fromarray(photo).save(single)
    _all_refuse(path, "an animated PNG (2 frames) is not a still image", capsys, against=single)


def test_camera_jpeg_with_extra_frames_reads_its_primary_image(photo, tmp_path, capsys):
    path, first = tmp_path / "camera.jpg", tmp_path / "first.jpg"
    Image.fromarray(photo).save(path, format="MPO", save_all=True, append_images=[Image.fromarray(255 - photo)])
    Image.fromarray(photo).save(first)
    with Image.open(path) as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    np.testing.assert_array_equal(read_image(path), read_image(first))
    _builder_agrees(path)
    assert _score(capsys, first, path)[0] == 0


# ---------------------------------------------------------------- too large, truncated


def test_images_over_the_pixel_bound_are_refused_from_the_header(tmp_path, capsys, monkeypatch):
    huge = _png(tmp_path / "huge.png", 9000, 9000, 8, 2)  # 81 Mpx declared in a 60-byte file
    message = "9000 x 9000 px is 81,000,000 pixels, over the bound of 67,108,864"
    _all_refuse(huge, message, capsys)
    bomb = _png(tmp_path / "bomb.png", 100_000, 100_000, 8, 2)  # over Pillow's own bound too
    with pytest.raises(ImageReadError, match=r"bomb.png: too large to decode .*the bound here is 67,108,864"):
        read_image(bomb)
    with pytest.raises(DatasetError, match="odd: cannot read image .*bomb.png .*DecompressionBombError"):
        _image_size(bomb, "odd")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(small)
    with pytest.raises(ImageReadError, match="over the bound of 100 "):
        read_image(small, max_pixels=100)
    monkeypatch.setattr(images, "MAX_PIXELS", 100)  # the bound is read at call time, by the builders too
    with pytest.raises(DatasetError, match="odd: .*small.png: 24 x 16 px is 384 pixels, over the bound of 100 "):
        _open_checked(small, "odd")


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_files_are_refused_naming_the_file(tmp_path, ext, capsys):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    path = tmp_path / f"cut.{ext}"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(path, quality=95)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    _all_refuse(path, "cannot read image", capsys, from_header=False)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES

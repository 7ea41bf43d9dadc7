"""TFDS builders over the readers of :mod:`~asym_jax.data.sr_sources` and :mod:`~asym_jax.data.iqa_sources`.

One builder class per dataset, registered in TFDS as ``asym_<name>`` (the prefix keeps clear of TFDS's own
catalogue, which has a ``div2k`` that downloads). Preparation reads the user's copy of the official release
from ``manual_dir`` (nothing is downloaded), decodes every image once to prove it readable, checks sizes
(FR pairs equal; released LR = HR // scale), and writes ``array_record`` files that
``builder.as_data_source`` serves to grain with random access.

Records hold images as their released bytes (8-bit PNG/JPEG/BMP in RGB; anything else is converted to RGB and
stored as PNG), so decoding yields the same uint8 pixels as reading the file with
:func:`~asym_jax.data.images.read_image` (EXIF orientation not applied; what it refuses, preparation refuses).

IQA sets have a ``full`` split (every scored image, in label-file order) and, for FR sets, a
``references`` split that each record points into with ``ref_index`` (references are stored once).
SR sets have their release's splits; configs ``hr`` (HR only: LR is made on the fly), ``x2``/``x3``/``x4``
(HR and the released LR images) and ``sub_x2``/``sub_x3``/``sub_x4``: the training form. Each mod-cropped HR
image is cut into :data:`SUBIMAGE_SIZE`-px sub-images every :data:`SUBIMAGE_STEP` px (the last one flush
with the border, as BasicSR's ``extract_subimages``), each stored with its LR cut from the MATLAB-bicubic LR
of the whole image; so a training crop costs one small decode and no resize, and its LR equals the LR of
the whole image, as the ``hr`` form's LR made on the fly does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib

import numpy as np

from asym_jax.data.files import DatasetError
from asym_jax.data.images import ImageReadError, check_opened, check_pair, read_image, stored_as_rgb8, to_uint8
from asym_jax.data.iqa_sources import IQA_SPECS, IQAItem, IQASpec
from asym_jax.data.ranking import RANKING_SPEC
from asym_jax.data.sr_sources import SR_SPECS, SUBIMAGE_SIZE, SUBIMAGE_STEP, SRItem, SRSpec, subimage_starts

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import tensorflow_datasets as tfds  # noqa: E402

__all__ = ["BUILDERS", "EMBEDDED", "builder_class"]

VERSION = "1.0.0"
EMBEDDED = ("sample", "ranking")  # made from scikit-image's photographs: no manual_dir


def _image_feature():
    return tfds.features.Image(shape=(None, None, 3), dtype=np.uint8, encoding_format="png")


def _open_checked(path: pathlib.Path, dataset: str) -> tuple[bytes | np.ndarray, tuple[int, int]]:
    """The value to store for an image file and its (height, width); the file is fully decoded once. A file
    that is 8-bit RGB as stored (:func:`~asym_jax.data.images.stored_as_rgb8`) is stored as its bytes, any other
    as :func:`read_image` reads it; so every record decodes to read_image's pixels (EXIF orientation not applied,
    sizes as in the header). Files read_image refuses (animated, too large, truncated, ...) raise DatasetError."""
    from PIL import Image

    if not path.is_file():
        raise DatasetError(f"{dataset}: image {path} does not exist")
    with _image_errors(path, dataset):
        with Image.open(path) as image:
            check_opened(image, path)
            if stored_as_rgb8(image):
                image.load()  # decoded once, to prove the whole file readable
                return path.read_bytes(), (image.height, image.width)
        array = to_uint8(read_image(path))
        return array, array.shape[:2]


def _image_size(path: pathlib.Path, dataset: str) -> tuple[int, int]:
    """(height, width) of an image file from its header, checked as :func:`_open_checked` checks it."""
    from PIL import Image

    if not path.is_file():
        raise DatasetError(f"{dataset}: image {path} does not exist")
    with _image_errors(path, dataset), Image.open(path) as image:
        check_opened(image, path)
        return image.height, image.width


@contextlib.contextmanager
def _image_errors(path: pathlib.Path, dataset: str):
    """Errors of reading ``path`` as one-line DatasetErrors naming the dataset and the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except ImageReadError as error:
        raise DatasetError(f"{dataset}: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{dataset}: cannot read image {path} ({error.__class__.__name__}: {error})") from None


def _image_value(image, dataset):
    if isinstance(image, np.ndarray):
        return image, image.shape[:2]
    return _open_checked(pathlib.Path(image), dataset)


class _IQABuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Builder for one IQA dataset (``SPEC`` set by the subclass)."""

    SPEC: IQASpec
    VERSION = tfds.core.Version(VERSION)

    def _info(self):
        spec = self.SPEC
        features = {
            "image": _image_feature(),
            "score": tfds.features.Scalar(np.float32),
            "name": tfds.features.Text(),
            "ref_id": tfds.features.Text(),
            "distortion": tfds.features.Text(),
            "level": tfds.features.Scalar(np.int32),
            "official_split": tfds.features.Text(),
        }
        if spec.kind == "fr":
            features["ref_index"] = tfds.features.Scalar(np.int32)
            features["ref_name"] = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self, description=f"{spec.title}: {spec.score_name}, "
            f"{'higher' if spec.higher_is_better else 'lower'} is better, nominal range {spec.score_range}.",
            features=tfds.features.FeaturesDict(features), homepage=spec.url, disable_shuffling=True,
            metadata=tfds.core.MetadataDict(kind=spec.kind, score_name=spec.score_name,
                                            higher_is_better=spec.higher_is_better,
                                            score_range=list(spec.score_range)))

    def _split_generators(self, dl_manager):
        items = self.SPEC.reader(None if self.SPEC.name in EMBEDDED else dl_manager.manual_dir)
        if not items:
            raise DatasetError(f"{self.SPEC.name}: the label files list no images")
        # The label table, without pixels, for splitting and evaluation without decoding any image.
        self.info.metadata["table"] = {
            "name": [i.name for i in items], "score": [float(i.score) for i in items],
            "ref_id": [i.ref_id for i in items], "distortion": [i.distortion for i in items],
            "level": [int(i.level) for i in items], "official_split": [i.split or "" for i in items]}
        splits = {"full": self._generate_examples(items)}
        if self.SPEC.kind == "fr":
            splits["references"] = self._generate_references(items)
        return splits

    def _references(self, items: list[IQAItem]):
        refs: dict[str, object] = {}
        for item in items:
            refs.setdefault(item.ref_id, item.ref)
        return refs

    def _generate_references(self, items):
        for i, (ref_id, ref) in enumerate(self._references(items).items()):
            value, _ = _image_value(ref, self.SPEC.name)
            yield i, {"image": value, "score": 0.0, "name": ref_id, "ref_id": ref_id, "distortion": "reference",
                      "level": 0, "official_split": "", "ref_index": i, "ref_name": _name_of(ref, ref_id)}

    def _generate_examples(self, items):
        fr = self.SPEC.kind == "fr"
        ref_index = {ref_id: i for i, ref_id in enumerate(self._references(items))} if fr else {}
        ref_sizes: dict[str, tuple[int, int]] = {}
        for i, item in enumerate(items):
            value, size = _image_value(item.dist, self.SPEC.name)
            if not np.isfinite(item.score):
                raise DatasetError(f"{self.SPEC.name}: image {item.name} has a non-finite score {item.score}")
            record = {"image": value, "score": float(item.score), "name": item.name, "ref_id": item.ref_id,
                      "distortion": item.distortion, "level": int(item.level),
                      "official_split": item.split or ""}
            if fr:
                if item.ref_id not in ref_sizes:
                    ref_sizes[item.ref_id] = _image_value(item.ref, self.SPEC.name)[1]
                if ref_sizes[item.ref_id] != size:
                    raise DatasetError(f"{self.SPEC.name}: {item.name} is {size[0]} x {size[1]} but its reference "
                                       f"{_name_of(item.ref, item.ref_id)} is {ref_sizes[item.ref_id][0]} x "
                                       f"{ref_sizes[item.ref_id][1]}")
                if isinstance(item.ref, (str, os.PathLike)) and isinstance(item.dist, (str, os.PathLike)):
                    try:  # EXIF orientation tags agree (pixels are stored as they are in the files)
                        check_pair(item.ref, item.dist)
                    except ImageReadError as error:
                        raise DatasetError(f"{self.SPEC.name}: {error}") from None
                record["ref_index"] = ref_index[item.ref_id]
                record["ref_name"] = _name_of(item.ref, item.ref_id)
            yield i, record


def _name_of(image, fallback: str) -> str:
    return pathlib.Path(image).name if isinstance(image, (str, os.PathLike)) else fallback


_SUB_CONFIGS = [tfds.core.BuilderConfig(
    name=f"sub_x{s}", description=f"{SUBIMAGE_SIZE}-px HR sub-images every {SUBIMAGE_STEP} px, each with its x{s} "
    "LR cut from the MATLAB-bicubic LR of the whole image (the training form)") for s in (2, 3, 4)]


class _SRBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Builder for one SR image set (``SPEC`` set by the subclass); configs hr, x2, x3, x4, sub_x2/3/4."""

    SPEC: SRSpec
    VERSION = tfds.core.Version(VERSION)
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="hr", description="HR images only; LR made on the fly")] + [
        tfds.core.BuilderConfig(name=f"x{s}", description=f"HR images and the released x{s} bicubic LR images")
        for s in (2, 3, 4)] + _SUB_CONFIGS

    @property
    def scale(self) -> int | None:
        name = self.builder_config.name
        return None if name == "hr" else int(name.rsplit("x", 1)[1])

    @property
    def subimages(self) -> bool:
        return self.builder_config.name.startswith("sub_")

    def _info(self):
        features = {"hr": _image_feature(), "name": tfds.features.Text()}
        if self.scale:
            features["lr"] = _image_feature()
        metadata = {"scale": self.scale or 0}
        if self.subimages:  # where the sub-image lies in its mod-cropped HR image
            features.update(top=tfds.features.Scalar(np.int32), left=tfds.features.Scalar(np.int32))
            metadata.update(subimage_size=SUBIMAGE_SIZE, subimage_step=SUBIMAGE_STEP)
        return tfds.core.DatasetInfo(builder=self, description=self.SPEC.title,
                                     features=tfds.features.FeaturesDict(features), homepage=self.SPEC.url,
                                     disable_shuffling=True, metadata=tfds.core.MetadataDict(**metadata))

    def _split_generators(self, dl_manager):
        manual_dir = None if self.SPEC.name in EMBEDDED else dl_manager.manual_dir
        items = self.SPEC.reader(manual_dir, None if self.subimages else self.scale)
        if self.scale and not self.subimages and any(item.lr is None for item in items):
            missing = next(item for item in items if item.lr is None)
            raise DatasetError(f"{self.SPEC.name}: config x{self.scale} needs the released LR images, but there is "
                               f"none for {missing.hr}; use the 'hr' config to make LR images on the fly")
        splits: dict[str, list[SRItem]] = {}
        for item in items:
            splits.setdefault(item.split, []).append(item)
        if self.subimages:  # where each image's run of sub-images starts, for sampling images uniformly
            self.info.metadata["images"] = {split: self._subimage_table(split_items)
                                            for split, split_items in splits.items()}
        return {split: self._generate_examples(split_items) for split, split_items in splits.items()}

    def _subimage_table(self, items: list[SRItem]) -> dict[str, list]:
        counts = []
        for item in items:
            height, width = (item.hr.shape[:2] if isinstance(item.hr, np.ndarray)
                             else _image_size(item.hr, self.SPEC.name))
            height, width = height - height % self.scale, width - width % self.scale
            counts.append(len(subimage_starts(height)) * len(subimage_starts(width)))
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
        return {"name": [item.name for item in items], "first": first.tolist(), "count": counts}

    def _generate_examples(self, items):
        if self.subimages:
            yield from self._generate_subimages(items)
            return
        for item in items:
            hr, (height, width) = _image_value(item.hr, self.SPEC.name)
            record = {"hr": hr, "name": item.name}
            if self.scale:
                lr, lr_size = _image_value(item.lr, self.SPEC.name)
                expected = (height // self.scale, width // self.scale)
                if lr_size != expected:
                    raise DatasetError(f"{self.SPEC.name}: LR image {item.lr} is {lr_size[0]} x {lr_size[1]}; "
                                       f"HR {height} x {width} at x{self.scale} needs {expected[0]} x {expected[1]}")
                record["lr"] = lr
            yield item.name, record

    def _generate_subimages(self, items):
        """Sub-image records, image by image in order; images are cut in a pool of threads (decoding,
        resizing and PNG coding release the GIL), a few at a time so memory stays bounded."""
        from concurrent.futures import ThreadPoolExecutor

        workers = max(1, min(8, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            for first in range(0, len(items), 2 * workers):
                for records in pool.map(self._cut, items[first:first + 2 * workers],
                                         range(first, first + 2 * workers)):
                    yield from records

    def _cut(self, item: SRItem, index: int) -> list[tuple[str, dict]]:
        from asym_jax.data.images import to_uint8
        from asym_jax.data.imresize import bicubic_lr, mod_crop

        s = self.scale
        if isinstance(item.hr, np.ndarray):
            hr = item.hr
        else:
            try:
                hr = to_uint8(read_image(item.hr))
            except ImageReadError as error:
                raise DatasetError(f"{self.SPEC.name}: {error}") from None
        hr = np.ascontiguousarray(mod_crop(hr, s))
        lr = to_uint8(bicubic_lr(hr.astype(np.float32) / 255.0, s))
        height, width = hr.shape[:2]
        size_h, size_w = min(SUBIMAGE_SIZE, height), min(SUBIMAGE_SIZE, width)
        boxes = [(top, left) for top in subimage_starts(height) for left in subimage_starts(width)]
        records = []
        for k, (top, left) in enumerate(boxes, start=1):
            name = f"{item.name}_s{k:03d}"
            # Keys sort in the order written (records of one image are consecutive, images in reading order).
            records.append((f"{index:07d}_{k:05d}", {
                "hr": _png(hr[top:top + size_h, left:left + size_w]), "name": name, "top": top, "left": left,
                "lr": _png(lr[top // s:(top + size_h) // s, left // s:(left + size_w) // s])}))
        return records


def _png(image: np.ndarray) -> bytes:
    """PNG bytes at zlib level 3, as BasicSR's sub-image script writes them: about 3x faster to write and 25%
    faster to read than level 6, for about 20% more disk."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _make_builders() -> dict[str, type]:
    classes = {}
    for name, spec in {**IQA_SPECS, "ranking": RANKING_SPEC}.items():
        classes[name] = type(f"Asym{_camel(name)}", (_IQABuilder,),
                             {"name": f"asym_{name}", "SPEC": spec, "__module__": __name__,
                              "MANUAL_DOWNLOAD_INSTRUCTIONS": f"Unpack {spec.url} into manual_dir: {spec.layout}"})
    for name, spec in SR_SPECS.items():
        attrs = {"name": f"asym_{name}", "SPEC": spec, "__module__": __name__,
                 "MANUAL_DOWNLOAD_INSTRUCTIONS": f"Unpack {spec.url} into manual_dir: {spec.layout}"}
        if name == "sample":
            attrs["BUILDER_CONFIGS"] = _SRBuilder.BUILDER_CONFIGS[:1] + _SUB_CONFIGS
        classes[name] = type(f"Asym{_camel(name)}", (_SRBuilder,), attrs)
    return classes


BUILDERS: dict[str, type] = _make_builders()
# Module attributes, so that pickle (grain worker processes) finds the classes by name.
globals().update({cls.__name__: cls for cls in BUILDERS.values()})


@functools.cache
def builder_class(name: str) -> type:
    if name not in BUILDERS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name]

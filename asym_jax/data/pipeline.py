"""grain pipelines: random SR training crops with LR made on the fly, and deterministic evaluation sets.

Training records flow as ``{"hr": uint8 (B, P, P, 3), "lr": uint8 (B, P/s, P/s, 3)}``: 8-bit on the wire
(4x less inter-process traffic than float32, and exactly what a saved LR PNG holds); the trainer divides
by 255 on the device. LR images are MATLAB-exact bicubic (:func:`asym_jax.data.imresize.bicubic_lr`).

LR made on the fly equals the LR of the whole (mod-cropped) image: each HR crop is resized with a margin
of :data:`CONTEXT` LR pixels of real image around it (clipped at the image's own borders, where MATLAB's
mirroring applies as it would for the whole image), then the margin is cut off. So training pairs do not
depend on where crops fall, and match released ``LR_bicubic`` files up to their 8-bit rounding.

The sub-image form (:class:`~asym_jax.data.datasets.SubImages`) is sampled by image, as whole images are:
an epoch visits every image once, each time one of its sub-images at random, then a random crop of it.
So a large image is not seen more often than a small one, and the two forms draw crops alike (the
sub-image form misses the few crop positions that straddle two sub-images).

Order is deterministic for a seed: ``shuffle`` reshuffles every epoch, crop positions and flips come
from per-element seeds, and the iterator's state (``get_state``/``set_state``) is saved with the training
checkpoint. Multi-host runs read a disjoint slice of the records on every host.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from asym_jax.data.datasets import SubImages
from asym_jax.data.files import DatasetError
from asym_jax.data.images import to_uint8
from asym_jax.data.imresize import bicubic_lr, mod_crop

__all__ = ["CONTEXT", "IQACrop", "SRCrop", "SubImageCrop", "iqa_train_dataset", "lr_for_crop", "sr_eval_pairs", "sr_train_dataset"]

CONTEXT = 3  # LR pixels of context on each side: the x1/s antialiased cubic reaches 2 LR pixels, plus one


def lr_for_crop(hr: np.ndarray, top: int, left: int, size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """HR crop ``hr[top:top+size, left:left+size]`` (uint8, offsets and size multiples of ``scale``, inside
    the mod-cropped image) and its LR, equal to ``bicubic_lr`` of the whole mod-cropped image, cropped."""
    height, width = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    margin = CONTEXT * scale
    t0, l0 = max(0, top - margin), max(0, left - margin)
    t1, l1 = min(height, top + size + margin), min(width, left + size + margin)
    region = hr[t0:t1, l0:l1].astype(np.float32) / 255.0
    lr = bicubic_lr(region, scale)
    lt, ll, ls = (top - t0) // scale, (left - l0) // scale, size // scale
    lr = to_uint8(lr[lt:lt + ls, ll:ll + ls])
    return hr[top:top + size, left:left + size], lr


@dataclasses.dataclass(frozen=True)
class SRCrop(grain.transforms.RandomMap):
    """One random training pair from an SR record: an ``hr_size`` crop (on the scale grid), its LR (the
    released one if the record has ``lr``, otherwise made on the fly), then random flips and transpose."""

    hr_size: int
    scale: int
    augment: bool = True

    def random_map(self, record: dict, rng: np.random.Generator) -> dict:
        hr = np.asarray(record["hr"])
        name = record.get("name", b"?")
        name = name.decode() if isinstance(name, bytes) else str(name)
        s, p = self.scale, self.hr_size
        if hr.shape[0] < p or hr.shape[1] < p:
            raise DatasetError(f"image {name} is {hr.shape[0]} x {hr.shape[1]}, smaller than the {p}-px training crop")
        lr_h, lr_w = hr.shape[0] // s, hr.shape[1] // s
        top, left = int(rng.integers(0, lr_h - p // s + 1)) * s, int(rng.integers(0, lr_w - p // s + 1)) * s
        if "lr" in record:
            lr_full = np.asarray(record["lr"])
            if lr_full.shape[:2] != (lr_h, lr_w):
                raise DatasetError(f"image {name}: LR is {lr_full.shape[0]} x {lr_full.shape[1]}, HR "
                                   f"{hr.shape[0]} x {hr.shape[1]} at x{s} needs {lr_h} x {lr_w}")
            hr_crop = hr[top:top + p, left:left + p]
            lr_crop = lr_full[top // s:(top + p) // s, left // s:(left + p) // s]
        else:
            hr_crop, lr_crop = lr_for_crop(hr, top, left, p, s)
        if self.augment:
            hflip, vflip, transpose = rng.integers(0, 2, size=3)
            hr_crop, lr_crop = (_augment(x, hflip, vflip, transpose) for x in (hr_crop, lr_crop))
        return {"hr": np.ascontiguousarray(hr_crop), "lr": np.ascontiguousarray(lr_crop)}


@dataclasses.dataclass(frozen=True)
class _ImageRuns:
    """Random access by image to a :class:`SubImages` source: ``{"first", "count"}`` of its records."""

    first: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, index: int) -> dict:
        return {"first": int(self.first[index]), "count": int(self.count[index])}


@dataclasses.dataclass(frozen=True)
class SubImageCrop(grain.transforms.RandomMap):
    """One random sub-image of an image (``{"first", "count"}`` of :class:`_ImageRuns`), read from
    ``records``, then :class:`SRCrop` of it with the same random stream."""

    records: object
    crop: SRCrop

    def random_map(self, run: dict, rng: np.random.Generator) -> dict:
        record = self.records[run["first"] + int(rng.integers(0, run["count"]))]
        return self.crop.random_map(record, rng)


def _augment(image: np.ndarray, hflip, vflip, transpose) -> np.ndarray:
    if hflip:
        image = image[:, ::-1]
    if vflip:
        image = image[::-1]
    if transpose:
        image = image.transpose(1, 0, 2)
    return image


def _ignore_stop_signals(worker_index: int, worker_count: int) -> None:
    """In a grain worker process: SIGINT and SIGTERM sent to the whole process group (Ctrl-C, ``scancel``)
    are the main process's to act on (it saves a checkpoint and stops its workers)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def sr_train_dataset(source, *, hr_size: int, scale: int, batch_size: int, seed: int, num_workers: int = 0,
                     shard_index: int = 0, shard_count: int = 1, augment: bool = True,
                     prefetch: int = 2) -> grain.IterDataset:
    """Endless batches of training pairs from ``source`` (a random-access source of SR records).

    ``batch_size`` is this host's share of the global batch; ``shard_index``/``shard_count`` (normally
    ``jax.process_index()``/``jax.process_count()``) give each host a disjoint slice of the images. A
    :class:`~asym_jax.data.datasets.SubImages` source is sampled by image (module docstring).
    ``num_workers`` > 0 decodes and crops in that many processes.
    """
    if hr_size % scale:
        raise DatasetError(f"the HR crop size {hr_size} must be a multiple of the scale {scale}")
    if batch_size < 1:
        raise DatasetError(f"batch size must be at least 1, got {batch_size}")
    if not 0 <= shard_index < shard_count:
        raise DatasetError(f"shard index {shard_index} is not in 0..{shard_count - 1}")
    crop = SRCrop(hr_size, scale, augment)
    if isinstance(source, SubImages):
        crop = SubImageCrop(source.records, crop)
        dataset = grain.MapDataset.source(_ImageRuns(source.first, source.count))
    else:
        dataset = grain.MapDataset.source(source)
    if shard_count > 1:
        dataset = dataset[shard_index::shard_count]
    if len(dataset) == 0:
        raise DatasetError(f"no training images for host {shard_index} of {shard_count}")
    dataset = dataset.seed(seed).shuffle().repeat(None).random_map(crop)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    iterable = dataset.to_iter_dataset(grain.ReadOptions(num_threads=max(1, prefetch), prefetch_buffer_size=prefetch))
    if num_workers > 0:
        iterable = iterable.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers),
                                        worker_init_fn=_ignore_stop_signals)
    return iterable


def sr_eval_pairs(source, scale: int, *, limit: int | None = None):
    """Yields ``(name, hr, lr)`` (uint8) for every record: HR mod-cropped to the scale, LR the released one
    when the record has it (its size checked), otherwise made with MATLAB bicubic from HR."""
    for index in range(len(source) if limit is None else min(limit, len(source))):
        record = source[index]
        name = record["name"].decode() if isinstance(record["name"], bytes) else str(record["name"])
        hr = mod_crop(np.asarray(record["hr"]), scale)
        if "lr" in record:
            lr = np.asarray(record["lr"])
            if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
                raise DatasetError(f"image {name}: released LR is {lr.shape[0]} x {lr.shape[1]}, expected "
                                   f"{hr.shape[0] // scale} x {hr.shape[1] // scale} for x{scale}")
        else:
            lr = to_uint8(bicubic_lr(hr.astype(np.float32) / 255.0, scale))
        yield name, hr, lr


class _IQARecords:
    """Random access to the training images of an IQA set: ``{"image", "target", "index"}`` by position."""

    def __init__(self, data, indices, targets):
        self.data, self.indices, self.targets = data, np.asarray(indices), targets

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict:
        index = int(self.indices[position])
        image = np.asarray(self.data.source[index]["image"])
        return {"image": image, "target": np.float32(self.targets[position]), "index": np.int32(index)}


@dataclasses.dataclass(frozen=True)
class IQACrop(grain.transforms.RandomMap):
    """A random ``size`` x ``size`` crop of an IQA training image, flipped left-right at random (quality
    models see no vertical flips or rotations: the scenes' orientation is part of how they are judged)."""

    size: int
    augment: bool = True

    def random_map(self, record: dict, rng: np.random.Generator) -> dict:
        image, p = record["image"], self.size
        if image.shape[0] < p or image.shape[1] < p:
            raise DatasetError(f"IQA image {int(record['index'])} is {image.shape[0]} x {image.shape[1]}, smaller "
                               f"than the {p}-px training crop (lower crop_size)")
        top, left = int(rng.integers(0, image.shape[0] - p + 1)), int(rng.integers(0, image.shape[1] - p + 1))
        crop = image[top:top + p, left:left + p]
        if self.augment and rng.integers(0, 2):
            crop = crop[:, ::-1]
        return {"image": np.ascontiguousarray(crop), "target": record["target"]}


def iqa_train_dataset(data, indices, targets, *, crop_size: int, batch_size: int, seed: int,
                      shard_index: int = 0, shard_count: int = 1, augment: bool = True, num_workers: int = 0,
                      prefetch: int = 2) -> grain.IterDataset:
    """Endless batches ``{"image": uint8 (B, P, P, 3), "target": float32 (B,)}`` of random crops of the
    images ``indices`` of IQA set ``data`` (an :class:`~asym_jax.data.datasets.IQAData`), with their
    normalised ``targets``; shuffled every epoch, deterministic for a seed,
    a disjoint slice of the images on every host (``shard_index`` of ``shard_count``)."""
    if batch_size < 1:
        raise DatasetError(f"batch size must be at least 1, got {batch_size}")
    if not 0 <= shard_index < shard_count:
        raise DatasetError(f"shard index {shard_index} is not in 0..{shard_count - 1}")
    dataset = grain.MapDataset.source(_IQARecords(data, indices, targets))
    if shard_count > 1:
        dataset = dataset[shard_index::shard_count]
    if len(dataset) == 0:
        raise DatasetError(f"no training images for host {shard_index} of {shard_count}")
    dataset = dataset.seed(seed).shuffle().repeat(None).random_map(IQACrop(crop_size, augment))
    dataset = dataset.batch(batch_size, drop_remainder=True)
    iterable = dataset.to_iter_dataset(grain.ReadOptions(num_threads=max(1, prefetch), prefetch_buffer_size=prefetch))
    if num_workers > 0:
        iterable = iterable.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers),
                                        worker_init_fn=_ignore_stop_signals)
    return iterable

"""Reading super-resolution image sets from their released folder layouts -> :class:`SRItem` rows.

Training sets (DIV2K, Flickr2K, DF2K) use their official folder names; the test sets (Set5, Set14,
BSD100, Urban100, Manga109, DIV2K validation) the common ``<Set>/HR`` + ``<Set>/LR_bicubic/X<s>`` layout
of the SR benchmark archives. Readers list files and check names and counts; they read no pixels.
Released LR images are optional: where a set's ``LR_bicubic/X<s>`` folder is absent, LR images are made
from HR with :func:`asym_jax.data.imresize.bicubic_lr`; where it is present it must be complete.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import numpy as np

from asym_jax.data.files import DatasetError, FileIndex, find_root
from asym_jax.data.images import IMAGE_EXTENSIONS
from asym_jax.data.samples import sample_photo

__all__ = ["SAMPLE_SPLITS", "SRItem", "SRSpec", "SR_SPECS", "SUBIMAGE_SIZE", "SUBIMAGE_STEP", "sample_photo",
           "subimage_starts"]


SUBIMAGE_SIZE = 480  # HR sub-image side (a multiple of 2, 3 and 4: BasicSR's DIV2K sub-images)
SUBIMAGE_STEP = 240  # distance between sub-images (a multiple of 2, 3 and 4)


def subimage_starts(length: int, size: int = SUBIMAGE_SIZE, step: int = SUBIMAGE_STEP) -> list[int]:
    """Offsets of the sub-images along one side of ``length`` px: every ``step`` px, plus one flush with the
    end; a side no longer than ``size`` is one sub-image. Multiples of the scale when ``length``, ``size``
    and ``step`` are."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    return starts if starts[-1] == length - size else [*starts, length - size]


@dataclasses.dataclass(frozen=True, eq=False)
class SRItem:
    """One high-resolution image (a file, or an array for the embedded set) and its released LR file."""

    name: str                                 # stem of the HR file ("0001", "baby")
    hr: pathlib.Path | np.ndarray             # HR image file, or HWC uint8 RGB for embedded images
    split: str                                # "train", "validation" or "test"
    lr: pathlib.Path | None = None            # released LR image at the requested scale, if any


@dataclasses.dataclass(frozen=True)
class SRSpec:
    name: str
    title: str
    splits: dict[str, int]                    # split -> number of HR images in the complete release
    layout: str
    url: str
    reader: Callable[..., list[SRItem]]       # reader(manual_dir, scale: int | None) -> items


def _stem_sorted(paths):
    return sorted((p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS), key=lambda p: p.name.lower())


def _with_lr(index: FileIndex, hr_files, lr_folder: str, scale: int | None, *, split: str) -> list[SRItem]:
    """SR items for ``hr_files``; when ``scale`` is given and ``lr_folder/X<scale>`` exists, each HR image
    ``<stem>.<ext>`` must have its ``<stem>x<scale>.<ext>`` there."""
    lr_dir = f"{lr_folder}/X{scale}" if scale else None
    released = bool(lr_dir) and bool(index.files_under(lr_dir))
    items = []
    for hr in hr_files:
        lr = None
        if released:
            candidates = [f"{lr_dir}/{hr.stem}x{scale}{ext}" for ext in (hr.suffix, ".png")]
            found = [c for c in candidates if index.has(c)]
            if not found:
                raise DatasetError(f"{index.dataset}: LR image {index.root / candidates[0]} for {hr} does not exist "
                                   f"(the folder {index.root / lr_dir} exists, so every HR image needs its LR image)")
            lr = index.path(found[0])
        items.append(SRItem(name=hr.stem, hr=hr, split=split, lr=lr))
    return items


def _check_numbered(files, first: int, last: int, digits: int, folder: pathlib.Path, dataset: str):
    stems = {p.stem for p in files}
    expected = [f"{i:0{digits}d}" for i in range(first, last + 1)]
    missing = [s for s in expected if s not in stems]
    extra = sorted(stems - set(expected))
    if missing or extra:
        what = []
        if missing:
            what.append(f"{len(missing)} missing (first: {missing[0]}.png)")
        if extra:
            what.append(f"{len(extra)} unexpected (first: {extra[0]})")
        raise DatasetError(f"{dataset}: {folder} should hold {expected[0]}.png .. {expected[-1]}.png; "
                           + "; ".join(what))


_DIV2K_LAYOUT = ("DIV2K_train_HR/0001.png .. 0800.png and DIV2K_valid_HR/0801.png .. 0900.png "
                 "(optional: DIV2K_{train,valid}_LR_bicubic/X<s>/0001x<s>.png)")


def _div2k_split(index: FileIndex, split: str, scale):
    folder = "DIV2K_train_HR" if split == "train" else "DIV2K_valid_HR"
    files = _stem_sorted(index.files_under(folder))
    first, last = (1, 800) if split == "train" else (801, 900)
    _check_numbered(files, first, last, 4, index.root / folder, index.dataset)
    lr_folder = folder.replace("_HR", "_LR_bicubic")
    return _with_lr(index, files, lr_folder, scale, split=split)


def read_div2k(manual_dir, scale=None) -> list[SRItem]:
    root = find_root(manual_dir, ["DIV2K_train_HR", "DIV2K_valid_HR"], dataset="div2k", expected=_DIV2K_LAYOUT)
    index = FileIndex(root, dataset="div2k")
    for folder in ("DIV2K_train_HR", "DIV2K_valid_HR"):
        if not index.files_under(folder):
            raise DatasetError(f"div2k: {root / folder} is missing or empty; expected {_DIV2K_LAYOUT}")
    return _div2k_split(index, "train", scale) + _div2k_split(index, "validation", scale)


_FLICKR2K_LAYOUT = "Flickr2K_HR/000001.png .. 002650.png (optional: Flickr2K_LR_bicubic/X<s>/000001x<s>.png)"


def _flickr2k_items(manual_dir, scale, dataset):
    root = find_root(manual_dir, ["Flickr2K_HR"], dataset=dataset, expected=_FLICKR2K_LAYOUT)
    index = FileIndex(root, dataset=dataset)
    files = _stem_sorted(index.files_under("Flickr2K_HR"))
    _check_numbered(files, 1, 2650, 6, root / "Flickr2K_HR", dataset)
    return _with_lr(index, files, "Flickr2K_LR_bicubic", scale, split="train")


def read_flickr2k(manual_dir, scale=None) -> list[SRItem]:
    return _flickr2k_items(manual_dir, scale, "flickr2k")


def read_df2k(manual_dir, scale=None) -> list[SRItem]:
    """DF2K = the 800 DIV2K training images + the 2650 Flickr2K images (train); DIV2K's 100 validation
    images are the validation split."""
    root = find_root(manual_dir, ["DIV2K_train_HR"], dataset="df2k",
                     expected=f"both {_DIV2K_LAYOUT} and {_FLICKR2K_LAYOUT}")
    index = FileIndex(root, dataset="df2k")
    div2k = _div2k_split(index, "train", scale)
    flickr = _flickr2k_items(manual_dir, scale, "df2k")
    validation = _div2k_split(index, "validation", scale) if index.files_under("DIV2K_valid_HR") else []
    return div2k + flickr + validation


def _benchmark_reader(name: str, folders: tuple[str, ...], count: int):
    layout = f"{folders[0]}/HR/<image>.png (optional: {folders[0]}/LR_bicubic/X<s>/<image>x<s>.png); {count} images"

    def read(manual_dir, scale=None) -> list[SRItem]:
        manual_dir = pathlib.Path(manual_dir).expanduser()
        if manual_dir.is_dir() and any(q.name.lower() == "hr" and q.is_dir() for q in manual_dir.iterdir()):
            folder = manual_dir  # manual_dir is the set's own folder
        else:
            root = find_root(manual_dir, [f"{f}/HR" for f in folders], dataset=name, expected=layout)
            children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
            folder = next(children[f.lower()] for f in folders
                          if f.lower() in children and (children[f.lower()] / "HR").exists()
                          or f.lower() in children and any(q.name.lower() == "hr" for q in children[f.lower()].iterdir()))
        index = FileIndex(folder, dataset=name)
        files = _stem_sorted(index.files_under("HR"))
        if len(files) != count:
            raise DatasetError(f"{name}: {folder / 'HR'} holds {len(files)} images; the release has {count}")
        return _with_lr(index, files, "LR_bicubic", scale, split="test")

    return read, layout


# Held-out images of the embedded set; the colour photographs train (grey ones taught a colour cast).
# Fixed, so results stay comparable.
SAMPLE_SPLITS = {
    "train": ("astronaut", "chelsea", "immunohistochemistry", "hubble_deep_field", "motorcycle_left",
              "motorcycle_right", "retina"),
    "test": ("coffee", "rocket"),
}


def read_sample(manual_dir=None, scale=None) -> list[SRItem]:
    del manual_dir, scale
    return [SRItem(name=n, hr=sample_photo(n), split=split) for split, names in SAMPLE_SPLITS.items() for n in names]


SR_SPECS: dict[str, SRSpec] = {}


def _register(spec: SRSpec):
    SR_SPECS[spec.name] = spec


_register(SRSpec("div2k", "DIV2K", {"train": 800, "validation": 100}, _DIV2K_LAYOUT,
                 "https://data.vision.ee.ethz.ch/cvl/DIV2K/", read_div2k))
_register(SRSpec("flickr2k", "Flickr2K", {"train": 2650}, _FLICKR2K_LAYOUT,
                 "https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar", read_flickr2k))
_register(SRSpec("df2k", "DF2K (DIV2K train + Flickr2K)", {"train": 3450, "validation": 100},
                 f"{_DIV2K_LAYOUT}, and {_FLICKR2K_LAYOUT}, side by side", "DIV2K and Flickr2K", read_df2k))
for _name, _folders, _count, _title in [
        ("set5", ("Set5",), 5, "Set5"), ("set14", ("Set14",), 14, "Set14"),
        ("bsd100", ("B100", "BSD100", "BSDS100"), 100, "BSD100 (B100)"), ("urban100", ("Urban100",), 100, "Urban100"),
        ("manga109", ("Manga109",), 109, "Manga109"), ("div2k_val", ("DIV2K_val", "DIV2K", "DIV2K_valid"), 100,
                                                            "DIV2K validation (0801-0900)")]:
    _reader, _layout = _benchmark_reader(_name, _folders, _count)
    _register(SRSpec(_name, _title, {"test": _count}, _layout, "the SR benchmark archive (e.g. EDSR's benchmark.tar)",
                     _reader))
_register(SRSpec("sample", "embedded sample photographs (scikit-image)",
                 {k: len(v) for k, v in SAMPLE_SPLITS.items()}, "none: shipped in scikit-image", "scikit-image",
                 read_sample))

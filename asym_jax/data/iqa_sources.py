"""Reading the official releases of the IQA datasets: label files and image layout -> :class:`IQAItem` rows.

Each reader takes the folder the user unpacked the official archive into (``manual_dir``; the dataset's
root is searched for up to 3 levels below it), reads the official label files, checks that every image a
row names exists, and returns one :class:`IQAItem` per scored image, in the label file's order. Nothing is
dropped silently: a row naming a missing image is an error, not a skip. The readers import no TensorFlow;
the TFDS builders in :mod:`asym_jax.data.builders` turn their rows into records.

Conventions of the rows, the same for every reader:

* ``name`` is the distorted image's file name as the label file names it (or, where the label gives no
  file name, as the release's naming rule spells it: CSIQ ``1600.AWGN.1.png``); for LIVE, whose folders
  reuse ``img1.bmp``, it is ``<folder>/img<K>.bmp``. Names are unique within a dataset; ``dist`` is the
  file found on disk, in whatever letter case the copy has.
* ``ref_id`` is the reference's file stem as the release spells it (LIVE ``bikes``, CSIQ ``1600``,
  TID2013 ``I01``, KADID-10k ``I01``, PIPAL ``A0001``); for NR sets the image's own stem.
* ``distortion`` is the released type: the folder name (LIVE; CSIQ's ``dst_imgs`` folder, e.g. ``awgn``,
  ``jpeg2000``, ``fnoise``), the two-digit type number of the file name (TID2013 ``01``-``24``,
  KADID-10k ``01``-``25``, PIPAL ``00``-``06``...), ``authentic`` for NR sets. ``level`` is 1-based
  (PIPAL's 0-based level + 1), -1 where the release has none (LIVE, NR sets).
* ``score`` is the released number, unchanged; :class:`IQASpec` says its name, direction and range.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import re
from collections.abc import Callable

import numpy as np

from asym_jax.data.files import DatasetError, FileIndex, find_root, read_csv_rows, read_mat, read_xlsx_rows

__all__ = ["IQAItem", "IQASpec", "IQA_SPECS", "read_live", "read_csiq", "read_tid2013", "read_kadid10k", "read_pipal",
           "read_koniq10k", "read_spaq", "read_livec"]


@dataclasses.dataclass(frozen=True)
class IQAItem:
    """One scored image of an IQA dataset."""

    name: str                      # the distorted (or, for NR sets, the only) image's file name, as released
    dist: pathlib.Path             # its path on disk
    ref: pathlib.Path | None       # the pristine reference (FR sets), else None
    score: float                   # the released opinion score, unchanged (see IQASpec for its direction)
    ref_id: str                    # content group: the reference's name (FR), the image's own name (NR)
    distortion: str                # distortion type as released ("jpeg", "awgn", ...; "authentic" for NR)
    level: int                     # distortion level as released (1-based), -1 where there is none
    split: str | None = None       # official split ("train", "validation", "test") where one exists


@dataclasses.dataclass(frozen=True)
class IQASpec:
    """What a dataset is and how its official release is laid out."""

    name: str
    title: str
    kind: str                              # "fr": reference + distorted; "nr": one image
    score_name: str                        # "MOS", "DMOS" or "ELO", as the release calls it
    higher_is_better: bool
    score_range: tuple[float, float]       # nominal range of the released score
    official_count: int                    # scored images in the complete release
    official_splits: tuple[str, ...]       # names of the official splits, () where none exists
    layout: str                            # the expected files, for error messages and `data info`
    url: str                               # where the release is obtained
    reader: Callable[[pathlib.Path], list[IQAItem]]


IQA_SPECS: dict[str, IQASpec] = {}


# ---------------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------------


def _number(value, where: str, what: str) -> float:
    """``value`` (text or a cell value) as a finite float; a DatasetError naming ``where`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise DatasetError(f"{where}: {what} {value!r} is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer cell beyond float's range
        raise DatasetError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DatasetError(f"{where}: {what} {value!r} is not a finite number")
    return number


def _integer(value, where: str, what: str) -> int:
    number = _number(value, where, what)
    if number != int(number):
        raise DatasetError(f"{where}: {what} {value!r} is not a whole number")
    return int(number)


def _label_file(index: FileIndex, relative: str, layout: str) -> pathlib.Path:
    if not index.has(relative):
        raise DatasetError(f"{index.dataset}: label file {index.root / relative} does not exist; expected {layout}")
    return index.path(relative)


def _folder(index: FileIndex, relative: str, layout: str) -> None:
    """The image folder ``relative`` must exist and hold files (checked once, for a clear message)."""
    if not index.files_under(relative):
        raise DatasetError(f"{index.dataset}: folder {index.root / relative} is missing or empty; expected {layout}")


def _image(index: FileIndex, relative: str, what: str, why: str) -> pathlib.Path:
    """The file at ``relative`` (any case), or a DatasetError naming it and the label row that names it."""
    if not index.has(relative):
        raise DatasetError(f"{index.dataset}: {what} {index.root / relative} does not exist (named by {why})")
    return index.path(relative)


def _why(where: str, path: pathlib.Path) -> str:
    """'<file name> line 3' from an error location '<dataset>: <path> line 3', for "named by ..." notes."""
    return where.split(": ", 1)[1].replace(str(path), path.name)


def _unique(items: list[IQAItem], dataset: str, source) -> list[IQAItem]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        key = item.name.lower()
        if key in seen:
            raise DatasetError(f"{dataset}: {source} lists {item.name} twice (entries {seen[key] + 1} and {i + 1}); "
                               "each scored image should appear once")
        seen[key] = i
    return items


def _csv_rows(path: pathlib.Path, dataset: str, columns: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(where, row) for each data row of a CSV label file; rows with too many or too few fields are errors."""
    out = []
    for n, row in enumerate(read_csv_rows(path, dataset=dataset, columns=columns), start=1):
        where = f"{dataset}: {path} data row {n}"
        if None in row or any(v is None for v in row.values()):
            fields = [v for k, v in row.items() if k is not None]
            fields += list(row.get(None) or [])
            raise DatasetError(f"{where} ({','.join(str(f) for f in fields if f is not None)}): "
                               f"wrong number of fields; expected the columns of the header")
        out.append((where, row))
    return out


def _text_lines(path: pathlib.Path, dataset: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a text label file."""
    if not path.is_file():
        raise DatasetError(f"{dataset}: label file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_bytes().decode("latin-1")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _cell_text(value) -> str | None:
    """The string in a MATLAB cell element as scipy returns it (nested 1-element arrays), else None."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    return value.strip() if isinstance(value, str) else None


def _mat_names(array, where: str) -> list[str]:
    """A MATLAB cell array (any shape with one non-singleton axis) of strings -> list of str."""
    array = np.asarray(array)
    if array.ndim > 2 or (array.ndim == 2 and min(array.shape) > 1 and array.dtype.kind == "O"):
        raise DatasetError(f"{where}: expected a 1 x N or N x 1 cell array of file names, got shape {array.shape}")
    if array.dtype.kind == "U":  # a char matrix: one name per row
        return [str(s).strip() for s in array.reshape(-1)]
    names = []
    for i, cell in enumerate(array.reshape(-1), start=1):
        text = _cell_text(cell)
        if not text:
            raise DatasetError(f"{where}: entry {i} is not a file name ({cell!r}); expected a cell array of names")
        names.append(text)
    return names


def _mat_vector(array, where: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiub" or (array.ndim == 2 and min(array.shape) > 1) or array.ndim > 2:
        raise DatasetError(f"{where}: expected a 1 x N numeric vector, got {array.dtype} of shape {array.shape}")
    return array.reshape(-1).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------
# LIVE Release 2
# ---------------------------------------------------------------------------------------------------------

LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
_LIVE_LAYOUT = ("databaserelease2/ holding dmos.mat (dmos, orgs: 1 x 982, in the order jp2k 227, jpeg 233, wn 174, "
                "gblur 174, fastfading 174), refnames_all.mat (refnames_all: 1 x 982 cell of reference names), "
                "refimgs/<reference>.bmp and jp2k/, jpeg/, wn/, gblur/, fastfading/ holding img1.bmp .. img<K>.bmp")


def _live_counts(index: FileIndex, total: int, source: str) -> list[tuple[str, int]]:
    """Images per folder: the release's counts for a complete dmos.mat, else the highest img<K>.bmp in each
    folder (a partial copy); the sum must match dmos.mat either way."""
    official = sum(k for _, k in LIVE_FOLDERS)
    if total == official:
        return list(LIVE_FOLDERS)
    counts = []
    for folder, _ in LIVE_FOLDERS:
        numbers = [int(m.group(1)) for p in index.files_under(folder)
                   if (m := re.fullmatch(r"img(\d+)\.bmp", p.name, re.IGNORECASE))]
        counts.append((folder, max(numbers, default=0)))
    if sum(k for _, k in counts) != total:
        found = ", ".join(f"{f} {k}" for f, k in counts)
        raise DatasetError(f"live: {source} has {total} entries, but the folders hold img1..img<K> with K = {found} "
                           f"({sum(k for _, k in counts)} in all); the release has {official} "
                           f"({', '.join(f'{f} {k}' for f, k in LIVE_FOLDERS)}); expected {_LIVE_LAYOUT}")
    return counts


def read_live(manual_dir) -> list[IQAItem]:
    """LIVE Release 2: the 779 distorted images (entries with ``orgs == 1`` are the references themselves)."""
    root = find_root(manual_dir, ["dmos.mat", "refnames_all.mat", "refimgs"], dataset="live", expected=_LIVE_LAYOUT)
    index = FileIndex(root, dataset="live")
    dmos_path = _label_file(index, "dmos.mat", _LIVE_LAYOUT)
    names_path = _label_file(index, "refnames_all.mat", _LIVE_LAYOUT)
    mat = read_mat(dmos_path, dataset="live", keys=("dmos", "orgs"))
    dmos = _mat_vector(mat["dmos"], f"live: {dmos_path} variable dmos")
    orgs = _mat_vector(mat["orgs"], f"live: {dmos_path} variable orgs")
    refnames = _mat_names(read_mat(names_path, dataset="live", keys=("refnames_all",))["refnames_all"],
                          f"live: {names_path} variable refnames_all")
    if not len(dmos) == len(orgs) == len(refnames):
        raise DatasetError(f"live: {dmos_path} has {len(dmos)} dmos and {len(orgs)} orgs entries, {names_path} "
                           f"{len(refnames)} refnames_all entries; expected the same number (982) in each")
    for folder, _ in LIVE_FOLDERS:
        _folder(index, folder, _LIVE_LAYOUT)
    _folder(index, "refimgs", _LIVE_LAYOUT)
    items, i = [], 0
    for folder, count in _live_counts(index, len(dmos), str(dmos_path)):
        for k in range(1, count + 1):
            entry, i = i, i + 1
            why = f"entry {entry + 1} of {dmos_path.name} and {names_path.name}"
            if orgs[entry] not in (0.0, 1.0):
                raise DatasetError(f"live: {dmos_path} orgs entry {entry + 1} is {orgs[entry]!r}; expected 0 or 1")
            if orgs[entry] == 1.0:
                continue  # the reference itself, shown as a distorted image; not a scored image
            score = _number(dmos[entry], f"live: {dmos_path} entry {entry + 1}", "dmos")
            ref = _image(index, f"refimgs/{refnames[entry]}", "reference image", why)
            dist = _image(index, f"{folder}/img{k}.bmp", "distorted image", why)
            items.append(IQAItem(name=f"{folder}/img{k}.bmp", dist=dist, ref=ref, score=score,
                                 ref_id=pathlib.PurePath(refnames[entry]).stem, distortion=folder, level=-1))
    return items


# ---------------------------------------------------------------------------------------------------------
# CSIQ
# ---------------------------------------------------------------------------------------------------------

# dst_type in csiq.DMOS.xlsx -> (folder under dst_imgs/, tag in the file name). The folder name is also the
# item's distortion name.
_CSIQ_TYPES = {
    "noise": ("awgn", "AWGN"), "awgn": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg 2000": ("jpeg2000", "jpeg2000"), "jpeg2000": ("jpeg2000", "jpeg2000"),
    "1/f noise": ("fnoise", "fnoise"), "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
_CSIQ_COLUMNS = ("image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos")
_CSIQ_LAYOUT = ("CSIQ folder holding csiq.DMOS.xlsx (sheet all_by_image: image, dst_idx, dst_type, dst_lev, "
                "dmos_std, dmos) or csiq_dmos.txt (the same 6 columns, tab or space separated, no header), "
                "src_imgs/<image>.png and dst_imgs/<type>/<image>.<TAG>.<level>.png with <type>/<TAG> "
                "awgn/AWGN, jpeg/JPEG, jpeg2000/jpeg2000, fnoise/fnoise, blur/BLUR, contrast/contrast")


def _csiq_image_name(value) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, np.integer)):  # Excel stores 1600 as a number
        return str(value) if abs(value) < 10**100 else None
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else None
    text = str(value).strip()
    return text or None


def _csiq_txt_rows(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    rows = []
    for n, line in _text_lines(path, "csiq"):
        where = f"csiq: {path} line {n}"
        if "\t" in line:
            fields = [f.strip() for f in line.split("\t")]
        else:  # spaces only: the type may itself hold a space ("jpeg 2000", "1/f noise")
            fields = line.split()
            if len(fields) > 6:
                fields = fields[:2] + [" ".join(fields[2:-3])] + fields[-3:]
        if not rows and fields and fields[0].lower() == "image":
            continue  # tolerate a header line
        if len(fields) != 6:
            raise DatasetError(f"{where} ({line!r}): {len(fields)} fields; expected 6: {', '.join(_CSIQ_COLUMNS)}")
        rows.append((where, fields))
    return rows


def read_csiq(manual_dir) -> list[IQAItem]:
    """CSIQ: the 866 distorted images of csiq.DMOS.xlsx (sheet all_by_image), or of csiq_dmos.txt."""
    root = find_root(manual_dir, ["csiq.DMOS.xlsx", "csiq_dmos.txt", "dst_imgs"], dataset="csiq",
                     expected=_CSIQ_LAYOUT)
    index = FileIndex(root, dataset="csiq")
    if index.has("csiq.DMOS.xlsx"):
        path = index.path("csiq.DMOS.xlsx")
        rows = [(f"csiq: {path} sheet all_by_image data row {n}", [row.get(c) for c in _CSIQ_COLUMNS])
                for n, row in enumerate(read_xlsx_rows(path, dataset="csiq", columns=_CSIQ_COLUMNS,
                                                       sheet="all_by_image"), start=1)]
    elif index.has("csiq_dmos.txt"):
        path = index.path("csiq_dmos.txt")
        rows = _csiq_txt_rows(path)
    else:
        raise DatasetError(f"csiq: neither label file {root / 'csiq.DMOS.xlsx'} nor {root / 'csiq_dmos.txt'} "
                           f"exists; expected {_CSIQ_LAYOUT}")
    _folder(index, "src_imgs", _CSIQ_LAYOUT)
    _folder(index, "dst_imgs", _CSIQ_LAYOUT)
    items = []
    for where, (image, _, dst_type, dst_lev, _, dmos) in rows:
        ref_id = _csiq_image_name(image)
        if ref_id is None:
            raise DatasetError(f"{where}: image {image!r} is not a reference image name")
        kind = " ".join(str(dst_type).split()).lower() if dst_type is not None else ""
        if kind not in _CSIQ_TYPES:
            raise DatasetError(f"{where}: dst_type {dst_type!r} is not one of noise, jpeg, jpeg 2000, 1/f noise, "
                               "blur, contrast")
        folder, tag = _CSIQ_TYPES[kind]
        level = _integer(dst_lev, where, "dst_lev")
        score = _number(dmos, where, "dmos")
        name = f"{ref_id}.{tag}.{level}.png"
        why = _why(where, path)
        ref = _image(index, f"src_imgs/{ref_id}.png", "reference image", why)
        dist = _image(index, f"dst_imgs/{folder}/{name}", "distorted image", why)
        items.append(IQAItem(name=name, dist=dist, ref=ref, score=score, ref_id=ref_id, distortion=folder,
                             level=level))
    return _unique(items, "csiq", path)


# ---------------------------------------------------------------------------------------------------------
# TID2013
# ---------------------------------------------------------------------------------------------------------

_TID2013_LAYOUT = ("tid2013 folder holding mos_with_names.txt ('<mos> <name>' lines, e.g. '5.51429 i01_01_1.bmp'), "
                   "reference_images/I01.BMP .. I25.BMP and distorted_images/i<ref>_<type>_<level>.bmp "
                   "(types 01-24, levels 1-5; letter case varies)")


def read_tid2013(manual_dir) -> list[IQAItem]:
    """TID2013: the 3000 distorted images of mos_with_names.txt."""
    root = find_root(manual_dir, ["mos_with_names.txt", "distorted_images"], dataset="tid2013",
                     expected=_TID2013_LAYOUT)
    index = FileIndex(root, dataset="tid2013")
    path = _label_file(index, "mos_with_names.txt", _TID2013_LAYOUT)
    _folder(index, "reference_images", _TID2013_LAYOUT)
    _folder(index, "distorted_images", _TID2013_LAYOUT)
    items = []
    for n, line in _text_lines(path, "tid2013"):
        where = f"tid2013: {path} line {n}"
        fields = line.split()
        if len(fields) != 2:
            raise DatasetError(f"{where} ({line!r}): {len(fields)} fields; expected '<mos> <name>'")
        score = _number(fields[0], where, "mos")
        match = re.fullmatch(r"i(\d+)_(\d+)_(\d+)\.bmp", fields[1], re.IGNORECASE)
        if match is None:
            raise DatasetError(f"{where}: {fields[1]!r} is not a distorted image name i<ref>_<type>_<level>.bmp")
        ref_id = f"I{match.group(1)}"
        why = f"{path.name} line {n}"
        ref = _image(index, f"reference_images/{ref_id}.bmp", "reference image", why)
        dist = _image(index, f"distorted_images/{fields[1]}", "distorted image", why)
        items.append(IQAItem(name=fields[1], dist=dist, ref=ref, score=score, ref_id=ref_id,
                             distortion=match.group(2), level=int(match.group(3))))
    return _unique(items, "tid2013", path)


# ---------------------------------------------------------------------------------------------------------
# KADID-10k
# ---------------------------------------------------------------------------------------------------------

_KADID_LAYOUT = ("kadid10k folder holding dmos.csv (header dist_img,ref_img,dmos,var) and images/ with the "
                 "references I01.png .. I81.png and the distorted I<ref>_<type>_<level>.png")


def read_kadid10k(manual_dir) -> list[IQAItem]:
    """KADID-10k: the 10125 distorted images of dmos.csv (its 'dmos' is 1-5, higher = better)."""
    root = find_root(manual_dir, ["dmos.csv", "images/I01.png"], dataset="kadid10k", expected=_KADID_LAYOUT)
    index = FileIndex(root, dataset="kadid10k")
    path = _label_file(index, "dmos.csv", _KADID_LAYOUT)
    rows = _csv_rows(path, "kadid10k", ("dist_img", "ref_img", "dmos"))
    _folder(index, "images", _KADID_LAYOUT)
    items = []
    for where, row in rows:
        name, ref_name = row["dist_img"], row["ref_img"]
        score = _number(row["dmos"], where, "dmos")
        match = re.fullmatch(r"(I\d+)_(\d+)_(\d+)\.png", name, re.IGNORECASE)
        if match is None:
            raise DatasetError(f"{where}: dist_img {name!r} is not a distorted image name I<ref>_<type>_<level>.png")
        ref_id = pathlib.PurePath(ref_name).stem
        if ref_id.lower() != match.group(1).lower():
            raise DatasetError(f"{where}: dist_img {name} does not belong to ref_img {ref_name}")
        why = _why(where, path)
        ref = _image(index, f"images/{ref_name}", "reference image", why)
        dist = _image(index, f"images/{name}", "distorted image", why)
        items.append(IQAItem(name=name, dist=dist, ref=ref, score=score, ref_id=ref_id, distortion=match.group(2),
                             level=int(match.group(3))))
    return _unique(items, "kadid10k", path)


# ---------------------------------------------------------------------------------------------------------
# PIPAL (public training part)
# ---------------------------------------------------------------------------------------------------------

_PIPAL_LAYOUT = ("PIPAL training folder holding Train_Ref/A0001.bmp .., Train_Label/<ref>.txt (one per reference, "
                 "'<name>,<elo>' lines, e.g. 'A0001_00_00.bmp,1520.0648') and the distorted "
                 "<ref>_<type>_<level>.bmp in Train_Dis/ or Distortion_1/ .. Distortion_4/")


def read_pipal(manual_dir) -> list[IQAItem]:
    """PIPAL training part: the 23200 distorted images of Train_Label/*.txt, label files in name order."""
    root = find_root(manual_dir, ["Train_Label", "Train_Ref"], dataset="pipal", expected=_PIPAL_LAYOUT)
    index = FileIndex(root, dataset="pipal")
    labels = sorted((p for p in index.files_under("Train_Label") if p.suffix.lower() == ".txt"),
                    key=lambda p: p.name.lower())
    if not labels:
        raise DatasetError(f"pipal: label files {root / 'Train_Label'}/<ref>.txt do not exist; "
                           f"expected {_PIPAL_LAYOUT}")
    _folder(index, "Train_Ref", _PIPAL_LAYOUT)
    labelled = {p.stem.lower() for p in labels}
    unlabelled = [p for p in index.files_under("Train_Ref")
                  if p.suffix.lower() == ".bmp" and p.stem.lower() not in labelled]
    if unlabelled:
        raise DatasetError(f"pipal: label file {root / 'Train_Label' / unlabelled[0].stem}.txt does not exist "
                           f"(reference {unlabelled[0]} has none; {len(unlabelled)} reference(s) without one); "
                           f"expected {_PIPAL_LAYOUT}")
    items = []
    for path in labels:
        ref_id = path.stem
        ref = _image(index, f"Train_Ref/{ref_id}.bmp", "reference image", f"label file {path.name}")
        for n, line in _text_lines(path, "pipal"):
            where = f"pipal: {path} line {n}"
            fields = [f.strip() for f in line.split(",")]
            if len(fields) != 2:
                raise DatasetError(f"{where} ({line!r}): {len(fields)} fields; expected '<name>,<elo>'")
            name = fields[0]
            score = _number(fields[1], where, "ELO score")
            match = re.fullmatch(r"([^_]+)_(\d+)_(\d+)\.bmp", name, re.IGNORECASE)
            if match is None or match.group(1).lower() != ref_id.lower():
                raise DatasetError(f"{where}: {name!r} is not a distorted image name {ref_id}_<type>_<level>.bmp")
            try:  # anywhere below the root: Train_Dis/ or Distortion_1/ .. Distortion_4/
                dist = index.named(name, what="distorted image")
            except DatasetError as error:
                raise DatasetError(f"{error} (named by {path.name} line {n}; expected in Train_Dis/ or "
                                   "Distortion_1/ .. Distortion_4/)") from None
            if dist.relative_to(root).parts[0].lower() in ("train_ref", "train_label"):
                raise DatasetError(f"pipal: distorted image {name} (named by {path.name} line {n}) is in "
                                   f"{dist.parent}; expected in Train_Dis/ or Distortion_1/ .. Distortion_4/")
            items.append(IQAItem(name=name, dist=dist, ref=ref, score=score, ref_id=ref_id,
                                 distortion=match.group(2), level=int(match.group(3)) + 1))
    return _unique(items, "pipal", root / "Train_Label")


# ---------------------------------------------------------------------------------------------------------
# KonIQ-10k
# ---------------------------------------------------------------------------------------------------------

KONIQ_RESOLUTIONS = ("1024x768", "512x384")
_KONIQ_SETS = {"training": "train", "train": "train", "validation": "validation", "val": "validation",
               "test": "test"}
_KONIQ_LAYOUT = ("koniq10k folder holding koniq10k_scores_and_distributions.csv (image_name, c1..c5, c_total, MOS, "
                 "SD, MOS_zscore), the images in 1024x768/ (or 512x384/) and, for the official split, "
                 "koniq10k_distributions_sets.csv (image_name, ..., set: training/validation/test)")


def read_koniq10k(manual_dir, resolution: str = "1024x768") -> list[IQAItem]:
    """KonIQ-10k: the 10073 images of koniq10k_scores_and_distributions.csv (MOS 1-5), with the official
    split where koniq10k_distributions_sets.csv is present (else ``split`` is None)."""
    if resolution not in KONIQ_RESOLUTIONS:
        raise DatasetError(f"koniq10k: resolution {resolution!r} is not one of {', '.join(KONIQ_RESOLUTIONS)}")
    root = find_root(manual_dir, ["koniq10k_scores_and_distributions.csv", *KONIQ_RESOLUTIONS], dataset="koniq10k",
                     expected=_KONIQ_LAYOUT)
    index = FileIndex(root, dataset="koniq10k")
    path = _label_file(index, "koniq10k_scores_and_distributions.csv", _KONIQ_LAYOUT)
    rows = _csv_rows(path, "koniq10k", ("image_name", "MOS"))
    splits: dict[str, str] | None = None
    if index.has("koniq10k_distributions_sets.csv"):
        sets_path = index.path("koniq10k_distributions_sets.csv")
        splits = {}
        for where, row in _csv_rows(sets_path, "koniq10k", ("image_name", "set")):
            split = _KONIQ_SETS.get(row["set"].lower())
            if split is None:
                raise DatasetError(f"{where}: set {row['set']!r} is not one of training, validation, test")
            if row["image_name"] in splits:
                raise DatasetError(f"{where}: {row['image_name']} is listed twice")
            splits[row["image_name"]] = split
        names = {row["image_name"] for _, row in rows}
        extra = sorted(set(splits) - names)
        if extra:
            raise DatasetError(f"koniq10k: {sets_path} lists {len(extra)} image(s) that {path.name} does not "
                               f"(first: {extra[0]}); expected the same images in both")
    _folder(index, resolution, _KONIQ_LAYOUT)
    items = []
    for where, row in rows:
        name = row["image_name"]
        if not name:
            raise DatasetError(f"{where}: empty image_name")
        score = _number(row["MOS"], where, "MOS")
        split = None
        if splits is not None:
            if name not in splits:
                raise DatasetError(f"{where}: {name} has no row in {sets_path}; expected every image in both files")
            split = splits[name]
        dist = _image(index, f"{resolution}/{name}", "image", _why(where, path))
        items.append(IQAItem(name=name, dist=dist, ref=None, score=score, ref_id=pathlib.PurePath(name).stem,
                             distortion="authentic", level=-1, split=split))
    return _unique(items, "koniq10k", path)


# ---------------------------------------------------------------------------------------------------------
# SPAQ
# ---------------------------------------------------------------------------------------------------------

_SPAQ_LABELS = "Annotations/MOS and Image attribute scores"
_SPAQ_LAYOUT = (f"SPAQ folder holding '{_SPAQ_LABELS}.xlsx' (or a .csv export of that sheet; columns 'Image name', "
                "'MOS', Brightness, ...) and TestImage/00001.jpg .. 11125.jpg (TestImage/ may sit one or two "
                "folders deeper)")


def _find_folder(root: pathlib.Path, name: str, dataset: str, layout: str) -> str:
    """The one folder called ``name`` (any case) at or up to 3 levels below ``root``, relative, posix."""
    found = []
    for folder, dirs, _ in os.walk(root):
        depth = len(pathlib.Path(folder).relative_to(root).parts)
        found += [pathlib.Path(folder, d) for d in dirs if d.lower() == name.lower()]
        if depth >= 3:
            dirs[:] = []
    if not found:
        raise DatasetError(f"{dataset}: no folder {name} at or below {root}; expected {layout}")
    if len(found) > 1:
        raise DatasetError(f"{dataset}: folder {name} is ambiguous below {root}: "
                           + ", ".join(str(p) for p in sorted(found)[:4]))
    return found[0].relative_to(root).as_posix()


def read_spaq(manual_dir) -> list[IQAItem]:
    """SPAQ: the 11125 images of 'MOS and Image attribute scores' (MOS 0-100); no official split."""
    root = find_root(manual_dir, [f"{_SPAQ_LABELS}.xlsx", f"{_SPAQ_LABELS}.csv", "TestImage"], dataset="spaq",
                     expected=_SPAQ_LAYOUT)
    index = FileIndex(root, dataset="spaq")
    columns = ("Image name", "MOS")
    if index.has(f"{_SPAQ_LABELS}.xlsx"):
        path = index.path(f"{_SPAQ_LABELS}.xlsx")
        rows = [(f"spaq: {path} data row {n}", row)
                for n, row in enumerate(read_xlsx_rows(path, dataset="spaq", columns=columns), start=1)]
    elif index.has(f"{_SPAQ_LABELS}.csv"):
        path = index.path(f"{_SPAQ_LABELS}.csv")
        rows = _csv_rows(path, "spaq", columns)
    else:
        raise DatasetError(f"spaq: neither label file {root / _SPAQ_LABELS}.xlsx nor {root / _SPAQ_LABELS}.csv "
                           f"exists; expected {_SPAQ_LAYOUT}")
    images = _find_folder(root, "TestImage", "spaq", _SPAQ_LAYOUT)
    items = []
    for where, row in rows:
        name = row["Image name"]
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"{where}: Image name {name!r} is not an image file name")
        name = name.strip()
        score = _number(row["MOS"], where, "MOS")
        dist = _image(index, f"{images}/{name}", "image", _why(where, path))
        items.append(IQAItem(name=name, dist=dist, ref=None, score=score, ref_id=pathlib.PurePath(name).stem,
                             distortion="authentic", level=-1))
    return _unique(items, "spaq", path)


# ---------------------------------------------------------------------------------------------------------
# LIVE In the Wild Image Quality Challenge
# ---------------------------------------------------------------------------------------------------------

LIVEC_TRAINING = tuple(f"t{i}.bmp" for i in range(1, 8))
_LIVEC_LAYOUT = ("ChallengeDB_release folder holding Data/AllImages_release.mat (AllImages_release: 1169 x 1 cell of "
                 "names), Data/AllMOS_release.mat (AllMOS_release: 1 x 1169) and Images/<name> (the first 7, "
                 "t1.bmp .. t7.bmp in Images/trainingImages/, are left out)")


def read_livec(manual_dir) -> list[IQAItem]:
    """LIVE Challenge: the 1162 test images (the 7 training images t1..t7 that come first are left out, as in
    the standard protocol)."""
    root = find_root(manual_dir, ["Data/AllMOS_release.mat", "Data/AllImages_release.mat"], dataset="livec",
                     expected=_LIVEC_LAYOUT)
    index = FileIndex(root, dataset="livec")
    names_path = _label_file(index, "Data/AllImages_release.mat", _LIVEC_LAYOUT)
    mos_path = _label_file(index, "Data/AllMOS_release.mat", _LIVEC_LAYOUT)
    names = _mat_names(read_mat(names_path, dataset="livec", keys=("AllImages_release",))["AllImages_release"],
                       f"livec: {names_path} variable AllImages_release")
    mos = _mat_vector(read_mat(mos_path, dataset="livec", keys=("AllMOS_release",))["AllMOS_release"],
                      f"livec: {mos_path} variable AllMOS_release")
    if len(names) != len(mos):
        raise DatasetError(f"livec: {names_path} has {len(names)} names, {mos_path} {len(mos)} scores; "
                           "expected the same number (1169) in each")
    first = [n.lower() for n in names[:len(LIVEC_TRAINING)]]
    if first != list(LIVEC_TRAINING):
        raise DatasetError(f"livec: {names_path} should begin with the 7 training images "
                           f"{', '.join(LIVEC_TRAINING)}; it begins with {', '.join(names[:7])}")
    _folder(index, "Images", _LIVEC_LAYOUT)
    items = []
    for entry in range(len(LIVEC_TRAINING), len(names)):
        name = names[entry]
        where = f"livec: {mos_path} entry {entry + 1}"
        score = _number(mos[entry], where, "MOS")
        dist = _image(index, f"Images/{name}", "image", f"entry {entry + 1} of {names_path.name}")
        items.append(IQAItem(name=name, dist=dist, ref=None, score=score, ref_id=pathlib.PurePath(name).stem,
                             distortion="authentic", level=-1))
    return _unique(items, "livec", names_path)


# ---------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------


def _register(spec: IQASpec) -> None:
    IQA_SPECS[spec.name] = spec


_register(IQASpec("live", "LIVE Image Quality Assessment Database, Release 2", "fr", "DMOS", False, (0.0, 100.0), 779,
                  (), _LIVE_LAYOUT, "https://live.ece.utexas.edu/research/quality/subjective.htm", read_live))
_register(IQASpec("csiq", "CSIQ (Categorical Subjective Image Quality)", "fr", "DMOS", False, (0.0, 1.0), 866, (),
                  _CSIQ_LAYOUT, "https://s2.smu.edu/~eclarson/csiq.html", read_csiq))
_register(IQASpec("tid2013", "TID2013 (Tampere Image Database 2013)", "fr", "MOS", True, (0.0, 9.0), 3000, (),
                  _TID2013_LAYOUT, "https://www.ponomarenko.info/tid2013.htm", read_tid2013))
_register(IQASpec("kadid10k", "KADID-10k (Konstanz Artificially Distorted Image quality Database)", "fr", "DMOS",
                  True, (1.0, 5.0), 10125, (), _KADID_LAYOUT,
                  "https://database.mmsp-kn.de/kadid-10k-database.html", read_kadid10k))
_register(IQASpec("pipal", "PIPAL (Perceptual Image Processing ALgorithms), public training part", "fr", "ELO", True,
                  (800.0, 1900.0), 23200, (), _PIPAL_LAYOUT, "https://www.jasongt.com/projectpages/pipal.html",
                  read_pipal))
_register(IQASpec("koniq10k", "KonIQ-10k", "nr", "MOS", True, (1.0, 5.0), 10073, ("train", "validation", "test"),
                  _KONIQ_LAYOUT, "https://database.mmsp-kn.de/koniq-10k-database.html", read_koniq10k))
_register(IQASpec("spaq", "SPAQ (Smartphone Photography Attribute and Quality)", "nr", "MOS", True, (0.0, 100.0),
                  11125, (), _SPAQ_LAYOUT, "https://github.com/h4nwei/SPAQ", read_spaq))
_register(IQASpec("livec", "LIVE In the Wild Image Quality Challenge Database", "nr", "MOS", True, (0.0, 100.0),
                  1162, (), _LIVEC_LAYOUT, "https://live.ece.utexas.edu/research/ChallengeDB/index.html", read_livec))

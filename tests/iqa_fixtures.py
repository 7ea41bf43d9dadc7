"""Tiny, exact-format copies of the official IQA dataset releases, for the reader and builder tests.

Each ``write_<name>(root, **kw)`` writes one dataset's release into ``root / subdir`` (``subdir`` defaults to
the folder name of the official archive; ``subdir=""`` writes into ``root`` itself) with tiny random images
(``size`` = (height, width), in the release's file format), the label files in the release's format (.mat
through scipy with cell arrays where the release has them, .xlsx through openpyxl, text and CSV files) and
the release's naming and letter-case quirks. Everything is deterministic for a given ``seed``.

Each returns a dict:

* ``root``: the dataset's root folder (the one holding the label files);
* ``count``: the number of scored images a reader should return;
* ``items``: one dict per scored image, in label order, with the :class:`IQAItem` fields ``name``, ``score``,
  ``ref_id``, ``distortion``, ``level``, ``split``, and ``dist`` / ``ref`` (the paths written on disk);
* ``labels``: the label files written (the primary one first);
* ``image``: a distorted image a label row names (``items[1]``'s), ``reference``: its reference (None for NR
  sets), ``image_folder``: the folder holding it.
"""

from __future__ import annotations

import csv
import pathlib
import zlib

import numpy as np
from PIL import Image

SIZE = (12, 16)
_FORMATS = {".bmp": "BMP", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _rng(seed: int, dataset: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(dataset.encode())])


def _image(path: pathlib.Path, rng: np.random.Generator, size=SIZE) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=_FORMATS[path.suffix.lower()])
    return path


def _dataset_root(root, subdir: str) -> pathlib.Path:
    folder = pathlib.Path(root) / subdir if subdir else pathlib.Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _item(name, score, ref_id, distortion, level, dist, ref=None, split=None) -> dict:
    return dict(name=name, score=score, ref_id=ref_id, distortion=distortion, level=level, split=split, dist=dist,
                ref=ref)


def _result(root: pathlib.Path, items: list[dict], labels: list[pathlib.Path], **extra) -> dict:
    return dict(root=root, count=len(items), items=items, labels=labels, image=items[1]["dist"],
                reference=items[1]["ref"], image_folder=items[1]["dist"].parent, **extra)


def _cell_column(strings, shape) -> np.ndarray:
    """A MATLAB cell array of strings (scipy.io.savemat writes numpy object arrays as cells)."""
    cell = np.empty(len(strings), dtype=object)
    cell[:] = list(strings)
    return cell.reshape(shape)


def _savemat(path: pathlib.Path, variables: dict) -> pathlib.Path:
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)
    return path


def _xlsx(path: pathlib.Path, sheets: dict[str, list[list]]) -> pathlib.Path:
    import openpyxl

    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


# ----------------------------------------------------------------------------------------------------------
# LIVE Release 2: databaserelease2/{refimgs,jp2k,jpeg,wn,gblur,fastfading}/, dmos.mat, refnames_all.mat
# ----------------------------------------------------------------------------------------------------------

LIVE_OFFICIAL = {"jp2k": (227, 58), "jpeg": (233, 58), "wn": (174, 29), "gblur": (174, 29), "fastfading": (174, 29)}


def write_live(root, *, seed=0, subdir="databaserelease2", size=SIZE, full=False,
               refs=("bikes", "buildings", "caps", "womanhat"), counts=None) -> dict:
    """``counts``: folder -> (images img1..imgK, how many of them are the references themselves, orgs == 1);
    ``full=True`` writes the official 982 entries (779 scored)."""
    rng = _rng(seed, "live")
    base = _dataset_root(root, subdir)
    if counts is None:
        counts = LIVE_OFFICIAL if full else {"jp2k": (4, 1), "jpeg": (3, 1), "wn": (3, 0), "gblur": (3, 1),
                                             "fastfading": (3, 1)}
    ref_paths = {r: _image(base / "refimgs" / f"{r}.bmp", rng, size) for r in refs}
    dmos, orgs, refnames, items = [], [], [], []
    for f, (folder, (count, n_refs)) in enumerate(counts.items()):
        ref_positions = set(np.linspace(2, count, n_refs).round().astype(int).tolist()) if n_refs else set()
        assert len(ref_positions) == n_refs
        info = []
        for k in range(1, count + 1):
            ref = refs[(k + f) % len(refs)]
            dist = _image(base / folder / f"img{k}.bmp", rng, size)
            is_ref = k in ref_positions
            score = 0.0 if is_ref else round(float(rng.uniform(0, 100)), 4)
            dmos.append(score)
            orgs.append(1.0 if is_ref else 0.0)
            refnames.append(f"{ref}.bmp")
            info.append(f"{ref}.bmp img{k}.bmp {round(float(rng.uniform(0.1, 3)), 4)}")
            if not is_ref:
                items.append(_item(f"{folder}/img{k}.bmp", score, ref, folder, -1, dist, ref_paths[ref]))
        (base / folder / "info.txt").write_text("\n".join(info) + "\n")
    n = len(dmos)
    dmos_mat = _savemat(base / "dmos.mat", {"dmos": np.array(dmos).reshape(1, n), "orgs": np.array(orgs).reshape(1, n)})
    names_mat = _savemat(base / "refnames_all.mat", {"refnames_all": _cell_column(refnames, (1, n))})
    return _result(base, items, [dmos_mat, names_mat], entries=n)


# ----------------------------------------------------------------------------------------------------------
# CSIQ: src_imgs/<image>.png, dst_imgs/<type>/<image>.<TAG>.<level>.png, csiq.DMOS.xlsx or csiq_dmos.txt
# ----------------------------------------------------------------------------------------------------------

# dst_type in the xlsx, dst_idx, folder under dst_imgs/, tag in the file name
CSIQ_TYPES = (("noise", 1, "awgn", "AWGN"), ("jpeg", 2, "jpeg", "JPEG"),
              ("jpeg 2000", 3, "jpeg2000", "jpeg2000"), ("1/f noise", 4, "fnoise", "fnoise"),
              ("blur", 5, "blur", "BLUR"), ("contrast", 6, "contrast", "contrast"))
CSIQ_COLUMNS = ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]


def write_csiq(root, *, seed=0, subdir="CSIQ", size=SIZE, labels="xlsx", refs=("1600", "aerial_city", "woman"),
               levels=2, upper_folders=False, leading_blank_column=False) -> dict:
    """``labels``: "xlsx" (csiq.DMOS.xlsx), "txt" (tab-separated csiq_dmos.txt) or "txt_spaces" (space-
    separated); ``upper_folders``: dst_imgs/AWGN, JPEG, BLUR as some copies spell them; the reference
    "1600" is stored as a number in the xlsx, as Excel does."""
    rng = _rng(seed, "csiq")
    base = _dataset_root(root, subdir)
    ref_paths = {r: _image(base / "src_imgs" / f"{r}.png", rng, size) for r in refs}
    rows, items = [], []
    for ref in refs:
        for dst_type, idx, folder, tag in CSIQ_TYPES:
            disk_folder = tag if upper_folders and tag.isupper() else folder
            for level in range(1, levels + 1):
                name = f"{ref}.{tag}.{level}.png"
                dist = _image(base / "dst_imgs" / disk_folder / name, rng, size)
                score = round(float(rng.uniform(0, 1)), 5)
                rows.append([int(ref) if ref.isdigit() else ref, idx, dst_type, level,
                             round(float(rng.uniform(0, 0.2)), 5), score])
                items.append(_item(name, score, ref, folder, level, dist, ref_paths[ref]))
    if labels == "xlsx":
        pad = [None] if leading_blank_column else []
        by_distortion = sorted(rows, key=lambda r: (r[1], str(r[0]), r[3]))
        path = _xlsx(base / "csiq.DMOS.xlsx", {
            "all_by_distortion": [pad + CSIQ_COLUMNS] + [pad + r for r in by_distortion],
            "all_by_image": [pad + CSIQ_COLUMNS] + [pad + r for r in rows]})
    elif labels in ("txt", "txt_spaces"):
        sep = "\t" if labels == "txt" else " "
        path = base / "csiq_dmos.txt"
        path.write_text("".join(sep.join(str(v) for v in r) + "\n" for r in rows))
    else:
        raise ValueError(labels)
    return _result(base, items, [path])


# ----------------------------------------------------------------------------------------------------------
# TID2013: mos_with_names.txt, reference_images/I01.BMP, distorted_images/i01_01_1.bmp
# ----------------------------------------------------------------------------------------------------------


def write_tid2013(root, *, seed=0, subdir="tid2013", size=SIZE, refs=(1, 2, 25), types=(1, 2, 24), levels=2) -> dict:
    """References I01.BMP, ... in upper case but the last one as i25.bmp; the last reference's distorted
    images are upper case on disk (I25_01_1.BMP) while mos_with_names.txt names them in lower case, and the
    label file has Windows line ends: the letter-case and line-end mix of real copies."""
    rng = _rng(seed, "tid2013")
    base = _dataset_root(root, subdir)
    lines, items = [], []
    for r in refs:
        last = r == refs[-1]
        ref = _image(base / "reference_images" / (f"i{r:02d}.bmp" if last else f"I{r:02d}.BMP"), rng, size)
        for t in types:
            for level in range(1, levels + 1):
                name = f"i{r:02d}_{t:02d}_{level}.bmp"
                dist = _image(base / "distorted_images" / (name.upper() if last else name), rng, size)
                score = round(float(rng.uniform(0.2, 7.3)), 5)
                lines.append(f"{score:.5f} {name}")
                items.append(_item(name, score, f"I{r:02d}", f"{t:02d}", level, dist, ref))
    path = base / "mos_with_names.txt"
    path.write_bytes("".join(line + "\r\n" for line in lines).encode("ascii"))
    return _result(base, items, [path])


# ----------------------------------------------------------------------------------------------------------
# KADID-10k: dmos.csv, images/I01.png, images/I01_01_01.png
# ----------------------------------------------------------------------------------------------------------


def write_kadid10k(root, *, seed=0, subdir="kadid10k", size=SIZE, refs=(1, 2), types=(1, 13, 25),
                   levels=(1, 5)) -> dict:
    rng = _rng(seed, "kadid10k")
    base = _dataset_root(root, subdir)
    lines, items = ["dist_img,ref_img,dmos,var"], []
    for r in refs:
        ref = _image(base / "images" / f"I{r:02d}.png", rng, size)
        for t in types:
            for level in levels:
                name = f"I{r:02d}_{t:02d}_{level:02d}.png"
                dist = _image(base / "images" / name, rng, size)
                score = round(float(rng.uniform(1, 5)), 2)
                lines.append(f"{name},I{r:02d}.png,{score:.2f},{float(rng.uniform(0, 1)):.3f}")
                items.append(_item(name, score, f"I{r:02d}", f"{t:02d}", level, dist, ref))
    path = base / "dmos.csv"
    path.write_text("\n".join(lines) + "\n")
    return _result(base, items, [path])


# ----------------------------------------------------------------------------------------------------------
# PIPAL (training part): Train_Ref/A0001.bmp, Train_Label/A0001.txt, Train_Dis/ or Distortion_1..4/
# ----------------------------------------------------------------------------------------------------------


def write_pipal(root, *, seed=0, subdir="PIPAL", size=SIZE, refs=("A0001", "A0002"), types=((0, 3), (1, 2), (6, 2)),
                layout="split") -> dict:
    """``types``: (distortion group, number of levels); ``layout``: "split" puts the distorted images in
    Distortion_1/ .. Distortion_4/ (in turn), "train_dis" all in Train_Dis/."""
    rng = _rng(seed, "pipal")
    base = _dataset_root(root, subdir)
    items, labels, j = [], [], 0
    for ref_id in refs:
        ref = _image(base / "Train_Ref" / f"{ref_id}.bmp", rng, size)
        lines = []
        for group, count in types:
            for level in range(count):
                name = f"{ref_id}_{group:02d}_{level:02d}.bmp"
                folder = f"Distortion_{j % 4 + 1}" if layout == "split" else "Train_Dis"
                j += 1
                dist = _image(base / folder / name, rng, size)
                score = round(float(rng.uniform(920, 1830)), 4)
                lines.append(f"{name},{score:.4f}")
                items.append(_item(name, score, ref_id, f"{group:02d}", level + 1, dist, ref))
        path = base / "Train_Label" / f"{ref_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        labels.append(path)
    return _result(base, items, labels)


# ----------------------------------------------------------------------------------------------------------
# KonIQ-10k: koniq10k_scores_and_distributions.csv, 1024x768/<id>.jpg, koniq10k_distributions_sets.csv
# ----------------------------------------------------------------------------------------------------------

KONIQ_SETS = ("training", "training", "training", "validation", "test", "test")
_KONIQ_SPLIT = {"training": "train", "validation": "validation", "test": "test"}


def write_koniq10k(root, *, seed=0, subdir="koniq10k", size=SIZE, count=6, sets=True,
                   resolutions=("1024x768",)) -> dict:
    """``sets``: also write koniq10k_distributions_sets.csv (training/validation/test in turn);
    ``resolutions``: image folders to write (512x384 images at half ``size``)."""
    rng = _rng(seed, "koniq10k")
    base = _dataset_root(root, subdir)
    ids = sorted({int(i) for i in rng.integers(10 ** 9, 10 ** 10, count * 2)}, key=str)[:count]
    names = [f"{i}.jpg" for i in ids]
    header = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]
    rows, items = [], []
    for n, name in enumerate(names):
        votes = rng.integers(0, 40, 5)
        votes[2] += 1
        total = int(votes.sum())
        mos = round(float((votes * np.arange(1, 6)).sum() / total), 6)
        sd = round(float(np.sqrt((votes * (np.arange(1, 6) - mos) ** 2).sum() / total)), 6)
        rows.append([name, *map(int, votes), total, mos, sd, round((mos - 3) * 20 + 60, 6)])
        paths = [_image(base / res / name, rng, size if res == "1024x768" else (size[0] // 2, size[1] // 2))
                 for res in resolutions]
        split = _KONIQ_SPLIT[KONIQ_SETS[n % len(KONIQ_SETS)]] if sets else None
        items.append(_item(name, mos, name[:-4], "authentic", -1, paths[0], split=split))
    path = base / "koniq10k_scores_and_distributions.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(header)
        writer.writerows(rows)
    labels = [path]
    if sets:
        sets_path = base / "koniq10k_distributions_sets.csv"
        with open(sets_path, "w", newline="") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
            writer.writerow(header[:-1] + ["set"])
            writer.writerows(r[:-1] + [KONIQ_SETS[n % len(KONIQ_SETS)]] for n, r in enumerate(rows))
        labels.append(sets_path)
    return _result(base, items, labels)


# ----------------------------------------------------------------------------------------------------------
# SPAQ: Annotations/MOS and Image attribute scores.xlsx (or .csv), TestImage/00001.jpg
# ----------------------------------------------------------------------------------------------------------

SPAQ_COLUMNS = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]


def write_spaq(root, *, seed=0, subdir="SPAQ", size=SIZE, count=5, labels="xlsx", image_folder="TestImage") -> dict:
    """``labels``: "xlsx" or "csv" (an export of the sheet); ``image_folder``: where TestImage/ sits, relative
    to the root (e.g. "Dataset/TestImage")."""
    rng = _rng(seed, "spaq")
    base = _dataset_root(root, subdir)
    rows, items = [], []
    for i in range(1, count + 1):
        name = f"{i:05d}.jpg"
        dist = _image(base / image_folder / name, rng, size)
        score = round(float(rng.uniform(2, 96)), 2)
        rows.append([name, score, *(round(float(v), 2) for v in rng.uniform(0, 100, 5))])
        items.append(_item(name, score, name[:-4], "authentic", -1, dist))
    stem = base / "Annotations" / "MOS and Image attribute scores"
    if labels == "xlsx":
        path = _xlsx(stem.with_suffix(".xlsx"), {"Sheet1": [SPAQ_COLUMNS] + rows})
    elif labels == "csv":
        path = stem.with_suffix(".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([SPAQ_COLUMNS] + rows)
    else:
        raise ValueError(labels)
    return _result(base, items, [path])


# ----------------------------------------------------------------------------------------------------------
# LIVE Challenge: Data/AllImages_release.mat, Data/AllMOS_release.mat, Images/, Images/trainingImages/
# ----------------------------------------------------------------------------------------------------------


def write_livec(root, *, seed=0, subdir="ChallengeDB_release", size=SIZE,
                names=("3.bmp", "4.bmp", "10.bmp", "100.bmp", "1164.bmp")) -> dict:
    """The 7 training images t1.bmp .. t7.bmp first (in Images/trainingImages/), then ``names``."""
    rng = _rng(seed, "livec")
    base = _dataset_root(root, subdir)
    all_names, mos, items = [], [], []
    for i in range(1, 8):
        _image(base / "Images" / "trainingImages" / f"t{i}.bmp", rng, size)
        all_names.append(f"t{i}.bmp")
        mos.append(round(float(rng.uniform(3, 93)), 4))
    for name in names:
        dist = _image(base / "Images" / name, rng, size)
        score = round(float(rng.uniform(3, 93)), 4)
        all_names.append(name)
        mos.append(score)
        items.append(_item(name, score, name.rsplit(".", 1)[0], "authentic", -1, dist))
    n = len(all_names)
    names_mat = _savemat(base / "Data" / "AllImages_release.mat",
                         {"AllImages_release": _cell_column(all_names, (n, 1))})
    mos_mat = _savemat(base / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array(mos).reshape(1, n)})
    _savemat(base / "Data" / "AllStdDev_release.mat",
             {"AllStdDev_release": rng.uniform(5, 25, (1, n)).round(4)})
    return _result(base, items, [names_mat, mos_mat])


WRITERS = {"live": write_live, "csiq": write_csiq, "tid2013": write_tid2013, "kadid10k": write_kadid10k,
           "pipal": write_pipal, "koniq10k": write_koniq10k, "spaq": write_spaq, "livec": write_livec}


def write_noisy_tid2013(root, size=(48, 64), *, photographs=False) -> dict:
    """An official-layout TID2013 copy whose distorted images are the reference plus Gaussian noise of a
    known strength, and whose MOS is a decreasing function of that strength. With ``photographs`` the
    references are crops of sample photographs instead of random pixels (noise hides in random pixels, and
    models of visual masking such as MAD then see no distortion)."""
    info = write_tid2013(root, size=size, levels=3)
    rng = np.random.default_rng(7)
    lines = []
    if photographs:
        from asym_jax.data.samples import sample_photo
        names = ("astronaut", "coffee", "chelsea")
        for k, path in enumerate(sorted({str(item["ref"]) for item in info["items"]})):
            photo = sample_photo(names[k % len(names)])
            top, left = (photo.shape[0] - size[0]) // 2, (photo.shape[1] - size[1]) // 2
            Image.fromarray(photo[top:top + size[0], left:left + size[1]]).save(path, format="BMP")
    for item in info["items"]:
        ref = np.asarray(Image.open(item["ref"]).convert("RGB"), np.float64)
        sigma = 3.0 * item["level"] * (1 + int(item["distortion"]) % 3)
        dist = np.clip(np.round(ref + rng.normal(0, sigma, ref.shape)), 0, 255).astype(np.uint8)
        Image.fromarray(dist).save(item["dist"], format="BMP")
        lines.append(f"{9.0 - np.log(sigma):.5f} {item['name']}")
    (info["root"] / "mos_with_names.txt").write_bytes("".join(line + "\r\n" for line in lines).encode("ascii"))
    return info

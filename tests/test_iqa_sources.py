"""The IQA readers on tiny exact-format copies of the official releases (tests/iqa_fixtures.py)."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest
import scipy.io

from asym_jax.data.files import DatasetError
from asym_jax.data.iqa_sources import (IQA_SPECS, IQAItem, read_csiq, read_koniq10k, read_live, read_livec,
                                       read_pipal, read_spaq, read_tid2013)
from iqa_fixtures import (WRITERS, write_csiq, write_koniq10k, write_live, write_livec, write_pipal, write_spaq,
                          write_tid2013)

NAMES = list(WRITERS)
FR = [n for n in NAMES if IQA_SPECS[n].kind == "fr"]


def _as_tuples(items):
    return [(i.name, i.score, i.ref_id, i.distortion, i.level, i.split, i.dist, i.ref) for i in items]


def _expected(info):
    return [(e["name"], e["score"], e["ref_id"], e["distortion"], e["level"], e["split"], e["dist"], e["ref"])
            for e in info["items"]]


def _check(items, info):
    assert all(isinstance(i, IQAItem) for i in items)
    assert len(items) == info["count"]
    assert _as_tuples(items) == _expected(info)
    for item in items:
        assert item.dist.is_file()
        assert item.ref is None or item.ref.is_file()


def _raises(call, *fragments):
    """Calls ``call``; the DatasetError must hold every fragment (compared without case)."""
    with pytest.raises(DatasetError) as error:
        call()
    message = str(error.value).lower()
    for fragment in fragments:
        assert str(fragment).lower() in message, (fragment, str(error.value))
    return str(error.value)


# ----------------------------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------------------------


def test_specs():
    assert set(IQA_SPECS) == set(WRITERS)
    counts = {"live": 779, "csiq": 866, "tid2013": 3000, "kadid10k": 10125, "pipal": 23200, "koniq10k": 10073,
              "spaq": 11125, "livec": 1162}
    for name, spec in IQA_SPECS.items():
        assert spec.name == name and spec.official_count == counts[name]
        assert spec.kind == ("nr" if name in ("koniq10k", "spaq", "livec") else "fr")
        assert spec.score_name in ("MOS", "DMOS", "ELO")
        assert spec.score_range[0] < spec.score_range[1]
        assert spec.url.startswith("http") and 40 < len(spec.layout) < 400
        assert callable(spec.reader)
    assert not IQA_SPECS["live"].higher_is_better and not IQA_SPECS["csiq"].higher_is_better
    assert IQA_SPECS["kadid10k"].score_name == "DMOS" and IQA_SPECS["kadid10k"].higher_is_better
    assert IQA_SPECS["koniq10k"].official_splits == ("train", "validation", "test")
    assert all(s.official_splits == () for n, s in IQA_SPECS.items() if n != "koniq10k")


# ----------------------------------------------------------------------------------------------------------
# Every reader on its fixture
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_reads_fixture_from_root_and_parent(tmp_path, name):
    info = WRITERS[name](tmp_path / "downloads")
    reader = IQA_SPECS[name].reader
    _check(reader(info["root"]), info)
    _check(reader(tmp_path), info)  # the dataset's root is two levels below
    items = reader(str(tmp_path / "downloads"))
    kind = IQA_SPECS[name].kind
    assert all((i.ref is None) == (kind == "nr") for i in items)
    if kind == "nr":
        assert all(i.ref_id == pathlib.Path(i.name).stem and i.distortion == "authentic" for i in items)


@pytest.mark.parametrize("name", NAMES)
def test_fixtures_are_deterministic(tmp_path, name):
    a, b = WRITERS[name](tmp_path / "a"), WRITERS[name](tmp_path / "b")
    assert [e["score"] for e in a["items"]] == [e["score"] for e in b["items"]]
    assert a["image"].read_bytes() == b["image"].read_bytes()
    c = WRITERS[name](tmp_path / "c", seed=1)
    assert [e["score"] for e in a["items"]] != [e["score"] for e in c["items"]]


def test_live_official_counts(tmp_path):
    info = write_live(tmp_path, full=True, refs=("bikes", "caps", "house"))
    items = read_live(tmp_path)
    _check(items, info)
    assert info["entries"] == 982 and len(items) == 779
    per_folder = {d: sum(i.distortion == d for i in items) for d in ("jp2k", "jpeg", "wn", "gblur", "fastfading")}
    assert per_folder == {"jp2k": 169, "jpeg": 175, "wn": 145, "gblur": 145, "fastfading": 145}  # as LIVE.txt
    assert all(i.level == -1 for i in items)
    # with a complete dmos.mat the counts are the release's: a missing image is named, whichever it is
    (info["root"] / "jpeg" / "img1.bmp").unlink()
    _raises(lambda: read_live(tmp_path), "jpeg/img1.bmp", "entry 228 of dmos.mat")


def test_live_skips_references_and_names_by_folder(tmp_path):
    info = write_live(tmp_path)
    items = read_live(tmp_path)
    names = [i.name for i in items]
    assert "jp2k/img2.bmp" not in names and "jp2k/img1.bmp" in names  # img2 is a reference (orgs == 1)
    assert len(set(names)) == len(names) and info["entries"] == 16
    assert {i.ref.parent.name for i in items} == {"refimgs"}


def test_live_partial_folder_mismatch(tmp_path):
    info = write_live(tmp_path)
    (info["root"] / "jp2k" / "img4.bmp").unlink()  # the highest image of a folder: counts no longer add up
    _raises(lambda: read_live(tmp_path), "dmos.mat", "16 entries", "jp2k 3")


def test_live_malformed_mats(tmp_path):
    info = write_live(tmp_path)
    dmos_mat, names_mat = info["labels"]
    names = scipy.io.loadmat(names_mat)["refnames_all"]
    scipy.io.savemat(names_mat, {"refnames_all": names[:, :-1]})
    _raises(lambda: read_live(tmp_path), "refnames_all.mat", "15 refnames_all")
    scipy.io.savemat(names_mat, {"refnames_all": names})
    mat = scipy.io.loadmat(dmos_mat)
    orgs = mat["orgs"].copy()
    orgs[0, 3] = 2
    scipy.io.savemat(dmos_mat, {"dmos": mat["dmos"], "orgs": orgs})
    _raises(lambda: read_live(tmp_path), "dmos.mat", "orgs entry 4")
    cells = np.empty((1, 16), dtype=object)
    cells[0, :] = ["x"] * 16
    scipy.io.savemat(dmos_mat, {"dmos": cells, "orgs": mat["orgs"]})
    _raises(lambda: read_live(tmp_path), "dmos.mat", "variable dmos", "numeric")
    scipy.io.savemat(dmos_mat, {"dmos": mat["dmos"]})
    _raises(lambda: read_live(tmp_path), "dmos.mat", "lacks variable", "orgs")


@pytest.mark.parametrize("labels", ["xlsx", "txt", "txt_spaces"])
def test_csiq_label_formats(tmp_path, labels):
    info = write_csiq(tmp_path, labels=labels)
    items = read_csiq(tmp_path)
    _check(items, info)
    assert [i.name for i in items[:3]] == ["1600.AWGN.1.png", "1600.AWGN.2.png", "1600.JPEG.1.png"]
    assert items[0].ref_id == "1600" and items[0].ref.name == "1600.png"  # a number in the xlsx
    assert {i.distortion for i in items} == {"awgn", "jpeg", "jpeg2000", "fnoise", "blur", "contrast"}


def test_csiq_case_and_layout_variants(tmp_path):
    info = write_csiq(tmp_path / "a", upper_folders=True, leading_blank_column=True)
    items = read_csiq(tmp_path / "a")
    _check(items, info)
    assert items[0].dist.parent.name == "AWGN"
    info = write_csiq(tmp_path / "b")
    xlsx = info["labels"][0]
    xlsx.rename(xlsx.with_name("CSIQ.dmos.XLSX"))
    _check(read_csiq(tmp_path / "b"), info)


def test_csiq_label_errors(tmp_path):
    import openpyxl

    info = write_csiq(tmp_path)
    xlsx = info["labels"][0]
    book = openpyxl.load_workbook(xlsx)
    book["all_by_image"]["F4"] = "abc"  # dmos of the third data row
    book.save(xlsx)
    _raises(lambda: read_csiq(tmp_path), "csiq.DMOS.xlsx", "data row 3", "dmos 'abc'")
    book["all_by_image"]["F4"] = 0.5
    book["all_by_image"]["C5"] = "ringing"
    book.save(xlsx)
    _raises(lambda: read_csiq(tmp_path), "csiq.DMOS.xlsx", "data row 4", "ringing")
    book["all_by_image"].title = "sheet1"
    book.save(xlsx)
    _raises(lambda: read_csiq(tmp_path), "csiq.DMOS.xlsx", "all_by_image")
    xlsx.unlink()
    _raises(lambda: read_csiq(tmp_path), "csiq.DMOS.xlsx", "csiq_dmos.txt")

    info = write_csiq(tmp_path / "txt", labels="txt")
    txt = info["labels"][0]
    lines = txt.read_text().splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:5])
    txt.write_text("\n".join(lines) + "\n")
    _raises(lambda: read_csiq(tmp_path / "txt"), "csiq_dmos.txt", "line 3", "5 fields")


def test_tid2013_letter_case(tmp_path):
    info = write_tid2013(tmp_path)
    items = read_tid2013(tmp_path)
    _check(items, info)
    last = items[-1]
    assert last.name == "i25_24_2.bmp" and last.dist.name == "I25_24_2.BMP"  # listed lower, stored upper
    assert last.ref.name == "i25.bmp" and last.ref_id == "I25" and items[0].ref.name == "I01.BMP"
    assert (last.distortion, last.level) == ("24", 2)


def test_tid2013_label_errors(tmp_path):
    info = write_tid2013(tmp_path)
    path = info["labels"][0]
    lines = path.read_text().splitlines()
    for bad, fragments in [("abc i01_01_1.bmp", ("line 2", "mos 'abc'")),
                           ("5.1 i01_01_1.bmp extra", ("line 2", "3 fields")),
                           ("5.1 img01_01_1.bmp", ("line 2", "img01_01_1.bmp"))]:
        path.write_text("\n".join([lines[0], bad] + lines[2:]) + "\n")
        _raises(lambda: read_tid2013(tmp_path), "mos_with_names.txt", *fragments)


def test_pipal_layouts(tmp_path):
    info = write_pipal(tmp_path / "a", layout="train_dis")
    items = read_pipal(tmp_path / "a")
    _check(items, info)
    assert {i.dist.parent.name for i in items} == {"Train_Dis"}
    assert (items[0].name, items[0].distortion, items[0].level) == ("A0001_00_00.bmp", "00", 1)
    info = write_pipal(tmp_path / "b", layout="split")
    items = read_pipal(tmp_path / "b")
    _check(items, info)
    assert {i.dist.parent.name for i in items} == {f"Distortion_{k}" for k in range(1, 5)}
    # the same distorted image in two folders is ambiguous, not a silent choice
    shutil.copy(items[0].dist, items[0].dist.parent.parent / "Distortion_2" / items[0].name)
    _raises(lambda: read_pipal(tmp_path / "b"), "A0001_00_00.bmp", "ambiguous")


def test_pipal_label_errors(tmp_path):
    info = write_pipal(tmp_path)
    path = info["labels"][1]
    lines = path.read_text().splitlines()
    for bad, fragments in [("A0002_00_01.bmp", ("line 2", "1 fields")),
                           ("A0002_00_01.bmp,n/a", ("line 2", "'n/a'")),
                           ("A0001_00_01.bmp,1500.0", ("line 2", "A0001_00_01.bmp"))]:
        path.write_text("\n".join([lines[0], bad] + lines[2:]) + "\n")
        _raises(lambda: read_pipal(tmp_path), "A0002.txt", *fragments)
    path.unlink()  # a reference without its label file
    _raises(lambda: read_pipal(tmp_path), "A0002.txt", "A0002.bmp")


def test_koniq10k_splits_and_resolutions(tmp_path):
    info = write_koniq10k(tmp_path, resolutions=("1024x768", "512x384"), count=7)
    items = read_koniq10k(tmp_path)
    _check(items, info)
    assert [i.split for i in items] == ["train", "train", "train", "validation", "test", "test", "train"]
    small = read_koniq10k(tmp_path, resolution="512x384")
    assert [i.dist.parent.name for i in small] == ["512x384"] * 7
    assert _as_tuples(small)[0][:6] == _as_tuples(items)[0][:6]
    _raises(lambda: read_koniq10k(tmp_path, resolution="2048x1536"), "2048x1536")
    info["labels"][1].unlink()
    assert [i.split for i in read_koniq10k(tmp_path)] == [None] * 7


def test_koniq10k_set_errors(tmp_path):
    info = write_koniq10k(tmp_path)
    sets = info["labels"][1]
    text = sets.read_text()
    sets.write_text(text.replace('"validation"', '"holdout"'))
    _raises(lambda: read_koniq10k(tmp_path), "koniq10k_distributions_sets.csv", "data row 4", "holdout")
    lines = text.splitlines()
    sets.write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # one image without a set
    _raises(lambda: read_koniq10k(tmp_path), "koniq10k_distributions_sets.csv", info["items"][2]["name"])
    shutil.rmtree(info["root"] / "1024x768")
    _raises(lambda: read_koniq10k(tmp_path), "1024x768")


def test_spaq_variants(tmp_path):
    info = write_spaq(tmp_path / "a", labels="csv", image_folder="Dataset/TestImage")
    _check(read_spaq(tmp_path / "a"), info)
    info = write_spaq(tmp_path / "b")
    _check(read_spaq(tmp_path / "b"), info)
    import openpyxl

    xlsx = info["labels"][0]
    book = openpyxl.load_workbook(xlsx)
    book.active["B3"] = "n/a"
    book.save(xlsx)
    _raises(lambda: read_spaq(tmp_path / "b"), "MOS and Image attribute scores.xlsx", "data row 2", "'n/a'")
    book.active["B3"] = 50.0
    book.active["A4"] = None
    book.save(xlsx)
    _raises(lambda: read_spaq(tmp_path / "b"), "MOS and Image attribute scores.xlsx", "data row 3", "Image name")


def test_livec_training_images_left_out(tmp_path):
    info = write_livec(tmp_path)
    items = read_livec(tmp_path)
    _check(items, info)
    assert not any(i.name.startswith("t") for i in items)
    names_mat, mos_mat = info["labels"]
    names = scipy.io.loadmat(names_mat)["AllImages_release"]
    scipy.io.savemat(names_mat, {"AllImages_release": names[1:]})
    _raises(lambda: read_livec(tmp_path), "AllImages_release.mat", "11 names", "12 scores")
    scipy.io.savemat(names_mat, {"AllImages_release": np.concatenate([names[7:], names[:7]])})
    _raises(lambda: read_livec(tmp_path), "AllImages_release.mat", "t1.bmp")


# ----------------------------------------------------------------------------------------------------------
# Errors every reader gives
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_missing_manual_dir(tmp_path, name):
    _raises(lambda: IQA_SPECS[name].reader(tmp_path / "not_there"), "not_there", "expected")
    (tmp_path / "empty").mkdir()
    _raises(lambda: IQA_SPECS[name].reader(tmp_path / "empty"), "empty", "found none of")


@pytest.mark.parametrize("name", NAMES)
def test_missing_label_file(tmp_path, name):
    info = WRITERS[name](tmp_path)
    label = info["labels"][0]
    label.unlink()
    _raises(lambda: IQA_SPECS[name].reader(tmp_path), label.name)


@pytest.mark.parametrize("name", NAMES)
def test_label_row_naming_missing_image(tmp_path, name):
    info = WRITERS[name](tmp_path)
    info["image"].unlink()
    _raises(lambda: IQA_SPECS[name].reader(tmp_path), info["items"][1]["name"].split("/")[-1], "does not exist",
            "named by")


@pytest.mark.parametrize("name", FR)
def test_missing_reference(tmp_path, name):
    info = WRITERS[name](tmp_path)
    info["reference"].unlink()
    _raises(lambda: IQA_SPECS[name].reader(tmp_path), info["reference"].name, "reference")


@pytest.mark.parametrize("name", NAMES)
def test_missing_image_folder(tmp_path, name):
    info = WRITERS[name](tmp_path)
    shutil.rmtree(info["image_folder"])
    message = _raises(lambda: IQA_SPECS[name].reader(tmp_path))
    assert info["image_folder"].name.lower() in message.lower() or info["items"][1]["name"] in message


def _malform(name: str, info: dict) -> tuple[str, ...]:
    """Breaks the second label row of ``info``'s dataset; returns what the error must say."""
    label = info["labels"][0]
    if name in ("live", "livec"):  # a MATLAB vector of text instead of numbers
        key = {"live": "dmos", "livec": "AllMOS_release"}[name]
        path = label if name == "live" else info["labels"][1]
        mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        cells = np.empty(mat[key].shape, dtype=object)
        cells[...] = "x"
        mat[key] = cells
        scipy.io.savemat(path, mat)
        return path.name, key
    if name in ("csiq", "spaq"):
        import openpyxl

        book = openpyxl.load_workbook(label)
        sheet = book["all_by_image"] if name == "csiq" else book.active
        sheet["F3" if name == "csiq" else "B3"] = "bad"
        book.save(label)
        return label.name, "data row 2", "'bad'"
    lines = label.read_text().splitlines()
    if name in ("tid2013", "pipal"):
        sep = " " if name == "tid2013" else ","
        lines[1] = lines[1].split(sep)[0] + sep + "bad"
        label.write_text("\n".join(lines) + "\n")
        return label.name, "line 2", "'bad'"
    lines[2] = ",".join(lines[2].split(",")[:-2])  # kadid10k, koniq10k: a CSV row short of fields
    label.write_text("\n".join(lines) + "\n")
    return label.name, "data row 2", "wrong number of fields"


@pytest.mark.parametrize("name", NAMES)
def test_malformed_row(tmp_path, name):
    info = WRITERS[name](tmp_path)
    fragments = _malform(name, info)
    _raises(lambda: IQA_SPECS[name].reader(tmp_path), *fragments)


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_label_file(tmp_path, name):
    info = WRITERS[name](tmp_path)
    label = info["labels"][0]
    label.write_bytes(b"\x00\x93corrupt\xff" * 8)
    _raises(lambda: IQA_SPECS[name].reader(tmp_path), label.name)


@pytest.mark.parametrize("name", ["csiq", "kadid10k", "koniq10k", "spaq", "tid2013"])
def test_duplicate_rows_refused(tmp_path, name):
    info = WRITERS[name](tmp_path)
    label = info["labels"][0]
    if label.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(label)
        sheet = book["all_by_image"] if name == "csiq" else book.active
        sheet.append([c.value for c in sheet[2]])
        book.save(label)
    else:
        lines = label.read_text().splitlines()
        label.write_text("\n".join(lines + [lines[1 if name != "tid2013" else 0]]) + "\n")
    _raises(lambda: IQA_SPECS[name].reader(tmp_path), "twice", info["items"][0]["name"])

"""SR datasets: readers over the released layouts, TFDS preparation, grain training pipeline, evaluation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from asym_jax.data import DatasetError, bicubic_lr, datasets, mod_crop, pipeline, sr_sources
from asym_jax.data.builders import builder_class
from sr_fixtures import write_benchmark, write_div2k, write_flickr2k


def _lr_of(hr, scale):
    return np.round(bicubic_lr(mod_crop(hr, scale).astype(np.float32) / 255.0, scale) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------- readers


def test_benchmark_reader_finds_set_below_manual_dir(tmp_path):
    write_benchmark(tmp_path / "benchmark", "Set5", 5)
    items = sr_sources.SR_SPECS["set5"].reader(tmp_path, 4)  # two levels above the set's own folder
    assert [i.name for i in items] == [f"img_{i:03d}" for i in range(5)]
    assert all(i.lr is not None and i.lr.name == f"{i.name}x4.png" for i in items)
    assert sr_sources.SR_SPECS["set5"].reader(tmp_path / "benchmark" / "Set5", None)[0].lr is None  # HR only


def test_benchmark_reader_errors(tmp_path):
    write_benchmark(tmp_path, "Set5", 4)
    with pytest.raises(DatasetError, match=r"Set5.HR holds 4 images; the release has 5"):
        sr_sources.SR_SPECS["set5"].reader(tmp_path, 4)
    (tmp_path / "Set5" / "HR" / "extra.png").write_bytes((tmp_path / "Set5" / "HR" / "img_000.png").read_bytes())
    with pytest.raises(DatasetError, match=r"LR image .*extrax4.png for .*extra.png does not exist"):
        sr_sources.SR_SPECS["set5"].reader(tmp_path, 4)
    with pytest.raises(DatasetError, match=r"set14: found none of Set14/HR in .*expected Set14/HR"):
        sr_sources.SR_SPECS["set14"].reader(tmp_path, 4)
    with pytest.raises(DatasetError, match="is not a folder"):
        sr_sources.SR_SPECS["set14"].reader(tmp_path / "nowhere", 4)


def test_div2k_flickr2k_df2k_readers(tmp_path):
    write_div2k(tmp_path / "DIV2K", lr_scale=2)
    items = sr_sources.SR_SPECS["div2k"].reader(tmp_path, 2)
    assert [sum(i.split == s for i in items) for s in ("train", "validation")] == [800, 100]
    assert items[0].name == "0001" and items[0].lr.name == "0001x2.png" and items[-1].name == "0900"
    assert sr_sources.SR_SPECS["div2k"].reader(tmp_path, 4)[0].lr is None  # no X4 folder: made on the fly
    write_flickr2k(tmp_path / "DIV2K")
    df2k = sr_sources.SR_SPECS["df2k"].reader(tmp_path, None)
    assert [sum(i.split == s for i in df2k) for s in ("train", "validation")] == [3450, 100]
    (tmp_path / "DIV2K" / "Flickr2K_HR" / "001234.png").unlink()
    with pytest.raises(DatasetError, match=r"Flickr2K_HR should hold 000001.png .. 002650.png; 1 missing .*001234"):
        sr_sources.SR_SPECS["flickr2k"].reader(tmp_path, None)


# ---------------------------------------------------------------- TFDS preparation


def test_benchmark_set_prepares_with_released_lr(tmp_path):
    images = write_benchmark(tmp_path / "manual", "Set14", 14)
    source = datasets.sr_source("set14", "test", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual",
                                config="x4")
    assert len(source) == 14
    record = source[3]
    name = record["name"].decode()
    np.testing.assert_array_equal(record["hr"], images[name])
    np.testing.assert_array_equal(record["lr"], _lr_of(images[name], 4))
    pairs = list(pipeline.sr_eval_pairs(source, 4))
    assert [p[1].shape for p in pairs][0] == (24, 32, 3) and pairs[0][2].shape == (6, 8, 3)
    # The same set without released LR: made by MATLAB bicubic, identical to the released one here.
    hr_only = datasets.sr_source("set14", "test", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    for (n1, h1, l1), (n2, h2, l2) in zip(pairs, pipeline.sr_eval_pairs(hr_only, 4)):
        assert n1 == n2
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_array_equal(l1, l2)


def test_wrong_lr_size_and_corrupt_image_fail_and_leave_nothing(tmp_path):
    write_benchmark(tmp_path / "manual", "Set5", 5)
    lr = tmp_path / "manual" / "Set5" / "LR_bicubic" / "X4" / "img_002x4.png"
    Image.fromarray(np.zeros((5, 8, 3), np.uint8)).save(lr)
    with pytest.raises(DatasetError, match=r"img_002x4.png is 5 x 8; HR 26 x 33 at x4 needs 6 x 8"):
        datasets.prepare("set5", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual", config="x4")
    (tmp_path / "manual" / "Set5" / "HR" / "img_001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DatasetError, match=r"cannot read image .*img_001.png"):
        datasets.prepare("set5", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    builder = builder_class("set5")(data_dir=str(tmp_path / "tfds"), file_format="array_record")
    assert not builder.is_prepared()


def test_prepare_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"div2k: not prepared in .*give manual_dir.*DIV2K_train_HR/0001.png"):
        datasets.prepare("div2k", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="manual_dir .*missing is not a folder"):
        datasets.prepare("set5", data_dir=tmp_path, manual_dir=tmp_path / "missing")
    with pytest.raises(DatasetError, match="unknown dataset 'set6'; SR sets: bsd100, df2k"):
        datasets.prepare("set6", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="unknown config 'x8'"):
        datasets.prepare("set5", data_dir=tmp_path, config="x8")


def test_div2k_prepares(tmp_path):
    write_div2k(tmp_path / "manual")
    info = datasets.describe("div2k", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    assert info["num_examples"] == {"train": 800, "validation": 100}


def test_sample_set(data_dir):
    train = datasets.sr_source("sample", "train", data_dir=data_dir)
    test = datasets.sr_source("sample", "test", data_dir=data_dir)
    assert len(train) == len(sr_sources.SAMPLE_SPLITS["train"]) and len(test) == 2
    names = {train[i]["name"].decode() for i in range(len(train))}
    assert names.isdisjoint({test[i]["name"].decode() for i in range(len(test))})
    np.testing.assert_array_equal(test[0]["hr"], sr_sources.sample_photo("coffee"))


# ---------------------------------------------------------------- training pipeline


def test_subimage_starts():
    assert sr_sources.subimage_starts(2040) == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert sr_sources.subimage_starts(1356) == [0, 240, 480, 720, 876]
    assert sr_sources.subimage_starts(720) == [0, 240]
    assert sr_sources.subimage_starts(480) == sr_sources.subimage_starts(300) == [0]
    assert sr_sources.subimage_starts(500) == [0, 20]


def test_subimages_hold_the_lr_of_the_whole_image(data_dir):
    """The training form: sub-images tile every mod-cropped image, and each one's LR is the whole image's LR
    cut at the same place (so crops from it pair exactly as crops of the whole image with LR on the fly)."""
    source = datasets.sr_source("sample", "train", data_dir=data_dir, config="sub_x3")
    whole = {name: mod_crop(sr_sources.sample_photo(name), 3) for name in sr_sources.SAMPLE_SPLITS["train"]}
    lrs = {name: _lr_of(hr, 3) for name, hr in whole.items()}
    covered = {name: np.zeros(hr.shape[:2], bool) for name, hr in whole.items()}
    for i in range(len(source)):
        record = source[i]
        stem, number = record["name"].decode().rsplit("_s", 1)
        top, left, hr = int(record["top"]), int(record["left"]), record["hr"]
        size_h, size_w = hr.shape[:2]
        assert (size_h, size_w) == tuple(min(480, n) for n in whole[stem].shape[:2]) and len(number) == 3
        np.testing.assert_array_equal(hr, whole[stem][top:top + size_h, left:left + size_w])
        np.testing.assert_array_equal(record["lr"], lrs[stem][top // 3:(top + size_h) // 3, left // 3:(left + size_w) // 3])
        covered[stem][top:top + size_h, left:left + size_w] = True
    assert all(mask.all() for mask in covered.values())
    assert len(source) == sum(len(sr_sources.subimage_starts(hr.shape[0])) * len(sr_sources.subimage_starts(hr.shape[1]))
                              for hr in whole.values())
    crop = pipeline.SRCrop(hr_size=48, scale=3)
    pair = crop.random_map(source[1], np.random.default_rng(0))
    assert pair["hr"].shape == (48, 48, 3) and pair["lr"].shape == (16, 16, 3)
    # Each image's records are one run, in reading order.
    assert source.names == list(sr_sources.SAMPLE_SPLITS["train"]) and source.first[0] == 0
    for name, first, count in zip(source.names, source.first, source.count):
        assert {source[int(i)]["name"].decode().rsplit("_s", 1)[0] for i in range(first, first + count)} == {name}


def test_subimages_are_sampled_by_image(data_dir):
    """An epoch of the sub-image form visits each image once (a sub-image of it), as the whole-image form
    does: the 25 sub-images of the large retina photograph do not make it 25 times as frequent."""
    source = datasets.sr_source("sample", "train", data_dir=data_dir, config="sub_x4")
    assert len(source) > 2 * len(source.names)
    iterator = iter(pipeline.sr_train_dataset(source, hr_size=32, scale=4, batch_size=len(source.names), seed=1,
                                              augment=False))
    whole = {name: sr_sources.sample_photo(name) for name in source.names}
    for _ in range(2):  # two epochs
        batch = next(iterator)["hr"]
        found = sorted(next(n for n, image in whole.items() if _found_in(image, crop)) for crop in batch)
        assert found == sorted(source.names)


def _found_in(image, crop) -> bool:
    """Whether ``crop`` is a crop of ``image`` on the 4-px grid."""
    size = crop.shape[0]
    for top in range(0, image.shape[0] - size + 1, 4):
        rows = image[top:top + size]
        for left in range(0, image.shape[1] - size + 1, 4):
            if rows[0, left, 0] == crop[0, 0, 0] and np.array_equal(rows[:, left:left + size], crop):
                return True
    return False



@pytest.mark.parametrize("top,left", [(0, 0), (8, 4), (200, 316), (448, 448)])
def test_lr_made_on_the_fly_equals_lr_of_whole_image(top, left):
    hr = sr_sources.sample_photo("astronaut")
    full = _lr_of(hr, 4)
    hr_crop, lr_crop = pipeline.lr_for_crop(hr, top, left, 64, 4)
    np.testing.assert_array_equal(hr_crop, hr[top:top + 64, left:left + 64])
    np.testing.assert_array_equal(lr_crop, full[top // 4:top // 4 + 16, left // 4:left // 4 + 16])


def test_released_and_on_the_fly_lr_give_the_same_pairs():
    hr = sr_sources.sample_photo("coffee")[:101, :150]  # odd sizes: mod-cropped
    crop = pipeline.SRCrop(hr_size=32, scale=4)
    for seed in range(5):
        made = crop.random_map({"hr": hr, "name": b"c"}, np.random.default_rng(seed))
        read = crop.random_map({"hr": hr, "lr": _lr_of(hr, 4), "name": b"c"}, np.random.default_rng(seed))
        for key in ("hr", "lr"):
            np.testing.assert_array_equal(made[key], read[key])
        assert made["hr"].shape == (32, 32, 3) and made["lr"].shape == (8, 8, 3)


def test_augmentation_keeps_pairs_aligned():
    hr = sr_sources.sample_photo("astronaut")
    crop = pipeline.SRCrop(hr_size=64, scale=4)
    for seed in range(8):
        pair = crop.random_map({"hr": hr}, np.random.default_rng(seed))
        lr_again = _lr_of(pair["hr"], 4)
        # Interior of the LR equals bicubic of the (flipped/transposed) HR crop: flips commute with the kernel.
        np.testing.assert_allclose(pair["lr"][3:-3, 3:-3].astype(int), lr_again[3:-3, 3:-3].astype(int), atol=1)


def test_train_dataset_batches_state_and_shards(data_dir):
    source = datasets.sr_source("sample", "train", data_dir=data_dir)
    dataset = pipeline.sr_train_dataset(source, hr_size=64, scale=4, batch_size=3, seed=7)
    iterator = iter(dataset)
    first = next(iterator)
    assert first["hr"].shape == (3, 64, 64, 3) and first["lr"].shape == (3, 16, 16, 3)
    assert first["hr"].dtype == np.uint8
    state = iterator.get_state()
    ahead = [next(iterator) for _ in range(4)]  # crosses an epoch boundary (7 images, 3 per batch)
    iterator.set_state(state)
    for expected in ahead:
        got = next(iterator)
        np.testing.assert_array_equal(got["hr"], expected["hr"])
    again = next(iter(pipeline.sr_train_dataset(source, hr_size=64, scale=4, batch_size=3, seed=7)))
    np.testing.assert_array_equal(again["lr"], first["lr"])
    other = next(iter(pipeline.sr_train_dataset(source, hr_size=64, scale=4, batch_size=3, seed=8)))
    assert not np.array_equal(other["hr"], first["hr"])
    with pytest.raises(DatasetError, match="multiple of the scale"):
        pipeline.sr_train_dataset(source, hr_size=66, scale=4, batch_size=1, seed=0)
    with pytest.raises(DatasetError, match="smaller than the 1024-px training crop"):
        next(iter(pipeline.sr_train_dataset(source, hr_size=1024, scale=4, batch_size=1, seed=0)))


def test_shards_are_disjoint_and_cover(data_dir):
    import grain
    source = datasets.sr_source("sample", "train", data_dir=data_dir)
    seen = []
    for index in range(3):
        part = grain.MapDataset.source(source)[index::3]
        seen.append({part[i]["name"].decode() for i in range(len(part))})
    assert sum(len(s) for s in seen) == len(source) and len(set().union(*seen)) == len(source)


def test_multiprocess_workers_give_the_same_batches(data_dir):
    """grain worker processes (spawned) produce exactly the single-process stream."""
    code = f"""
import numpy as np
from absl import flags
flags.FLAGS.mark_as_parsed()
from asym_jax.data import datasets, pipeline
source = datasets.sr_source("sample", "train", data_dir={str(data_dir)!r})
def take(workers):
    it = iter(pipeline.sr_train_dataset(source, hr_size=32, scale=4, batch_size=2, seed=3, num_workers=workers))
    return [next(it)["hr"] for _ in range(3)]
print(all(np.array_equal(a, b) for a, b in zip(take(0), take(2))))
"""
    datasets.prepare("sample", data_dir=data_dir)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_data_info_cli_json(data_dir):
    out = subprocess.run([sys.executable, "-m", "asym_jax.data", "info", "--dataset", "sample", "--data_dir",
                          str(data_dir), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout)
    assert info["num_examples"] == {"train": 7, "test": 2} and info["kind"] == "sr"
    bad = subprocess.run([sys.executable, "-m", "asym_jax.data", "info", "--dataset", "live", "--data_dir",
                          str(data_dir)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: live: not prepared")
    # The form the trainer reads (what launch/README.md prepares before a multi-host run).
    sub = subprocess.run([sys.executable, "-m", "asym_jax.data", "info", "--dataset", "sample", "--config", "sub_x4",
                          "--data_dir", str(data_dir), "--json"], capture_output=True, text=True, timeout=300)
    assert sub.returncode == 0, sub.stderr[-2000:]
    counts = json.loads(sub.stdout)["num_examples"]
    records = datasets.sr_source("sample", "train", data_dir=data_dir, config="sub_x4")
    assert counts["train"] == len(records.records) > 7
    bad = subprocess.run([sys.executable, "-m", "asym_jax.data", "info", "--dataset", "sample", "--config", "x5",
                          "--data_dir", str(data_dir)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown config 'x5'" in bad.stderr

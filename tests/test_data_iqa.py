"""IQA datasets through their TFDS builders: records, references, label table, splits, errors, ranking set."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asym_jax.data import DatasetError, datasets
from asym_jax.data.builders import builder_class
from iqa_fixtures import WRITERS


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_builder_records_equal_the_release(name, tmp_path):
    expected = WRITERS[name](tmp_path / "manual")
    data = datasets.iqa_data(name, data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    assert len(data) == expected["count"]
    assert list(data.table["name"]) == [item["name"] for item in expected["items"]]  # label order kept
    np.testing.assert_allclose(data.table["score"], [item["score"] for item in expected["items"]], rtol=1e-6)
    for index in (0, len(data) - 1):
        item, record = expected["items"][index], data[index]
        np.testing.assert_array_equal(record["image"], np.asarray(Image.open(item["dist"]).convert("RGB")))
        assert record["name"].decode() == item["name"] and record["ref_id"].decode() == item["ref_id"]
        assert record["distortion"].decode() == item["distortion"] and int(record["level"]) == item["level"]
        if data.kind == "fr":
            np.testing.assert_array_equal(record["ref"], np.asarray(Image.open(item["ref"]).convert("RGB")))
        else:
            assert "ref" not in record
    spec = datasets.spec_of(name)
    described = datasets.describe(name, data_dir=tmp_path / "tfds")
    assert described["num_examples"]["full"] == expected["count"]
    assert described["score"]["higher_is_better"] == spec.higher_is_better


def test_official_split_and_nr_view(tmp_path):
    expected = WRITERS["koniq10k"](tmp_path / "manual")
    data = datasets.iqa_data("koniq10k", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    for split in ("train", "validation", "test"):
        assert [data.table["name"][i] for i in data.split(split)] == [
            item["name"] for item in expected["items"] if item["split"] == split]
    WRITERS["kadid10k"](tmp_path / "k")
    as_nr = datasets.iqa_data("kadid10k", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "k", as_nr=True)
    assert as_nr.kind == "nr" and "ref" not in as_nr[0]


def test_seeded_splits_group_by_reference():
    groups = np.repeat([f"ref{i:02d}" for i in range(25)], 4)
    table = {"score": np.zeros(100), "ref_id": groups, "official_split": np.full(100, "")}
    seen_tests = []
    for seed in range(datasets.SPLIT_SEEDS):
        train, test = (datasets.iqa_split(table, f"seed{seed}/{part}") for part in ("train", "test"))
        assert len(train) == 80 and len(test) == 20 and not set(train) & set(test)
        assert not set(groups[train]) & set(groups[test])  # no content on both sides
        np.testing.assert_array_equal(test, datasets.iqa_split(table, f"seed{seed}/test"))  # deterministic
        seen_tests.append(tuple(test))
    assert len(set(seen_tests)) == datasets.SPLIT_SEEDS
    with pytest.raises(DatasetError, match=r"unknown split 'seed10/test'; available: full, seed0/train"):
        datasets.iqa_split(table, "seed10/test")
    with pytest.raises(DatasetError, match="unknown split 'train'"):
        datasets.iqa_split(table, "train")


def test_unreadable_image_and_size_mismatch_fail_naming_the_file(tmp_path):
    expected = WRITERS["kadid10k"](tmp_path / "manual")
    target = expected["items"][1]["dist"]
    target.write_bytes(target.read_bytes()[:40])  # truncated PNG
    with pytest.raises(DatasetError, match=rf"kadid10k: cannot read image .*{target.name}"):
        datasets.prepare("kadid10k", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    assert not builder_class("kadid10k")(data_dir=str(tmp_path / "tfds"), file_format="array_record").is_prepared()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(target)
    with pytest.raises(DatasetError, match=rf"{target.name} is 5 x 7 but its reference .* is 12 x 16"):
        datasets.prepare("kadid10k", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")


def test_reader_errors_surface_through_prepare(tmp_path):
    expected = WRITERS["tid2013"](tmp_path / "manual")
    expected["items"][0]["dist"].unlink()
    with pytest.raises(DatasetError, match=expected["items"][0]["dist"].name):
        datasets.prepare("tid2013", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")
    with pytest.raises(DatasetError, match="live: not prepared .*give manual_dir"):
        datasets.iqa_data("live", data_dir=tmp_path / "tfds")
    with pytest.raises(DatasetError, match="set5 is a super-resolution set"):
        datasets.iqa_data("set5", data_dir=tmp_path / "tfds")


def test_ranking_set(data_dir):
    import jax.numpy as jnp
    from scipy.stats import spearmanr

    from asym_jax import metrics

    data = datasets.iqa_data("ranking", data_dir=data_dir)
    assert len(data) == 240 and data.kind == "fr" and data.higher_is_better
    assert sorted(set(data.table["distortion"])) == ["blur", "colour", "contrast", "jpeg", "noise", "resize"]
    # Within each (photograph, distortion) group, PSNR falls with the level: the proxy ranks as labelled.
    psnr = metrics.get("psnr")
    group = [i for i in range(len(data)) if data.table["ref_id"][i] == "coffee"]
    records = [data[i] for i in group]
    x = jnp.asarray(np.stack([r["image"] for r in records]) / 255.0, jnp.float32)
    y = jnp.asarray(np.stack([r["ref"] for r in records]) / 255.0, jnp.float32)
    scores = np.asarray(psnr(x, y))
    for kind in set(data.table["distortion"][group]):
        members = [j for j, i in enumerate(group) if data.table["distortion"][i] == kind]
        rho = spearmanr(scores[members], data.table["score"][np.asarray(group)[members]]).statistic
        assert rho > 0.99, (kind, rho)


def test_a_pair_whose_exif_orientations_differ_is_refused_at_preparation(tmp_path):
    """Pixels are stored as the files hold them (orientation not applied, as pyiqa and piq read them): a
    distorted image tagged as turned against its untagged reference is refused, naming both."""
    expected = WRITERS["kadid10k"](tmp_path / "manual")
    target = expected["items"][1]["dist"]
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turned 90 degrees
    with Image.open(target) as image:
        image.load()
        image.save(target, exif=exif)
    with pytest.raises(DatasetError, match=rf"kadid10k: reference .* has EXIF orientation 1 .* but distorted "
                                           rf".*{target.name} has 6 "):
        datasets.prepare("kadid10k", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "manual")

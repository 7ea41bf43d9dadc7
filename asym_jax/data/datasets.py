"""Preparing and opening the datasets by name: ``prepare``, ``sr_source``, ``iqa_data``, ``describe``.

Every dataset goes through its TFDS builder (:mod:`asym_jax.data.builders`) into ``data_dir`` (TFDS's
default, ``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``, unless given) once; later calls open the
prepared ``array_record`` files. Sets other than the embedded ``sample`` and ``ranking`` need
``manual_dir``: the folder holding the user's copy of the official release.

Prepared data is a copy: later changes to ``manual_dir`` do not reach it. Changes to the prepared files
themselves are caught: each open compares the files' sizes with those recorded when they were made
(``asym_files.json`` beside them: a truncated or replaced file fails at once), and every record read goes
through :class:`CheckedRecords`, which turns a read or decode failure (array_record checks a hash of every
chunk) into a :class:`~asym_jax.data.files.DatasetError` naming the record, its file and what to do.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from asym_jax.data.files import DatasetError

__all__ = ["CheckedRecords", "IQAData", "SPLIT_SEEDS", "SubImages", "describe", "iqa_data", "iqa_split", "names",
           "prepare", "sr_source"]

SPLIT_SEEDS = 10          # seeded 80/20 splits where a set has no official one
TRAIN_FRACTION = 0.8


def names() -> dict[str, list[str]]:
    from asym_jax.data.iqa_sources import IQA_SPECS
    from asym_jax.data.sr_sources import SR_SPECS
    return {"sr": sorted(SR_SPECS), "iqa": sorted([*IQA_SPECS, "ranking"])}


def spec_of(name: str):
    from asym_jax.data.iqa_sources import IQA_SPECS
    from asym_jax.data.ranking import RANKING_SPEC
    from asym_jax.data.sr_sources import SR_SPECS
    specs = {**SR_SPECS, **IQA_SPECS, "ranking": RANKING_SPEC}
    if name not in specs:
        known = names()
        raise DatasetError(f"unknown dataset {name!r}; SR sets: {', '.join(known['sr'])}; "
                           f"IQA sets: {', '.join(known['iqa'])}")
    return specs[name]


def prepare(name: str, *, data_dir: str | os.PathLike | None = None, manual_dir: str | os.PathLike | None = None,
            config: str | None = None):
    """The prepared TFDS builder of ``name`` (SR sets: ``config`` "hr" or "x2"/"x3"/"x4"), preparing it
    from ``manual_dir`` first if ``data_dir`` does not hold it yet."""
    import tensorflow_datasets as tfds

    from asym_jax.data.builders import EMBEDDED, builder_class

    spec_of(name)
    cls = builder_class(name)
    if config is not None and config not in [c.name for c in cls.BUILDER_CONFIGS or []]:
        raise DatasetError(f"{name}: unknown config {config!r}; known: "
                           + ", ".join(c.name for c in cls.BUILDER_CONFIGS or []))
    kwargs = {"config": config} if cls.BUILDER_CONFIGS else {}
    from asym_jax.io import local_path, workdir_path

    # TFDS reads gs:// itself: keep the URL whole (pathlib would make it gs:/...)
    data_dir = None if data_dir is None else os.fspath(workdir_path(data_dir).expanduser())
    builder = cls(data_dir=data_dir, file_format="array_record", **kwargs)
    if not builder.is_prepared():
        if name not in EMBEDDED:
            if manual_dir is None:
                raise DatasetError(f"{name}: not prepared in {builder.data_dir}; give manual_dir, the folder with "
                                   f"the official release ({cls.SPEC.url}) laid out as: {cls.SPEC.layout}")
            if not local_path(manual_dir, f"{name}: manual_dir").expanduser().is_dir():
                raise DatasetError(f"{name}: manual_dir {manual_dir} is not a folder; expected {cls.SPEC.layout}")
        config_kwargs = {}
        if manual_dir is not None:
            config_kwargs["manual_dir"] = os.fspath(pathlib.Path(manual_dir).expanduser())
        from absl import logging
        logging.info("preparing %s from %s into %s", name, manual_dir or "embedded images", builder.data_dir)
        tfds.disable_progress_bar()
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**config_kwargs))
    _check_files(builder, name)
    return builder


FILES_RECORD = "asym_files.json"  # {file name: size in bytes} of a prepared folder, written when it is made


def _size(path) -> int:
    stat = path.stat()
    return stat.st_size if hasattr(stat, "st_size") else stat.length  # local, or an epath stat of an object


def _check_files(builder, name: str) -> None:
    """Refuses prepared files whose size is not the one recorded when they were made (the first open of a
    folder prepared before this check records them)."""
    import json

    from asym_jax.io import workdir_path, write_json

    folder = workdir_path(os.fspath(builder.data_dir))
    sizes = {p.name: _size(p) for p in folder.iterdir() if ".array_record-" in p.name}
    record = folder / FILES_RECORD
    if not record.exists():
        try:
            write_json(record, sizes, sort_keys=True)
        except OSError:  # a read-only copy: nothing to compare with later
            pass
        return
    recorded = json.loads(record.read_text())
    for file, size in sorted(recorded.items()):
        if sizes.get(file) != size:
            now = "is missing" if file not in sizes else f"has {sizes[file]} bytes, not the {size} it was made with"
            raise DatasetError(f"{name}: the prepared file {folder / file} {now}: the data changed after it was "
                               f"prepared. Delete {folder} and run again to prepare it anew")


class CheckedRecords:
    """A TFDS data source whose read failures name the record and its file (see the module docstring)."""

    def __init__(self, records, builder, split: str, name: str):
        self.records, self.split, self.name = records, split, name
        info = builder.info.splits[split]
        self.files = [os.fspath(p) for p in info.filepaths]
        self.ends = np.cumsum(info.shard_lengths)

    def __len__(self) -> int:
        return len(self.records)

    def _error(self, index: int, error: Exception) -> DatasetError:
        shard = min(int(np.searchsorted(self.ends, index, side="right")), len(self.files) - 1)
        folder = os.path.dirname(self.files[shard])
        return DatasetError(f"{self.name}: record {index} of split {self.split!r} in {self.files[shard]} cannot be "
                            f"read ({error.__class__.__name__}: {str(error)[:200]}); the prepared data changed "
                            f"or was damaged after preparation. Delete {folder} and run again to prepare it anew")

    def __getitem__(self, index: int) -> dict:
        try:
            return self.records[index]
        except Exception as error:  # noqa: BLE001 - any read or decode failure of a prepared record
            raise self._error(int(index), error) from None


@dataclasses.dataclass
class SubImages:
    """The records of an SR split in the sub-image form (``sub_x<s>`` configs): ``source[i]`` is the i-th
    sub-image record; image ``k``'s sub-images are records ``first[k]`` .. ``first[k] + count[k] - 1``."""

    records: object              # TFDS data source of the sub-image records
    names: list[str]             # the HR images, in order
    first: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        return self.records[index]


def sr_source(name: str, split: str, *, data_dir=None, manual_dir=None, config: str = "hr"):
    """Random-access source of an SR split: records ``{"hr": uint8 HWC, "name": bytes[, "lr"]}``; for the
    ``sub_x<s>`` configs a :class:`SubImages` (records also hold ``top``, ``left`` and ``lr``)."""
    builder = prepare(name, data_dir=data_dir, manual_dir=manual_dir, config=config)
    if split not in builder.info.splits:
        raise DatasetError(f"{name}: no split {split!r}; it has {', '.join(builder.info.splits)}")
    records = CheckedRecords(builder.as_data_source(split=split), builder, split, name)
    if not config.startswith("sub_"):
        return records
    if "images" not in (builder.info.metadata or {}):
        raise DatasetError(f"{name}: the {config} form in {builder.data_dir} lacks its image table (prepared by an "
                           "earlier version); delete that folder and it is prepared again")
    table = builder.info.metadata["images"][split]
    return SubImages(records=records, names=list(table["name"]), first=np.asarray(table["first"], np.int64),
                     count=np.asarray(table["count"], np.int64))


@dataclasses.dataclass
class IQAData:
    """An IQA set opened for random access: ``data[i]`` is a dict with ``image`` (uint8 HWC), ``score`` and
    the label fields, plus ``ref`` (uint8 HWC) for FR sets; ``table`` holds the labels without pixels."""

    name: str
    kind: str                    # "fr" or "nr"
    score_name: str
    higher_is_better: bool
    score_range: tuple[float, float]
    table: dict[str, np.ndarray]
    source: object               # TFDS data source of the "full" split
    references: object | None    # TFDS data source of the "references" split (FR)

    def __len__(self) -> int:
        return len(self.table["score"])

    def __getitem__(self, index: int) -> dict:
        record = dict(self.source[int(index)])
        if self.references is not None and self.kind == "fr":
            record["ref"] = self.references[int(record["ref_index"])]["image"]
        return record

    def split(self, protocol: str) -> np.ndarray:
        return iqa_split(self.table, protocol, dataset=self.name)


def iqa_data(name: str, *, data_dir=None, manual_dir=None, as_nr: bool = False) -> IQAData:
    """Opens IQA set ``name``; ``as_nr=True`` drops the references (e.g. KADID-10k used as NR)."""
    spec = spec_of(name)
    if not hasattr(spec, "kind"):
        raise DatasetError(f"{name} is a super-resolution set, not an IQA set")
    builder = prepare(name, data_dir=data_dir, manual_dir=manual_dir)
    table = {k: np.asarray(v) for k, v in builder.info.metadata["table"].items()}
    fr = spec.kind == "fr" and not as_nr
    return IQAData(name=name, kind="fr" if fr else "nr", score_name=spec.score_name,
                   higher_is_better=spec.higher_is_better, score_range=tuple(spec.score_range), table=table,
                   source=CheckedRecords(builder.as_data_source(split="full"), builder, "full", name),
                   references=CheckedRecords(builder.as_data_source(split="references"), builder, "references",
                                             name) if fr else None)


def iqa_split(table: dict, protocol: str, *, dataset: str = "") -> np.ndarray:
    """Indices (into the ``full`` split) of ``protocol``:

    - ``"full"``: every image;
    - an official split name (``"train"``, ``"validation"``, ``"test"``) where the release has one;
    - ``"seed<k>/train"`` or ``"seed<k>/test"``, k in 0..9: a seeded 80/20 split of the content groups
      (``ref_id``: the reference image for synthetic sets, so no content is on both sides; the image
      itself for authentic sets).
    """
    n = len(table["score"])
    if protocol == "full":
        return np.arange(n)
    official = np.asarray(table["official_split"]).astype(str)
    if protocol in set(official) - {""}:
        return np.flatnonzero(official == protocol)
    if protocol.startswith("seed") and "/" in protocol:
        seed_text, part = protocol[4:].split("/", 1)
        if seed_text.isdigit() and 0 <= int(seed_text) < SPLIT_SEEDS and part in ("train", "test"):
            groups = np.asarray(table["ref_id"]).astype(str)
            unique = np.unique(groups)  # sorted: the same on every machine
            order = np.random.default_rng(int(seed_text)).permutation(len(unique))
            n_train = int(round(TRAIN_FRACTION * len(unique)))
            chosen = set(unique[order[:n_train]] if part == "train" else unique[order[n_train:]])
            return np.flatnonzero(np.isin(groups, list(chosen)))
    available = ["full", *sorted(set(official) - {""}), "seed0/train", "seed0/test", f"... seed{SPLIT_SEEDS - 1}/test"]
    raise DatasetError(f"{dataset or 'iqa'}: unknown split {protocol!r}; available: {', '.join(available)}")


def describe(name: str, *, data_dir=None, manual_dir=None, config: str | None = None) -> dict:
    """What ``python -m asym_jax.data info`` prints: counts per split, score range and direction, origin
    (of the SR form ``config``: "hr", "x4", "sub_x4", ...; default: the builder's first)."""
    spec = spec_of(name)
    builder = prepare(name, data_dir=data_dir, manual_dir=manual_dir, config=config)
    out = {"dataset": name, "title": spec.title, "tfds_name": builder.name, "version": str(builder.version),
           "prepared_in": os.fspath(builder.data_dir), "source": spec.url, "layout": spec.layout,
           "manual_dir": None if manual_dir is None else os.fspath(pathlib.Path(manual_dir).expanduser())}
    if hasattr(spec, "kind"):
        table = builder.info.metadata["table"]
        data = {k: np.asarray(v) for k, v in table.items()}
        counts = {"full": len(data["score"])}
        for split in sorted(set(data["official_split"]) - {""}):
            counts[split] = int(np.sum(data["official_split"] == split))
        counts["seed0/train"] = len(iqa_split(data, "seed0/train"))
        counts["seed0/test"] = len(iqa_split(data, "seed0/test"))
        if spec.kind == "fr":
            counts["references"] = builder.info.splits["references"].num_examples
        scores = data["score"].astype(np.float64)
        out.update(kind=spec.kind, num_examples=counts, official_count=spec.official_count,
                   score={"name": spec.score_name, "higher_is_better": spec.higher_is_better,
                          "nominal_range": list(spec.score_range),
                          "observed_range": [float(scores.min()), float(scores.max())]},
                   official_splits=list(spec.official_splits),
                   distortions=sorted(set(data["distortion"].tolist())))
    else:
        out.update(kind="sr", num_examples={s: v.num_examples for s, v in builder.info.splits.items()},
                   official_count=dict(spec.splits))
    return out

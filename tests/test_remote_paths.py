"""Workdirs on ``gs://``: the URL reaches the file system intact, and the jobs' file handling (atomic writes,
the train log, the manifest, reports and plots, other runs' checkpoints, the study) runs against an object
store, here a fake one with no network.

The fake (:class:`FakeObjectStore`) serves ``gs://`` through etils' epath, in place of tf.io.gfile: objects
are files under a local folder, and, like an object store, it cannot append or rename. Every test runs in
an empty current folder and fails if anything lands there: ``pathlib.Path("gs://b/x")`` is the local
``gs:/b/x``, so code that wraps a URL in ``pathlib`` writes there instead of to the store.
"""

import json
import os
import pathlib
import shutil
import types

import numpy as np
import pytest
from etils import epath
from etils.epath import backend, gpath, stat_utils

from asym_jax.errors import InputError
from asym_jax.io import is_remote, workdir_path, write_atomic, write_json


class FakeObjectStore(backend.Backend):
    """``gs://<bucket>/<key>`` as the file ``<root>/<bucket>/<key>``; no append, no rename (an object store
    has neither); :attr:`opened` records every ``(url, mode)`` opened."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.root.mkdir()
        self.opened: list[tuple[str, str]] = []

    def _local(self, path) -> str:
        url = os.fspath(path)
        assert url.startswith("gs://"), f"{url!r} reached the object store without its gs://"
        return os.path.join(self.root, url[len("gs://"):])

    def _url(self, local) -> str:
        return "gs://" + os.path.relpath(local, self.root)

    def open(self, path, mode):
        self.opened.append((os.fspath(path), mode))
        if "a" in mode or "+" in mode:
            raise OSError(f"{path}: an object store cannot append to an object")
        if "w" in mode:
            os.makedirs(os.path.dirname(self._local(path)), exist_ok=True)  # objects need no folders
        return open(self._local(path), mode, encoding=None if "b" in mode else "utf-8")

    def exists(self, path):
        return os.path.exists(self._local(path))

    def isdir(self, path):
        return os.path.isdir(self._local(path))

    def listdir(self, path):
        return os.listdir(self._local(path))

    def glob(self, path):
        import glob
        return [self._url(p) for p in glob.glob(self._local(path))]

    def walk(self, top, *, top_down=True, on_error=None):
        for root, dirs, files in os.walk(self._local(top), topdown=top_down, onerror=on_error):
            yield self._url(root), dirs, files

    def makedirs(self, path, *, exist_ok=False, mode=None):
        os.makedirs(self._local(path), exist_ok=exist_ok)

    def mkdir(self, path, *, exist_ok=False, mode=None):
        if not (exist_ok and self.isdir(path)):
            os.mkdir(self._local(path))

    def rmtree(self, path):
        shutil.rmtree(self._local(path))

    def remove(self, path):
        os.remove(self._local(path))

    def rename(self, path, dst):
        raise OSError(f"{path}: an object store has no atomic rename")

    replace = rename

    def copy(self, path, dst, overwrite):
        shutil.copyfile(self._local(path), self._local(dst))

    def stat(self, path):
        st = os.stat(self._local(path))
        return stat_utils.StatResult(is_directory=os.path.isdir(self._local(path)), length=st.st_size,
                                     mtime=int(st.st_mtime), owner=None, group=None, mode=None)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The fake object store behind every ``gs://`` path (epath's own testing helper, ``mock_epath``, patches
    the same table; tf.io.gfile, which epath prefers where TensorFlow is installed, is turned off), and an
    empty current folder that must stay empty."""
    fake = FakeObjectStore(tmp_path / "store")
    monkeypatch.setitem(gpath._PREFIX_TO_BACKEND, "gs", fake)
    monkeypatch.setattr(gpath, "_is_tf_installed", lambda: False)
    assert epath.Path("gs://bucket/probe")._backend is fake  # no call below can reach the network
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield fake
    assert not any(cwd.iterdir()), f"written to the local folder instead of gs://: {sorted(cwd.rglob('*'))}"


def test_workdir_path_keeps_urls_whole_and_local_paths_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    remote = workdir_path("gs://bucket/runs/x")
    assert isinstance(remote, epath.Path) and not isinstance(remote, pathlib.Path)
    assert str(remote / "checkpoints") == os.fspath(remote / "checkpoints") == "gs://bucket/runs/x/checkpoints"
    # A URL has no absolute form: made "absolute" it stays the URL (epath's own absolute() would not).
    assert str(workdir_path(remote / "checkpoints", absolute=True)) == "gs://bucket/runs/x/checkpoints"
    assert str(workdir_path("s3://bucket/x")) == "s3://bucket/x" and is_remote("s3://bucket/x")
    local = workdir_path("runs/x")
    assert type(local) is type(pathlib.Path()) and local == pathlib.Path("runs/x") and not is_remote(local)
    assert workdir_path("runs/x", absolute=True) == pathlib.Path.cwd() / "runs" / "x"
    assert type(workdir_path(epath.Path(str(tmp_path)))) is type(pathlib.Path())
    with pytest.raises(InputError, match="whose '//' was lost"):
        workdir_path(pathlib.Path("gs://bucket/runs/x"))  # gs:/bucket/runs/x
    with pytest.raises(InputError, match="ftp:// is not a file system"):
        workdir_path("ftp://host/x")


def test_write_atomic_writes_objects_whole_and_local_files_as_before(store, tmp_path):
    assert str(write_json("gs://bucket/runs/x/results.json", {"srcc": 0.5})) == "gs://bucket/runs/x/results.json"
    assert json.loads((store.root / "bucket/runs/x/results.json").read_text()) == {"srcc": 0.5}
    write_atomic("gs://bucket/runs/x/results.json", b"{}\n")  # replaced whole, no temporary object left
    assert sorted(p.name for p in (store.root / "bucket/runs/x").iterdir()) == ["results.json"]
    assert (store.root / "bucket/runs/x/results.json").read_bytes() == b"{}\n"
    assert store.opened == [("gs://bucket/runs/x/results.json", "wb")] * 2
    # Local: a temporary file renamed over the target, with the mode open() would give it.
    local = write_json(tmp_path / "local" / "r.json", [1])
    assert isinstance(local, pathlib.Path) and json.loads(local.read_text()) == [1]
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(local).st_mode & 0o777 == 0o666 & ~umask and os.listdir(local.parent) == ["r.json"]


def test_the_train_log_is_rewritten_on_an_object_store(store):
    from asym_jax.train.progress import TrainLog, read_train_log

    path = "gs://bucket/gan/train_log.jsonl"
    assert read_train_log(path) == []
    log = TrainLog(path, 0)
    log.append(2, {"d_real": 1.0})
    log.append(4, {"d_real": 2.0})
    assert read_train_log(path) == [{"step": 2, "d_real": 1.0}, {"step": 4, "d_real": 2.0}]
    TrainLog(path, 2).append(3, {"d_real": 5.0})  # resumed from step 2: step 4 is dropped
    assert [json.loads(line) for line in (store.root / "bucket/gan/train_log.jsonl").read_text().splitlines()] == \
        [{"step": 2, "d_real": 1.0}, {"step": 3, "d_real": 5.0}]
    assert {mode for _, mode in store.opened} <= {"r", "wb"}


def test_the_manifest_is_written_read_and_checked_on_an_object_store(store):
    from asym_jax.manifest import ManifestError, check_manifest, recorded_trunks, write_manifest

    workdir = "gs://bucket/gan"
    trunks = {"discriminator": {"backbone": "vgg16", "source": "random", "seed": 3, "sha256": None}}
    device = types.SimpleNamespace(platform="cpu", device_kind="fake")
    write_manifest(workdir, trunks, devices_used=[device], command=["python", "-m", "asym_jax.main"])
    assert json.loads((store.root / "bucket/gan/manifest.json").read_text())["trunks"] == trunks
    assert recorded_trunks(workdir) == trunks
    check_manifest(workdir, trunks)
    with pytest.raises(ManifestError, match="other trunk weights"):
        check_manifest(workdir, {"discriminator": {**trunks["discriminator"], "seed": 4}})
    manifest = write_manifest(workdir, trunks, resumed_step=5, devices_used=[device], command=["again"])
    assert [r["step"] for r in manifest["resumes"]] == [5] and recorded_trunks(workdir) == trunks
    assert recorded_trunks("gs://bucket/nothing-here") == {}


def test_reports_plots_and_images_are_written_to_an_object_store(store):
    from asym_jax.data.images import read_image
    from asym_jax.eval.iqa_fr import _read_scores, _write_scores
    from asym_jax.eval.report import scatter_plot
    from asym_jax.eval.sr import _write_png

    rng = np.random.default_rng(0)
    prediction = rng.normal(size=20)
    scatter_plot("gs://bucket/fr/plots/set__ssim.png", {"dataset": "set", "srcc": 0.5, "plcc": 0.4}, prediction,
                 prediction + rng.normal(size=20), xlabel="ssim", score_name="MOS")
    assert (store.root / "bucket/fr/plots/set__ssim.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = {"name": np.asarray(["a.png", "b.png"]), "ref_id": np.asarray(["r", "r"]),
             "distortion": np.asarray(["jpeg", "blur"]), "score": np.asarray([3.0, 4.0])}
    scores = workdir_path("gs://bucket/fr") / "scores" / "set" / "ssim.csv"
    _write_scores(scores, "ssim", {0: 0.25, 1: 0.75}, table)
    assert _read_scores(scores, "ssim", table) == {0: 0.25, 1: 0.75}
    image = (np.arange(4 * 6 * 3) % 256).astype(np.uint8).reshape(4, 6, 3)
    _write_png("gs://bucket/gan/eval/images", "x_sr.png", image)
    assert np.array_equal(np.round(read_image("gs://bucket/gan/eval/images/x_sr.png") * 255), image)


def test_other_runs_are_read_from_an_object_store(store):
    from asym_jax.weights.runs import check_run_source, checkpoint_steps, parse_run_source, run_provenance

    run = store.root / "bucket" / "gan"
    for step in (3, 5):
        (run / "checkpoints" / str(step) / "state").mkdir(parents=True)
    (run / "checkpoints" / "7").mkdir()  # no state: not a finished checkpoint
    (run / "config.json").write_text(json.dumps({"job": "sr_gan", "discriminator": "vgg16_patch"}))
    workdir, step = parse_run_source("discriminator:gs://bucket/gan@3")
    assert (str(workdir), step) == ("gs://bucket/gan", 3)
    assert checkpoint_steps(workdir) == [3, 5]
    workdir, step = check_run_source("discriminator:gs://bucket/gan", "vgg16")
    assert (str(workdir), step) == ("gs://bucket/gan", 5)
    record = run_provenance(workdir, step, "vgg16", {"w": np.ones(2, np.float32)})
    assert record["source"] == "discriminator:gs://bucket/gan@5"
    with pytest.raises(InputError, match="no checkpoint at step 4"):
        check_run_source("discriminator:gs://bucket/gan@4", "vgg16")


def test_orbax_is_given_the_url_of_the_checkpoints(store, monkeypatch):
    import orbax.checkpoint as ocp

    from asym_jax.train.checkpoints import Checkpoints

    given = []
    monkeypatch.setattr(ocp, "CheckpointManager", lambda directory, options: given.append(directory))
    Checkpoints(workdir_path("gs://bucket/gan"), 2)
    assert [os.fspath(d) for d in given] == ["gs://bucket/gan/checkpoints"]


def test_tfds_is_given_the_url_of_the_data_dir(store, monkeypatch):
    from asym_jax.data import builders, datasets

    given = []

    class Builder:  # stands for the TFDS builder, which reads gs:// itself
        BUILDER_CONFIGS = None

        def __init__(self, data_dir, file_format):
            given.append(data_dir)
            self.data_dir = data_dir + "/asym_ranking/1.0.0"

        def is_prepared(self):
            return True

    monkeypatch.setattr(builders, "builder_class", lambda name: Builder)
    shard = store.root / "bucket/tfds/asym_ranking/1.0.0/asym_ranking-full.array_record-00000-of-00001"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"x" * 10)
    datasets.prepare("ranking", data_dir="gs://bucket/tfds")
    assert given == ["gs://bucket/tfds"]
    # The prepared files' sizes, recorded on the store at the first open and compared at the next.
    recorded = store.root / "bucket/tfds/asym_ranking/1.0.0" / datasets.FILES_RECORD
    assert json.loads(recorded.read_text()) == {shard.name: 10}
    datasets.prepare("ranking", data_dir="gs://bucket/tfds")
    shard.write_bytes(b"x" * 4)
    with pytest.raises(InputError, match=f"the prepared file gs://bucket/tfds/asym_ranking/1.0.0/{shard.name} has 4 "
                                         "bytes, not the 10 it was made with"):
        datasets.prepare("ranking", data_dir="gs://bucket/tfds")


def test_inputs_read_with_local_file_io_refuse_a_url(tmp_path):
    from asym_jax.eval.scoring import match_pairs
    from asym_jax.weights.selection import resolve_trunk

    config = types.SimpleNamespace(weights_dir="gs://bucket/weights", seed=0)
    with pytest.raises(InputError, match="weights_dir gs://bucket/weights: must be a local path"):
        resolve_trunk("resnet50", "imagenet", "discriminator", config, what="d_init", alternative="random")
    with pytest.raises(InputError, match="weights gs://bucket/resnet50: must be a local path"):
        resolve_trunk("resnet50", "gs://bucket/resnet50", "discriminator", config, what="d_init", alternative="x")
    with pytest.raises(InputError, match="ref gs://bucket/ref: must be a local path"):
        match_pairs("gs://bucket/ref", tmp_path)


def test_cells_are_claimed_on_an_object_store(store, monkeypatch):
    """No exclusive create there: a claim is written with a token and read back after SETTLE_SECONDS; the
    later of two writes in that window wins for both writers."""
    from asym_jax.experiments import cells

    folder = workdir_path("gs://bucket/study/cells/fr-iqa")
    slept = []
    monkeypatch.setattr(cells.time, "sleep", slept.append)
    assert cells.claim(folder) is None and slept == [cells.SETTLE_SECONDS]
    mine = json.loads((store.root / "bucket/study/cells/fr-iqa/.claim").read_text())
    assert mine["pid"] == os.getpid() and mine["token"]
    assert cells.claim(folder)["token"] == mine["token"]  # held by a live process: refused
    cells.release(folder)
    assert not (store.root / "bucket/study/cells/fr-iqa/.claim").exists()
    cells.release(folder)  # releasing twice is harmless
    # A claim left by a dead process of this host is taken over; one from another host is respected.
    write_json(folder / ".claim", {"host": cells.socket.gethostname(), "pid": 2**22 + 1, "since": "?"})
    assert cells.claim(folder) is None
    write_json(folder / ".claim", {"host": "other-vm", "pid": 1, "since": "?"})
    assert cells.claim(folder)["host"] == "other-vm"
    cells.release(folder)
    # Two processes found the cell free and wrote within the settling time: the later write wins for both.
    monkeypatch.setattr(cells.time, "sleep", lambda s: write_json(folder / ".claim", {"host": "other-vm", "pid": 1,
                                                                                      "token": "later"}))
    assert cells.claim(folder)["token"] == "later"


def test_a_study_on_an_object_store_plans_and_reports(store):
    from helpers import load_config

    from asym_jax.experiments import study

    config = load_config("study.py", "tiny")
    config.plan_only = True
    result = study.run_job(config, "gs://bucket/study")
    assert set(result["cells"].values()) == {"missing"}
    planned = {c["name"]: c for c in json.loads((store.root / "bucket/study/plan.json").read_text())["cells"]}
    assert "--workdir=gs://bucket/study/cells/fr-iqa " in planned["fr-iqa"]["command"] + " "
    judges = planned["sr-l1-gan0-seed0"]["overrides"]["eval_metrics"]
    assert judges[-1] == "nr:gs://bucket/study/cells/nr-alexnet-random"
    source = planned["nr-alexnet-from-d-alexnet_image-gan0.05-seed0"]["overrides"]["init"]
    assert source == "discriminator:gs://bucket/study/cells/d-alexnet_image-gan0.05-seed0"
    config.plan_only, config.report_only = False, True
    report = study.run_job(config, "gs://bucket/study")["report"]
    assert report["judge_labels"]["nr:gs://bucket/study/cells/nr-alexnet-random"] == "nr:cells/nr-alexnet-random"
    assert "| fr-iqa | fidelity | missing |" in (store.root / "bucket/study/report.md").read_text()
    assert json.loads((store.root / "bucket/study/report.json").read_text())["cells"] == report["cells"]


def test_a_workdir_on_an_object_store_is_locked_by_a_renewed_lease(store, monkeypatch):
    """No flock there: the lock is an object written with a token, read back after SETTLE_SECONDS, renewed
    while the run lives; a second run is refused naming the holder; a lease not renewed for LEASE_SECONDS, or
    one of a dead process of this host, is taken over; the object goes when the run ends."""
    import socket
    import time

    from asym_jax import io
    from asym_jax.errors import WorkdirBusyError

    monkeypatch.setattr(io, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(io, "RENEW_SECONDS", 0.05)
    lock = store.root / "bucket/run/.lock"
    with io.workdir_lock("gs://bucket/run"):
        first = json.loads(lock.read_text())
        assert first["pid"] == os.getpid() and first["token"]
        time.sleep(0.3)
        assert json.loads(lock.read_text())["renewed"] > first["renewed"]  # renewed while it runs
        with pytest.raises(WorkdirBusyError, match=f"gs://bucket/run is in use by {socket.gethostname()} pid "
                                                   f"{os.getpid()} "):
            with io.workdir_lock("gs://bucket/run"):
                pass
    assert not lock.exists()
    # Another host's lease is watched for a renewal period: renewed (alive), the new run is refused; not renewed
    # (its VM vanished), it is taken when it runs out. An expired lease, or a dead local process's, at once.
    sleep = time.sleep
    monkeypatch.setattr(io, "LEASE_SECONDS", 0.4)
    write_json("gs://bucket/run/.lock", {"host": "other-vm", "pid": 1, "renewed": time.time(), "command": "x"})
    monkeypatch.setattr(io.time, "sleep", lambda s: write_json("gs://bucket/run/.lock", {
        "host": "other-vm", "pid": 1, "renewed": time.time() + 1, "command": "x"}))
    with pytest.raises(WorkdirBusyError, match="in use by other-vm pid 1 "):
        with io.workdir_lock("gs://bucket/run"):
            pass
    monkeypatch.setattr(io.time, "sleep", sleep)
    write_json("gs://bucket/run/.lock", {"host": "other-vm", "pid": 1, "renewed": time.time(), "command": "x"})
    start = time.time()
    with io.workdir_lock("gs://bucket/run"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.time() - start >= 0.3
    write_json("gs://bucket/run/.lock", {"host": "other-vm", "pid": 1, "renewed": time.time() - io.LEASE_SECONDS - 1})
    with io.workdir_lock("gs://bucket/run"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    write_json("gs://bucket/run/.lock", {"host": socket.gethostname(), "pid": 2**22 + 1, "renewed": time.time()})
    with io.workdir_lock("gs://bucket/run"):
        pass
    # Two runs found it free and wrote within the settling time: the later write wins for both.
    monkeypatch.setattr(io.time, "sleep", lambda s: write_json("gs://bucket/run/.lock", {
        "host": "other-vm", "pid": 7, "renewed": time.time(), "token": "later"}))
    with pytest.raises(WorkdirBusyError, match="in use by other-vm pid 7 "):
        with io.workdir_lock("gs://bucket/run"):
            pass

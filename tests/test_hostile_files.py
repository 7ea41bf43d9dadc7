"""Hostile weight and label files: every reader refuses them with one project error naming the file, and no
payload runs.

The corpus is built here, byte by byte (no binary file is committed). Code payloads create a marker file: each
is first shown to create it when loaded the ordinary way (``pickle.loads``, ``torch.load``, ``np.load``), then
every reader is given the same bytes, and the marker must not exist afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import resource
import struct
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

from asym_jax.data.files import DatasetError, read_csv_rows, read_mat, read_xlsx_rows
from asym_jax.data.iqa_sources import read_csiq, read_live, read_spaq
from asym_jax.errors import InputError
from asym_jax.weights import load_converted, load_npz, read_numpy_pickle, read_torch_checkpoint
from asym_jax.weights.pytorch import from_pytorch
from asym_jax.weights.readers import UnsafePickleError, WeightFileError
from iqa_fixtures import write_csiq, write_live, write_spaq

# ----------------------------------------------------------------------------------------------------------
# A small pickle assembler: opcodes by hand, so that any global and any argument can be written
# ----------------------------------------------------------------------------------------------------------


def _g(module: str, name: str) -> bytes:
    """GLOBAL: pushes ``module.name`` (what a reader's find_class must refuse or replace)."""
    return f"c{module}\n{name}\n".encode()


def _v(value) -> bytes:
    """Pushes a plain value (its protocol-2 pickle without PROTO and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _call(function: bytes, *args: bytes) -> bytes:
    """``function(*args)``: MARK, the arguments, TUPLE, REDUCE."""
    return function + b"(" + b"".join(args) + b"tR"


def _pickle(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _dtype(code: str, byteorder: str = "<") -> bytes:
    """A pickled numpy dtype as numpy writes it: dtype(code, False, True) then BUILD with its state."""
    state = _v((3, byteorder, None, None, None, -1, -1, 0))
    return _call(_g("numpy", "dtype"), _v(code), _v(False), _v(True)) + state + b"b"


def _ndarray(shape, dtype: bytes, raw: bytes) -> bytes:
    """A pickled ndarray as numpy writes it: _reconstruct(ndarray, (0,), b'b') then BUILD with its state;
    ``raw`` pushes the data (``_v(bytes)``, or any expression)."""
    new = _call(_g("numpy.core.multiarray", "_reconstruct"), _g("numpy", "ndarray"), _v((0,)), _v(b"b"))
    return new + b"(" + _v(1) + _v(shape) + dtype + _v(False) + raw + b"tb"


def _storage(key="0", numel=6, kind="FloatStorage") -> bytes:
    """A persistent id ('storage', torch.<kind>, key, 'cpu', numel), loaded with BINPERSID."""
    return b"(" + _v("storage") + _g("torch", kind) + _v(key) + _v("cpu") + _v(numel) + b"tQ"


def _tensor(offset=0, size=(2, 3), stride=(3, 1), storage: bytes | None = None) -> bytes:
    return _call(_g("torch._utils", "_rebuild_tensor_v2"), storage or _storage(), _v(offset), _v(size), _v(stride),
                 _v(False), _call(_g("collections", "OrderedDict")))


def _state(value: bytes, key: str = "w") -> bytes:
    """A one-entry dict {key: value}."""
    return _pickle(b"}" + _v(key) + value + b"s")


# ----------------------------------------------------------------------------------------------------------
# Containers: the zip and legacy PyTorch formats, npz
# ----------------------------------------------------------------------------------------------------------

_FLOATS = np.arange(6, dtype="<f4").tobytes()


def _torch_zip(path, data_pkl: bytes, storages: dict | None = None, *, prefix="archive/", extra=(), compress=None,
               byteorder=b"little"):
    """A zip-format checkpoint: ``prefix``data.pkl, byteorder, data/<key> members, then ``extra`` (name, bytes)."""
    storages = {"0": _FLOATS} if storages is None else storages
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        archive.writestr(prefix + "data.pkl", data_pkl)
        archive.writestr(prefix + "byteorder", byteorder)
        archive.writestr(prefix + "version", b"3\n")
        for key, raw in storages.items():
            archive.writestr(f"{prefix}data/{key}", raw, compress_type=compress or zipfile.ZIP_STORED)
        for name, content in extra:
            archive.writestr(name, content)
    return path


def _legacy(path, main: bytes, keys=("0",), storages=((6, _FLOATS),), *, magic=0x1950A86A20F9469CFC6C, protocol=1001,
            sys_info=None):
    """A legacy-format checkpoint: magic, protocol and sys_info pickles, the object pickle, the storage keys
    pickle, then each storage as its element count (int64) and its bytes."""
    sys_info = {"protocol_version": 1001, "little_endian": True} if sys_info is None else sys_info
    out = b"".join(pickle.dumps(v, protocol=2) for v in (magic, protocol, sys_info)) + main
    out += pickle.dumps(list(keys), protocol=2)
    for numel, raw in storages:
        out += struct.pack("<q", numel) + raw
    path.write_bytes(out)
    return path


def _npz(path, members, compress=zipfile.ZIP_STORED):
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression=compress) as archive:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        for name, content in members:
            archive.writestr(name, content)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _patch_central_directory(path, name: str, *, file_size=None, flag_bits=None):
    """Rewrites the central-directory entry of member ``name``: its declared uncompressed size, its flags."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + struct.unpack_from("<H", data, at + 28)[0]] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    if file_size is not None:
        struct.pack_into("<I", data, at + 24, file_size)
    if flag_bits is not None:
        struct.pack_into("<H", data, at + 8, flag_bits)
    path.write_bytes(bytes(data))
    return path


def _refused(read, path, error=WeightFileError):
    """``read(path)`` raises ``error`` with a one-line message naming the file; returns the message."""
    with pytest.raises(error) as caught:
        read(path)
    message = str(caught.value)
    assert isinstance(caught.value, (InputError, UnsafePickleError)), type(caught.value)
    assert str(path) in message and "\n" not in message and len(message) < 2000, message
    return message


# ----------------------------------------------------------------------------------------------------------
# Code payloads: they run under pickle.loads, never in a reader
# ----------------------------------------------------------------------------------------------------------


class _Touch:
    """A classic exploit: unpickling calls os.system through __reduce__."""

    def __init__(self, marker):
        self.command = f"touch {marker}"

    def __reduce__(self):
        return os.system, (self.command,)


def _payloads(marker, tmp_path) -> dict[str, bytes]:
    touch, write = f"touch {marker}", f"open({str(marker)!r}, 'w').close()"
    second = tmp_path / "second.pkl"
    second.write_bytes(pickle.dumps(_Touch(marker)))
    system = _call(_g("os", "system"), _v(touch))
    return {
        "reduce_os_system": pickle.dumps(_Touch(marker), protocol=2),
        "stack_global_protocol_4": pickle.dumps(_Touch(marker), protocol=4),
        "protocol_0": pickle.dumps(_Touch(marker), protocol=0),
        "inst_opcode": b"(" + _v(touch) + b"ios\nsystem\n.",
        "global_os_system": _pickle(system),
        "builtins_exec": _pickle(_call(_g("builtins", "exec"), _v(write))),
        "builtins_eval": _pickle(_call(_g("builtins", "eval"), _v(write))),
        "builtins_import_getattr": _pickle(_call(_call(_g("builtins", "getattr"),
                                                       _call(_g("builtins", "__import__"), _v("os")), _v("system")),
                                                 _v(touch))),
        "subprocess_popen": _pickle(_call(_g("subprocess", "Popen"), _v(["touch", str(marker)]))),
        "numpy_load_of_a_pickle": _pickle(_call(_g("numpy", "load"), _v(str(second)), _v(None), _v(True))),
        "ordered_dict_item": _pickle(_call(_g("collections", "OrderedDict"), b"](" + _v("k") + system + b"ta")),
        "inside_a_tensor": _state(_call(_g("torch._utils", "_rebuild_tensor_v2"), system, _v(0), _v((1,)), _v((1,)))),
        "inside_an_ndarray": _pickle(_ndarray((1,), _dtype("f4"), system)),
    }


def _load_the_ordinary_way(data: bytes) -> None:
    import torch  # noqa: F401 - the torch payload needs torch._utils importable

    try:
        result = pickle.loads(data)
    except Exception:  # noqa: BLE001 - some payloads fail after they ran (a tensor of os.system's status)
        return
    if hasattr(result, "wait"):
        result.wait()  # subprocess.Popen


PAYLOAD_NAMES = ["builtins_eval", "builtins_exec", "builtins_import_getattr", "global_os_system", "inside_a_tensor",
                 "inside_an_ndarray", "inst_opcode", "numpy_load_of_a_pickle", "ordered_dict_item", "protocol_0",
                 "reduce_os_system", "stack_global_protocol_4", "subprocess_popen"]


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_code_payloads_run_under_pickle_but_in_no_reader(tmp_path, name):
    marker = tmp_path / "payload_ran"
    payload = _payloads(marker, tmp_path)[name]
    _load_the_ordinary_way(payload)
    assert marker.exists(), f"{name}: the payload should work under pickle.loads"
    marker.unlink()

    assert sorted(_payloads(marker, tmp_path)) == PAYLOAD_NAMES
    files = {
        "numpy pickle": (read_numpy_pickle, tmp_path / "w.pkl"),
        "torch zip": (read_torch_checkpoint, _torch_zip(tmp_path / "z.pth", payload)),
        "torch legacy": (read_torch_checkpoint, _legacy(tmp_path / "l.pth", payload)),
        "legacy header": (read_torch_checkpoint, tmp_path / "h.pth"),
        "from_pytorch": (lambda p: from_pytorch("patchgan", p), tmp_path / "z.pth"),
        "npz member": (load_npz, _npz(tmp_path / "a.npz", [("w.pkl", payload), ("x.npy", payload)])),
    }
    (tmp_path / "w.pkl").write_bytes(payload)
    (tmp_path / "h.pth").write_bytes(payload + payload)
    for what, (read, path) in files.items():
        _refused(read, path, WeightFileError if what == "npz member" else UnsafePickleError)
        assert not marker.exists(), f"{name} ran through {what}"


def test_the_torch_containers_are_real_exploits_for_torch_load(torch, tmp_path):
    """The zip and legacy files made here run a payload under torch.load(weights_only=False); not in the reader."""
    marker = tmp_path / "payload_ran"
    payload = _state(_call(_g("os", "system"), _v(f"touch {marker}")))
    for path in (_torch_zip(tmp_path / "z.pth", payload), _legacy(tmp_path / "l.pth", payload, keys=(), storages=())):
        torch.load(path, weights_only=False)
        assert marker.exists(), path
        marker.unlink()
        _refused(read_torch_checkpoint, path, UnsafePickleError)
        assert not marker.exists()


def test_an_object_npz_is_a_real_exploit_for_np_load_but_not_for_load_npz(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Touch(marker)
    path = _npz(tmp_path / "evil.npz", [("a.npy", _npy(evil))])
    with np.load(path, allow_pickle=True) as data:
        data["a"]
    assert marker.exists()
    marker.unlink()
    assert "dtype object" in _refused(load_npz, path)
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------------------
# Refusals without a payload: forged objects, absurd sizes, damaged structure
# ----------------------------------------------------------------------------------------------------------

NUMPY_PICKLES = {
    "object_array": pickle.dumps(np.array([1, "x"], dtype=object)),
    "object_field": pickle.dumps(np.zeros(2, dtype=[("a", "O")])),
    "structured": pickle.dumps(np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])),
    "huge_itemsize": _pickle(_ndarray((1,), _dtype("V2147483647"), _v(b""))),
    "string_dtype": _pickle(_ndarray((1,), _dtype("U3"), _v(b"\0" * 12))),
    "buffer_shorter_than_shape": _pickle(_ndarray((7,), _dtype("f4"), _v(b"\0" * 24))),
    "negative_shape": _pickle(_ndarray((-1,), _dtype("f4"), _v(b""))),
    "huge_shape": _pickle(_ndarray((2**40, 2**40), _dtype("f4"), _v(b""))),
    "shape_of_text": _pickle(_ndarray(("a",), _dtype("f4"), _v(b""))),
    "forty_dimensions": _pickle(_ndarray((1,) * 40, _dtype("f4"), _v(b"\0" * 4))),
    "list_as_array_data": _pickle(_call(_g("numpy.core.numeric", "_frombuffer"), _v([1, 2]), _dtype("u1"), _v((2,)),
                                        _v("C"))),
    "frombuffer_bad_order": _pickle(_call(_g("numpy.core.numeric", "_frombuffer"), _v(b"ab"), _dtype("u1"), _v((2,)),
                                          _v("Z"))),
    "reconstruct_of_another_class": _pickle(_call(_g("numpy.core.multiarray", "_reconstruct"),
                                                  _g("collections", "OrderedDict"), _v((0,)), _v(b"b"))),
    "reconstruct_never_filled": _pickle(_call(_g("numpy.core.multiarray", "_reconstruct"), _g("numpy", "ndarray"),
                                              _v((0,)), _v(b"b"))),
    "scalar_short_data": _pickle(_call(_g("numpy.core.multiarray", "scalar"), _dtype("f8"), _v(b"\0"))),
    "codecs_rot13": _pickle(_call(_g("_codecs", "encode"), _v("x"), _v("rot13"))),
    "dtype_left_over": _pickle(_dtype("f4")),
    "build_on_an_allowed_function": _pickle(_g("numpy.core.multiarray", "scalar") + _v((None, {"__defaults__": (1,)}))
                                            + b"b"),
    "self_reference": pickle.dumps((lambda x: (x.append(x), x)[1])([])),
    "nested_too_deeply": b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".",
    "memo_index_bomb": b"\x80\x02N" + b"r" + struct.pack("<I", 2**26) + b".",  # pickle would zero 1 GiB
    "frame_crossing_an_opcode": b"\x80\x05\x95" + struct.pack("<Q", 3) + b"\x96" + struct.pack("<Q", 2) + b"ab.",
    "unknown_opcode": b"\x80\x02\xff.",
    "truncated": pickle.dumps({"w": np.ones(3)})[:-9],
    "empty": b"",
    "ext_opcode": b"\x80\x02\x82\x07.",
}


@pytest.mark.parametrize("name", sorted(NUMPY_PICKLES))
def test_numpy_pickle_reader_refuses(tmp_path, name):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(NUMPY_PICKLES[name])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    _refused(read_numpy_pickle, path)
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000, "the memo bomb allocated"


def test_numpy_pickle_reader_is_not_poisoned_by_an_earlier_file(tmp_path):
    """A refused BUILD on an allowed function leaves it as it was: later files read the same."""
    (tmp_path / "bad.pkl").write_bytes(NUMPY_PICKLES["build_on_an_allowed_function"])
    _refused(read_numpy_pickle, tmp_path / "bad.pkl", UnsafePickleError)
    (tmp_path / "good.pkl").write_bytes(pickle.dumps({"s": np.float64(2.0), "a": np.arange(3)}, protocol=2))
    assert read_numpy_pickle(tmp_path / "good.pkl")["s"] == 2.0


def test_shared_containers_are_read_once_not_as_a_tree(tmp_path):
    """64 lists each holding the previous one twice: a tree walk is 2^64 steps; the reader keeps the sharing."""
    level = b"(h%ch%clq%c"  # MARK, the previous list twice, LIST, memoized
    body = b"]q\x00" + b"".join(level % (i - 1, i - 1, i) for i in range(1, 65))
    path = tmp_path / "dag.pkl"
    path.write_bytes(b"\x80\x02" + body + b".")
    start = time.perf_counter()
    out = read_numpy_pickle(path)
    assert time.perf_counter() - start < 2 and out[0] is out[1]
    _torch_zip(tmp_path / "dag.pth", path.read_bytes(), {})
    assert read_torch_checkpoint(tmp_path / "dag.pth")[0] is not None


TORCH_PICKLES = {
    "broadcast_bomb": _state(_tensor(0, (10**6, 10**6), (0, 0))),
    "negative_size": _state(_tensor(0, (-1,), (1,))),
    "negative_stride": _state(_tensor(3, (2,), (-1,))),
    "negative_offset": _state(_tensor(-1, (2,), (1,))),
    "offset_beyond_storage": _state(_tensor(10**12, (2,), (1,))),
    "stride_beyond_storage": _state(_tensor(0, (2, 2), (10**15, 1))),
    "huge_size": _state(_tensor(0, (2**70,), (1,))),
    "size_of_text": _state(_tensor(0, ("a",), (1,))),
    "forty_dimensions": _state(_tensor(0, (1,) * 40, (1,) * 40)),
    "size_and_stride_disagree": _state(_tensor(0, (2, 3), (1,))),
    "not_a_storage": _state(_call(_g("torch._utils", "_rebuild_tensor_v2"), _v("x"), _v(0), _v((1,)), _v((1,)))),
    "declared_numel_absurd": _state(_tensor(storage=_storage(numel=10**12))),
    "storage_key_traversal": _state(_tensor(storage=_storage(key="../../etc/passwd"))),
    "storage_missing": _state(_tensor(storage=_storage(key="7"))),
    "storage_kind_unknown": _state(_tensor(storage=_storage(kind="UntypedStorage"))),
    "bfloat16": _state(_tensor(storage=_storage(kind="BFloat16Storage"))),
    "persistent_id_short": _state(b"(" + _v("storage") + b"tQ"),
    "persistent_id_module": _state(b"(" + _v("module") + _v("x") + _v("0") + b"tQ"),
    "build_on_a_tensor": _state(_tensor() + _v({"size": (10**9,)}) + b"b"),
    "build_on_a_storage_type": _state(_g("torch", "FloatStorage") + _v((None, {"dtype": "O"})) + b"b"),
    "torch_size": _state(_call(_g("torch", "Size"), _v((1, 2)))),
    "integer_key_cycle": pickle.dumps((lambda d: (d.__setitem__(1, d), d)[1])({}), protocol=2),
}


@pytest.mark.parametrize("name", sorted(TORCH_PICKLES))
def test_torch_readers_refuse_forged_tensors(tmp_path, name):
    data = TORCH_PICKLES[name]
    start = time.perf_counter()
    _refused(read_torch_checkpoint, _torch_zip(tmp_path / "z.pth", data))
    _refused(read_torch_checkpoint, _legacy(tmp_path / "l.pth", data))
    assert time.perf_counter() - start < 5


def _views(count: int, numel: int) -> bytes:
    """A dict of ``count`` tensors, each a view of most of one storage of ``numel`` float32."""
    items = b"".join(_v(f"v{i}") + _tensor(i, (numel - 64,), (1,), _storage(numel=numel)) for i in range(count))
    return _pickle(b"}(" + items + b"u")


def test_many_views_of_one_storage_are_refused_beyond_the_budget(tmp_path):
    """Each view becomes a copy: the copies may take twice the storages' bytes plus 64 MiB, not 40 times."""
    numel = 4 << 20  # 16 MiB of float32
    path = _torch_zip(tmp_path / "z.pth", _views(40, numel), {"0": bytes(numel * 4)})
    assert "twice" in _refused(read_torch_checkpoint, path)
    assert len(read_torch_checkpoint(_torch_zip(tmp_path / "ok.pth", _views(2, numel), {"0": bytes(numel * 4)}))) == 2


def _valid_state() -> bytes:
    return _state(_tensor())


def test_hand_made_containers_read_when_valid(tmp_path):
    for path in (_torch_zip(tmp_path / "z.pth", _valid_state()), _legacy(tmp_path / "l.pth", _valid_state())):
        np.testing.assert_array_equal(read_torch_checkpoint(path)["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


ZIP_CASES = {
    "traversal_member": dict(extra=[("../../x", b"data")]),
    "traversal_data_pkl": dict(prefix="../archive/"),
    "absolute_member": dict(extra=[("/etc/x", b"data")]),
    "duplicate_member": dict(extra=[("archive/data/0", _FLOATS)]),
    "two_data_pkl": dict(extra=[("other/data.pkl", b"x")]),
    "deflated_storage": dict(storages={"0": bytes(8 << 20)}, compress=zipfile.ZIP_DEFLATED),
    "storage_of_wrong_size": dict(storages={"0": _FLOATS[:-2]}),
    "big_endian": dict(byteorder=b"big"),
}


@pytest.mark.parametrize("name", sorted(ZIP_CASES))
def test_zip_checkpoint_structure_is_checked(tmp_path, name):
    options = dict(ZIP_CASES[name])
    data = _valid_state()
    if name == "deflated_storage":
        data = _state(_tensor(0, (1,), (1,), _storage(numel=2 << 20)))
    _refused(read_torch_checkpoint, _torch_zip(tmp_path / "z.pth", data, **options))


def test_zip_members_that_declare_more_than_they_hold_are_refused_before_reading(tmp_path):
    path = _torch_zip(tmp_path / "z.pth", _state(_tensor(0, (1,), (1,), _storage(numel=2**29))))
    _patch_central_directory(path, "archive/data/0", file_size=2**31)  # what the pickle says it needs
    assert "declares more bytes" in _refused(read_torch_checkpoint, path)
    path = _torch_zip(tmp_path / "y.pth", _valid_state())
    _patch_central_directory(path, "archive/data/0", file_size=2**31)
    assert "declares 6 elements" in _refused(read_torch_checkpoint, path)
    path = _torch_zip(tmp_path / "e.pth", _valid_state())
    _patch_central_directory(path, "archive/data/0", flag_bits=0x1)
    assert "encrypted" in _refused(read_torch_checkpoint, path)


def test_damaged_zip_archives_are_refused(tmp_path):
    good = _torch_zip(tmp_path / "z.pth", _valid_state()).read_bytes()
    for name, data in {"half": good[:len(good) // 2], "no_data_pkl": good.replace(b"data.pkl", b"data.pkX"),
                       "flipped_directory": good[:-30] + bytes([good[-30] ^ 0xFF]) + good[-29:]}.items():
        (tmp_path / f"{name}.pth").write_bytes(data)
        _refused(read_torch_checkpoint, tmp_path / f"{name}.pth")


LEGACY_CASES = {
    "wrong_magic": dict(magic=12345),
    "wrong_protocol": dict(protocol=7),
    "sys_info_not_a_dict": dict(sys_info=[1, 2]),
    "big_endian": dict(sys_info={"little_endian": False}),
    "storage_truncated": dict(storages=((6, _FLOATS[:10]),)),
    "storage_negative_length": dict(storages=((-6, _FLOATS),)),
    "storage_absurd_length": dict(storages=((2**62, _FLOATS),)),
    "storage_never_written": dict(keys=(), storages=()),
    "unknown_storage_key": dict(keys=("0", "9"), storages=((6, _FLOATS), (6, _FLOATS))),
    "keys_not_a_list": dict(keys="0"),
    "no_storage_length": dict(storages=()),
}


@pytest.mark.parametrize("name", sorted(LEGACY_CASES))
def test_legacy_checkpoint_structure_is_checked(tmp_path, name):
    options = dict(LEGACY_CASES[name])
    if name == "keys_not_a_list":
        path = tmp_path / "l.pth"
        data = _legacy(path, _valid_state(), keys=()).read_bytes().replace(pickle.dumps([], protocol=2),
                                                                          pickle.dumps("0", protocol=2))
        path.write_bytes(data + struct.pack("<q", 6) + _FLOATS)
    elif name == "no_storage_length":
        path = _legacy(tmp_path / "l.pth", _valid_state(), storages=())
    else:
        path = _legacy(tmp_path / "l.pth", _valid_state(), **options)
    _refused(read_torch_checkpoint, path)


NPZ_CASES = {
    "object_array": [("a.npy", _npy(np.array([1, "x"], dtype=object)))],
    "object_field": [("a.npy", _npy(np.zeros(2, dtype=[("a", "O")])))],
    "structured": [("a.npy", _npy(np.zeros(2, dtype=[("a", "f4")])))],
    "pickled_member": [("a.pkl", pickle.dumps(np.ones(2)))],
    "pickle_named_npy": [("a.npy", pickle.dumps(np.ones(2)))],
    "shorter_than_its_header": [("a.npy", _npy(np.ones(4))[:-8])],
    "longer_than_its_header": [("a.npy", _npy(np.ones(4)) + b"\0" * 8)],
    "traversal": [("../../a.npy", _npy(np.ones(2)))],
    "duplicate": [("a.npy", _npy(np.ones(2))), ("a.npy", _npy(np.ones(3)))],
    "folder_member": [("a/", b"")],
}


@pytest.mark.parametrize("name", sorted(NPZ_CASES))
def test_npz_reader_refuses(tmp_path, name):
    _refused(load_npz, _npz(tmp_path / "a.npz", NPZ_CASES[name]))


def test_npz_reader_checks_declared_sizes_and_formats(tmp_path):
    path = _npz(tmp_path / "a.npz", [("a.npy", _npy(np.ones(4)))])
    _patch_central_directory(path, "a.npy", file_size=2**31)
    assert "2147483648" in _refused(load_npz, path)
    np.save(tmp_path / "a.npy", np.ones(3))
    _refused(load_npz, tmp_path / "a.npy")  # a .npy, not an npz
    (tmp_path / "empty.npz").write_bytes(b"")
    _refused(load_npz, tmp_path / "empty.npz")
    np.savez_compressed(tmp_path / "ok.npz", a=np.arange(4.0), b=np.asfortranarray(np.eye(2, dtype=">i4")))
    out = load_npz(tmp_path / "ok.npz")
    np.testing.assert_array_equal(out["a"], np.arange(4.0))
    np.testing.assert_array_equal(out["b"], np.eye(2))


# ----------------------------------------------------------------------------------------------------------
# User-facing loaders
# ----------------------------------------------------------------------------------------------------------


def test_from_pytorch_reports_hostile_files_as_input_errors(torch, tmp_path):
    torch.save({1: torch.ones(2), "a": torch.ones(1)}, tmp_path / "int_keys.pth")
    with pytest.raises(InputError, match="not a string"):
        from_pytorch("patchgan", tmp_path / "int_keys.pth")
    with pytest.raises(InputError, match="no 'x'"):
        from_pytorch("patchgan", tmp_path / "int_keys.pth", param_key="x")  # mixed key types are listed
    _torch_zip(tmp_path / "bomb.pth", TORCH_PICKLES["broadcast_bomb"])
    with pytest.raises(WeightFileError, match="bomb.pth"):
        from_pytorch("patchgan", tmp_path / "bomb.pth")


@pytest.mark.parametrize("metadata", [b"\xff\xfe not json", b"[1, 2]", b'{"format": 1, "arch": ["rrdbnet"]}',
                                      b'{"format": 1, "arch": "rrdbnet", "options": "x"}',
                                      b'{"format": 1, "arch": "rrdbnet", "options": {"num_feat": "many"}}',
                                      b'{"format": 1, "arch": "rrdbnet", "options": {"num_feat": 4, "num_block": 1}}'])
def test_load_converted_reports_hostile_folders_as_input_errors(tmp_path, metadata):
    (tmp_path / "metadata.json").write_bytes(metadata)
    (tmp_path / "variables").mkdir()
    (tmp_path / "variables" / "garbage").write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match=re.escape(str(tmp_path))):
        load_converted(tmp_path)


# ----------------------------------------------------------------------------------------------------------
# Label files
# ----------------------------------------------------------------------------------------------------------


def _rewrite_sheets(path, edit):
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, edit(data) if info.filename.startswith("xl/worksheets/") else data)


def test_a_sheet_declaring_the_whole_grid_reads_in_bounded_time(tmp_path):
    """A far row under a whole-grid dimension made the rows 16384 cells wide, a million times (hours)."""
    info = write_csiq(tmp_path)
    far_row = b'<row r="1048576"><c r="A1048576" t="n"><v>1</v></c></row></sheetData>'
    _rewrite_sheets(info["labels"][0], lambda d: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"',
                                                        d).replace(b"</sheetData>", far_row))
    start = time.perf_counter()
    with pytest.raises(DatasetError, match="data row 37"):
        read_csiq(tmp_path)
    assert time.perf_counter() - start < 20


@pytest.mark.parametrize("case", ["image_400_digits", "mos_400_digits", "cell_5000_digits", "broken_xml"])
def test_hostile_workbooks_raise_dataset_errors(tmp_path, case):
    if case == "image_400_digits":  # an integer beyond float: was an OverflowError
        info = write_csiq(tmp_path)
        _rewrite_sheets(info["labels"][0], lambda d: d.replace(b"<v>1600</v>", b"<v>" + b"9" * 400 + b"</v>", 1))
        read = read_csiq
    else:
        info = write_spaq(tmp_path)
        digits = b"9" * (400 if case == "mos_400_digits" else 5000)
        edit = {"broken_xml": lambda d: d[:len(d) // 2]}.get(
            case, lambda d: re.sub(rb'<c r="B2" t="n"><v>[^<]*', b'<c r="B2" t="n"><v>' + digits, d))
        _rewrite_sheets(info["labels"][0], edit)
        read = read_spaq
    with pytest.raises(DatasetError, match=str(info["labels"][0].name)):
        read(tmp_path)
    with pytest.raises(DatasetError) if case in ("cell_5000_digits", "broken_xml") else contextlib.nullcontext():
        read_xlsx_rows(info["labels"][0], dataset="x", columns=())


def test_read_csv_rows_raises_dataset_errors(tmp_path):
    (tmp_path / "latin1.csv").write_bytes(b"a,b\n\xe9,1\n")
    (tmp_path / "long.csv").write_text("a,b\n" + '"' + "x" * 200_000 + '",1\n')
    for name in ("latin1.csv", "long.csv"):
        with pytest.raises(DatasetError, match=name):
            read_csv_rows(tmp_path / name, dataset="x", columns=("a", "b"))


def test_a_mat_file_that_crashes_scipy_is_a_dataset_error(tmp_path):
    """One byte (the data element's type code) makes scipy's reader dereference NULL: shown in a child
    process, then read_mat must report it and this process go on."""
    info = write_live(tmp_path)
    path = info["root"] / "dmos.mat"
    data = bytearray(path.read_bytes())
    tag = data.index(b"dmos") + 4  # the real part's tag follows the name
    assert data[tag] == 9  # miDOUBLE
    data[tag] = 8  # an unused type code
    path.write_bytes(bytes(data))
    crash = subprocess.run([sys.executable, "-c", f"import scipy.io; scipy.io.loadmat({str(path)!r})"],
                           capture_output=True, timeout=120)
    assert crash.returncode < 0, "scipy should crash on this file (else the test needs a new crashing input)"
    with pytest.raises(DatasetError, match="dmos.mat"):
        read_mat(path, dataset="live", keys=("dmos",))
    with pytest.raises(DatasetError, match="crashed"):
        read_live(tmp_path)

"""Property-based tests and a time-bounded fuzz run of the readers: from a mutated or random weight file or label
file, only the project's errors (``InputError`` subclasses, ``UnsafePickleError``) may come out, never another
exception, a crash or a hang (benchmarks/fuzz_readers.py makes the valid files and the mutations)."""

from __future__ import annotations

import atexit
import importlib.util
import math
import shutil
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from asym_jax.data import iqa_sources
from asym_jax.data.files import DatasetError
from helpers import ROOT

_spec = importlib.util.spec_from_file_location("fuzz_readers", ROOT / "benchmarks" / "fuzz_readers.py")
fuzz = sys.modules["fuzz_readers"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

# Hypothesis keeps caches in ./.hypothesis even without a database: here, in a folder of this session.
_HOME = tempfile.mkdtemp(prefix="asym_jax_hypothesis_")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
configuration.set_hypothesis_home_dir(_HOME)
# Deterministic examples and no example database; the fuzz script explores at random.
_FAST = dict(database=None, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLES = {"numpy_pickle": 120, "torch_zip": 120, "torch_legacy": 120, "npz": 120, "live_mat": 4, "livec_mat": 4,
            "csiq_xlsx": 40, "spaq_xlsx": 40, "kadid10k_csv": 60, "koniq10k_csv": 60, "csiq_txt": 60,
            "tid2013_txt": 60, "pipal_txt": 60}


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    made = {t.name: t for t in fuzz.make_targets(tmp_path_factory.mktemp("fuzz_targets"))}
    assert set(made) == set(EXAMPLES)
    return made


_MUTATION = st.tuples(st.sampled_from(fuzz.OPS[:-1]), st.integers(0, 2**32 - 1), st.binary(max_size=16),
                      st.booleans())
_INPUT = st.one_of(st.binary(max_size=600).map(lambda raw: ("random", raw)),
                   st.tuples(st.integers(0, 7), st.lists(_MUTATION, min_size=1, max_size=4)))


def _build(target, recipe) -> bytes:
    """Random bytes, or a seed of ``target`` with the mutations of ``recipe`` (member mutations for zips)."""
    first, rest = recipe
    if first == "random":
        return rest
    data = target.seeds[first % len(target.seeds)]
    for op, position, payload, in_member in rest:
        mutate = fuzz.mutate_member if in_member and target.zip_members else fuzz.mutate
        data = mutate(data, op, position, payload, target.seeds[position % len(target.seeds)])
    return data


def _check(target, data: bytes) -> None:
    outcome = fuzz.run_one(target, data, timeout=30)
    if not isinstance(outcome, str):
        raise outcome  # hypothesis shrinks the input and shows this traceback
    assert outcome in ("read", "refused")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_seeds_read(targets, name):
    for seed in targets[name].seeds:
        assert fuzz.run_one(targets[name], seed, timeout=30) == "read", name


def _property(name):
    @settings(max_examples=EXAMPLES[name], **_FAST)
    @given(recipe=_INPUT)
    def test(targets, recipe):
        _check(targets[name], _build(targets[name], recipe))

    test.__name__ = f"test_mutated_{name}_raises_only_project_errors"
    return test


for _name in EXAMPLES:
    globals()[f"test_mutated_{_name}_raises_only_project_errors"] = _property(_name)


# ----------------------------------------------------------------------------------------------------------
# The label helpers on values of every type
# ----------------------------------------------------------------------------------------------------------

_CELLS = st.one_of(st.none(), st.booleans(), st.integers(-(10**500), 10**500), st.floats(), st.text(max_size=30),
                   st.datetimes(), st.binary(max_size=8), st.complex_numbers(), st.just(np.float32("nan")),
                   st.just(np.int64(2**62)))


@settings(max_examples=150, **_FAST)
@given(value=_CELLS)
def test_number_helpers_return_finite_numbers_or_dataset_errors(value):
    for parse in (iqa_sources._number, iqa_sources._integer):
        try:
            number = parse(value, "x: file line 1", "score")
        except DatasetError:
            continue
        assert math.isfinite(number)
    name = iqa_sources._csiq_image_name(value)
    assert name is None or isinstance(name, str)


_ARRAYS = st.one_of(
    hnp.arrays(st.sampled_from([np.float64, np.int32, np.uint8, np.bool_, np.complex64, "U4", "S3"]),
               hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    hnp.arrays(object, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
               elements=st.one_of(_CELLS, st.builds(np.array, st.text(max_size=5)),
                                  st.builds(np.array, st.lists(st.text(max_size=3), max_size=3)))),
    hnp.arrays(np.dtype([("a", "f8"), ("b", "O")]), hnp.array_shapes(max_dims=2, max_side=2),
               elements=st.tuples(st.floats(), st.text(max_size=3))),
)


@settings(max_examples=200, **_FAST)
@given(array=_ARRAYS)
def test_mat_helpers_return_lists_or_dataset_errors(array):
    try:
        names = iqa_sources._mat_names(array, "live: x.mat variable v")
        assert all(isinstance(n, str) for n in names)
    except DatasetError:
        pass
    try:
        vector = iqa_sources._mat_vector(array, "live: x.mat variable v")
        assert vector.ndim == 1 and vector.dtype == np.float64
    except DatasetError:
        pass


@settings(max_examples=200, **_FAST)
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_text_and_csv_helpers_on_random_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.getbasetemp() / "random_label.txt"
    path.write_bytes(raw)
    for call in (lambda: iqa_sources._text_lines(path, "x"), lambda: iqa_sources._csiq_txt_rows(path),
                 lambda: iqa_sources._csv_rows(path, "x", ("a", "b"))):
        try:
            call()
        except DatasetError:
            pass


# ----------------------------------------------------------------------------------------------------------
# The time-bounded fuzz run
# ----------------------------------------------------------------------------------------------------------


def test_time_bounded_fuzz_run_finds_nothing(targets, tmp_path):
    lines = []
    stats = fuzz.fuzz(list(targets.values()), 10.0, out=tmp_path / "failures", seed=0, timeout=30, log=lines.append)
    assert set(stats) == set(targets)
    assert all(s["executions"] >= len(targets[n].seeds) for n, s in stats.items())
    assert sum(s["failures"] for s in stats.values()) == 0, "\n".join(lines)


def test_fuzz_run_records_a_failure_with_its_reproducer(tmp_path):
    def broken():
        raise KeyError("not a project error")

    target = fuzz.Target("broken", [b"seed"], tmp_path / "input.bin", broken)
    lines = []
    stats = fuzz.fuzz([target], 0.2, out=tmp_path / "failures", log=lines.append)
    assert stats["broken"]["failures"] == stats["broken"]["executions"] > 0
    reproducer = tmp_path / "failures" / "broken-1.bin"
    assert reproducer.is_file() and any(f"--replay {reproducer}" in line for line in lines)

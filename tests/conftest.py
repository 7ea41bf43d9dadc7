"""Test set-up: 8 forced CPU devices, quiet TensorFlow, a compilation cache for the session, the PyTorch
oracles and sample images."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# One persistent XLA cache per test session, shared with the subprocesses the tests start (a killed and
# resumed run compiles the same programs three times): it only skips repeated compilations of identical
# programs, and it is new for every session.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="asym_jax_test_xla_cache_")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import import_torch  # noqa: E402


@pytest.fixture(scope="session")
def torch():
    return import_torch()


@pytest.fixture(scope="session")
def piq(torch):
    """piq 0.8 (imported after torch and torchvision are set up)."""
    import piq
    return piq


def _stacked_pairs(names, levels, crop):
    from asym_jax.data import sample_pairs
    pairs = list(sample_pairs(names=names, levels=levels, crop=crop))
    return np.stack([p[3] for p in pairs]), np.stack([p[4] for p in pairs])


@pytest.fixture(scope="session")
def sample_pairs():
    """Three photographs (central 192 x 192 crops) under the six distortions at levels 1 and 3: 36 pairs, NHWC
    float32 batches, in (photograph, distortion, level) order."""
    return _stacked_pairs(("astronaut", "chelsea", "coffee"), (1, 3), 192)


@pytest.fixture(scope="session")
def small_pairs():
    """Two photographs (128 x 128 crops) under the six distortions at level 2: 12 pairs, for the deep (costly)
    metrics."""
    return _stacked_pairs(("astronaut", "coffee"), (2,), 128)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """One TFDS data_dir for the whole session: embedded sets are prepared once."""
    return tmp_path_factory.mktemp("tfds")


# The longest modules first: the README's test command runs two pytest-xdist workers that take one module
# at a time in collection order, and a long module started last would leave one core idle at the end.
SLOW_MODULES_FIRST = ("test_main_job.py", "test_iqa_fr.py", "test_train.py", "test_iqa_nr.py", "test_colab.py",
                      "test_study.py", "test_train_semantics.py", "test_discriminators.py", "test_backbones.py")


def pytest_addoption(parser):
    parser.addoption("--run-manual", action="store_true",
                     help="also run the tests marked manual (the whole :sample study: about 21 minutes here)")


def pytest_configure(config):
    config.addinivalue_line("markers", "manual: too long for CI; run with --run-manual")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return SLOW_MODULES_FIRST.index(name) if name in SLOW_MODULES_FIRST else len(SLOW_MODULES_FIRST)
    items.sort(key=rank)
    if not config.getoption("--run-manual"):
        skip = pytest.mark.skip(reason="manual: too long for CI; run with --run-manual")
        for item in items:
            if "manual" in item.keywords:
                item.add_marker(skip)

"""The Colab notebooks of ``colab/``: each ``.ipynb`` is the jupytext pair of its ``.py`` (same cells, no
outputs committed), and each runs headless to the end in small mode (``ASYM_NOTEBOOK_SMALL=1``) on a kernel
of this interpreter, its runs written under the test's temporary folder."""

import json
import os
import pathlib
import sys
import time

import jupytext
import nbclient
import nbformat
import pytest
from helpers import ROOT

COLAB = ROOT / "colab"
NOTEBOOKS = ("01_quickstart", "02_train_sr", "03_metrics_as_iqa", "04_discriminator_to_iqa", "05_study_report")
KERNEL = "asym-jax-colab-test"


def _cells(notebook):
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in COLAB.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert sorted(p.stem for p in COLAB.glob("*.py")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_in_sync_and_without_outputs(name):
    py, ipynb = jupytext.read(COLAB / f"{name}.py"), jupytext.read(COLAB / f"{name}.ipynb")
    assert _cells(py) == _cells(ipynb), f"colab/{name}: run `jupytext --sync colab/{name}.py`"
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    raw = json.loads((COLAB / f"{name}.ipynb").read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"colab/{name}.ipynb has outputs"
    setup = "".join(c.source for c in ipynb.cells if c.cell_type == "code")
    for needed in ('REPO_URL = "', '"google.colab" in sys.modules', 'os.environ.get("ASYM_NOTEBOOK_SMALL"',
                   "ASYM_NOTEBOOK_WORKDIR", "COLAB_TPU_ADDR", "nvidia-smi", "%pip install", "jax.devices()"):
        assert needed in setup, f"colab/{name}: the set-up cell lacks {needed!r}"


def _kernel_spec(folder: pathlib.Path) -> pathlib.Path:
    """A kernelspec running this interpreter (so the venv's packages), found through JUPYTER_PATH."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "asym_jax tests", "language": "python"}))
    return folder


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_small_mode(name, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_spec(tmp_path / "jupyter")))
    monkeypatch.setenv("ASYM_NOTEBOOK_SMALL", "1")
    # One CPU device, as a user's notebook has (conftest forces 8 for the sharding tests).
    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "").strip()
    monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.setenv("ASYM_NOTEBOOK_WORKDIR", str(tmp_path / "runs"))
    notebook = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(COLAB)}})
    repo_runs = (ROOT / "runs" / "notebooks").exists()
    start = time.perf_counter()
    client.execute()  # a cell that raises fails the test (nbclient's CellExecutionError, with the traceback)
    print(f"colab/{name}: {time.perf_counter() - start:.0f} s in small mode")
    assert (tmp_path / "runs" / name).is_dir()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was shown"
    assert (ROOT / "runs" / "notebooks").exists() == repo_runs, "small mode wrote into the repository"

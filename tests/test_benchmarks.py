"""The benchmarks time things, so the suite does not run them; these checks keep them in step with the code
they drive (a renamed config field once stopped the GPU benchmark before its first step): every script
imports and parses its flags, and the trainer benchmark's configs pass the trainer's own checks."""

import argparse
import subprocess
import sys

import pytest
from helpers import ROOT

from asym_jax.train import setup
from asym_jax.train.config import check_config
from asym_jax.weights.selection import resolve_spec

BENCHMARKS = ROOT / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "timing.py"))
def test_benchmark_scripts_parse_their_flags(script):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("loss_highest", [False, True])
def test_train_step_benchmark_configs_pass_the_trainer_checks(loss_highest, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import train_step

    args = argparse.Namespace(batch=8, lr_size=16, dtype="bfloat16", remat=loss_highest)  # remat, remat_loss
    for recipe in train_step.RECIPES:
        config = train_step._recipe_config(recipe, args, str(tmp_path), loss_highest)
        check_config(config)
        networks = setup.build_networks(config)
        setup.discriminator_trunk(config, networks)
        _, _, trunk = resolve_spec(config.fidelity, "fidelity", config)
        assert trunk is None or trunk.weights == "random", (recipe, config.fidelity, trunk)

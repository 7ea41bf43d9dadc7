"""Entry point: ``python -m asym_jax.main --config=configs/<experiment>.py[:preset] [--workdir=DIR]``.

``config.job`` selects what runs: ``sr_gan`` (the super-resolution trainer, ``configs/sr_*.py``) and
``score`` (the metric library on image pairs, ``configs/score.py``).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment configuration file (with :preset).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; default: a new ./runs/<job>-<timestamp>.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() (TPU pods, multi-node GPU).")


def _jobs():
    from asym_jax import score
    from asym_jax.train import sr_gan
    return {"score": score.run_job, "sr_gan": sr_gan.run_job}


def default_workdir(job: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(pathlib.Path("runs") / f"{job}-{stamp}")


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # libraries log a lot at INFO; progress lines are printed
    import jax

    if _MULTIHOST.value:
        jax.distributed.initialize()
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("--config is required, e.g. --config=configs/score.py")
    jobs = _jobs()
    if config.job not in jobs:
        raise app.UsageError(f"unknown job {config.job!r}; available: {', '.join(sorted(jobs))}")
    workdir = _WORKDIR.value or default_workdir(config.job)
    logging.info("JAX process %d of %d, devices: %s", jax.process_index(), jax.process_count(), jax.devices())
    print(f"job {config.job}, workdir {workdir}")
    from asym_jax.errors import InputError
    from asym_jax.weights.assets import AssetError
    try:
        jobs[config.job](config, workdir)
    except (InputError, AssetError) as error:
        logging.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)

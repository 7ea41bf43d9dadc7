"""Entry point: ``python -m asym_jax.main --config=configs/<experiment>.py[:preset] [--workdir=DIR]``.

``config.job`` selects what runs: ``sr_gan`` (the super-resolution trainer, ``configs/sr_*.py``),
``iqa_fr`` (metrics scored as full-reference IQA models, ``configs/iqa_fr.py``), ``iqa_fr_train`` (learned
DISTS-style metrics, ``configs/iqa_fr_train.py``), ``iqa_nr`` (NR-IQA models, also from a trained
discriminator's trunk, ``configs/iqa_nr.py``), ``study`` (grids of the others and the asymmetry report,
``configs/study.py``) and ``score`` (the metric library on image pairs, ``configs/score.py``).

Exit status: 0 done; 2 bad input (config, data, weights, a workdir in use, a checkpoint that cannot be
written; one line ``error: ...``); 3 the training diverged (NaN/Inf loss; the last good checkpoint is kept);
143 or 130: stopped by SIGTERM or Ctrl-C after saving a checkpoint at the current step (one line
``stopped: ...``; the same command resumes); 1 anything else (a bug: with its traceback).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment configuration file (with :preset).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; default: a new ./runs/<job>-<timestamp>.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() (TPU pods, multi-node GPU).")


EXIT_BAD_INPUT, EXIT_DIVERGED = 2, 3


def _fail(message: str, status: int = EXIT_BAD_INPUT) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def resolve_workdir(workdir: str | None, job: str, process_count: int) -> str:
    """``--workdir``, or a new ``runs/<job>-<timestamp>`` on one host; several hosts must share one folder,
    so there it is required (each host's own timestamp would differ)."""
    if workdir:
        return workdir
    if process_count > 1:
        from asym_jax.errors import InputError
        raise InputError(f"--workdir is required on {process_count} hosts: every host must write to the same "
                         "folder (on a file system they share)")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(pathlib.Path("runs") / f"{job}-{stamp}")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with one line and status 2 for a ``--config.FIELD=`` override of a renamed or
    unknown field (the locked config refuses it)."""
    from asym_jax.train.config import RENAMED, renamed_message

    for arg in argv[1:]:
        match = re.match(r"--config\.([A-Za-z_][A-Za-z0-9_]*)", arg)
        if match and match.group(1) in RENAMED:
            _fail(renamed_message(match.group(1)))
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as error:  # ml_collections: the override names no field of the config
        field = str(error).strip("\"'")
        flag = next((a.split("=")[0] for a in argv if a.startswith("--config.") and a.split("=")[0].endswith(f".{field}")),
                    f"--config.{field}")
        _fail(f"{flag}: the config has no such field (an override cannot add one)")


def split_listed(text: str) -> tuple[str, ...]:
    """``"a,b:k=1,j=2,c"`` -> ``("a", "b:k=1,j=2", "c")``: a list given on the command line, where a piece with
    ``=`` and no ``:`` is an option of the metric spec before it (``dists_style:backbone=vgg16,weights=random``
    stays one item)."""
    items: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if items and "=" in piece and ":" not in piece:
            items[-1] += "," + piece
        elif piece:
            items.append(piece)
    return tuple(items)


def expand_listed_fields(config) -> None:
    """Tuple fields overridden as ``--config.metrics=dists,lpips_vgg``: ml_collections keeps the whole string as
    one item; it becomes the list it names (:func:`split_listed`)."""
    for key in list(config.keys()):
        value = config[key]
        if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], str) and "," in value[0]:
            config[key] = split_listed(value[0])


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
    expand_listed_fields(config)
    from asym_jax.experiments import study
    from asym_jax.jobs import job_runners

    jobs = {**job_runners(), "study": study.run_job}
    if config.job not in jobs:
        raise app.UsageError(f"unknown job {config.job!r}; available: {', '.join(sorted(jobs))}")
    from asym_jax.errors import DivergedError, InputError, Stopped
    from asym_jax.weights.assets import AssetError
    try:
        workdir = resolve_workdir(_WORKDIR.value, config.job, jax.process_count())
        logging.info("JAX process %d of %d, devices: %s", jax.process_index(), jax.process_count(), jax.devices())
        print(f"job {config.job}, workdir {workdir}")
        jobs[config.job](config, workdir)
    except (InputError, AssetError) as error:
        logging.error("%s", error)
        _fail(str(error))
    except DivergedError as error:
        logging.error("%s", error)
        _fail(str(error), EXIT_DIVERGED)
    except Stopped as stopped:
        logging.warning("%s", stopped)
        print(f"stopped: {stopped}", file=sys.stderr)
        sys.exit(128 + stopped.signal)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)

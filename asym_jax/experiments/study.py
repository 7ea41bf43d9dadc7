"""The ``study`` job (``configs/study.py``): plans the cells of the three experiments, runs (or resumes) the
ones this process may run, and writes the report.

For each selected cell, in plan order: a finished (or diverged) cell is skipped; a cell whose inputs are not
finished waits (another process, or a later rerun, runs it); a cell claimed by another process is skipped;
otherwise this process claims it, records ``cell.json`` and runs its job in-process, exactly as
:meth:`Cell.command` would (the job resumes from its own checkpoints). A GAN that diverges is an outcome,
recorded in ``diverged.json``; any other error stops the study with the cell named. The report is then
regenerated from every finished cell (:mod:`asym_jax.experiments.report`), missing cells marked.

The workdir may be on ``gs://`` (claims there: :mod:`asym_jax.experiments.cells`); ``launch/study.sh``
spreads the cells over machines that share it.
"""

from __future__ import annotations

import fnmatch

from asym_jax.errors import ConfigError, DivergedError, InputError, Stopped
from asym_jax.io import WorkPath, workdir_path

__all__ = ["FIELDS", "check_config", "run_job", "select"]

FIELDS = ("job", "experiments", "seeds", "fidelity_metrics", "fr_datasets", "fr_split", "fr_config", "sr_config",
          "fidelity_gan_weights", "pretrain_steps", "judges", "nr_judges", "discriminators", "gan_weights", "init_jobs",
          "iqa_nr_config", "inits", "iqa_datasets", "nr_splits", "fr_train_config", "fr_train_datasets", "data_dir",
          "manual_dir", "weights_dir", "sr_overrides", "iqa_overrides", "fr_train_overrides", "cells", "plan_only",
          "report_only", "bootstrap_resamples", "report_seed")
INITS = ("discriminator", "imagenet", "random")


def check_config(config) -> None:
    unknown = sorted(set(config.keys()) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config field {unknown[0]!r} for the study job; fields: {', '.join(FIELDS)}")
    bad = sorted(set(config.inits) - set(INITS))
    if bad:
        raise ConfigError(f"unknown init {bad[0]!r}; inits: {', '.join(INITS)}")
    if not isinstance(config.pretrain_steps, int) or config.pretrain_steps < 0:
        raise ConfigError(f"pretrain_steps must be an integer >= 0, got {config.pretrain_steps!r}")
    if config.nr_splits not in ("one", "all"):
        raise ConfigError(f"nr_splits must be 'one' or 'all', got {config.nr_splits!r}")
    for field in ("fidelity_gan_weights", "gan_weights"):
        if any(float(w) < 0 for w in config[field]):
            raise ConfigError(f"{field} must be >= 0")
    if config.bootstrap_resamples < 0:
        raise ConfigError("bootstrap_resamples must be >= 0")


def select(cells, pattern: str):
    """The cells whose name matches one of the comma-separated fnmatch ``pattern``s (refused if none)."""
    patterns = [p.strip() for p in str(pattern).split(",") if p.strip()] or ["*"]
    chosen = [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    if not chosen:
        raise ConfigError(f"--config.cells={pattern!r} matches none of the {len(cells)} cells; "
                          "--config.plan_only=True lists them")
    return chosen


def _run_cell(cell, root: WorkPath) -> str:
    from asym_jax.experiments.cells import claim, release
    from asym_jax.io import write_json
    from asym_jax.jobs import job_runners

    folder = cell.workdir(root)
    holder = claim(folder)
    if holder is not None:
        print(f"cell {cell.name}: claimed by {holder.get('host')} pid {holder.get('pid')} since "
              f"{holder.get('since')}; skipped", flush=True)
        return "claimed"
    try:
        write_json(folder / "cell.json", cell.record())
        print(f"cell {cell.name}: {cell.command(root)}", flush=True)
        try:
            job_runners()[cell.job](cell.job_config(), str(folder))
        except DivergedError as error:
            write_json(folder / "diverged.json", {"message": str(error)})
            print(f"cell {cell.name}: diverged ({error})", flush=True)
            return "diverged"
        except InputError as error:
            raise type(error)(f"cell {cell.name}: {error}") from None
        except Stopped as stopped:  # saved at its current step: the study's command resumes the cell
            raise Stopped(f"cell {cell.name}: {stopped}", stopped.signal) from None
        return "done"
    finally:
        release(folder)


def run_job(config, workdir: str) -> dict:
    """Plans, runs the selected cells that can run, writes the report; returns ``{"cells": {name: status}}``
    (and the report's numbers unless ``plan_only``)."""
    from asym_jax.experiments.cells import cell_status
    from asym_jax.experiments.plan import plan
    from asym_jax.experiments.report import write_report
    from asym_jax.io import write_atomic, write_json

    check_config(config)
    root = workdir_path(workdir, absolute=True)
    root.mkdir(parents=True, exist_ok=True)
    cells = plan(config, root)
    chosen = select(cells, config.cells)
    write_atomic(root / "config.json", config.to_json_best_effort(indent=2) + "\n")
    write_json(root / "plan.json", {"cells": [c.record() | {"command": c.command(root)} for c in cells]})
    status = {c.name: cell_status(c, root) for c in cells}
    if config.plan_only:
        width = max(len(c.name) for c in chosen)
        for c in chosen:
            print(f"{c.name:<{width}}  {status[c.name]:<8}  {c.command(root)}")
        return {"cells": {c.name: status[c.name] for c in chosen}}
    if not config.report_only:
        for cell in chosen:
            if status[cell.name] in ("done", "diverged"):
                print(f"cell {cell.name}: {status[cell.name]}, skipped", flush=True)
                continue
            needed = {n: cell_status(next(c for c in cells if c.name == n), root) for n in cell.needs}
            if "diverged" in needed.values():
                print(f"cell {cell.name}: blocked, {', '.join(n for n, s in needed.items() if s == 'diverged')} "
                      "diverged", flush=True)
                continue
            waiting = [n for n, s in needed.items() if s != "done"]
            if waiting:
                print(f"cell {cell.name}: waits for {', '.join(waiting)}", flush=True)
                continue
            status[cell.name] = _run_cell(cell, root)
        status = {c.name: cell_status(c, root) for c in cells}
    for c in cells:  # a cell that can never run: a cell it reads diverged
        if status[c.name] in ("missing", "partial") and any(status.get(n) == "diverged" for n in c.needs):
            status[c.name] = "blocked"
    report = write_report(config, root, cells, status)
    print((root / "report.md").read_text())
    return {"cells": status, "report": report}

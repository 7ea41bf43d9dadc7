"""Spreads a study's cells over machines that share its workdir.

    python -m asym_jax.experiments.split WORKDIR/plan.json --machines N [--json]

``plan.json`` is what ``--config.plan_only=True`` writes. The cells fall into stages: a cell's stage is one
more than the latest stage of the cells it reads (``needs``), so every machine can run its share of a
stage at once, and the next stage starts when the whole stage has finished. Within a stage, cells are
dealt longest first, each to the machine with the least work so far; a cell's work is a rough weight of
its job (an SR GAN run outweighs an NR-IQA fit, which outweighs scoring). The result is deterministic, so
a rerun after a failure gives every machine the same cells (finished cells are then skipped by the study
driver).

The text output has one line per machine with work, ``STAGE MACHINE CELL,CELL,...``, ready for
``--config.cells=``; ``launch/study.sh`` reads it.
"""

from __future__ import annotations

import argparse
import json
import sys

from asym_jax.errors import InputError

__all__ = ["JOB_WEIGHTS", "split", "stages"]

JOB_WEIGHTS = {"sr_gan": 10.0, "iqa_fr_train": 4.0, "iqa_nr": 3.0, "iqa_fr": 1.0}


def stages(cells: list[dict]) -> list[list[dict]]:
    """The cells grouped by stage (see the module docstring), plan order kept within a stage."""
    by_name = {c["name"]: c for c in cells}
    if len(by_name) != len(cells):
        raise InputError("the plan names a cell twice")
    level: dict[str, int] = {}

    def stage_of(name: str, path: tuple[str, ...]) -> int:
        if name in level:
            return level[name]
        if name in path:
            raise InputError(f"the plan's cells read each other in a cycle: {' -> '.join(path + (name,))}")
        if name not in by_name:
            raise InputError(f"cell {path[-1]} reads {name}, which is not in the plan")
        needs = by_name[name].get("needs", [])
        level[name] = 1 + max((stage_of(n, path + (name,)) for n in needs), default=-1)
        return level[name]

    for c in cells:
        stage_of(c["name"], ())
    grouped: list[list[dict]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for c in cells:
        grouped[level[c["name"]]].append(c)
    return grouped


def split(cells: list[dict], machines: int) -> list[list[list[str]]]:
    """``result[stage][machine]``: the names of the cells that machine runs in that stage."""
    if machines < 1:
        raise InputError(f"--machines must be at least 1, got {machines}")
    result = []
    for group in stages(cells):
        load = [0.0] * machines
        shares: list[list[str]] = [[] for _ in range(machines)]
        order = sorted(group, key=lambda c: (-JOB_WEIGHTS.get(c.get("job"), 1.0), c["name"]))
        for c in order:
            m = min(range(machines), key=lambda i: (load[i], i))
            load[m] += JOB_WEIGHTS.get(c.get("job"), 1.0)
            shares[m].append(c["name"])
        result.append(shares)
    return result


def read_plan(path: str) -> list[dict]:
    """The cells of a ``plan.json``, local or on ``gs://``."""
    from asym_jax.io import workdir_path

    try:
        plan = json.loads(workdir_path(path).read_text())
    except OSError as error:
        raise InputError(f"cannot read the study plan {path}: {error.strerror or error}; make it with "
                         "--config.plan_only=True") from None
    except ValueError as error:
        raise InputError(f"{path} is not a study plan (JSON: {error})") from None
    cells = plan.get("cells") if isinstance(plan, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) and "name" in c for c in cells):
        raise InputError(f"{path} is not a study plan: no list of cells with names")
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asym_jax.experiments.split", description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", help="the study's plan.json (written by --config.plan_only=True)")
    parser.add_argument("--machines", type=int, required=True)
    parser.add_argument("--json", action="store_true", help="print {'stages': [[[cells of machine 0], ...], ...]}")
    args = parser.parse_args(argv)
    try:
        result = split(read_plan(args.plan), args.machines)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"stages": result}))
        return 0
    for s, shares in enumerate(result):
        for m, names in enumerate(shares):
            if names:
                print(f"{s} {m} {','.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

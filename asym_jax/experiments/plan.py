"""The cells of a study config (``configs/study.py``), in an order they can run in (every cell after the
cells it reads: the NR-IQA and DISTS-style models after the discriminator they start from, the SR models
after the study's own NR judges); every cell an ordinary job config with overrides."""

from __future__ import annotations

from asym_jax.errors import ConfigError
from asym_jax.experiments.cells import Cell, load_job_config, slug
from asym_jax.io import WorkPath, workdir_path

__all__ = ["CELL_JUDGE", "EXPERIMENTS", "INIT_JOBS", "PRETRAIN", "nr_judges", "plan"]

EXPERIMENTS = ("fidelity", "discriminator", "init")
INIT_JOBS = {"iqa_nr": "nr", "iqa_fr_train": "dists"}  # the init experiment's jobs and their cell-name prefixes
CELL_JUDGE = "cell:"  # an nr_judges entry naming an iqa_nr cell of the study: "cell:nr-alexnet-imagenet"


def _items(tree) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in dict(tree).items()))


def nr_judges(config, root: WorkPath) -> tuple[list[str], list[str]]:
    """The ``nr:`` specs of ``config.nr_judges`` (a ``cell:<name>`` entry becomes ``nr:<root>/cells/<name>``,
    or its first split, ``.../splits/seed0``, when the iqa_nr cells run every seeded split) and the names of
    the study's cells they read."""
    specs, needs = [], []
    for judge in config.nr_judges:
        if str(judge).startswith(CELL_JUDGE):
            name = str(judge)[len(CELL_JUDGE):]
            split = "/splits/seed0" if config.nr_splits == "all" else ""
            specs.append(f"nr:{workdir_path(root) / 'cells' / name}{split}")
            needs.append(name)
        else:
            specs.append(str(judge))
    return specs, needs


PRETRAIN = "pretrain"  # the cell every SR cell starts from when pretrain_steps > 0


def _shared(config) -> dict:
    """The fields every cell takes from the study: where data and weights are."""
    return {"data_dir": config.data_dir, "manual_dir": config.manual_dir, "weights_dir": config.weights_dir}


def _sr_cells(config, experiment: str, name: str, labels: dict, overrides: dict, base, root) -> Cell:
    judges, needs = nr_judges(config, root)
    common = {**_shared(config), "eval_metrics": tuple(config.judges) + tuple(judges)}
    if config.pretrain_steps and name != PRETRAIN:
        common["g_init"] = f"generator:{workdir_path(root) / 'cells' / PRETRAIN}"
        needs = [*needs, PRETRAIN]
    merged = {**common, **dict(config.sr_overrides), **overrides}
    return Cell(name=name, experiment=experiment, job=base.job, config=config.sr_config,
                overrides=_items(merged), labels=_items(labels), needs=tuple(needs))


def _ordered(cells: list[Cell]) -> list[Cell]:
    """``cells`` with every cell after the cells it needs (otherwise in plan order); a need that names no
    cell, or a cycle (an NR judge trained from a discriminator it would judge), is refused."""
    ordered: list[Cell] = []
    placed: set[str] = set()
    while len(ordered) < len(cells):
        ready = [c for c in cells if c.name not in placed and all(n in placed for n in c.needs)]
        if not ready:
            stuck = next(c for c in cells if c.name not in placed)
            raise ConfigError(f"cells {', '.join(c.name for c in cells if c.name not in placed)} wait for each other "
                              f"(e.g. {stuck.name} needs {', '.join(stuck.needs)}): an NR judge cannot be trained "
                              "from a discriminator it judges; judge with an imagenet or random NR cell, or a "
                              "given nr:<workdir>")
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return ordered


def _init_cells(config, root: WorkPath, sources: dict[str, Cell]) -> list[Cell]:
    """Experiment 3: for each backbone discriminator in ``sources`` and each job of ``init_jobs``, models
    from its trained trunk and (once per backbone) from the other ``inits``."""
    from asym_jax.models import discriminators

    iqa = _shared(config)
    settings = {}  # job -> (config spec, overrides, datasets, the field that takes the trunk's weights)
    if "iqa_nr" in config.init_jobs:
        if not config.iqa_datasets:
            raise ConfigError("iqa_datasets is empty")
        settings["iqa_nr"] = (config.iqa_nr_config, {**iqa, **dict(config.iqa_overrides)},
                              {"dataset": config.iqa_datasets[0], "eval_datasets": tuple(config.iqa_datasets[1:]),
                               "splits": config.nr_splits}, "init")
    if "iqa_fr_train" in config.init_jobs:
        if not config.fr_train_datasets:
            raise ConfigError("fr_train_datasets is empty")
        settings["iqa_fr_train"] = (config.fr_train_config, {**iqa, **dict(config.fr_train_overrides)},
                                    {"dataset": config.fr_train_datasets[0],
                                     "eval_datasets": tuple(config.fr_train_datasets[1:])}, "weights")
    cells: list[Cell] = []
    for job, (spec, common, data, field) in settings.items():
        base = load_job_config(spec)
        if base.job != job:
            raise ConfigError(f"{spec!r} is a {base.job!r} config, not {job}")
        for d, source in sources.items():
            backbone, _ = discriminators.backbone_of(d, {})
            if backbone is None:
                continue  # PatchGAN, UNet-SN: no trunk to transfer
            for init in config.inits:
                weights = (f"discriminator:{workdir_path(source.workdir(root), absolute=True)}"
                           if init == "discriminator" else init)
                name = f"{INIT_JOBS[job]}-{slug(backbone)}-{'from-' + source.name if init == 'discriminator' else init}"
                if any(c.name == name for c in cells):
                    continue  # imagenet / random of a backbone two discriminators share
                cells.append(Cell(name=name, experiment="init", job=job, config=spec,
                                  overrides=_items({**common, **data, "backbone": backbone, field: weights}),
                                  labels=_items({"backbone": backbone, "init": init, "model": INIT_JOBS[job],
                                                 "discriminator": d if init == "discriminator" else ""}),
                                  needs=(source.name,) if init == "discriminator" else ()))
    return cells


def plan(config, root: WorkPath) -> list[Cell]:
    """Every cell of ``config`` (all experiments it names), dependencies first."""
    unknown = sorted(set(config.experiments) - set(EXPERIMENTS))
    if unknown:
        raise ConfigError(f"unknown experiment {unknown[0]!r}; experiments: {', '.join(EXPERIMENTS)}")
    if not config.seeds:
        raise ConfigError("seeds is empty: give at least one seed")
    base = load_job_config(config.sr_config)
    if base.job != "sr_gan":
        raise ConfigError(f"sr_config {config.sr_config!r} is a {base.job!r} config, not sr_gan")
    unknown = sorted(set(config.init_jobs) - set(INIT_JOBS))
    if unknown:
        raise ConfigError(f"unknown init job {unknown[0]!r}; init_jobs: {', '.join(INIT_JOBS)}")
    iqa = {**_shared(config), **dict(config.iqa_overrides)}
    cells: list[Cell] = []
    discriminator_cells: dict[str, Cell] = {}
    if config.pretrain_steps and {"fidelity", "discriminator"} & set(config.experiments):
        # ESRGAN's first stage: the pixel loss alone, no fidelity loss, no GAN
        n = int(config.pretrain_steps)
        cells.append(_sr_cells(config, PRETRAIN, PRETRAIN, {"role": PRETRAIN, "seed": int(config.seeds[0])},
                               {"num_train_steps": n, "fidelity_weight": 0.0, "gan_weight": 0.0,
                                "adversarial_start_step": 0, "eval_every_steps": n, "checkpoint_every_steps": n,
                                "seed": int(config.seeds[0])}, base, root))
    if "discriminator" in config.experiments:
        for d in config.discriminators:
            for w in config.gan_weights:
                for seed in config.seeds:
                    overrides = {"discriminator": d, "gan_weight": float(w), "seed": int(seed)}
                    if d != base.discriminator:  # the base's options belong to its own discriminator
                        overrides["discriminator_options"] = {}
                    labels = {"discriminator": d, "gan_weight": float(w), "seed": int(seed)}
                    cell = _sr_cells(config, "discriminator", f"d-{slug(d)}-gan{w:g}-seed{seed}", labels, overrides,
                                     base, root)
                    cells.append(cell)
                    if w == max(config.gan_weights) and seed == config.seeds[0]:
                        discriminator_cells[d] = cell
    if "init" in config.experiments:
        cells += _init_cells(config, root, discriminator_cells)
    if "fidelity" in config.experiments:
        if not config.fidelity_metrics or not config.fr_datasets:
            raise ConfigError("fidelity_metrics and fr_datasets must not be empty for the fidelity experiment")
        cells.append(Cell(name="fr-iqa", experiment="fidelity", job="iqa_fr", config=config.fr_config,
                          overrides=_items({**iqa, "metrics": tuple(config.fidelity_metrics),
                                            "datasets": tuple(config.fr_datasets), "split": config.fr_split,
                                            "bootstrap_resamples": config.bootstrap_resamples}),
                          labels=_items({"role": "assessment"})))
        for metric in config.fidelity_metrics:
            for w in config.fidelity_gan_weights:
                for seed in config.seeds:
                    cells.append(_sr_cells(config, "fidelity", f"sr-{slug(metric)}-gan{w:g}-seed{seed}",
                                           {"metric": metric, "gan_weight": float(w), "seed": int(seed)},
                                           {"fidelity": metric, "gan_weight": float(w), "seed": int(seed)},
                                           base, root))
    names = [c.name for c in cells]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"two cells would share the name {duplicate!r}: make the grid's entries distinct")
    by_name = {c.name: c for c in cells}
    for name in nr_judges(config, root)[1]:
        if getattr(by_name.get(name), "job", None) != "iqa_nr":
            raise ConfigError(f"nr judge {CELL_JUDGE}{name} names no iqa_nr cell of this study; its iqa_nr cells: "
                              f"{', '.join(c.name for c in cells if c.job == 'iqa_nr') or 'none'}")
    for cell in cells:  # every override names a field of its job's config, before anything runs
        cell.job_config()
    return _ordered(cells)

"""The cells of a study config (``configs/study.py``), in the order they can run: the discriminator grid
before the NR-IQA models initialised from it; every cell an ordinary job config with overrides."""

from __future__ import annotations

import pathlib

from asym_jax.errors import ConfigError
from asym_jax.experiments.cells import Cell, load_job_config, slug

__all__ = ["EXPERIMENTS", "plan"]

EXPERIMENTS = ("fidelity", "discriminator", "init")


def _items(tree) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in dict(tree).items()))


def _sr_cells(config, experiment: str, name: str, labels: dict, overrides: dict, base) -> Cell:
    common = {"data_dir": config.data_dir, "manual_dir": config.manual_dir, "weights_dir": config.weights_dir,
              "eval_metrics": tuple(config.judges) + tuple(config.nr_judges)}
    merged = {**common, **dict(config.sr_overrides), **overrides}
    return Cell(name=name, experiment=experiment, job=base.job, config=config.sr_config,
                overrides=_items(merged), labels=_items(labels))


def plan(config, root: pathlib.Path) -> list[Cell]:
    """Every cell of ``config`` (all experiments it names), dependencies first."""
    unknown = sorted(set(config.experiments) - set(EXPERIMENTS))
    if unknown:
        raise ConfigError(f"unknown experiment {unknown[0]!r}; experiments: {', '.join(EXPERIMENTS)}")
    if not config.seeds:
        raise ConfigError("seeds is empty: give at least one seed")
    base = load_job_config(config.sr_config)
    if base.job != "sr_gan":
        raise ConfigError(f"sr_config {config.sr_config!r} is a {base.job!r} config, not sr_gan")
    iqa = {"data_dir": config.data_dir, "manual_dir": config.manual_dir, "weights_dir": config.weights_dir,
           **dict(config.iqa_overrides)}
    cells: list[Cell] = []
    discriminator_cells: dict[str, Cell] = {}
    if "discriminator" in config.experiments:
        for d in config.discriminators:
            for w in config.gan_weights:
                for seed in config.seeds:
                    overrides = {"discriminator": d, "gan_weight": float(w), "seed": int(seed)}
                    if d != base.discriminator:  # the base's options belong to its own discriminator
                        overrides["discriminator_options"] = {}
                    cell = _sr_cells(config, "discriminator", f"d-{slug(d)}-gan{w:g}-seed{seed}",
                                     {"discriminator": d, "gan_weight": float(w), "seed": int(seed)}, overrides, base)
                    cells.append(cell)
                    if w == max(config.gan_weights) and seed == config.seeds[0]:
                        discriminator_cells[d] = cell
    if "init" in config.experiments:
        from asym_jax.models import discriminators

        nr_base = load_job_config(config.iqa_nr_config)
        if nr_base.job != "iqa_nr":
            raise ConfigError(f"iqa_nr_config {config.iqa_nr_config!r} is a {nr_base.job!r} config, not iqa_nr")
        if not config.iqa_datasets:
            raise ConfigError("iqa_datasets is empty")
        data = {"dataset": config.iqa_datasets[0], "eval_datasets": tuple(config.iqa_datasets[1:])}
        for d, source in discriminator_cells.items():
            backbone, _ = discriminators.backbone_of(d, {})
            if backbone is None:
                continue  # PatchGAN, UNet-SN: no trunk to transfer
            for init in config.inits:
                weights = f"discriminator:{source.workdir(root).absolute()}" if init == "discriminator" else init
                name = f"nr-{slug(backbone)}-{'from-' + source.name if init == 'discriminator' else init}"
                if any(c.name == name for c in cells):
                    continue  # imagenet / random of a backbone two discriminators share
                cells.append(Cell(name=name, experiment="init", job="iqa_nr", config=config.iqa_nr_config,
                                  overrides=_items({**iqa, **data, "backbone": backbone, "init": weights}),
                                  labels=_items({"backbone": backbone, "init": init,
                                                 "discriminator": d if init == "discriminator" else ""}),
                                  needs=(source.name,) if init == "discriminator" else ()))
    if "fidelity" in config.experiments:
        if not config.fidelity_metrics or not config.fr_datasets:
            raise ConfigError("fidelity_metrics and fr_datasets must not be empty for the fidelity experiment")
        cells.append(Cell(name="fr-iqa", experiment="fidelity", job="iqa_fr", config=config.fr_config,
                          overrides=_items({**iqa, "metrics": tuple(config.fidelity_metrics),
                                            "datasets": tuple(config.fr_datasets),
                                            "bootstrap_resamples": config.bootstrap_resamples}),
                          labels=_items({"role": "assessment"})))
        for metric in config.fidelity_metrics:
            for w in config.fidelity_gan_weights:
                for seed in config.seeds:
                    cells.append(_sr_cells(config, "fidelity", f"sr-{slug(metric)}-gan{w:g}-seed{seed}",
                                           {"metric": metric, "gan_weight": float(w), "seed": int(seed)},
                                           {"fidelity": metric, "gan_weight": float(w), "seed": int(seed)}, base))
    names = [c.name for c in cells]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"two cells would share the name {duplicate!r}: make the grid's entries distinct")
    for cell in cells:  # every override names a field of its job's config, before anything runs
        cell.job_config()
    return cells

"""Metric specs: one string names a metric and its options, ``"name"`` or ``"name:key=value,key=value"``.

Configs, the command line and the jobs all take metrics as specs (``"ssim:colour=y,crop_border=4"``,
``"dists_style:backbone=resnet50,weights=random,seed=3"``), so one field can be overridden or swept like
any other. Values are Python literals where they parse as one (``4``, ``0.5``, ``True``), plain
strings otherwise (``random``, a path). Values cannot contain commas.

A trained NR-IQA model is named by its run: ``"nr:<workdir>[@<step>]"`` is short for
``"nr:run=<workdir>[@<step>]"`` (:mod:`asym_jax.metrics.nr`).
"""

from __future__ import annotations

import ast
from typing import Any, Mapping

from asym_jax.errors import InputError

__all__ = ["format_spec", "from_spec", "parse_spec"]


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name[:key=value,...]"`` -> ``(name, options)``; raises :class:`InputError` on a malformed item."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"a metric spec must be a non-empty string like 'name:key=value', got {spec!r}")
    name, _, rest = spec.partition(":")
    if name.strip() == "nr" and rest.strip() and "=" not in rest:  # nr:<workdir>[@<step>]
        return "nr", {"run": rest.strip()}
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"metric option {item!r} of {spec!r} is not key=value")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return name.strip(), options


def format_spec(name: str, options: Mapping[str, Any]) -> str:
    """The spec string of ``name`` with ``options`` (sorted keys); :func:`parse_spec` reads it back."""
    if not options:
        return name
    return name + ":" + ",".join(f"{k}={v}" for k, v in sorted(options.items()))


def from_spec(spec: str):
    """The :class:`~asym_jax.metrics.Metric` a spec names, its weights loaded."""
    from asym_jax.metrics.registry import get
    name, options = parse_spec(spec)
    return get(name, **options)

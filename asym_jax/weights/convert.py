"""PyTorch state dict -> Flax variables, by name, for modules whose names mirror PyTorch's.

A Flax module of this project names its parameters so that the path joined with ``_`` equals the
PyTorch key joined with ``_`` (``layers.0.residual_group.blocks.1.attn.qkv.weight`` ~
``layers_0_residual_group_blocks_1/attn/qkv/kernel``). The conversion then needs no per-architecture
table: ``weight`` becomes ``kernel`` (convolutions OIHW -> HWIO, linear layers (out, in) -> (in, out)),
``scale`` (normalisation layers) or ``embedding``; batch-norm running statistics go to ``batch_stats``.
Every unknown key, missing parameter and shape mismatch is reported by name.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from asym_jax.errors import InputError

__all__ = ["ConversionError", "torch_to_flax"]

# Buffers PyTorch stores that Flax modules recompute.
DEFAULT_IGNORE = (r"(^|\.)num_batches_tracked$", r"(^|\.)relative_position_index$", r"(^|\.)attn_mask$")


class ConversionError(InputError):
    """The checkpoint does not fit the architecture; the message lists every problem by name."""


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out


def _unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _to_flax_layout(array: np.ndarray, leaf: str, target_shape: tuple[int, ...]) -> np.ndarray:
    if leaf == "kernel":
        if array.ndim == 4:  # conv: (out, in, kh, kw) -> (kh, kw, in, out)
            array = np.transpose(array, (2, 3, 1, 0))
        elif array.ndim == 2:  # linear: (out, in) -> (in, out)
            array = array.T
        elif array.ndim == 3:  # conv1d: (out, in, k) -> (k, in, out)
            array = np.transpose(array, (2, 1, 0))
    return np.ascontiguousarray(array)


def torch_to_flax(state: Mapping[str, np.ndarray], target: Mapping[str, Any], *,
                  ignore: Iterable[str] = DEFAULT_IGNORE) -> dict:
    """Converts ``state`` (PyTorch key -> numpy array) into the structure of ``target``.

    Args:
      state: a flat PyTorch state dict, arrays as numpy (see :func:`read_torch_checkpoint`).
      target: the Flax variables to fill (``{"params": ..., "batch_stats": ...}``), arrays or
        ``jax.ShapeDtypeStruct`` (from ``jax.eval_shape(module.init, ...)``).
      ignore: regular expressions of PyTorch keys to skip (recomputed buffers).

    Raises:
      ConversionError: listing unknown keys, missing parameters and shape mismatches.
    """
    ignore = [re.compile(p) for p in ignore]
    flat_target = {(collection,) + path: leaf for collection, tree in target.items()
                   for path, leaf in _flatten(tree).items()}
    by_joined: dict[tuple[str, str], tuple[str, ...]] = {}  # (collection, "module_path|leaf") -> path
    by_full_name: dict[str, tuple[str, ...]] = {}  # "module_path_leaf" -> params path
    for full in flat_target:
        collection, path = full[0], full[1:]
        key = (collection, "_".join(path[:-1]) + "|" + path[-1])
        if key in by_joined:
            raise ConversionError(f"ambiguous Flax names {by_joined[key]} and {full}")
        by_joined[key] = full
        if collection == "params":
            by_full_name["_".join(path)] = full

    converted: dict[tuple[str, ...], np.ndarray] = {}
    sources: dict[tuple[str, ...], str] = {}
    unknown, mismatched = [], []
    for torch_key, array in state.items():
        if any(p.search(torch_key) for p in ignore):
            continue
        base, _, leaf = torch_key.rpartition(".")
        joined = base.replace(".", "_")
        if leaf == "weight":
            candidates = [("params", "kernel"), ("params", "scale"), ("params", "embedding")]
        elif leaf == "running_mean":
            candidates = [("batch_stats", "mean")]
        elif leaf == "running_var":
            candidates = [("batch_stats", "var")]
        elif leaf == "weight_orig":  # torch.nn.utils.spectral_norm
            candidates = [("params", "kernel")]
        elif leaf in ("weight_u", "weight_v"):
            candidates = [("batch_stats", leaf[-1])]
        else:
            candidates = [("params", leaf)]
        match = next((by_joined[(c, joined + "|" + name)] for c, name in candidates
                      if (c, joined + "|" + name) in by_joined), None)
        if match is None:  # a parameter registered directly on a module (``cls_token``, ``blocks.0.gamma``)
            match = by_full_name.get(torch_key.replace(".", "_"))
        if match is None:
            unknown.append(torch_key)
            continue
        target_leaf = flat_target[match]
        value = _to_flax_layout(np.asarray(array), match[-1], tuple(target_leaf.shape))
        if leaf == "weight_v" and np.ndim(state.get(base + ".weight_orig")) == 4:
            # torch flattens a conv weight as (in, kh, kw), Flax kernels as (kh, kw, in).
            _, cin, kh, kw = np.shape(state[base + ".weight_orig"])
            value = value.reshape(cin, kh, kw).transpose(1, 2, 0).reshape(-1)
        if value.shape != tuple(target_leaf.shape):
            mismatched.append(f"{torch_key} {tuple(np.shape(array))} -> {'/'.join(match)} {tuple(target_leaf.shape)}")
            continue
        if match in sources:
            raise ConversionError(f"checkpoint keys {sources[match]} and {torch_key} both map to {'/'.join(match)}")
        sources[match] = torch_key
        converted[match] = value.astype(target_leaf.dtype)
    missing = ["/".join(path) for path in flat_target if path not in converted]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unknown checkpoint keys: {', '.join(unknown[:20])}")
    if missing:
        problems.append(f"{len(missing)} parameters missing from the checkpoint: {', '.join(missing[:20])}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {'; '.join(mismatched[:20])}")
    if problems:
        raise ConversionError("; ".join(problems))
    return jax.tree.map(np.asarray, _unflatten(converted))

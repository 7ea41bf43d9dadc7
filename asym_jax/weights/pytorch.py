"""PyTorch checkpoints -> Flax modules and variables, and the converted-checkpoint format.

``from_pytorch(arch, path, **arch_kwargs) -> (module, variables)`` reads a PyTorch checkpoint without
importing PyTorch (plain state dicts, BasicSR / Real-ESRGAN files with ``params`` / ``params_ema``,
``state_dict`` / ``model`` wrappers, ``module.`` prefixes, spectral-norm tensors), builds the Flax
module with the reference constructor's argument names, and converts the tensors by name.

``save_converted(directory, arch, options, variables)`` writes an Orbax checkpoint plus a
``metadata.json`` (architecture, options, source file and its sha256); ``load_converted(directory)``
rebuilds ``(module, variables)`` from it. ``python -m asym_jax.weights convert`` does both steps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.io import write_json
from asym_jax.models import backbones, discriminators, generators
from asym_jax.weights.assets import sha256_of
from asym_jax.weights.convert import DEFAULT_IGNORE, ConversionError, torch_to_flax
from asym_jax.weights.readers import read_torch_checkpoint
from asym_jax.weights.torchvision import from_torchvision_alexnet, from_torchvision_vgg

__all__ = ["ARCHS", "Arch", "from_pytorch", "load_converted", "save_converted", "state_dict_of"]

Variables = dict[str, Any]
_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Arch:
    """A convertible architecture.

    Attributes:
      build: ``build(**options) -> nn.Module`` with the reference constructor's argument names.
      example: ``example(options) -> input`` of the right channels and a valid size, for shape inference.
      ignore: regular expressions of checkpoint keys that the Flax module does not hold (heads,
        recomputed buffers).
      rename: ``(key) -> key`` applied before matching (older layouts of the same model).
      select_prefix: keep only keys under this prefix (then strip it), e.g. the image tower of a CLIP model.
      convert: ``(state, target) -> variables`` replacing the by-name conversion (index-named layouts).
      description: what it is and which checkpoints it reads.
    """

    build: Callable[..., nn.Module]
    example: Callable[[Mapping[str, Any]], jax.Array]
    description: str
    ignore: tuple[str, ...] = ()
    rename: Callable[[str], str] | None = None
    select_prefix: str = ""
    convert: Callable[[Mapping[str, np.ndarray], Mapping[str, Any]], Variables] | None = None


def _image(options: Mapping[str, Any], size: int, channels_key: str = "num_in_ch") -> jax.Array:
    return jnp.zeros((1, size, size, options.get(channels_key, 3)), jnp.float32)


def _dinov2_rename(key: str) -> str:
    # transformers < 5 (and the hub checkpoints): attention.attention.{query,key,value}, attention.output.dense
    for old, new in ((".attention.attention.query.", ".attention.q_proj."), (".attention.attention.key.", ".attention.k_proj."),
                     (".attention.attention.value.", ".attention.v_proj."), (".attention.output.dense.", ".attention.o_proj.")):
        key = key.replace(old, new)
    return key


def _backbone_build(name: str) -> Callable[..., nn.Module]:
    spec = backbones.get(name)
    return lambda **options: spec.build(**{"taps": spec.full_taps, **options})


def _vgg_convert(depth: int):
    def convert(state, target):
        return {"params": from_torchvision_vgg(state, depth)}
    return convert


def _alexnet_convert(state, target):
    return {"params": from_torchvision_alexnet(state)}


def _backbone_arch(name: str, description: str, ignore: tuple[str, ...] = (), **extra) -> Arch:
    multiple = backbones.get(name).multiple
    size = multiple * -(-64 // multiple)  # parameters do not depend on the size: any valid one will do
    return Arch(_backbone_build(name), lambda options: jnp.zeros((1, size, size, 3)), description, ignore, **extra)


ARCHS: dict[str, Arch] = {
    "rrdbnet": Arch(generators.RRDBNet, lambda o: _image(o, 16), "BasicSR / Real-ESRGAN RRDBNet (ESRGAN generator)"),
    "swinir": Arch(generators.SwinIR, lambda o: _image(o, 2 * o.get("window_size", 7), "in_chans"),
                   "SwinIR (official or BasicSR checkpoints)"),
    "unet_sn": Arch(discriminators.UNetDiscriminatorSN, lambda o: _image(o, 32), "Real-ESRGAN UNetDiscriminatorSN"),
    "vgg_style": Arch(discriminators.VGGStyleDiscriminator, lambda o: _image(o, o.get("input_size", 128)),
                      "ESRGAN VGGStyleDiscriminator (BasicSR)"),
    "patchgan": Arch(discriminators.PatchGAN, lambda o: _image(o, 64, "input_nc"), "pix2pix NLayerDiscriminator"),
    "vgg16": _backbone_arch("vgg16", "torchvision vgg16 (features)", (r"^classifier\.",), convert=_vgg_convert(16)),
    "vgg19": _backbone_arch("vgg19", "torchvision vgg19 (features)", (r"^classifier\.",), convert=_vgg_convert(19)),
    "alexnet": _backbone_arch("alexnet", "torchvision alexnet (features)", (r"^classifier\.",), convert=_alexnet_convert),
    "resnet50": _backbone_arch("resnet50", "torchvision or timm resnet50", (r"^fc\.",)),
    "convnext_t": _backbone_arch("convnext_t", "timm convnext_tiny", (r"^head\.",)),
    "swin_t": _backbone_arch("swin_t", "timm swin_tiny_patch4_window7_224", (r"^head\.",)),
    "dinov2_s14": _backbone_arch("dinov2_s14", "transformers Dinov2Model (facebook/dinov2-small)",
                                 (r"^embeddings\.mask_token$", r"^pooler\."), rename=_dinov2_rename),
    "dinov2_b14": _backbone_arch("dinov2_b14", "transformers Dinov2Model (facebook/dinov2-base)",
                                 (r"^embeddings\.mask_token$", r"^pooler\."), rename=_dinov2_rename),
    "clip_b32": _backbone_arch("clip_b32", "transformers CLIPVisionModel / CLIPModel image tower "
                               "(openai/clip-vit-base-patch32)", (r"^embeddings\.position_ids$",),
                               select_prefix="vision_model."),
}


def _get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise InputError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[name]


def state_dict_of(checkpoint: Any, param_key: str | None = None) -> dict[str, np.ndarray]:
    """The flat tensor dict inside a loaded checkpoint.

    ``param_key`` names the entry to use; by default the first non-empty of ``params_ema``, ``params``,
    ``state_dict_ema``, ``state_dict``, ``model``, else the checkpoint itself (EMA weights first, as
    BasicSR and timm save them). A leading ``module.`` (DataParallel) is removed.
    """
    if not isinstance(checkpoint, Mapping):
        raise InputError(f"checkpoint holds a {type(checkpoint).__name__}, not a dict of tensors")
    if param_key is not None:
        if param_key not in checkpoint:
            raise InputError(f"checkpoint has no {param_key!r}; it has {sorted(checkpoint, key=str)[:10]}")
        checkpoint = checkpoint[param_key]
    else:
        for key in ("params_ema", "params", "state_dict_ema", "state_dict", "model"):
            if isinstance(checkpoint.get(key), Mapping) and checkpoint[key]:
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping):
        raise InputError(f"checkpoint entry {param_key!r} holds a {type(checkpoint).__name__}, not tensors")
    state = {}
    for key, value in checkpoint.items():
        if not isinstance(value, np.ndarray):
            continue  # counters, optimizer hyper-parameters and other metadata
        if not isinstance(key, str):
            raise InputError(f"checkpoint names a tensor {key!r}, not a string: not a state dict")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    if not state:
        raise InputError("checkpoint holds no tensors")
    return state


def _prepare_state(arch: Arch, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if arch.select_prefix and any(k.startswith(arch.select_prefix) for k in state):
        state = {k[len(arch.select_prefix):]: v for k, v in state.items() if k.startswith(arch.select_prefix)}
    if arch.rename is not None:
        state = {arch.rename(k): v for k, v in state.items()}
    ignore = [re.compile(p) for p in arch.ignore]
    return {k: v for k, v in state.items() if not any(p.search(k) for p in ignore)}


def convert_state(arch_name: str, state: Mapping[str, np.ndarray], **options) -> tuple[nn.Module, Variables]:
    """Builds ``arch_name`` with ``options`` and fills it from a flat PyTorch state dict."""
    arch = _get_arch(arch_name)
    try:
        module = arch.build(**options)
    except TypeError as error:
        raise InputError(f"{arch_name}: {error}") from None
    example = arch.example(options)
    try:
        target = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), example))
    except (ValueError, TypeError, NotImplementedError) as error:  # invalid option values
        raise InputError(f"{arch_name} with options {dict(options)}: {error}") from None
    state = _prepare_state(arch, state)
    if arch.convert is not None:
        variables = arch.convert(state, target)
        _check_like(variables, target, arch_name)
    else:
        variables = torch_to_flax(state, target, ignore=DEFAULT_IGNORE)
    return module, jax.tree.map(jnp.asarray, variables)


def _check_like(variables: Variables, target: Mapping[str, Any], arch_name: str) -> None:
    got = {jax.tree_util.keystr(p): np.shape(v) for p, v in jax.tree_util.tree_leaves_with_path(variables)}
    want = {jax.tree_util.keystr(p): tuple(v.shape) for p, v in jax.tree_util.tree_leaves_with_path(target)}
    if got != want:
        missing = sorted(set(want) - set(got))
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        raise ConversionError(f"{arch_name}: missing {missing[:10]}; wrong shapes {wrong[:10]}")


def from_pytorch(arch: str, path: str | os.PathLike, *, param_key: str | None = None,
                 **options) -> tuple[nn.Module, Variables]:
    """Reads the PyTorch checkpoint at ``path`` as architecture ``arch`` built with ``options``.

    ``module.apply(variables, x_nhwc)`` then reproduces the PyTorch network (discriminators and
    batch-normalised backbones take ``train=``; see each module).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    _get_arch(arch)
    checkpoint = read_torch_checkpoint(path)  # a damaged or hostile file raises WeightFileError, an InputError
    return convert_state(arch, state_dict_of(checkpoint, param_key), **options)


def save_converted(directory: str | os.PathLike, arch: str, options: Mapping[str, Any], variables: Variables,
                   *, source: str | os.PathLike | None = None) -> pathlib.Path:
    """Writes ``variables`` as an Orbax checkpoint in ``directory`` with a ``metadata.json``."""
    import orbax.checkpoint as ocp

    directory = pathlib.Path(directory).absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InputError(f"{directory} exists and is not an empty folder; choose a new folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create {directory}: {error.strerror or error}") from None
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(directory / "variables", jax.tree.map(np.asarray, variables))
    metadata = {"format": _FORMAT, "arch": arch, "options": dict(options)}
    if source is not None:
        metadata.update(source=str(source), source_sha256=sha256_of(source))
    write_json(directory / "metadata.json", metadata, sort_keys=True)
    return directory


def read_metadata(directory: str | os.PathLike) -> dict:
    path = pathlib.Path(directory) / "metadata.json"
    if not path.is_file():
        raise InputError(f"{directory} is not a converted checkpoint (no metadata.json); make one with "
                         f"python -m asym_jax.weights convert --arch ARCH --src FILE --dst {directory}")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # not UTF-8, not JSON
        raise InputError(f"{path}: not a readable metadata file ({error.__class__.__name__}: {error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != _FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise InputError(f"{path}: unsupported format {found!r}")
    if not isinstance(metadata.get("arch"), str) or not isinstance(metadata.get("options", {}), dict):
        raise InputError(f"{path}: 'arch' must be a name and 'options' a JSON object")
    return metadata


def load_converted(directory: str | os.PathLike) -> tuple[nn.Module, Variables]:
    """``(module, variables)`` from a folder written by :func:`save_converted`."""
    import orbax.checkpoint as ocp

    directory = pathlib.Path(directory).absolute()
    metadata = read_metadata(directory)
    options = metadata.get("options", {})
    arch = _get_arch(metadata["arch"])
    try:
        module = arch.build(**options)
        target = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), arch.example(options)))
    except (ValueError, TypeError, NotImplementedError) as error:  # invalid option values
        raise InputError(f"{directory}: {metadata['arch']} with options {options}: {error}") from None
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            variables = checkpointer.restore(directory / "variables", jax.tree.map(
                lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), target))
    except Exception as error:  # Orbax and TensorStore raise many types for missing or damaged files
        raise InputError(f"{directory}: the converted variables cannot be restored "
                         f"({error.__class__.__name__}: {str(error)[:500]})") from None
    return module, variables

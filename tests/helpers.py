"""Helpers shared by the tests and the benchmarks: the PyTorch oracles, comparisons.

PyPI's torchvision 0.28 is a CUDA build: beside the CPU build of torch 2.13 its C++ extension does not
load, and importing it fails on two operator schemas it expects. :func:`import_torch` declares those
schemas first, so ``torchvision.models`` (all the oracles need) imports; detection operators stay
unavailable. On a machine where torchvision imports normally, nothing is changed.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_config(file: str, arg: str | None = None):
    """``configs/<file>``'s ``get_config(arg)``, loaded by path as ``main`` loads it."""
    spec = importlib.util.spec_from_file_location("config_under_test", ROOT / "configs" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()


def tiny(config, data_dir, **overrides):
    """``config`` reading the session's TFDS ``data_dir``, with ``overrides`` set."""
    config.data_dir = str(data_dir)
    for key, value in overrides.items():
        config[key] = value
    return config


def to_torch(torch, x: np.ndarray):
    """NHWC numpy -> NCHW float32 torch tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x, np.float32), (0, 3, 1, 2))))


def kill_when(command, marker: pathlib.Path, *, env=None, timeout: float = 900) -> int:
    """Starts ``command`` (``python -m asym_jax.main ...``) in the repository and kills it with SIGKILL as soon
    as ``marker`` exists (e.g. a checkpoint's ``commit_success.txt``); asserts it was still running then.
    Returns its pid."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert marker.exists(), f"{command[2:4]}: no {marker} after {timeout} s"
    assert process.returncode == -signal.SIGKILL, f"{command[2:4]} ended before it could be killed"
    return process.pid


def assert_close(actual, expected, *, rtol=1e-4, atol=0.0, what=""):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), (
        f"{what}: max abs err {err.max():.3g}, max rel err {(err / np.maximum(np.abs(expected), 1e-30)).max():.3g}; "
        f"worst: {actual.flat[worst]!r} vs {expected.flat[worst]!r}")


def _dots_and_convs(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            yield eqn
        for value in eqn.params.values():
            for sub in (value if isinstance(value, (list, tuple)) else [value]):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _dots_and_convs(inner)


def assert_float32_highest(closed_jaxpr, what: str) -> None:
    """Every matmul and convolution of ``closed_jaxpr`` (nested programs included) takes float32 operands
    at ``Precision.HIGHEST``."""
    import jax
    found = list(_dots_and_convs(closed_jaxpr.jaxpr))
    assert found, f"{what}: no matmul or convolution found"
    for eqn in found:
        precision = eqn.params["precision"]
        assert precision is not None and all(p == jax.lax.Precision.HIGHEST for p in precision), (what, eqn)
        assert all(str(v.aval.dtype) == "float32" for v in eqn.invars), (what, eqn)


def import_torch():
    """Imports torch and torchvision (see the module docstring); returns the torch module."""
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
        import sys
        for module in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[module]
        library = torch.library.Library("torchvision", "DEF")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_torch.library = library  # keep the definitions alive
        import torchvision  # noqa: F401
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch


# Our layer name -> index of the convolution in torchvision's ``features``.
_TORCH_VGG16_CONVS = dict(zip(["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1",
                               "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"],
                              [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]))
_TORCH_ALEX_CONVS = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}


def _copy_convs(torch, modules, params, indices):
    """Copies our HWIO conv params into torch convolutions: ``modules[indices[name]]`` for each layer."""
    assert set(params) == set(indices), (sorted(params), sorted(indices))
    with torch.no_grad():
        for name, p in params.items():
            conv = modules[indices[name]]
            conv.weight.copy_(torch.from_numpy(np.transpose(np.asarray(p["kernel"]), (3, 2, 0, 1)).copy()))
            conv.bias.copy_(torch.from_numpy(np.asarray(p["bias"]).copy()))


def lpips_reference(torch, net, version, trunk_params):
    import lpips
    model = lpips.LPIPS(net=net, version=version, pnet_rand=True, verbose=False).eval()
    slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
    modules = {int(name): m for s in slices for name, m in s.named_children()}
    _copy_convs(torch, modules, trunk_params, _TORCH_VGG16_CONVS if net == "vgg" else _TORCH_ALEX_CONVS)
    return model


def dists_reference(torch, trunk_params, alpha=None, beta=None):
    import DISTS_pytorch.DISTS_pt as dists_module

    original, load = dists_module.models.vgg16, torch.load
    packaged = os.path.join(os.path.dirname(dists_module.__file__), "weights.pt")

    def load_from_package(path, *args, **kwargs):  # it reads <sys.prefix>/weights.pt: absent after pip --target
        return load(path if os.path.exists(path) else packaged, *args, **kwargs)

    dists_module.models.vgg16 = lambda *args, **kwargs: original(weights=None)
    torch.load = load_from_package
    try:
        model = dists_module.DISTS().eval()
    finally:
        dists_module.models.vgg16, torch.load = original, load
    modules = {int(name): m for stage in (model.stage1, model.stage2, model.stage3, model.stage4, model.stage5)
               for name, m in stage.named_children()}
    _copy_convs(torch, modules, trunk_params, _TORCH_VGG16_CONVS)
    with torch.no_grad():
        if alpha is not None:
            model.alpha.copy_(torch.from_numpy(np.asarray(alpha).reshape(1, -1, 1, 1).copy()))
            model.beta.copy_(torch.from_numpy(np.asarray(beta).reshape(1, -1, 1, 1).copy()))
    return model


def basicsr_root():
    """Folder of the installed ``basicsr`` package files, or None; found from the installed distribution,
    so it works after :func:`basicsr_arch` has put stand-in ``basicsr`` modules into ``sys.modules``."""
    import importlib.metadata
    import pathlib

    try:
        distribution = importlib.metadata.distribution("basicsr")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = pathlib.Path(distribution.locate_file("basicsr"))
    return root if root.is_dir() else None


def basicsr_arch(name: str):
    """Imports ``basicsr.archs.<name>`` from the installed BasicSR 1.4.2 files without running the
    package's ``__init__`` (broken on current torchvision): the registry, the logger and the compiled
    deformable-convolution ops are replaced by stand-ins."""
    import importlib
    import importlib.util
    import logging
    import sys
    import types

    torch = import_torch()
    if "basicsr.archs" not in sys.modules:
        root = basicsr_root()
        if root is None:
            raise ImportError("BasicSR is not installed: pip install --no-deps --no-build-isolation basicsr==1.4.2")

        class Registry:
            def register(self, obj=None, suffix=None):
                return obj if obj is not None else (lambda o: o)

        def package(name, path=None, **attrs):
            module = types.ModuleType(name)
            module.__path__ = [str(path)] if path else []
            module.__dict__.update(attrs)
            sys.modules[name] = module
            return module

        package("basicsr", root)
        package("basicsr.utils", get_root_logger=logging.getLogger)
        package("basicsr.utils.registry", ARCH_REGISTRY=Registry())
        package("basicsr.ops")
        package("basicsr.ops.dcn", ModulatedDeformConvPack=type("ModulatedDeformConvPack", (torch.nn.Module,), {}),
                modulated_deform_conv=None)
        package("basicsr.archs", root / "archs")
    return importlib.import_module(f"basicsr.archs.{name}")


def torch_state(module) -> dict:
    """A torch module's state dict as numpy arrays."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}

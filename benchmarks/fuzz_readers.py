"""Time-bounded fuzzing of the weight-file readers and the IQA label parsers: only the project's errors may
come out of them.

    python benchmarks/fuzz_readers.py [--seconds 60] [--out fuzz_failures] [--seed 0] [--targets a,b]
                                      [--timeout 10] [--replay FILE --targets NAME]

For every target, valid files are made first (``torch.save`` in the zip and the legacy format, numpy pickles,
npz files, and the CSV, text, xlsx and mat label files of the tiny IQA releases of ``tests/iqa_fixtures.py``),
then mutated at random: bytes flipped, overwritten, inserted, deleted, duplicated, truncated, two seeds
spliced, numbers in text replaced by extreme ones, or random bytes; zip files (torch, npz, xlsx) also have
one member mutated and the archive rebuilt, so the parsers behind the zip layer are reached. Each input is
given to its reader; the ``--seconds`` are split evenly between the targets.

A reader may return or raise ``asym_jax.errors.InputError`` (``WeightFileError`` and ``DatasetError`` are
ones) or ``UnsafePickleError``. Any other exception, or one call running longer than ``--timeout`` seconds, is a
failure: the input is written under ``--out`` with the command that replays it, and the exit status is 1.
Prints executions, refusals and failures per target. Needs the test extra (torch).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import pathlib
import pickle
import random
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

OPS = ("flip", "overwrite", "insert", "delete", "duplicate", "truncate", "splice", "number", "random")
_INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff" * 8)
_NUMBERS = (b"0", b"-1", b"1e400", b"-1e400", b"nan", b"inf", b"9" * 400, b"1" * 5000, b"0.5", b"", b"\x00",
            b"\t", b",", b'"', b"\r", b"\xe9", b"..", b"/", b"4294967296", b"-9223372036854775809")


class Hang(Exception):
    """Raised in a reader that ran past the per-call timeout."""


@dataclasses.dataclass
class Target:
    """A reader and the valid files its inputs are mutated from."""

    name: str
    seeds: list[bytes]
    path: pathlib.Path  # where an input is written before ``read`` runs
    read: Callable[[], object]
    zip_members: bool = False  # also mutate one member of the (zip) seed and rebuild the archive


def mutate(data: bytes, op: str, position: int, payload: bytes, other: bytes = b"") -> bytes:
    """One mutation of ``data``; ``position`` is taken modulo the length, ``payload`` gives the new bytes."""
    n = len(data)
    at = position % (n + 1)
    if op == "flip" and n:
        at %= n
        return data[:at] + bytes([data[at] ^ (1 << (position >> 8) % 8)]) + data[at + 1:]
    if op == "overwrite":
        value = payload or _INTERESTING[position % len(_INTERESTING)]
        return data[:at] + value + data[at + len(value):]
    if op == "insert":
        return data[:at] + (payload or _INTERESTING[position % len(_INTERESTING)]) + data[at:]
    if op == "delete":
        return data[:at] + data[at + 1 + len(payload) * 16:]
    if op == "duplicate":
        size = 1 + (position >> 4) % 256
        return data[:at] + data[at:at + size] * (2 + len(payload) % 4) + data[at + size:]
    if op == "truncate":
        return data[:at]
    if op == "splice":
        return data[:at] + other[position % (len(other) + 1):]
    if op == "number":
        numbers = list(re.finditer(rb"-?\d+(\.\d+)?", data))
        if numbers:
            match = numbers[position % len(numbers)]
            return data[:match.start()] + _NUMBERS[(position >> 8) % len(_NUMBERS)] + data[match.end():]
        return data
    if op == "random":
        return payload * (1 + position % 64)
    return data


def mutate_member(data: bytes, op: str, position: int, payload: bytes, other: bytes = b"") -> bytes:
    """``data`` (a zip archive) with one member mutated by :func:`mutate`, the archive rebuilt as it was
    compressed; for odd positions, "delete", "duplicate" and "splice" drop the member, write it twice or
    deflate it instead. ``data`` is unchanged when it is not a readable archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            members = [(info, archive.read(info)) for info in infos]
    except Exception:  # already damaged by an earlier mutation: leave it to the byte mutations
        return data
    if not members:
        return data
    index, structural = position % len(members), position & 1 and op in ("delete", "duplicate", "splice")
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore")  # a duplicate name
        for i, (info, content) in enumerate(members):
            compression, copies = info.compress_type, 1
            if i == index and structural:
                copies = {"delete": 0, "duplicate": 2}.get(op, 1)
                compression = zipfile.ZIP_DEFLATED if op == "splice" else compression
            elif i == index:
                content = mutate(content, op, position // len(members), payload, other)
            for _ in range(copies):
                archive.writestr(info, content, compress_type=compression)
    return out.getvalue()


def random_input(target: Target, rng: random.Random) -> bytes:
    """A seed of ``target`` with 1 to 4 random mutations (or, one time in 16, random bytes)."""
    if rng.random() < 1 / 16:
        return rng.randbytes(rng.randrange(0, 512))
    data = rng.choice(target.seeds)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(OPS[:-1])
        position = rng.getrandbits(32)
        payload = rng.randbytes(rng.choice((0, 0, 1, 2, 4, 8, 16)))
        other = rng.choice(target.seeds)
        member = target.zip_members and rng.random() < 0.6
        data = (mutate_member if member else mutate)(data, op, position, payload, other)
    return data


def _allowed() -> tuple[type[Exception], ...]:
    from asym_jax.errors import InputError
    from asym_jax.weights.readers import UnsafePickleError

    return InputError, UnsafePickleError


def run_one(target: Target, data: bytes, timeout: float) -> str | BaseException:
    """Gives ``data`` to ``target``'s reader: "read", "refused" (an InputError) or the exception that is a
    failure."""
    allowed = _allowed()
    target.path.write_bytes(data)
    alarm = hasattr(signal, "setitimer") and timeout > 0

    def on_alarm(signum, frame):
        raise Hang(f"{target.name}: one call took more than {timeout} s")

    previous = signal.signal(signal.SIGALRM, on_alarm) if alarm else None
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        try:
            target.read()
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except allowed:
        return "refused"
    except Exception as error:  # every other exception (Hang included) is a finding
        return error
    finally:
        if alarm:
            signal.signal(signal.SIGALRM, previous)
    return "read"


# ---------------------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------------------


def _weight_targets(folder: pathlib.Path) -> list[Target]:
    import collections

    import numpy as np
    import torch

    from asym_jax.weights import load_npz, read_numpy_pickle, read_torch_checkpoint, save_npz
    from asym_jax.weights.pytorch import state_dict_of

    arrays = {"conv": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "bias": np.ones(4, ">f8")},
              "scale": np.float32(2.5), "fortran": np.asfortranarray(np.eye(3, dtype=np.int16)),
              "list": [np.zeros(2, np.uint8), np.array([True, False]), (1, "x", None)]}
    pickles = [pickle.dumps(arrays, protocol=protocol) for protocol in (2, 4, 5)]

    weight = torch.arange(12.0).reshape(3, 4)
    state = {"params_ema": collections.OrderedDict(
        weight=weight, transposed=weight.t(), sliced=torch.arange(10)[3:7], half=torch.ones(3).half(),
        param=torch.nn.Parameter(torch.ones(2, 2)), flags=torch.tensor([True, False]), scalar=torch.tensor(1.5)),
        "iter": 7, "meta": {"name": "net", "sizes": [1, 2.5, None]}}
    torch_files = {}
    for fmt, zip_format in (("zip", True), ("legacy", False)):
        seeds = []
        for value in (state, state["params_ema"]):
            buffer = io.BytesIO()
            torch.save(value, buffer, _use_new_zipfile_serialization=zip_format)
            seeds.append(buffer.getvalue())
        torch_files[fmt] = seeds

    npz_seeds = []
    for write in (lambda f: save_npz(f, {"a": arrays["conv"]["kernel"], "b": arrays["fortran"]}),
                  lambda f: np.savez(f, a=np.arange(5.0), b=np.float32(1)),
                  lambda f: np.savez_compressed(f, alpha=np.ones(8, np.float32), beta=np.zeros((2, 4)))):
        buffer = io.BytesIO()
        write(buffer)
        npz_seeds.append(buffer.getvalue())

    def path(name):
        return folder / "weights" / name

    path("x").parent.mkdir(parents=True, exist_ok=True)
    return [
        Target("numpy_pickle", pickles, path("a.pkl"), lambda: read_numpy_pickle(path("a.pkl"))),
        Target("torch_zip", torch_files["zip"], path("z.pth"),
               lambda: state_dict_of(read_torch_checkpoint(path("z.pth"))), zip_members=True),
        Target("torch_legacy", torch_files["legacy"], path("l.pth"),
               lambda: state_dict_of(read_torch_checkpoint(path("l.pth")))),
        Target("npz", npz_seeds, path("a.npz"), lambda: load_npz(path("a.npz")), zip_members=True),
    ]


def _label_targets(folder: pathlib.Path) -> list[Target]:
    import iqa_fixtures

    from asym_jax.data import iqa_sources

    # (target, writer, writer options, label file name, reader)
    specs = [
        ("live_mat", iqa_fixtures.write_live, {}, "dmos.mat", iqa_sources.read_live),
        ("livec_mat", iqa_fixtures.write_livec, {}, "AllImages_release.mat", iqa_sources.read_livec),
        ("csiq_xlsx", iqa_fixtures.write_csiq, {"labels": "xlsx"}, "csiq.DMOS.xlsx", iqa_sources.read_csiq),
        ("spaq_xlsx", iqa_fixtures.write_spaq, {"labels": "xlsx"}, "MOS and Image attribute scores.xlsx",
         iqa_sources.read_spaq),
        ("kadid10k_csv", iqa_fixtures.write_kadid10k, {}, "dmos.csv", iqa_sources.read_kadid10k),
        ("koniq10k_csv", iqa_fixtures.write_koniq10k, {}, "koniq10k_scores_and_distributions.csv",
         iqa_sources.read_koniq10k),
        ("csiq_txt", iqa_fixtures.write_csiq, {"labels": "txt_spaces"}, "csiq_dmos.txt", iqa_sources.read_csiq),
        ("tid2013_txt", iqa_fixtures.write_tid2013, {}, "mos_with_names.txt", iqa_sources.read_tid2013),
        ("pipal_txt", iqa_fixtures.write_pipal, {}, "A0001.txt", iqa_sources.read_pipal),
    ]
    targets = []
    for name, write, options, label, read in specs:
        manual_dir = folder / name
        info = write(manual_dir, **options)
        label_path = next(p for p in [*info["labels"], *info["root"].rglob("*")] if p.name == label)
        seed = label_path.read_bytes()
        targets.append(Target(name, [seed], label_path, lambda read=read, d=manual_dir: read(d),
                              zip_members=label.endswith(".xlsx")))
    return targets


def make_targets(folder: pathlib.Path, names: list[str] | None = None) -> list[Target]:
    """Every target (or those named), with its valid files written under ``folder``."""
    targets = _weight_targets(folder) + _label_targets(folder)
    if names:
        unknown = set(names) - {t.name for t in targets}
        if unknown:
            raise SystemExit(f"unknown targets {sorted(unknown)}; known: {', '.join(t.name for t in targets)}")
        targets = [t for t in targets if t.name in names]
    return targets


# ---------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------


def fuzz(targets: list[Target], seconds: float, *, out: pathlib.Path, seed: int = 0, timeout: float = 10.0,
         log=print) -> dict[str, dict[str, int]]:
    """Runs every target for ``seconds / len(targets)`` (its seeds first, which must read); returns
    {target: {executions, refused, failures}} and writes each failing input under ``out``."""
    warnings.simplefilter("ignore")  # openpyxl and numpy warn about the damaged files they read
    stats = {}
    for target in targets:
        rng = random.Random(f"{seed}-{target.name}")
        counts = {"executions": 0, "refused": 0, "failures": 0}
        deadline = time.monotonic() + seconds / len(targets)
        inputs, kinds = iter(target.seeds), set()
        while time.monotonic() < deadline or counts["executions"] < len(target.seeds):
            data = next(inputs, None) or random_input(target, rng)
            outcome = run_one(target, data, timeout)
            counts["executions"] += 1
            if outcome == "refused":
                counts["refused"] += 1
            elif outcome != "read":
                counts["failures"] += 1
                where = traceback.extract_tb(outcome.__traceback__)[-1]
                kind = (type(outcome).__name__, where.filename, where.lineno)
                if kind not in kinds:  # one reproducer per exception type and place
                    kinds.add(kind)
                    _record(target, data, outcome, len(kinds), out, log)
        stats[target.name] = counts
        log(f"{target.name:<14} {counts['executions']:>7} executions {counts['refused']:>7} refused "
            f"{counts['failures']:>4} failures")
    return stats


def _record(target: Target, data: bytes, error: BaseException, number: int, out: pathlib.Path, log) -> None:
    out.mkdir(parents=True, exist_ok=True)
    file = out / f"{target.name}-{number}.bin"
    file.write_bytes(data)
    where = traceback.extract_tb(error.__traceback__)[-1]
    log(f"FAILURE {target.name}: {error.__class__.__name__}: {str(error)[:200]} at {where.filename}:{where.lineno}\n"
        f"  replay: python benchmarks/fuzz_readers.py --targets {target.name} --replay {file}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="total fuzzing time, split between targets")
    parser.add_argument("--out", default="fuzz_failures", help="folder for failing inputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one call may take")
    parser.add_argument("--replay", default=None, help="run this one input against --targets and show the error")
    args = parser.parse_args(argv)

    names = [n for n in args.targets.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="fuzz_readers_") as folder:
        targets = make_targets(pathlib.Path(folder), names)
        if args.replay:
            data = pathlib.Path(args.replay).read_bytes()
            failed = False
            for target in targets:
                outcome = run_one(target, data, args.timeout)
                if isinstance(outcome, BaseException):
                    traceback.print_exception(outcome)
                    failed = True
                print(f"{target.name}: {outcome if isinstance(outcome, str) else 'FAILURE'}")
            return int(failed)
        stats = fuzz(targets, args.seconds, out=pathlib.Path(args.out), seed=args.seed, timeout=args.timeout)
    total = sum(s["executions"] for s in stats.values())
    failures = sum(s["failures"] for s in stats.values())
    print(f"total {total} executions in {args.seconds:g} s, {failures} failures")
    return int(failures > 0)


if __name__ == "__main__":
    sys.exit(main())

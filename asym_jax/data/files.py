"""Finding the files of a dataset in its folder, and reading label files, with errors that name the file.

Official archives differ from copy to copy in letter case (``I01.BMP`` beside ``i01_01_1.bmp``) and in
how deep they were unpacked; :class:`FileIndex` looks files up without regard to case and finds the
dataset's root by a marker file, so the user can point ``manual_dir`` at the folder they unpacked.
"""

from __future__ import annotations

import csv
import os
import pathlib
import pickle
import subprocess
import sys
from collections.abc import Iterable, Sequence

from asym_jax.errors import InputError

__all__ = ["DatasetError", "FileIndex", "find_root", "read_csv_rows", "read_mat", "read_xlsx_rows"]


class DatasetError(InputError):
    """A dataset folder, label file, image or label row is missing or not in the expected form."""


def find_root(manual_dir: str | os.PathLike, markers: Sequence[str], *, dataset: str, expected: str) -> pathlib.Path:
    """The folder at or below ``manual_dir`` (at most 3 levels) that holds one of ``markers``
    (relative paths, compared without case). ``expected`` describes the layout for the error message."""
    manual_dir = pathlib.Path(manual_dir).expanduser()
    if not manual_dir.is_dir():
        raise DatasetError(f"{dataset}: manual_dir {manual_dir} is not a folder; expected {expected}")
    wanted = [m.lower() for m in markers]
    frontier = [manual_dir]
    for _ in range(4):
        for folder in frontier:
            index = {p.name.lower(): p for p in folder.iterdir()}
            for marker in wanted:
                first, *rest = pathlib.PurePosixPath(marker).parts
                if first in index and (not rest or _exists_nocase(index[first], rest)):
                    return folder
        frontier = sorted(p for folder in frontier for p in folder.iterdir() if p.is_dir())
    raise DatasetError(f"{dataset}: found none of {', '.join(markers)} in {manual_dir} or the 3 folder levels "
                       f"below it; expected {expected}")


def _exists_nocase(folder: pathlib.Path, parts: Sequence[str]) -> bool:
    for part in parts:
        if not folder.is_dir():
            return False
        match = [p for p in folder.iterdir() if p.name.lower() == part]
        if not match:
            return False
        folder = match[0]
    return True


class FileIndex:
    """Every file under ``root``, looked up by relative path or by base name, without regard to case."""

    def __init__(self, root: str | os.PathLike, *, dataset: str):
        self.root = pathlib.Path(root)
        self.dataset = dataset
        self._by_path: dict[str, pathlib.Path] = {}
        self._by_name: dict[str, list[pathlib.Path]] = {}
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = pathlib.Path(folder, name)
                self._by_path[path.relative_to(self.root).as_posix().lower()] = path
                self._by_name.setdefault(name.lower(), []).append(path)

    def path(self, relative: str, *, what: str = "file") -> pathlib.Path:
        """The file at ``relative`` (posix, any case); a :class:`DatasetError` naming it when absent."""
        found = self._by_path.get(pathlib.PurePosixPath(relative).as_posix().lower())
        if found is None:
            raise DatasetError(f"{self.dataset}: {what} {self.root / relative} does not exist")
        return found

    def has(self, relative: str) -> bool:
        return pathlib.PurePosixPath(relative).as_posix().lower() in self._by_path

    def named(self, name: str, *, under: str | None = None, what: str = "file") -> pathlib.Path:
        """The one file called ``name`` (any case) anywhere under the root, or under ``under``."""
        found = self._by_name.get(name.lower(), [])
        if under is not None:
            prefix = under.lower().rstrip("/") + "/"
            found = [p for p in found if p.relative_to(self.root).as_posix().lower().startswith(prefix)]
        where = self.root / under if under else self.root
        if not found:
            raise DatasetError(f"{self.dataset}: {what} {name} does not exist under {where}")
        if len(found) > 1:
            raise DatasetError(f"{self.dataset}: {what} {name} is ambiguous under {where}: "
                               + ", ".join(str(p) for p in sorted(found)[:4]))
        return found[0]

    def files_under(self, relative: str) -> list[pathlib.Path]:
        prefix = relative.lower().rstrip("/") + "/"
        return sorted(p for key, p in self._by_path.items() if key.startswith(prefix))


def read_csv_rows(path: pathlib.Path, *, dataset: str, columns: Iterable[str], delimiter: str = ",") -> list[dict]:
    """Rows of a CSV file with a header, as dicts; the header must hold ``columns``."""
    if not path.is_file():
        raise DatasetError(f"{dataset}: label file {path} does not exist")
    columns = tuple(columns)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DatasetError(f"{dataset}: {path} has columns {header}; expected {', '.join(columns)}")
            reader.fieldnames = header
            return [{k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{dataset}: cannot read {path} as a UTF-8 CSV file with the columns "
                           f"{', '.join(columns)} ({error.__class__.__name__}: {error})") from None


def read_xlsx_rows(path: pathlib.Path, *, dataset: str, columns: Iterable[str], sheet: str | None = None) -> list[dict]:
    """Rows of an Excel sheet whose first non-empty row is the header, as dicts of cell values."""
    if not path.is_file():
        raise DatasetError(f"{dataset}: label file {path} does not exist")
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for damaged files
        raise DatasetError(f"{dataset}: cannot read {path} as an Excel workbook "
                           f"({error.__class__.__name__}: {error})") from None
    try:
        return _sheet_rows(book, path, dataset=dataset, columns=tuple(columns), sheet=sheet)
    except DatasetError:
        raise
    except Exception as error:  # rows are parsed lazily: a damaged sheet fails while they are read
        raise DatasetError(f"{dataset}: cannot read {path} as an Excel workbook "
                           f"({error.__class__.__name__}: {error})") from None
    finally:
        book.close()


def _sheet_rows(book, path: pathlib.Path, *, dataset: str, columns: tuple[str, ...], sheet: str | None) -> list[dict]:
    if sheet is not None and sheet not in book.sheetnames:
        raise DatasetError(f"{dataset}: {path} has sheets {book.sheetnames}; expected one named {sheet!r}")
    worksheet = book[sheet] if sheet is not None else book.worksheets[0]
    worksheet.reset_dimensions()  # a declared size ("A1:XFD1048576") would pad every row to it
    values = worksheet.iter_rows(values_only=True)
    header = next((r for r in values if any(v is not None for v in r)), [])
    header = [str(h).strip() if h is not None else "" for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetError(f"{dataset}: {path} has columns {header}; expected {', '.join(columns)}")
    return [dict(zip(header, r)) for r in values if any(v is not None for v in r)]


# scipy's MATLAB reader is not hardened against damaged files (a wrong element type code in a 500-byte file
# crashes the interpreter; unfixed in scipy 1.17, scipy/scipy#25829), so it runs in a child process with bounded
# memory and time.
_LOADMAT = """
import pickle, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
except (ImportError, ValueError, OSError):
    pass
import scipy.io
data = scipy.io.loadmat(sys.argv[1])
names = [k for k in data if not k.startswith("__")]
sys.stdout.buffer.write(pickle.dumps(({k: data[k] for k in sys.argv[3:] if k in data}, names)))
"""
_LOADMAT_MEMORY = 4 << 30
_LOADMAT_SECONDS = 120


def read_mat(path: pathlib.Path, *, dataset: str, keys: Iterable[str]) -> dict:
    """Variables ``keys`` of a MATLAB .mat file (v4-v7.2, through scipy, in a child process: a file that
    crashes, hangs or exhausts scipy's reader raises a DatasetError here)."""
    if not path.is_file():
        raise DatasetError(f"{dataset}: label file {path} does not exist")
    keys = tuple(keys)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        child = subprocess.run([sys.executable, "-P", "-c", _LOADMAT, str(path), str(_LOADMAT_MEMORY), *keys], env=env,
                               capture_output=True, timeout=_LOADMAT_SECONDS)
    except subprocess.TimeoutExpired:
        raise DatasetError(f"{dataset}: cannot read {path} as a MATLAB file (scipy's reader ran for more than "
                           f"{_LOADMAT_SECONDS} s)") from None
    if child.returncode != 0:
        lines = child.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if child.returncode > 0 and lines else f"scipy's reader crashed, exit status {child.returncode}"
        raise DatasetError(f"{dataset}: cannot read {path} as a MATLAB file ({why[:500]})")
    data, names = pickle.loads(child.stdout)  # written by the child above: plain arrays of the file's values
    missing = [k for k in keys if k not in data]
    if missing:
        raise DatasetError(f"{dataset}: {path} lacks variable(s) {', '.join(missing)}; it has {', '.join(names)}")
    return data

"""Output folders written atomically: all files or none, never half-overwritten."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from uqenergy.config.errors import InputError

MARKER = ".uqenergy-output"


def _is_previous_output(path: Path) -> bool:
    return (path / MARKER).is_file() or not any(path.iterdir())


def check_output_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse, before any work, an output folder that could not be written or must not be replaced."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "--out", "exists and is not a folder", "a new or previous uqenergy output folder")
    if out_dir.is_dir() and not force and not _is_previous_output(out_dir):
        raise InputError(
            out_dir, "--out", "exists and is not a uqenergy output", "a new folder, a previous output, or --force"
        )
    ancestor = out_dir.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK):
        raise InputError(
            out_dir, "--out", f"cannot write here: {ancestor} is not a writable folder", "a writable folder"
        )
    return out_dir


def write_atomically(out_dir: str | Path, fill: Callable[[Path], None], *, force: bool = False) -> Path:
    """Fill a fresh temporary folder with ``fill`` and move it into place as ``out_dir``.

    An existing ``out_dir`` that is a previous uqenergy output (or empty) is
    replaced whole; any other existing folder is refused unless ``force``.
    """
    out_dir = check_output_dir(out_dir, force=force)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as exc:
        raise InputError(out_dir, "--out", f"cannot write here: {exc.strerror}", "a writable folder") from None
    try:
        fill(staging)
        (staging / MARKER).write_text("written by uqenergy; this folder is replaced whole by the next run\n")
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            out_dir.rename(retired / "previous")
            staging.rename(out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except OSError as exc:
        raise InputError(out_dir, "--out", f"cannot write output: {exc.strerror or exc}", "a writable folder") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _check_finite(records, file: str) -> None:
    for i, record in enumerate(records):
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(file, f"record {i}: {key}", f"is {value}", "finite numbers only; check the priors")
            if isinstance(value, dict):
                _check_finite([value], file)


def write_json(path: Path, records: list[dict]) -> None:
    """Flat records as JSON; refuses NaN and inf rather than writing them."""
    _check_finite(records, path.name)
    path.write_text(json.dumps(records, indent=1) + "\n")


def write_netcdf(path: Path, dataset: xr.Dataset) -> None:
    dataset.to_netcdf(path, engine="h5netcdf")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file_atomically(path: str | Path, text: str, *, may_replace: Callable[[Path], bool]) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it into place.

    An existing ``path`` is replaced only if ``may_replace(path)`` says so (a file this tool wrote);
    otherwise :class:`InputError`. Nothing is left half-written.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "--out", "is a folder", "a file name, e.g. mlenergy.csv")
    if path.exists() and not may_replace(path):
        raise InputError(path, "--out", "exists and was not written by uqenergy", "a new file name, or --force")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    except OSError as exc:
        raise InputError(path, "--out", f"cannot write here: {exc.strerror or exc}", "a writable folder") from None
    staging = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(staging, path.stat().st_mode if path.exists() else 0o666 & ~_umask())
        os.replace(staging, path)
    except OSError as exc:
        staging.unlink(missing_ok=True)
        raise InputError(path, "--out", f"cannot write output: {exc.strerror or exc}", "a writable folder") from None
    return path

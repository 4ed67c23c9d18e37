"""Locate bundled prior sets, studies and data files, and read TOML with clear errors."""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import stat
import tomllib
from importlib import resources
from pathlib import Path

from uqenergy.config.errors import InputError

_CHECKOUT = Path(__file__).resolve().parents[3]  # src/uqenergy/config/files.py -> the repository


def data_dir(kind: str) -> Path:
    """``priors`` or ``studies``: the package data of an installed wheel, else the source checkout's top level."""
    installed = resources.files("uqenergy").joinpath("data", kind)
    return Path(str(installed)) if installed.is_dir() else _CHECKOUT / kind


def resolve(name: str | Path, kind: str, relative_to: Path | None = None, suffix: str = ".toml") -> Path:
    """A file named by path (relative to ``relative_to``'s folder) or by bundled name."""
    text = str(name)
    if text.endswith((".toml", ".csv")) or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to.parent / path
        return path
    return data_dir(kind) / f"{text}{suffix}"


def existing(name: str | Path, kind: str, relative_to: Path, key: str, suffix: str = ".toml") -> Path:
    """:func:`resolve`, and an :class:`InputError` naming ``relative_to`` and ``key`` if the file is missing."""
    path = resolve(name, kind, relative_to, suffix)
    if not path.is_file():
        raise InputError(
            relative_to,
            key,
            f"{name!r}: no such file ({path})",
            "a bundled name (" + ", ".join(bundled(kind, suffix)) + ") or a path relative to this file",
        )
    return path


def bundled(kind: str, suffix: str = ".toml") -> list[str]:
    """Names of the bundled files of ``kind``."""
    return sorted(p.stem for p in data_dir(kind).glob(f"*{suffix}"))


MAX_INPUT_BYTES = 16 * 2**20  # study, prior and table files are a few kB; this bounds what one may cost


def read_input_text(path: Path, what: str, *, encoding: str = "utf-8") -> str:
    """The text of an input file, read only from a regular file and only up to :data:`MAX_INPUT_BYTES`.

    A FIFO, device or socket is refused before it is opened (reading one may hang or never end),
    and so is a larger file; ``what`` names the file expected, for the one-line error.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(path, None, "no such file", what) from None
    except OSError as exc:
        raise InputError(path, None, f"cannot be read: {exc.strerror}", what) from None
    if stat.S_ISDIR(mode):
        raise InputError(path, None, "is a folder", what)
    if not stat.S_ISREG(mode):
        raise InputError(path, None, "is not a regular file (a FIFO, device or socket)", what)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(path, None, f"is larger than {MAX_INPUT_BYTES // 2**20} MB", what)
        return data.decode(encoding)
    except OSError as exc:
        raise InputError(path, None, f"cannot be read: {exc.strerror}", what) from None
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"is not {encoding} text: {exc.reason} at byte {exc.start}", what) from None


def read_toml(path: Path) -> dict:
    """Parse a TOML file; a missing, unreadable or oversized file or a syntax error is an :class:`InputError`."""
    text = read_input_text(path, "an existing TOML file or a bundled name")
    try:
        return copy.deepcopy(_parsed_toml(text))  # a copy: callers may change what they are given
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"not valid TOML: {exc}", "TOML 1.0 syntax") from None
    except RecursionError:
        raise InputError(path, None, "nests arrays or tables too deeply", "TOML nested a few levels deep") from None


@functools.lru_cache(maxsize=64)
def _parsed_toml(text: str) -> dict:
    """TOML parsed once per distinct text: a study with many settings reads its prior files once per setting."""
    return tomllib.loads(text)


def read_text(path: Path) -> str:
    """A UTF-8 text file (a byte-order mark is dropped), read bounded as :func:`read_input_text` reads."""
    return read_input_text(path, "an existing UTF-8 file or a bundled name", encoding="utf-8-sig")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def display_path(path: str | Path) -> str:
    """A file as a user would name it: relative to the working folder if inside it, a bundled file by its folder
    (``priors/joule2026.toml``), anything else in full."""
    path = Path(path).resolve()
    here = Path.cwd().resolve()
    if path.is_relative_to(here):
        return os.path.relpath(path, here)
    for kind in ("priors", "studies"):
        if path.is_relative_to(data_dir(kind).resolve()):
            return f"{kind}/{path.relative_to(data_dir(kind).resolve())}"
    return str(path)

"""Locate bundled prior sets, studies and data files, and read TOML with clear errors."""

from __future__ import annotations

import hashlib
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


def read_toml(path: Path) -> dict:
    """Parse a TOML file; a missing file or a syntax error is an :class:`InputError`."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(path, None, "no such file", "an existing TOML file or a bundled name") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a folder", "a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not valid TOML: {exc}", "TOML 1.0 syntax") from None


def read_text(path: Path) -> str:
    """A UTF-8 text file (a byte-order mark is dropped); a missing or unreadable file is an :class:`InputError`."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, None, "no such file", "an existing file or a bundled name") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a folder", "a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot be read as text: {exc}", "a readable UTF-8 file") from None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

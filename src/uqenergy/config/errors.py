"""The one error type users see: ``FILE: KEY: what is wrong (what is allowed)``."""

from __future__ import annotations

import math
import re
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InputError(Exception):
    """Bad user input, reported on one line and exit code 2 by the CLI."""

    def __init__(self, file: str | Path | None, key: str | None, problem: str, allowed: str | None = None):
        self.file = str(file) if file is not None else None
        self.key = key
        self.problem = problem
        self.allowed = allowed
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """``FILE: KEY: problem (allowed)`` on one line: control characters from the input are shown escaped."""
        parts = [p for p in (self.file, self.key) if p]
        text = self.problem if not self.allowed else f"{self.problem} ({self.allowed})"
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], ": ".join([*parts, text]))


def require_number(value, file, key: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """Return ``value`` as a finite float or raise :class:`InputError` naming ``key``."""
    allowed = "a positive number" if positive else "a non-negative number" if nonnegative else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(file, key, f"expected a number, got {value!r}", allowed)
    value = float(value)
    if not math.isfinite(value):
        raise InputError(file, key, f"{value} is not finite", allowed)
    if positive and value <= 0:
        raise InputError(file, key, f"{value:g} is not positive", allowed)
    if nonnegative and value < 0:
        raise InputError(file, key, f"{value:g} is negative", allowed)
    return value


def check_keys(table: dict, allowed: set[str] | frozenset[str], file, prefix: str = "") -> None:
    """Raise :class:`InputError` for the first key of ``table`` not in ``allowed`` (typos)."""
    for key in table:
        if key not in allowed:
            raise InputError(file, f"{prefix}{key}", "unknown key", "allowed: " + ", ".join(sorted(allowed)))


def require_text(value, file, key: str) -> str:
    """``value`` as non-empty text, or :class:`InputError` naming ``key``."""
    if not isinstance(value, str) or not value:
        raise InputError(file, key, f"expected text, got {value!r}", "a non-empty string")
    return value


MAX_SEED = 2**63 - 1  # stored as a 64-bit integer in samples.nc


def require_seed(value, file, key: str) -> int:
    """``value`` as a random seed (an integer from 0 to :data:`MAX_SEED`), or :class:`InputError` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(file, key, f"{value!r} is not a non-negative integer", "an integer >= 0")
    if value > MAX_SEED:
        raise InputError(file, key, f"{value} is too large", f"an integer from 0 to 2**63 - 1 = {MAX_SEED}")
    return value


def require_names(value, file, key: str, *, allowed=None, allow_empty: bool = False) -> list[str]:
    """A list of distinct names (each one of ``allowed`` if given), or :class:`InputError` naming ``key``."""
    if not isinstance(value, list) or not (value or allow_empty) or not all(isinstance(v, str) for v in value):
        what = "a list of distinct names" if allow_empty else "a non-empty list of distinct names"
        raise InputError(file, key, f"expected a list of names, got {value!r}", what)
    if len(set(value)) != len(value):
        raise InputError(file, key, "has duplicate names", "distinct names")
    for name in value if allowed is not None else ():
        if name not in allowed:
            raise InputError(file, key, f"unknown name {name!r}", "one of " + ", ".join(allowed))
    return value


MAX_DRAWS = 10**9
MIN_DRAWS = 2  # a Monte Carlo standard error needs two draws


def positive_int(value, file, key: str, maximum: int = MAX_DRAWS, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InputError(
            file,
            key,
            f"{value!r} is not a whole number in {minimum}..{maximum:,}",
            f"an integer from {minimum} to {maximum:,}",
        )
    return value

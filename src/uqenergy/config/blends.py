"""A study's ``[blends.NAME]`` tables: pools of models, by rank (``top``) or by name (``members``), with trim windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uqenergy.config.errors import InputError, check_keys, positive_int, require_names, require_number

BLEND_KEYS = frozenset({"top", "members", "trim", "concentration"})


@dataclass(frozen=True)
class Blend:
    """One ``[blends.NAME]`` table: which models are pooled, and the percentile windows it is trimmed to."""

    name: str
    top: int | None  # pool the `top` models with the highest median energy ...
    members: list[str]  # ... or exactly these models
    trim: list[tuple[float, float]]
    #: Dirichlet concentration of each member's share, per state of knowledge (two-level designs);
    #: None: fixed equal shares. Either way the per-query mixture is the equal one (the Dirichlet's mean).
    concentration: float | None = None


def parse_blend(name: str, table: Any, file: Path, models: Sequence[str]) -> Blend:
    """Validate the ``[blends.NAME]`` table of a study whose models are ``models``.

    Parameters
    ----------
    name : str
        The blend's name (the table's key).
    table : Any
        The table as read from TOML.
    file : Path
        The study file, for error messages.
    models : Sequence of str
        The study's models: the members a blend may name, and the most ``top`` may take.

    Returns
    -------
    Blend
        The validated blend.
    """
    key = f"blends.{name}"
    if not isinstance(table, dict):
        raise InputError(file, key, "expected a table", f"[{key}] with top or members, and trim")
    check_keys(table, BLEND_KEYS, file, f"{key}.")
    if ("top" in table) == ("members" in table):
        raise InputError(file, key, "needs exactly one of top and members", "top = N or members = [model names]")
    top = positive_int(table["top"], file, f"{key}.top", len(models)) if "top" in table else None
    members = require_names(table["members"], file, f"{key}.members") if "members" in table else []
    for m in members:
        if m not in models:
            raise InputError(
                file, f"{key}.members", f"unknown model {m!r}", "models of this study: " + ", ".join(models)
            )
    trims = table.get("trim", [])
    if not isinstance(trims, list):
        raise InputError(file, f"{key}.trim", "expected a list of [low, high] percentiles", "e.g. [[5, 95], [10, 90]]")
    parsed = []
    for window in trims:
        if not (isinstance(window, list) and len(window) == 2):
            raise InputError(
                file, f"{key}.trim", f"{window!r} is not [low, high]", "percentile pairs 0 <= low < high <= 100"
            )
        low, high = (require_number(v, file, f"{key}.trim") for v in window)
        if not 0 <= low < high <= 100:
            raise InputError(
                file, f"{key}.trim", f"[{low:g}, {high:g}] is not a percentile window", "0 <= low < high <= 100"
            )
        parsed.append((low, high))
    concentration = (
        require_number(table["concentration"], file, f"{key}.concentration", positive=True)
        if "concentration" in table
        else None
    )
    if concentration is not None and parsed:
        raise InputError(
            file, f"{key}.concentration", "a trimmed blend has no shares to draw", "concentration on an untrimmed blend"
        )
    return Blend(name, top, members, parsed, concentration)


def untrimmed_series(models: Sequence[str], blends: Sequence[Blend]) -> list[str]:
    """The series whose whole distribution is kept: the models, then the untrimmed blends.

    Parameters
    ----------
    models : Sequence of str
        A study's models.
    blends : Sequence of Blend
        A study's blends.

    Returns
    -------
    list of str
        Model names, then the names of the blends without trim windows.
    """
    return [*models, *(b.name for b in blends if not b.trim)]

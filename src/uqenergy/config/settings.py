"""Named settings: one study run again under a few overrides, for one-at-a-time sensitivities.

A study may list ``[[settings]]`` tables, each with a ``name``, an optional
``description``, a ``[settings.study]`` table of study keys from
:data:`SETTING_STUDY_KEYS` and ``[settings.priors.NAME]`` tables layered over the
study's own prior overrides (same rules as those). Every setting is a complete
study (:attr:`uqenergy.config.study.Study.settings`); ``uqenergy run`` and
``uqenergy sobol`` run them one after another and tag each record with
``setting``. Settings cannot change what is sampled (models, draws, seed,
pathways), so their results line up draw for draw.

The paper's one-at-a-time analyses (Oviedo et al., arXiv:2509.20241) are
written this way: input length L_in = 500 / 1,000 / 5,000 tokens with
L_eff = L_out + L_in / 30, and power utilisation proportional to load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from uqenergy.config.errors import InputError, check_keys

SETTING_KEYS = frozenset({"name", "description", "study", "priors"})
SETTING_STUDY_KEYS = frozenset({"effective_tokens", "input_token_divisor", "power_utilisation"})
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")


def _setting_table(index: int, table: Any, file: Path) -> tuple[str, dict, dict]:
    key = f"settings[{index}]"
    if not isinstance(table, dict):
        raise InputError(file, key, "expected a table", "[[settings]] tables with name, study, priors")
    check_keys(table, SETTING_KEYS, file, f"{key}.")
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InputError(file, f"{key}.name", f"{name!r} is not a setting name", "letters, digits and _ . + = -")
    study_keys, priors = table.get("study", {}), table.get("priors", {})
    for sub, value in (("study", study_keys), ("priors", priors)):
        if not isinstance(value, dict):
            raise InputError(file, f"settings.{name}.{sub}", "expected a table", f"[settings.{sub}]")
    check_keys(study_keys, SETTING_STUDY_KEYS, file, f"settings.{name}.study.")
    return name, study_keys, priors


def setting_tables(tables: Any, file: Path) -> Iterator[tuple[str, dict, dict]]:
    """Validate a study's ``[[settings]]`` tables one at a time, in file order.

    Parameters
    ----------
    tables : Any
        The ``settings`` value as read from TOML (``[]`` when the study has none).
    file : Path
        The study file, for error messages.

    Yields
    ------
    tuple of (str, dict, dict)
        Each setting's name, its ``[settings.study]`` keys and its ``[settings.priors.NAME]`` tables.
    """
    if not isinstance(tables, list):
        raise InputError(file, "settings", "expected a list of tables", "[[settings]] tables")
    seen = set()
    for index, table in enumerate(tables):
        name, study_keys, priors = _setting_table(index, table, file)
        if name in seen:
            raise InputError(file, f"settings[{index}].name", f"{name!r} is used twice", "distinct setting names")
        seen.add(name)
        yield name, study_keys, priors

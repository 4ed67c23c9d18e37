"""Named settings: one study run again under a few overrides, for one-at-a-time sensitivities.

A study may list ``[[settings]]`` tables, each with a ``name``, an optional
``description``, a ``[settings.study]`` table of study keys from
:data:`SETTING_STUDY_KEYS` and ``[settings.priors.NAME]`` tables layered over the
study's own prior overrides (same rules as those). Every setting is a complete
study; ``uqenergy run`` and ``uqenergy sobol`` run them one after another and
tag each record with ``setting``. Settings cannot change what is sampled
(models, draws, seed, pathways), so their results line up draw for draw.

The paper's one-at-a-time analyses (Oviedo et al., arXiv:2509.20241) are
written this way: input length L_in = 500 / 1,000 / 5,000 tokens with
L_eff = L_out + L_in / 30, and power utilisation proportional to load.
"""

from __future__ import annotations

import re

from uqenergy.config.errors import InputError, check_keys
from uqenergy.config.study import Study, study_from_document

SETTING_KEYS = frozenset({"name", "description", "study", "priors"})
SETTING_STUDY_KEYS = frozenset({"effective_tokens", "input_token_divisor", "power_utilisation"})
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")


def _setting_table(index: int, table, file) -> tuple[str, dict, dict]:
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


def expand_settings(study: Study, extra_priors: tuple[dict, ...] = ()) -> list[tuple[str, Study]]:
    """The study under each of its settings, in file order; empty when it declares none.

    ``extra_priors`` are prior overrides layered over each setting's own (a fleet
    workload's priors, which no setting changes)."""
    doc, file = study.document, study.path
    tables = doc.get("settings", [])
    if not isinstance(tables, list):
        raise InputError(file, "settings", "expected a list of tables", "[[settings]] tables")
    variants, seen = [], set()
    for index, table in enumerate(tables):
        name, study_keys, priors = _setting_table(index, table, file)
        if name in seen:
            raise InputError(file, f"settings[{index}].name", f"{name!r} is used twice", "distinct setting names")
        seen.add(name)
        variant_doc = {k: v for k, v in doc.items() if k != "settings"} | {"study": doc["study"] | study_keys}
        try:
            variant = study_from_document(file, variant_doc, draws=study.draws, seed=study.seed, extra_priors=(priors, *extra_priors))
        except InputError as exc:
            where = f"settings.{name}" + (f": {exc.key}" if exc.key else "")
            raise InputError(exc.file, where, exc.problem, exc.allowed) from None
        variants.append((name, variant))
    return variants

"""Fleet studies: a per-query study with a ``[fleet]`` section, and the ``[grids.NAME]`` of prior files.

A fleet study is a per-query study (``[study]``, ``[blends]``, ``[pathways]``,
``[priors]``, ``[[settings]]``) with a ``[fleet]`` section:

- ``queries_per_day``, ``series`` (the untrimmed blend or model serving the
  queries, default ``blend``), ``outer_draws`` (states of knowledge of the
  honest method) and ``grids`` (named water/carbon settings of the prior files);
- ``[fleet.workloads.NAME]``: one kind of query, the study under the
  workload's own ``priors`` (which win over the study's and its settings') and
  ``pathways`` (the study's by default). A reasoning workload is the
  traditional output lengths times ``output_token_multiplier`` (Oviedo et al.'s
  long regime, median 5,000 tokens, is a multiplier of 5,000 / 300);
- ``[fleet.mixes]``: NAME = {workload = share, ...}, shares in [0, 1] summing to 1.

A prior file's ``[grids.NAME]`` table (``description``, ``priors``) overrides
the environment priors (:data:`ENVIRONMENT_PRIORS`) for one electricity grid or
facility; ``a+b`` layers grid ``b`` over grid ``a``. What a fleet run computes
is in :mod:`uqenergy.analyses.fleet`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from uqenergy.config.blends import untrimmed_series
from uqenergy.config.errors import InputError, check_keys, positive_int, require_names, require_number
from uqenergy.config.files import read_toml, resolve
from uqenergy.config.priors import Prior, PriorSet, build_prior, layer_files, merge_spec
from uqenergy.config.study import Study, study_from_document

FLEET_KEYS = frozenset({"queries_per_day", "series", "outer_draws", "grids", "workloads", "mixes"})
WORKLOAD_KEYS = frozenset({"description", "pathways", "priors"})
GRID_KEYS = frozenset({"description", "priors"})
FLEET_PRIORS = ("fleet_overhead", "fleet_interventions")
ENVIRONMENT_PRIORS = (
    "water_use_effectiveness_l_per_kwh",
    "water_intensity_electricity_l_per_kwh",
    "grid_carbon_intensity_g_per_kwh",
)
DEFAULT_GRID = "default"  # the environment priors as the prior files define them, no grid override
DEFAULT_SERIES = "blend"
DEFAULT_OUTER_DRAWS = 1_000
SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Fleet:
    """A parsed fleet study: the per-query study, the fleet section, and one study per (setting, workload)."""

    study: Study
    queries_per_day: float
    series: str
    outer_draws: int
    grids: dict[str, dict[str, Prior]]  # grid -> environment priors with the grid's overrides
    mixes: dict[str, dict[str, float]]  # mix -> workload -> share
    descriptions: dict[str, str]  # workload -> description
    runs: dict[tuple[str | None, str], Study]  # (setting or None, workload) -> study
    labels: list[str] = field(default_factory=list)  # baseline, the study's pathways, combined, interventions

    @property
    def settings(self) -> list[str | None]:
        return list(dict.fromkeys(s for s, _ in self.runs))


def _table(value: Any, file: Path, key: str, allowed: str) -> dict:
    if not isinstance(value, dict) or not value:
        raise InputError(file, key, "expected a non-empty table", allowed)
    return value


def _mixes(table: Any, file: Path, workloads: list[str]) -> dict[str, dict[str, float]]:
    """Each mix's shares: known workloads, each in [0, 1], summing to 1."""
    mixes = {}
    for name, shares in _table(table, file, "fleet.mixes", "[fleet.mixes] NAME = {workload = share, ...}").items():
        key = f"fleet.mixes.{name}"
        shares = _table(shares, file, key, "{workload = share, ...} with shares summing to 1")
        for workload, share in shares.items():
            if workload not in workloads:
                raise InputError(file, f"{key}.{workload}", "unknown workload", "workloads: " + ", ".join(workloads))
            share = require_number(share, file, f"{key}.{workload}")
            if not 0 <= share <= 1:
                raise InputError(file, f"{key}.{workload}", f"share {share:g} is outside [0, 1]", "a share from 0 to 1")
        total = math.fsum(shares.values())
        if abs(total - 1) > SHARE_TOLERANCE:
            raise InputError(file, key, f"shares sum to {total:g}", "shares summing to 1")
        mixes[name] = {w: float(s) for w, s in shares.items()}
    return mixes


def read_grids(prior_files: Sequence[Path]) -> dict[str, tuple[Path, dict]]:
    """The ``[grids.NAME]`` tables of prior files and what they extend (a later file's grid replaces an earlier one).

    Parameters
    ----------
    prior_files : Sequence of Path
        Prior files, layered as a study layers them.

    Returns
    -------
    dict
        Grid name -> (the file that defines it, its table as read from TOML; see :func:`grid_priors`).
    """
    grids = {}
    for path, doc in layer_files(list(prior_files)):
        if not isinstance(doc.get("grids", {}), dict):
            raise InputError(path, "grids", "expected a table", "[grids.NAME] tables")
        for name, table in doc.get("grids", {}).items():
            if name == DEFAULT_GRID:
                raise InputError(path, f"grids.{name}", "is a reserved name", "the environment priors themselves")
            grids[name] = (path, table)
    return grids


def _grid_overrides(name: str, path: Path, table: Any) -> dict[str, dict]:
    """A grid's prior overrides, checked: environment priors only, each a table."""
    where = f"grids.{name}"
    if not isinstance(table, dict):
        raise InputError(path, where, "expected a table", f"[{where}] with description and priors")
    check_keys(table, GRID_KEYS, path, f"{where}.")
    overrides = table.get("priors", {})
    if not isinstance(overrides, dict):
        raise InputError(path, f"{where}.priors", "expected a table", f"[{where}.priors.NAME] tables")
    for prior, spec in overrides.items():
        if prior not in ENVIRONMENT_PRIORS:
            raise InputError(
                path,
                f"{where}.priors.{prior}",
                "a grid overrides environment priors only",
                ", ".join(ENVIRONMENT_PRIORS),
            )
        if not isinstance(spec, dict):
            raise InputError(path, f"{where}.priors.{prior}", "expected a table", "a prior table")
    return overrides


def grid_priors(
    priors: PriorSet, defined: dict[str, tuple[Path, dict]], names: Sequence[str], file: Path, key: str = "fleet.grids"
) -> dict[str, dict[str, Prior]]:
    """The environment priors under each named grid: the study's, with the grid's ``priors`` layered over them.

    ``a+b`` layers grid ``b`` over grid ``a`` (a facility's on-site water over a
    region's electricity); ``default`` is the environment priors themselves.

    Parameters
    ----------
    priors : PriorSet
        The priors the grids override.
    defined : dict
        What :func:`read_grids` returns.
    names : Sequence of str
        The grids wanted, each a grid name, ``a+b`` or ``default``.
    file : Path
        The file that asks for ``names``, and ``key``, its key: for error messages.

    Returns
    -------
    dict
        Grid name -> environment prior name -> prior.
    """
    priors.require(ENVIRONMENT_PRIORS, file, key)
    grids = {}
    for name in names:
        layered = {p: priors.get(p) for p in ENVIRONMENT_PRIORS}
        for part in name.split("+") if name != DEFAULT_GRID else []:
            if part not in defined:
                raise InputError(
                    file,
                    key,
                    f"unknown grid {part!r}",
                    "grids of the prior files, joined by + to "
                    "layer a facility over a grid: " + ", ".join([DEFAULT_GRID, *defined]),
                )
            path, table = defined[part]
            for prior, spec in _grid_overrides(part, path, table).items():
                layered[prior] = build_prior(
                    prior, merge_spec(layered[prior].spec, spec), path, f"grids.{part}.priors.{prior}"
                )
        grids[name] = layered
    return grids


def _workload_runs(
    study: Study, doc: dict, name: str, table: Any, draws: int | None, seed: int | None
) -> list[tuple[str | None, Study]]:
    """The study ``doc`` describes as this workload, under each setting (or once, without settings)."""
    key, file = f"fleet.workloads.{name}", study.path
    if not isinstance(table, dict):
        raise InputError(file, key, "expected a table", "a table with description, pathways and priors")
    check_keys(table, WORKLOAD_KEYS, file, f"{key}.")
    overrides = table.get("priors", {})
    if not isinstance(overrides, dict):
        raise InputError(file, f"{key}.priors", "expected a table", f"[{key}.priors.NAME] tables")
    pathways = require_names(
        table.get("pathways", study.pathways), file, f"{key}.pathways", allowed=study.pathways, allow_empty=True
    )
    workload_doc = dict(doc)
    workload_doc["pathways"] = {k: v for k, v in doc.get("pathways", {}).items() if k != "names"} | (
        {"names": pathways} if pathways else {}
    )
    try:
        workload = study_from_document(file, workload_doc, draws=draws, seed=seed, extra_priors=(overrides,))
    except InputError as exc:
        raise InputError(exc.file, f"{key}: {exc.key}" if exc.key else key, exc.problem, exc.allowed) from None
    untrimmed = [b for b in workload.blends if not b.trim]
    variants: list[tuple[str | None, Study]] = [(s.name, s.study) for s in workload.settings] or [(None, workload)]
    return [(setting, replace(variant, blends=untrimmed)) for setting, variant in variants]


def _epistemic(prior: Prior, file: Path) -> None:
    """Fleet-level priors (and PUE, which IT energy for water needs) are drawn once per state of knowledge."""
    if prior.kind != "epistemic":
        raise InputError(
            file,
            f"priors.{prior.name}.kind",
            "is aleatory; the honest fleet total draws fleet-level priors once per state of knowledge",
            "epistemic",
        )


def fleet_from_document(path: Path, doc: dict, *, draws: int | None = None, seed: int | None = None) -> Fleet:
    """Validate a fleet study document read from ``path``: the per-query study and its ``[fleet]`` section.

    Parameters
    ----------
    path : Path
        The study file, for error messages and relative file names.
    doc : dict
        The file as read from TOML.
    draws, seed : int, optional
        Override the document's ``draws`` and ``seed`` (every workload run's).

    Returns
    -------
    Fleet
        The fleet, with one study per (setting, workload).
    """
    study = study_from_document(path, doc, draws=draws, seed=seed)
    table = doc.get("fleet")
    if not isinstance(table, dict):
        raise InputError(path, "fleet", "missing [fleet] table", "a [fleet] table with workloads and mixes")
    check_keys(table, FLEET_KEYS, path, "fleet.")
    if "queries_per_day" not in table:
        raise InputError(
            path, "fleet.queries_per_day", "missing", "queries per day, e.g. 1e9 as in Oviedo et al. (2026)"
        )
    queries = require_number(table["queries_per_day"], path, "fleet.queries_per_day", positive=True)
    series = table.get("series", DEFAULT_SERIES)
    candidates = untrimmed_series(study.models, study.blends)
    if series not in candidates:
        raise InputError(
            path,
            "fleet.series",
            f"{series!r} is not a model or untrimmed blend of the study",
            "one of " + ", ".join(candidates),
        )
    outer = positive_int(table.get("outer_draws", DEFAULT_OUTER_DRAWS), path, "fleet.outer_draws")
    has_environment = all(p in study.priors.base for p in ENVIRONMENT_PRIORS)
    grid_names = require_names(
        table.get("grids", [DEFAULT_GRID] if has_environment else []), path, "fleet.grids", allow_empty=True
    )
    study.priors.require(FLEET_PRIORS, path, "study.priors")
    workloads = _table(table.get("workloads"), path, "fleet.workloads", "[fleet.workloads.NAME] tables")
    runs = {}
    for name, workload in workloads.items():
        for setting, variant in _workload_runs(study, doc, name, workload, draws, seed):
            runs[(setting, name)] = variant
    mixes = _mixes(table.get("mixes"), path, list(workloads))
    descriptions = {name: w.get("description", "") if isinstance(w, dict) else "" for name, w in workloads.items()}
    labels = ["baseline", *study.pathways, *(["combined"] if study.combined else []), "interventions"]
    prior_files = [resolve(name, "priors", path) for name in doc["study"]["priors"]]
    grids = grid_priors(study.priors, read_grids(prior_files), grid_names, path)
    for prior in [
        *(v.priors.get(n) for v in runs.values() for n in (*FLEET_PRIORS, "pue")),
        *(p for grid in grids.values() for p in grid.values()),
    ]:
        _epistemic(prior, path)
    return Fleet(study, queries, series, outer, grids, mixes, descriptions, runs, labels)


def load_fleet(path: str | Path, *, draws: int | None = None, seed: int | None = None) -> Fleet:
    """Parse and validate a fleet study (a path or a bundled study name such as ``"paper_fleet"``).

    Parameters
    ----------
    path : str or Path
        A fleet study file or bundled name.
    draws, seed : int, optional
        Override the file's ``draws`` and ``seed``.

    Returns
    -------
    Fleet
        The validated fleet; bad input raises :class:`~uqenergy.config.errors.InputError`.
    """
    path = resolve(path, "studies")
    return fleet_from_document(path, read_toml(path), draws=draws, seed=seed)

"""Compare studies: published per-query estimates against our scenario studies, and the overstatement ratio.

A compare study is TOML with a ``[compare]`` table: the scenario ``studies`` to
run (one per scenario, e.g. ``paper_traditional`` and ``paper_test_time``), the
``estimates`` file (:mod:`uqenergy.config.estimates`), the ``series`` to compare
with (default the untrimmed ``blend``), ``draws`` and ``seed`` for every
scenario run, and ``outer_draws`` x ``inner_draws`` for the two-level runs that
give the credible distributions of the mean and the median, and optionally a
closed-model study (``closed_models``) whose predictions are a second
comparator for the estimates that name one of its models (``closed_model``). An optional
``[priors.SCENARIO.NAME]`` table overrides a prior of that scenario's study for the compare only
(:func:`scenario_overrides`; the bundled compare pins the test-time study's ``reasoning_share`` at 1:
the published test-time figures are per reasoning query). An optional ``[overstatement]`` table names a non-production prior
set and the published claim its energy ratio is held against. What a compare
run computes is in :mod:`uqenergy.analyses.compare` and
:mod:`uqenergy.analyses.overstatement`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uqenergy.config.boundaries import BOUNDARIES, RUNG_PRIORS
from uqenergy.config.closed_models import ClosedModelStudy, load_closed_model_study
from uqenergy.config.errors import (
    MIN_DRAWS,
    InputError,
    check_keys,
    positive_int,
    require_names,
    require_number,
    require_seed,
    require_text,
)
from uqenergy.config.estimates import PublicEstimate, load_estimates
from uqenergy.config.files import existing, read_toml, resolve
from uqenergy.config.priors import PriorSet, load_prior_files
from uqenergy.config.study import INPUT_PRIORS, Study, load_study, study_from_document

SECTIONS = frozenset({"compare", "overstatement", "priors"})
COMPARE_KEYS = frozenset(
    {
        "name",
        "description",
        "estimates",
        "studies",
        "series",
        "draws",
        "seed",
        "outer_draws",
        "inner_draws",
        "closed_models",
    }
)
OVERSTATEMENT_KEYS = frozenset({"priors", "claimed_range", "claim_source"})
DEFAULT_SERIES = "blend"
DEFAULT_OUTER_DRAWS = 1_000  # states of knowledge of the credible distributions of the mean and the median
DEFAULT_INNER_DRAWS = 2_000  # queries per state of knowledge (the Monte Carlo noise of one state's mean)


@dataclass(frozen=True)
class Overstatement:
    """The non-production prior files and the published claim the ratio is held against."""

    prior_files: tuple[Path, ...]
    claimed_low: float
    claimed_high: float
    claim_source: str


@dataclass(frozen=True)
class CompareStudy:
    """A parsed compare study; ``non_production_priors`` maps each scenario to its non-production priors
    (empty without an ``[overstatement]`` table)."""

    path: Path
    name: str
    description: str
    estimates: list[PublicEstimate]
    studies: list[Study]
    series: str
    overstatement: Overstatement | None
    non_production_priors: Mapping[str, PriorSet]
    outer_draws: int = DEFAULT_OUTER_DRAWS
    inner_draws: int = DEFAULT_INNER_DRAWS
    closed_models: ClosedModelStudy | None = None  # predictions set against estimates that name a closed_model


def parse_overstatement(table: Any, file: Path) -> Overstatement:
    """Validate an ``[overstatement]`` table.

    Parameters
    ----------
    table : Any
        The table as read from TOML.
    file : Path
        The compare study, for error messages and relative file names.

    Returns
    -------
    Overstatement
        The non-production prior files and the claimed range.
    """
    if not isinstance(table, dict):
        raise InputError(
            file, "overstatement", "expected a table", "[overstatement] with priors, claimed_range, claim_source"
        )
    check_keys(table, OVERSTATEMENT_KEYS, file, "overstatement.")
    names = require_names(table.get("priors"), file, "overstatement.priors")
    claimed = table.get("claimed_range")
    if not (isinstance(claimed, list) and len(claimed) == 2):
        raise InputError(
            file, "overstatement.claimed_range", f"expected [low, high], got {claimed!r}", "two ratios, e.g. [4, 20]"
        )
    low, high = (require_number(v, file, "overstatement.claimed_range", positive=True) for v in claimed)
    if not low < high:
        raise InputError(file, "overstatement.claimed_range", f"low {low:g} is not below high {high:g}", "low < high")
    source = table.get("claim_source")
    if not isinstance(source, str) or not source.strip():
        raise InputError(file, "overstatement.claim_source", "missing or empty", "a citation for the claimed range")
    files = tuple(existing(name, "priors", file, "overstatement.priors") for name in names)
    return Overstatement(files, low, high, source)


def _non_production_priors(study: Study, overstatement: Overstatement, file: Path) -> PriorSet:
    """The non-production prior files with the study's own ``[priors]`` overrides layered on top.

    Parameters
    ----------
    study : Study
        A scenario study of the compare study.
    overstatement : Overstatement
        The compare study's ``[overstatement]`` table.
    file : Path
        The compare study, for error messages.

    Returns
    -------
    PriorSet
        The priors the non-production side of the ratio draws from.
    """
    overrides = study.prior_overrides
    priors = load_prior_files(
        list(overstatement.prior_files), [(study.path, {"priors": overrides})] if overrides else []
    )
    priors.require(INPUT_PRIORS, file, "overstatement.priors")
    return priors


def scenario_overrides(table: Any, file: Path, studies: list[Study]) -> dict[str, dict]:
    """Validate ``[priors.SCENARIO.NAME]``: prior overrides of a scenario study for this compare only.

    Parameters
    ----------
    table : Any
        The ``[priors]`` table as read from TOML.
    file : Path
        The compare study, for error messages.
    studies : list of Study
        The scenario studies as their files define them.

    Returns
    -------
    dict
        ``{scenario: {prior name: table}}``, each scenario one of ``studies``' and each prior one its
        study defines.
    """
    if not isinstance(table, dict):
        raise InputError(file, "priors", "expected a table", "[priors.SCENARIO.NAME] tables")
    by_scenario = {s.scenario: s for s in studies}
    for scenario, overrides in table.items():
        if scenario not in by_scenario:
            raise InputError(
                file, f"priors.{scenario}", "not the scenario of a compare study", ", ".join(sorted(by_scenario))
            )
        if not isinstance(overrides, dict) or not all(isinstance(t, dict) for t in overrides.values()):
            raise InputError(file, f"priors.{scenario}", "expected a table of tables", f"[priors.{scenario}.NAME]")
        study = by_scenario[scenario]
        for name in overrides:
            if name not in study.priors.base:
                raise InputError(
                    file,
                    f"priors.{scenario}.{name}",
                    f"study {study.name!r} defines no such prior",
                    "defined: " + ", ".join(study.priors.names()),
                )
    return table


def _scenario_studies(names: Any, file: Path, draws: int | None, seed: int | None, priors: Any) -> list[Study]:
    """The scenario studies of ``compare.studies``, each under its ``[priors.SCENARIO]`` overrides."""
    names = require_names(names, file, "compare.studies")
    studies = [load_study(existing(name, "studies", file, "compare.studies"), draws=draws, seed=seed) for name in names]
    scenarios = [s.scenario for s in studies]
    if len(set(scenarios)) != len(scenarios):
        raise InputError(file, "compare.studies", "two studies share a scenario", "one study per scenario")
    overrides = scenario_overrides(priors, file, studies)

    def overridden(study: Study) -> Study:
        try:
            return study_from_document(
                study.path, read_toml(study.path), draws=draws, seed=seed, extra_priors=(overrides[study.scenario],)
            )
        except InputError as exc:  # a bad value in the compare's table: name the compare file
            raise InputError(file, f"priors.{study.scenario}: {exc.key}", exc.problem, exc.allowed) from None

    return [overridden(s) if s.scenario in overrides else s for s in studies]


def _closed_models(
    name: Any, file: Path, estimates: list[PublicEstimate], draws: int | None, seed: int | None
) -> ClosedModelStudy:
    """The closed-model study of ``compare.closed_models``, checked against the estimates that name its models.

    An estimate's ``closed_model`` must be one of its models, of the estimate's scenario, at a boundary the
    study's ladder reaches (at or below the study's own: the ladder is walked down, never guessed up).
    """
    if not isinstance(name, str):
        raise InputError(file, "compare.closed_models", f"expected a study name, got {name!r}", '"closed_models"')
    study = load_closed_model_study(existing(name, "studies", file, "compare.closed_models"), draws=draws, seed=seed)
    models = [m.name for m in study.models]
    for e in (e for e in estimates if e.closed_model):
        where = f"estimate {e.id!r} names closed model {e.closed_model!r}"
        if e.closed_model not in models:
            raise InputError(file, "compare.closed_models", f"{where}, not in study {study.name!r}", ", ".join(models))
        if e.query_type != study.scenario:
            raise InputError(
                file,
                "compare.closed_models",
                f"{where}, but its query_type {e.query_type!r} is not the study's scenario {study.scenario!r}",
                "a closed-model study of the estimate's scenario",
            )
        if BOUNDARIES.index(e.boundary) > BOUNDARIES.index(study.boundary):
            raise InputError(
                file,
                "compare.closed_models",
                f"{where} at the {e.boundary} rung, above the study's boundary {study.boundary!r}",
                "a closed-model study at or above the estimate's boundary",
            )
    return study


def compare_from_document(path: Path, doc: dict, *, draws: int | None = None, seed: int | None = None) -> CompareStudy:
    """Validate a compare study document read from ``path``; ``draws``/``seed`` override the file's.

    Parameters
    ----------
    path : Path
        The compare study file, for error messages and relative file names.
    doc : dict
        The file as read from TOML.
    draws, seed : int, optional
        Override ``compare.draws`` and ``compare.seed`` (every scenario study's).

    Returns
    -------
    CompareStudy
        The validated compare study.
    """
    check_keys(doc, SECTIONS, path)
    table = doc.get("compare")
    if not isinstance(table, dict):
        raise InputError(path, "compare", "missing [compare] table", "a [compare] table with studies and estimates")
    check_keys(table, COMPARE_KEYS, path, "compare.")
    if "estimates" not in table and "overstatement" not in doc:
        raise InputError(
            path, "compare.estimates", "nothing to compare", "an estimates file, an [overstatement] table, or both"
        )
    draws = (
        positive_int(draws, path, "--draws", minimum=MIN_DRAWS)
        if draws is not None
        else (positive_int(table["draws"], path, "compare.draws", minimum=MIN_DRAWS) if "draws" in table else None)
    )
    if seed is not None or "seed" in table:
        seed = (
            require_seed(seed, path, "--seed")
            if seed is not None
            else require_seed(table["seed"], path, "compare.seed")
        )
    studies = _scenario_studies(table.get("studies"), path, draws, seed, doc.get("priors", {}))
    series = table.get("series", DEFAULT_SERIES)
    for study in studies:
        if study.power_utilisation != "prior":  # the audit and the overstatement ratio substitute PU as an input
            raise InputError(
                path,
                "compare.studies",
                f"study {study.name!r} computes PU from load",
                'studies whose power utilisation is a prior (power_utilisation = "prior")',
            )
        if any(b.name == series and b.trim for b in study.blends):
            raise InputError(
                path,
                "compare.series",
                f"{series!r} is a trimmed blend of study {study.name!r}",
                "a model or an untrimmed blend: the mean and the median per state of knowledge pool whole "
                "distributions",
            )
        if series not in study.models and series not in [b.name for b in study.blends]:
            raise InputError(
                path,
                "compare.series",
                f"study {study.name!r} has no series {series!r}",
                "a model or blend of every study: " + ", ".join([*study.models, *(b.name for b in study.blends)]),
            )
    if not isinstance(table.get("estimates", ""), str):
        raise InputError(
            path, "compare.estimates", f"expected a file name, got {table['estimates']!r}", 'e.g. "public_estimates"'
        )
    estimates = (
        load_estimates(existing(table["estimates"], "priors", path, "compare.estimates"))
        if "estimates" in table
        else []
    )
    by_scenario = {s.scenario: s for s in studies}
    for estimate in estimates:
        if estimate.query_type not in by_scenario:
            raise InputError(
                path,
                "compare.studies",
                f"no study of scenario {estimate.query_type!r} for estimate {estimate.id!r}",
                "studies whose scenarios cover: " + ", ".join(sorted({e.query_type for e in estimates})),
            )
        study = by_scenario[estimate.query_type]
        needed = {"accelerator": RUNG_PRIORS["server"], "provisioned": RUNG_PRIORS["provisioned"]}.get(
            estimate.boundary
        )
        if needed is not None and needed not in study.priors.base:
            raise InputError(
                path,
                "compare.studies",
                f"study {study.name!r} has no prior {needed!r} to compare estimate {estimate.id!r} at the "
                f"{estimate.boundary} rung",
                'studies whose priors include the boundary ladder (e.g. priors = ["honest"])',
            )
    outer, inner = (
        positive_int(table[key], path, f"compare.{key}") if key in table else default
        for key, default in (("outer_draws", DEFAULT_OUTER_DRAWS), ("inner_draws", DEFAULT_INNER_DRAWS))
    )
    overstatement = parse_overstatement(doc["overstatement"], path) if "overstatement" in doc else None
    non_production = (
        {s.scenario: _non_production_priors(s, overstatement, path) for s in studies}
        if overstatement is not None
        else {}
    )
    closed = _closed_models(table["closed_models"], path, estimates, draws, seed) if "closed_models" in table else None
    name = require_text(table.get("name", path.stem), path, "compare.name")
    description = table.get("description", "")
    if description:
        require_text(description, path, "compare.description")
    return CompareStudy(
        path, name, description, estimates, studies, series, overstatement, non_production, outer, inner, closed
    )


def load_compare_study(path: str | Path, *, draws: int | None = None, seed: int | None = None) -> CompareStudy:
    """Parse and validate a compare study (a path or a bundled name such as ``"public_estimates"``).

    Parameters
    ----------
    path : str or Path
        A compare study file or bundled name.
    draws, seed : int, optional
        Override the file's ``draws`` and ``seed``.

    Returns
    -------
    CompareStudy
        The validated compare study; bad input raises :class:`~uqenergy.config.errors.InputError`.
    """
    path = resolve(path, "studies")
    return compare_from_document(path, read_toml(path), draws=draws, seed=seed)

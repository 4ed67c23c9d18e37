"""A study's ``[sobol]`` section: which sensitivity analysis ``uqenergy sobol`` runs, on which series and targets.

Keys: ``method`` (sobol, morris, pawn), ``base_samples`` (sizes tried in turn),
``tolerance`` (largest CI half-width to stop at), ``second_order``,
``resamples`` (bootstrap), ``conf_level``, ``targets``, ``series``,
``inner_draws`` and ``[sobol.groups]`` (group name -> list of factors; every
sampled factor must be in exactly one group). A study without the section gets
the defaults. What the analysis does is in :mod:`uqenergy.analyses.sensitivity_study`.

What is analysed follows the study's design (:data:`DESIGN_TARGETS`): a one-level
study, the energy per query; a two-level study (``[intervals] design =
"two-level"``), the mean energy per query over its epistemic priors, each
design row's mean taken over ``inner_draws`` aleatory draws; a fleet study, that
mean and the fleet total per day of each workload mix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from uqenergy.config.blends import Blend, untrimmed_series
from uqenergy.config.errors import InputError, check_keys, require_names, require_number
from uqenergy.config.priors import PriorSet

METHODS = ("sobol", "morris", "pawn")
TARGETS = ("energy_wh", "log_energy_wh")
#: what ``uqenergy sobol`` analyses for each kind of study (the first are the defaults)
DESIGN_TARGETS = {
    "per-query": TARGETS,
    "two-level": ("mean_energy_wh",),
    "fleet": ("mean_energy_wh", "fleet_gwh_per_day"),
}
MODEL_FACTOR = "model_choice"  # the categorical factor that picks a blend's member for each draw
MIX_FACTOR = "model_mix"  # a blend's Dirichlet model shares (two-level and fleet designs): a group name may hold it
SECTION_KEYS = frozenset(
    {
        "method",
        "base_samples",
        "tolerance",
        "second_order",
        "resamples",
        "conf_level",
        "targets",
        "series",
        "groups",
        "inner_draws",
    }
)
INNER_DRAWS = 1000  # aleatory draws per design row for the mean (two-level and fleet designs)
MAX_INNER_DRAWS = 10**6
DEFAULT_BASE_SAMPLES = {
    "sobol": tuple(2**p for p in range(10, 15)),
    "morris": tuple(2**p for p in range(6, 11)),
    "pawn": tuple(2**p for p in range(10, 15)),
}
MIN_BASE_SAMPLES = {"sobol": 2**4, "morris": 4, "pawn": 100}
MAX_BASE_SAMPLES = 2**20


@dataclass(frozen=True)
class Options:
    """How to analyse: method, base sample sizes to try in turn, CI tolerance, bootstrap."""

    method: str = "sobol"
    base_samples: tuple[int, ...] = DEFAULT_BASE_SAMPLES["sobol"]
    tolerance: float = 0.05
    second_order: bool = False
    resamples: int = 100
    conf_level: float = 0.95


@dataclass(frozen=True)
class SobolSection:
    """The parsed ``[sobol]`` section (the defaults when a study has none)."""

    options: Options = field(default_factory=Options)
    targets: tuple[str, ...] = TARGETS
    series: tuple[str, ...] | None = None  # None: every model and untrimmed blend
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    design: str = "per-query"  # a key of DESIGN_TARGETS
    inner_draws: int = INNER_DRAWS  # common aleatory draws behind each row's mean (two-level and fleet)


def _base_samples(value: Any, method: str, file: Path) -> tuple[int, ...]:
    key, low = "sobol.base_samples", MIN_BASE_SAMPLES[method]
    allowed = f"increasing whole numbers from {low} to {MAX_BASE_SAMPLES}" + (
        ", powers of 2" if method == "sobol" else ""
    )
    if not isinstance(value, list) or not value:
        raise InputError(file, key, f"expected a list, got {value!r}", allowed)
    for n in value:
        if (
            isinstance(n, bool)
            or not isinstance(n, int)
            or not low <= n <= MAX_BASE_SAMPLES
            or (method == "sobol" and n & (n - 1))
        ):
            raise InputError(file, key, f"{n!r} is not a valid base sample size for {method}", allowed)
    if any(b <= a for a, b in pairwise(value)):
        raise InputError(file, key, "sizes do not increase", allowed)
    return tuple(value)


def _bounded(table: dict, key: str, default: float, low: float, high: float, file: Path) -> float:
    value = require_number(table.get(key, default), file, f"sobol.{key}")
    if not low < value <= high:
        raise InputError(file, f"sobol.{key}", f"{value:g} is out of range", f"a number in ({low:g}, {high:g}]")
    return value


def parse_sobol(
    table: Any,
    file: Path,
    models: Sequence[str],
    blends: Sequence[Blend],
    factors: Sequence[str],
    priors: PriorSet,
    design: str = "per-query",
) -> SobolSection:
    """Validate a study's ``[sobol]`` table.

    Parameters
    ----------
    table : Any
        The table as read from TOML (``{}`` when the study has none).
    file : Path
        The study file, for error messages.
    models, blends : Sequence
        The study's models and blends: the series the section may name.
    factors : Sequence of str
        The study's sampled inputs (:attr:`uqenergy.config.study.Study.factors`): what groups may hold.
    priors : PriorSet
        The study's priors: a factor fixed for every model is not sampled and needs no group.
    design : str
        ``per-query``, ``two-level`` or ``fleet`` (:data:`DESIGN_TARGETS`): which targets are allowed.

    Returns
    -------
    SobolSection
        Options, targets, series (None: all) and groups.
    """
    if not isinstance(table, dict):
        raise InputError(file, "sobol", "expected a table", "a [sobol] table")
    check_keys(table, SECTION_KEYS, file, "sobol.")
    method = table.get("method", "sobol")
    if method not in METHODS:
        raise InputError(file, "sobol.method", f"unknown method {method!r}", "one of " + ", ".join(METHODS))
    second = table.get("second_order", False)
    if not isinstance(second, bool) or (second and method != "sobol"):
        raise InputError(
            file,
            "sobol.second_order",
            f"{second!r} is not allowed with method {method}",
            "true or false; second-order indices need method sobol",
        )
    resamples = table.get("resamples", 100)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 10 <= resamples <= 10_000:
        raise InputError(file, "sobol.resamples", f"{resamples!r} is not a whole number in 10..10000", "e.g. 100")
    options = Options(
        method=method,
        base_samples=_base_samples(table.get("base_samples", list(DEFAULT_BASE_SAMPLES[method])), method, file),
        tolerance=_bounded(table, "tolerance", 0.05, 0.0, 1.0, file),
        second_order=second,
        resamples=resamples,
        conf_level=_bounded(table, "conf_level", 0.95, 0.0, 0.999, file),
    )
    allowed_targets = DESIGN_TARGETS[design]
    if design != "per-query" and method != "sobol":
        raise InputError(file, "sobol.method", f"{method} is not available for a {design} study", "sobol")
    targets = tuple(
        require_names(table.get("targets", list(allowed_targets)), file, "sobol.targets", allowed=allowed_targets)
    )
    inner = table.get("inner_draws", INNER_DRAWS)
    if isinstance(inner, bool) or not isinstance(inner, int) or not 1 <= inner <= MAX_INNER_DRAWS:
        raise InputError(
            file, "sobol.inner_draws", f"{inner!r} is not a whole number in 1..{MAX_INNER_DRAWS}", "e.g. 1000"
        )
    candidates = untrimmed_series(models, blends)
    trimmed = [b.name for b in blends if b.trim]
    series = (
        tuple(require_names(table["series"], file, "sobol.series", allowed=candidates + trimmed))
        if "series" in table
        else None
    )
    for name in series or ():
        if name in trimmed:
            raise InputError(
                file,
                "sobol.series",
                f"{name!r} is a trimmed blend",
                "models or untrimmed blends: trimming depends on the whole sample, so it has no indices",
            )
    blended = any(b.name in (series or candidates) for b in blends)
    groups = _groups(table.get("groups", {}), file, method, factors, priors, models, blended, design)
    return SobolSection(options, targets, series, groups, design, inner)


def _groups(
    table: Any,
    file: Path,
    method: str,
    factors: Sequence[str],
    priors: PriorSet,
    models: Sequence[str],
    blended: bool,
    design: str,
) -> dict[str, tuple[str, ...]]:
    """``[sobol.groups]``: every sampled factor (and the model choice, when a blend is analysed) in one group.

    A two-level or fleet design may also group the blend's model shares (``model_mix``) and any other
    prior of the study's prior set (e.g. ``fleet_overhead``); its aleatory factors may be listed and are
    left out of the mean's factors."""
    if not isinstance(table, dict):
        raise InputError(file, "sobol.groups", "expected a table", "[sobol.groups] with name = [factors]")
    if table and method == "pawn":
        raise InputError(file, "sobol.groups", "PAWN has no grouped form", "no groups, or method sobol or morris")
    allowed = [*factors, MODEL_FACTOR]
    if design != "per-query":
        allowed += [MIX_FACTOR, *(name for name in priors.names() if name not in factors)]
    groups: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for name, members in table.items():
        groups[name] = tuple(require_names(members, file, f"sobol.groups.{name}", allowed=allowed))
        for factor in groups[name]:
            if factor in owner:
                raise InputError(
                    file,
                    f"sobol.groups.{name}",
                    f"{factor!r} is already in group {owner[factor]!r}",
                    "each factor in one group",
                )
            owner[factor] = name
    if groups:
        sampled = [f for f in factors if not priors.is_fixed(f, models)]
        if design == "per-query":
            sampled += [MODEL_FACTOR] if blended else []
        else:  # the mean's factors: its epistemic priors
            sampled = [f for f in sampled if priors.get(f).kind == "epistemic"]
        for factor in sampled:
            if factor not in owner:
                raise InputError(
                    file,
                    "sobol.groups",
                    f"sampled factor {factor!r} is in no group",
                    "put every sampled factor in one group",
                )
    return groups

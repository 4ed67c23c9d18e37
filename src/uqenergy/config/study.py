"""Study files: which priors, models, blends and pathways; parsed and validated here, once.

A study is TOML with a ``[study]`` table (name, scenario, prior files, throughput
table, models, draws, seed, ...), optional ``[priors.NAME]`` overrides layered
over the prior files, ``[blends.NAME]`` pools (:mod:`uqenergy.config.blends`), a
``[pathways]`` table, ``[intervals]`` (:mod:`uqenergy.config.intervals`),
``[sobol]`` (:mod:`uqenergy.config.sobol`), ``[[settings]]``
(:mod:`uqenergy.config.settings`) and ``[models."NAME"]``, models defined in the
study itself (:mod:`uqenergy.config.models`). A fleet study's ``[fleet]`` section is
read by :func:`uqenergy.config.fleet.load_fleet`.

An override of a prior (a study's ``[priors.NAME]``, a setting's, or ``overrides``
given to :func:`load_study`) that changes its numbers replaces it for every model,
per-model values of the prior files included, unless it names models itself.
A study with a ``[measured]`` section (:mod:`uqenergy.config.measured_study`) takes its
energy from a measured table instead of the throughput model; its series are the
measured configurations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from uqenergy.config.benchmarks import BenchmarkRow, read_benchmarks, usable_rows
from uqenergy.config.blends import Blend, parse_blend
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
from uqenergy.config.files import existing, read_toml, resolve
from uqenergy.config.intervals import IntervalSettings, parse_intervals
from uqenergy.config.measured_study import PAPER_KEYS, MeasuredSection, parse_measured
from uqenergy.config.models import GUIDE, GivenThroughput, InlineModel, parse_models
from uqenergy.config.priors import PriorSet, bounds_warnings, load_prior_files
from uqenergy.config.scheduler import LOCAL, parse_memory_budget, parse_scheduler
from uqenergy.config.settings import setting_tables
from uqenergy.config.sobol import SobolSection, parse_sobol

SECTIONS = frozenset(
    {"study", "priors", "blends", "pathways", "sobol", "settings", "intervals", "fleet", "models", "measured"}
)
OVERRIDES_FILE = "overrides"  # how overrides given on the command line (--set) or to run_study are named
STUDY_KEYS = frozenset(
    {
        "name",
        "scenario",
        "description",
        "priors",
        "throughput",
        "quantization",
        "models",
        "draws",
        "seed",
        "chunk_draws",
        "save_draws",
        "effective_tokens",
        "input_token_divisor",
        "throughput_uncertainty",
        "power_utilisation",
        "scheduler",
        "memory_budget_mb",
    }
)
PATHWAY_KEYS = frozenset({"names", "combined", "apply_to"})
EFFECTIVE_TOKENS = ("output", "output+input")
POWER_UTILISATION = ("prior", "proportional")  # PU from its prior, or PU = 0.24 + 0.56 TPS / TPS_max
INPUT_PRIORS = ("pue", "node_power_kw", "power_utilisation", "input_tokens", "output_tokens")
#: sampled whenever the prior set defines them (see uqenergy.engine.energy.evaluate)
OPTIONAL_PRIORS = (
    "throughput_scale",
    "output_token_multiplier",
    "output_length_scale",
    "pue_facility_ratio",
    "power_utilisation_facility_ratio",
    "reasoning_share",
    "reasoning_draw",
)
#: what a ``reasoning_share`` prior needs: the multiplier it switches on, and the per-query draw that decides
REASONING_NEEDS = ("output_token_multiplier", "reasoning_draw")
SAVE_DRAWS = 25_000  # draws per model written to samples.nc unless a study sets save_draws (keeps the output small)


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file: every section typed (see the module docstring)."""

    path: Path
    name: str
    scenario: str
    description: str
    priors: PriorSet
    throughput_file: Path  # the data table: the throughput benchmarks, or a measured study's measured table
    quantization: str
    benchmarks: list[BenchmarkRow]
    models: list[str]
    draws: int
    seed: int
    chunk_draws: int | None
    save_draws: int
    input_token_divisor: float
    throughput_uncertainty: bool
    blends: list[Blend]
    pathways: list[str]
    combined: bool
    pathway_targets: list[str]
    power_utilisation: str = "prior"
    intervals: IntervalSettings = field(default_factory=IntervalSettings)
    scheduler: str = LOCAL  # where chunks run: see uqenergy.engine.backend
    memory_budget_mb: int | None = None  # above it a run streams its draws; None: automatic
    prior_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [priors.NAME], validated
    sobol: SobolSection = field(default_factory=SobolSection)  # the defaults when the study has no [sobol] table
    settings: tuple[Setting, ...] = ()  # [[settings]], in file order; each a complete study without settings
    inline_models: tuple[InlineModel, ...] = ()  # [models."NAME"]: models defined in the study
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # given to load_study (--set)
    measured: MeasuredSection | None = None  # [measured]: energy from a measured table (its series: configurations)

    @property
    def given_throughput(self) -> dict[str, GivenThroughput]:
        """The models whose throughput the study gives as a number or a distribution, not as points to fit."""
        return {m.name: m.given for m in self.inline_models if m.given is not None}

    @property
    def pathway_priors(self) -> list[str]:
        return [f"pathway_{p}" for p in self.pathways]

    @property
    def series_labels(self) -> Mapping[str, Mapping[str, Any]]:
        """Model -> what each of its records names besides the series (a measured configuration's GPU, ...)."""
        return self.measured.series_labels() if self.measured is not None else {}

    @property
    def factors(self) -> list[str]:
        """The sampled inputs, in the order that fixes their random streams."""
        if self.measured is not None:
            return [*self.measured.priors, *self.pathway_priors]
        drawn_tps = any(g.log_sd > 0 for g in self.given_throughput.values())
        extra = ["throughput_z"] if self.throughput_uncertainty or drawn_tps else []
        extra += [name for name in OPTIONAL_PRIORS if name in self.priors.base]
        computed = ["power_utilisation"] if self.power_utilisation == "proportional" else []
        return [*(p for p in INPUT_PRIORS if p not in computed), *self.pathway_priors, *extra]

    @property
    def input_files(self) -> list[Path]:
        files = [self.path, *self.priors.files, self.throughput_file]
        return [f for f in dict.fromkeys(files) if f != Path(OVERRIDES_FILE)]  # overrides are recorded, not files


@dataclass(frozen=True)
class Setting:
    """One ``[[settings]]`` table: its name and the study under it (see :mod:`uqenergy.config.settings`)."""

    name: str
    study: Study


def load_study(
    path: str | Path,
    *,
    draws: int | None = None,
    seed: int | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Study:
    """Parse, layer and validate a study file.

    Parameters
    ----------
    path : str or pathlib.Path
        A study file, or the name of a bundled study (``"paper_traditional"``).
    draws : int, optional
        Draws per model, instead of the file's.
    seed : int, optional
        Seed, instead of the file's.
    overrides : mapping, optional
        Prior overrides ``{name: {key: value}}`` over everything the study file sets, e.g.
        ``{"pue": {"p95": 1.4}}``; like a study's ``[priors.NAME]`` table, one that changes a prior's
        numbers replaces it for every model. Errors name them as the file ``overrides``.

    Returns
    -------
    Study
        The study with every section parsed; bad input raises :class:`~uqenergy.config.errors.InputError`.

    Examples
    --------
    >>> import uqenergy
    >>> study = uqenergy.load_study("paper_traditional", draws=2000, seed=1)
    >>> study.scenario, study.draws, len(study.models)
    ('traditional', 2000, 5)
    """
    path = resolve(path, "studies")
    return study_from_document(path, read_toml(path), draws=draws, seed=seed, overrides=overrides)


def study_from_document(
    path: Path,
    doc: dict,
    *,
    draws: int | None = None,
    seed: int | None = None,
    extra_priors: tuple[dict, ...] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Study:
    """Validate a study document read from ``path``, with its sections and settings.

    Parameters
    ----------
    path : Path
        The study file, for error messages and relative file names.
    doc : dict
        The file as read from TOML.
    draws, seed : int, optional
        Override the document's ``draws`` and ``seed``.
    extra_priors : tuple of dict
        Prior overrides (``{name: table}``) layered over the study's own, in order (a setting's, a fleet
        workload's).
    overrides : mapping, optional
        Prior overrides given by the user (:func:`load_study`), the top layer, named ``overrides`` in errors.

    Returns
    -------
    Study
        The validated study.
    """
    check_keys(doc, SECTIONS, path)
    table = doc.get("study")
    if not isinstance(table, dict):
        raise InputError(path, "study", "missing [study] table", "a [study] table with name, scenario, priors, models")
    check_keys(table, STUDY_KEYS, path, "study.")
    prior_names = require_names(table.get("priors"), path, "study.priors")
    prior_files = [existing(name, "priors", path, "study.priors") for name in prior_names]
    study_overrides = doc.get("priors", {})
    priors = load_prior_files(prior_files)
    if not isinstance(study_overrides, dict):
        raise InputError(path, "priors", "expected [priors.NAME] tables", "overrides of priors in the prior files")
    user = {name: dict(table) for name, table in (overrides or {}).items()}
    quantization = require_text(table.get("quantization", "FP8"), path, "study.quantization")
    inline = parse_models(doc.get("models", {}), path, quantization)
    power = {
        m.name: {"dist": "fixed", "value": m.node_power_kw, "source": f"{path.name}: models.{m.name}.node_power_kw"}
        for m in inline
        if m.node_power_kw is not None
    }
    layered = [(path, o) for o in (study_overrides, *extra_priors)]
    layered += [(path, {"node_power_kw": {"models": power}} if power else {}), (Path(OVERRIDES_FILE), user)]
    for file, names in layered:
        for name in names:
            if name not in priors.base:
                raise InputError(
                    file,
                    f"priors.{name}",
                    "overrides a prior the prior files do not define",
                    "defined: " + ", ".join(priors.names()),
                )
    layers = [(file, {"priors": o}) for file, o in layered if o]
    if layers:
        priors = load_prior_files(prior_files, layers)
    measured = parse_measured(doc["measured"], path) if "measured" in doc else None
    if measured is None:
        priors.require(INPUT_PRIORS, path, "study.priors")
        # the share decides which queries take the multiplier, each by its reasoning draw; a share defined
        # per model always has a base prior (the prior files refuse a per-model table alone)
        missing = [n for n in REASONING_NEEDS if n not in priors.base]
        if "reasoning_share" in priors.base and missing:
            raise InputError(
                path,
                "study.priors",
                "prior 'reasoning_share' needs " + " and ".join(repr(n) for n in missing) + ", not defined",
                "a reasoning share decides which queries take the token multiplier, by each query's reasoning "
                "draw: define all three (priors/honest_test_time.toml) or no reasoning_share",
            )
        throughput_file = existing(
            table.get("throughput", "throughput_h100"), "priors", path, "study.throughput", ".csv"
        )
        benchmarks = read_benchmarks(throughput_file) + [row for m in inline for row in m.rows]
        models = require_names(table.get("models"), path, "study.models")
        models += [m.name for m in inline if m.name not in models]
        known = sorted({r.model for r in benchmarks} | {m.name for m in inline})
        for m in models:
            if m not in known:
                raise InputError(
                    path,
                    "study.models",
                    f"unknown model {m!r}",
                    "models in the throughput table: " + ", ".join(known) + f'; or define it in a [models."{m}"] table '
                    f"with its throughput; {GUIDE}",
                )
    else:
        unused = [f"study.{key}" for key in sorted(PAPER_KEYS & table.keys())] + (["models"] if inline else [])
        if unused:
            raise InputError(path, unused[0], "is not used by a measured study", "choose models and GPUs in [measured]")
        priors.require(measured.priors, path, "study.priors")
        throughput_file, benchmarks, models = measured.table.path, [], measured.labels
    mode = table.get("effective_tokens", "output")
    if mode not in EFFECTIVE_TOKENS:
        raise InputError(path, "study.effective_tokens", f"unknown mode {mode!r}", "output or output+input")
    divisor = require_number(table.get("input_token_divisor", 30), path, "study.input_token_divisor", positive=True)
    pathways_table = doc.get("pathways", {})
    check_keys(pathways_table, PATHWAY_KEYS, path, "pathways.")
    pathways = require_names(pathways_table["names"], path, "pathways.names") if "names" in pathways_table else []
    priors.require([f"pathway_{p}" for p in pathways], path, "pathways.names")
    blends_table = doc.get("blends", {})
    blends = [parse_blend(name, t, path, models) for name, t in blends_table.items()]
    targets = pathways_table.get("apply_to", [b.name for b in blends])
    targets = require_names(targets, path, "pathways.apply_to") if targets else []
    for t in targets:
        if t not in models and t not in blends_table:
            raise InputError(path, "pathways.apply_to", f"unknown series {t!r}", "a model or blend of this study")
    pu_mode = table.get("power_utilisation", "prior")
    if pu_mode not in POWER_UTILISATION:
        raise InputError(path, "study.power_utilisation", f"unknown mode {pu_mode!r}", "prior or proportional")
    uncertainty = table.get("throughput_uncertainty", False)
    combined = pathways_table.get("combined", bool(pathways))
    for flag_key, flag in (("study.throughput_uncertainty", uncertainty), ("pathways.combined", combined)):
        if not isinstance(flag, bool):
            raise InputError(path, flag_key, f"expected true or false, got {flag!r}", "a boolean")
    study = Study(
        path=path,
        name=require_text(table.get("name"), path, "study.name"),
        scenario=require_text(table.get("scenario"), path, "study.scenario"),
        description=table.get("description", ""),
        priors=priors,
        throughput_file=throughput_file,
        quantization=quantization,
        benchmarks=benchmarks,
        models=models,
        draws=positive_int(
            draws if draws is not None else table.get("draws", 100_000),
            path,
            "study.draws" if draws is None else "--draws",
            minimum=MIN_DRAWS,
        ),
        seed=require_seed(
            seed if seed is not None else table.get("seed", 0), path, "study.seed" if seed is None else "--seed"
        ),
        chunk_draws=positive_int(table["chunk_draws"], path, "study.chunk_draws") if "chunk_draws" in table else None,
        save_draws=positive_int(table.get("save_draws", SAVE_DRAWS), path, "study.save_draws"),
        input_token_divisor=divisor if mode == "output+input" else math.inf,
        throughput_uncertainty=uncertainty,
        blends=blends,
        pathways=pathways,
        combined=combined and bool(pathways),
        pathway_targets=targets,
        power_utilisation=pu_mode,
        intervals=parse_intervals(doc.get("intervals", {}), path, blends),
        scheduler=parse_scheduler(table.get("scheduler", LOCAL), path),
        memory_budget_mb=parse_memory_budget(table.get("memory_budget_mb", "auto"), path),
        prior_overrides=study_overrides,
        inline_models=tuple(inline),
        overrides=user,
        measured=measured,
    )
    for model in models if measured is None else ():  # every model must have usable benchmark rows, or a throughput
        if model not in study.given_throughput:
            usable_rows(benchmarks, model, study.quantization, throughput_file)
    priors = replace(priors, warnings=bounds_warnings(priors, study.factors, models))
    design = "fleet" if "fleet" in doc else "two-level" if study.intervals.design == "two-level" else "per-query"
    sobol = parse_sobol(doc.get("sobol", {}), path, models, blends, study.factors, priors, design)
    settings = tuple(
        _setting(study, doc, name, study_keys, setting_priors, extra_priors)
        for name, study_keys, setting_priors in setting_tables(doc.get("settings", []), path)
    )
    return replace(study, priors=priors, sobol=sobol, settings=settings)


def _setting(
    study: Study, doc: dict, name: str, study_keys: dict, priors: dict, extra_priors: tuple[dict, ...]
) -> Setting:
    """The study ``doc`` describes under one setting: its study keys, its priors beneath ``extra_priors``."""
    variant_doc = {k: v for k, v in doc.items() if k != "settings"} | {"study": doc["study"] | study_keys}
    try:
        variant = study_from_document(
            study.path,
            variant_doc,
            draws=study.draws,
            seed=study.seed,
            extra_priors=(priors, *extra_priors),
            overrides=study.overrides,
        )
    except InputError as exc:
        where = f"settings.{name}" + (f": {exc.key}" if exc.key else "")
        raise InputError(exc.file, where, exc.problem, exc.allowed) from None
    return Setting(name, variant)

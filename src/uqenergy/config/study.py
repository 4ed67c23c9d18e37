"""Study files: which priors, models, blends and pathways; parsed and validated here.

A study is TOML with a ``[study]`` table (name, scenario, prior files, throughput
table, models, draws, seed, ...), optional ``[priors.NAME]`` overrides layered
over the prior files, ``[blends.NAME]`` pools and a ``[pathways]`` table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from uqenergy.config.scheduler import LOCAL, parse_memory_budget, parse_scheduler
from uqenergy.config.errors import (InputError, check_keys, positive_int, require_names, require_number, require_seed,
                                    require_text)
from uqenergy.config.intervals import IntervalSettings, parse_intervals
from uqenergy.config.priors import PriorSet, load_prior_files
from uqenergy.config.files import existing, read_toml, resolve
from uqenergy.config.benchmarks import BenchmarkRow, read_benchmarks, usable_rows

SECTIONS = frozenset({"study", "priors", "blends", "pathways", "sobol", "settings", "intervals", "fleet"})
STUDY_KEYS = frozenset({
    "name", "scenario", "description", "priors", "throughput", "quantization", "models", "draws", "seed",
    "chunk_draws", "save_draws", "effective_tokens", "input_token_divisor", "throughput_uncertainty",
    "power_utilisation", "scheduler", "memory_budget_mb",
})
BLEND_KEYS = frozenset({"top", "members", "trim"})
PATHWAY_KEYS = frozenset({"names", "combined", "apply_to"})
EFFECTIVE_TOKENS = ("output", "output+input")
POWER_UTILISATION = ("prior", "proportional")  # PU from its prior, or PU = 0.24 + 0.56 TPS / TPS_max
INPUT_PRIORS = ("pue", "node_power_kw", "power_utilisation", "input_tokens", "output_tokens")
OPTIONAL_PRIORS = ("throughput_scale", "output_token_multiplier")  # sampled whenever the prior set defines them


@dataclass
class Blend:
    name: str
    top: int | None  # pool the `top` models with the highest median energy ...
    members: list[str]  # ... or exactly these models
    trim: list[tuple[float, float]]


@dataclass
class Study:
    path: Path
    name: str
    scenario: str
    description: str
    priors: PriorSet
    throughput_file: Path
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
    document: dict = field(repr=False, default_factory=dict)
    power_utilisation: str = "prior"
    intervals: IntervalSettings = field(default_factory=IntervalSettings)
    scheduler: str = LOCAL  # where chunks run: see uqenergy.engine.backend
    memory_budget_mb: int | None = None  # above it a run streams its draws; None: automatic

    @property
    def pathway_priors(self) -> list[str]:
        return [f"pathway_{p}" for p in self.pathways]

    @property
    def factors(self) -> list[str]:
        """The sampled inputs, in the order that fixes their random streams."""
        extra = ["throughput_z"] if self.throughput_uncertainty else []
        extra += [name for name in OPTIONAL_PRIORS if name in self.priors.base]
        computed = ["power_utilisation"] if self.power_utilisation == "proportional" else []
        return [*(p for p in INPUT_PRIORS if p not in computed), *self.pathway_priors, *extra]

    @property
    def input_files(self) -> list[Path]:
        return [self.path, *self.priors.files, self.throughput_file]


def _blend(name: str, table, file, models: list[str]) -> Blend:
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
            raise InputError(file, f"{key}.members", f"unknown model {m!r}", "models of this study: " + ", ".join(models))
    trims = table.get("trim", [])
    if not isinstance(trims, list):
        raise InputError(file, f"{key}.trim", "expected a list of [low, high] percentiles", "e.g. [[5, 95], [10, 90]]")
    parsed = []
    for window in trims:
        if not (isinstance(window, list) and len(window) == 2):
            raise InputError(file, f"{key}.trim", f"{window!r} is not [low, high]", "percentile pairs 0 <= low < high <= 100")
        low, high = (require_number(v, file, f"{key}.trim") for v in window)
        if not 0 <= low < high <= 100:
            raise InputError(file, f"{key}.trim", f"[{low:g}, {high:g}] is not a percentile window", "0 <= low < high <= 100")
        parsed.append((low, high))
    return Blend(name, top, members, parsed)


def load_study(path: str | Path, *, draws: int | None = None, seed: int | None = None) -> Study:
    """Parse, layer and validate a study file.

    Parameters
    ----------
    path : str or pathlib.Path
        A study file, or the name of a bundled study (``"paper_traditional"``).
    draws : int, optional
        Draws per model, instead of the file's.
    seed : int, optional
        Seed, instead of the file's.

    Returns
    -------
    Study
        The validated study, its priors layered and its models checked.

    Examples
    --------
    >>> import uqenergy
    >>> study = uqenergy.load_study("paper_traditional", draws=2000, seed=1)
    >>> study.scenario, study.draws, len(study.models)
    ('traditional', 2000, 5)
    """
    path = resolve(path, "studies")
    return study_from_document(path, read_toml(path), draws=draws, seed=seed)


def study_from_document(path: Path, doc: dict, *, draws: int | None = None, seed: int | None = None,
                        extra_priors: tuple[dict, ...] = ()) -> Study:
    """Validate a parsed study document; ``extra_priors`` are prior overrides layered over its own."""
    check_keys(doc, SECTIONS, path)
    table = doc.get("study")
    if not isinstance(table, dict):
        raise InputError(path, "study", "missing [study] table", "a [study] table with name, scenario, priors, models")
    check_keys(table, STUDY_KEYS, path, "study.")
    prior_names = require_names(table.get("priors"), path, "study.priors")
    prior_files = [existing(name, "priors", path, "study.priors") for name in prior_names]
    overrides = doc.get("priors", {})
    priors = load_prior_files(prior_files)
    if not isinstance(overrides, dict):
        raise InputError(path, "priors", "expected [priors.NAME] tables", "overrides of priors in the prior files")
    for name in (n for o in (overrides, *extra_priors) for n in o):
        if name not in priors.base:
            raise InputError(path, f"priors.{name}", "overrides a prior the prior files do not define",
                             "defined: " + ", ".join(priors.names()))
    layers = [(path, {"priors": o}) for o in (overrides, *extra_priors) if o]
    if layers:
        priors = load_prior_files(prior_files, layers)
    priors.require(INPUT_PRIORS, path, "study.priors")
    throughput_file = existing(table.get("throughput", "throughput_h100"), "priors", path, "study.throughput", ".csv")
    benchmarks = read_benchmarks(throughput_file)
    models = require_names(table.get("models"), path, "study.models")
    known = sorted({r.model for r in benchmarks})
    for m in models:
        if m not in known:
            raise InputError(path, "study.models", f"unknown model {m!r}", "models in the throughput table: " + ", ".join(known))
    mode = table.get("effective_tokens", "output")
    if mode not in EFFECTIVE_TOKENS:
        raise InputError(path, "study.effective_tokens", f"unknown mode {mode!r}", "output or output+input")
    divisor = require_number(table.get("input_token_divisor", 30), path, "study.input_token_divisor", positive=True)
    pathways_table = doc.get("pathways", {})
    check_keys(pathways_table, PATHWAY_KEYS, path, "pathways.")
    pathways = require_names(pathways_table["names"], path, "pathways.names") if "names" in pathways_table else []
    priors.require([f"pathway_{p}" for p in pathways], path, "pathways.names")
    blends_table = doc.get("blends", {})
    blends = [_blend(name, t, path, models) for name, t in blends_table.items()]
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
        path=path, name=require_text(table.get("name"), path, "study.name"),
        scenario=require_text(table.get("scenario"), path, "study.scenario"),
        description=table.get("description", ""), priors=priors, throughput_file=throughput_file,
        quantization=require_text(table.get("quantization", "FP8"), path, "study.quantization"), benchmarks=benchmarks, models=models,
        draws=positive_int(draws if draws is not None else table.get("draws", 100_000), path, "study.draws" if draws is None else "--draws"),
        seed=require_seed(seed if seed is not None else table.get("seed", 0), path, "study.seed" if seed is None else "--seed"),
        chunk_draws=positive_int(table["chunk_draws"], path, "study.chunk_draws") if "chunk_draws" in table else None,
        save_draws=positive_int(table.get("save_draws", 100_000), path, "study.save_draws"),
        input_token_divisor=divisor if mode == "output+input" else math.inf,
        throughput_uncertainty=uncertainty, blends=blends, pathways=pathways, combined=combined and bool(pathways),
        pathway_targets=targets, document=doc, power_utilisation=pu_mode,
        intervals=parse_intervals(doc.get("intervals", {}), path, blends),
        scheduler=parse_scheduler(table.get("scheduler", LOCAL), path),
        memory_budget_mb=parse_memory_budget(table.get("memory_budget_mb", "auto"), path),
    )
    for model in models:  # every model must have usable benchmark rows
        usable_rows(benchmarks, model, study.quantization, throughput_file)
    return study

"""Which prior drives a study's energy: the ``[sobol]`` section, its series and targets.

Every sampled (non-fixed) prior of the study is a factor, mapped from the
design's unit cube through its inverse CDF; per-model priors follow the draw's
model. A blend is the equal-weight mixture of its members, with the model
choice as one more, categorical, factor (``model_choice``). Draws go through the
same energy core as ``uqenergy run``, divided by every declared efficiency
pathway, so the analysed energy is the study's "combined" energy when it has
pathways and its baseline when it has none.

Targets: ``energy_wh`` and ``log_energy_wh``. Energy is a product of factors, so
in log space it is (almost) a sum and the indices split its variance cleanly.
A draw whose output tokens round to 0 has zero energy; ``log_energy_wh`` is the
log of the energy with output tokens floored at one token (about 0.1% of draws
at a median of 300 tokens are changed, and no -inf appears).

``[sobol]`` keys: ``method`` (sobol, morris, pawn), ``base_samples`` (sizes tried
in turn), ``tolerance`` (largest CI half-width to stop at), ``second_order``,
``resamples`` (bootstrap), ``conf_level``, ``targets``, ``series`` and
``[sobol.groups]`` (group name -> list of factors; every sampled factor must be
in exactly one group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr

from uqenergy.config import distributions
from uqenergy.engine import energy
from uqenergy.analyses import sensitivity
from uqenergy.config.scheduler import LOCAL, parse_scheduler
from uqenergy.engine.backend import Backend
from uqenergy.analyses.blends import rank_by_median
from uqenergy.analyses.results import RecordsResult
from uqenergy.config.errors import InputError, check_keys, require_names, require_number
from uqenergy.config.priors import PriorSet
from uqenergy.engine.sampling import BLOCK_DRAWS, monte_carlo_inputs
from uqenergy.config.settings import expand_settings
from uqenergy.config.study import Study, load_study
from uqenergy.engine.throughput import study_fits

TARGETS = ("energy_wh", "log_energy_wh")
MODEL_FACTOR = "model_choice"
LOG_MIN_OUTPUT_TOKENS = 1.0
SECTION_KEYS = frozenset({"method", "base_samples", "tolerance", "second_order", "resamples", "conf_level",
                          "targets", "series", "groups"})
DEFAULT_BASE_SAMPLES = {"sobol": tuple(2**p for p in range(10, 15)), "morris": tuple(2**p for p in range(6, 11)),
                        "pawn": tuple(2**p for p in range(10, 15))}
MIN_BASE_SAMPLES = {"sobol": 2**4, "morris": 4, "pawn": 100}
MAX_BASE_SAMPLES = 2**20
CHUNK_ROWS = 2**15  # design rows per chunk on a Dask scheduler
SEED_KEY = 0x50B01  # spawn-key prefix that keeps sensitivity streams apart from the Monte Carlo blocks


@dataclass(frozen=True)
class Section:
    """The parsed ``[sobol]`` section."""

    options: sensitivity.Options
    targets: tuple[str, ...]
    series: tuple[str, ...] | None
    groups: dict[str, tuple[str, ...]]


@dataclass
class SensitivityResult(RecordsResult):
    """Flat index records (and second-order pairs) for every setting, series and target."""

    study: Study
    method: str
    records: list[dict]
    second_order: list[dict]
    warnings: list[str] = field(default_factory=list)


def _fixed(priors: PriorSet, name: str, models: Sequence[str]) -> bool:
    return all(priors.get(name, m).distribution.name == "fixed" for m in models)


def _base_samples(value, method: str, file) -> tuple[int, ...]:
    key, low = "sobol.base_samples", MIN_BASE_SAMPLES[method]
    allowed = f"increasing whole numbers from {low} to {MAX_BASE_SAMPLES}" + (", powers of 2" if method == "sobol" else "")
    if not isinstance(value, list) or not value:
        raise InputError(file, key, f"expected a list, got {value!r}", allowed)
    for n in value:
        if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= MAX_BASE_SAMPLES or (method == "sobol" and n & (n - 1)):
            raise InputError(file, key, f"{n!r} is not a valid base sample size for {method}", allowed)
    if any(b <= a for a, b in zip(value, value[1:])):
        raise InputError(file, key, "sizes do not increase", allowed)
    return tuple(value)


def _bounded(table: dict, key: str, default: float, low: float, high: float, file) -> float:
    value = require_number(table.get(key, default), file, f"sobol.{key}")
    if not low < value <= high:
        raise InputError(file, f"sobol.{key}", f"{value:g} is out of range", f"a number in ({low:g}, {high:g}]")
    return value


def series_candidates(study: Study) -> list[str]:
    """Every series the study can analyse: its models, then its untrimmed blends."""
    return [*study.models, *(b.name for b in study.blends if not b.trim)]


def read_section(study: Study) -> Section:
    """Parse and validate a study's ``[sobol]`` section (defaults when it has none)."""
    file, table = study.path, study.document.get("sobol", {})
    if not isinstance(table, dict):
        raise InputError(file, "sobol", "expected a table", "a [sobol] table")
    check_keys(table, SECTION_KEYS, file, "sobol.")
    method = table.get("method", "sobol")
    if method not in sensitivity.METHODS:
        raise InputError(file, "sobol.method", f"unknown method {method!r}", "one of " + ", ".join(sensitivity.METHODS))
    second = table.get("second_order", False)
    if not isinstance(second, bool) or (second and method != "sobol"):
        raise InputError(file, "sobol.second_order", f"{second!r} is not allowed with method {method}",
                         "true or false; second-order indices need method sobol")
    resamples = table.get("resamples", 100)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 10 <= resamples <= 10_000:
        raise InputError(file, "sobol.resamples", f"{resamples!r} is not a whole number in 10..10000", "e.g. 100")
    options = sensitivity.Options(
        method=method, base_samples=_base_samples(table.get("base_samples", list(DEFAULT_BASE_SAMPLES[method])), method, file),
        tolerance=_bounded(table, "tolerance", 0.05, 0.0, 1.0, file), second_order=second, resamples=resamples,
        conf_level=_bounded(table, "conf_level", 0.95, 0.0, 0.999, file),
    )
    targets = tuple(require_names(table.get("targets", list(TARGETS)), file, "sobol.targets", allowed=TARGETS))
    candidates = series_candidates(study)
    trimmed = [b.name for b in study.blends if b.trim]
    series = tuple(require_names(table["series"], file, "sobol.series", allowed=candidates + trimmed)) if "series" in table else None
    for name in series or ():
        if name in trimmed:
            raise InputError(file, "sobol.series", f"{name!r} is a trimmed blend",
                             "models or untrimmed blends: trimming depends on the whole sample, so it has no indices")
    groups = _groups(table.get("groups", {}), study, series or candidates, method)
    return Section(options, targets, series, groups)


def _groups(table, study: Study, series: Sequence[str], method: str) -> dict[str, tuple[str, ...]]:
    file = study.path
    if not isinstance(table, dict):
        raise InputError(file, "sobol.groups", "expected a table", "[sobol.groups] with name = [factors]")
    if table and method == "pawn":
        raise InputError(file, "sobol.groups", "PAWN has no grouped form", "no groups, or method sobol or morris")
    allowed = [*study.factors, MODEL_FACTOR]
    groups, owner = {}, {}
    for name, members in table.items():
        groups[name] = tuple(require_names(members, file, f"sobol.groups.{name}", allowed=allowed))
        for factor in groups[name]:
            if factor in owner:
                raise InputError(file, f"sobol.groups.{name}", f"{factor!r} is already in group {owner[factor]!r}",
                                 "each factor in one group")
            owner[factor] = name
    if groups:
        blends = [b for b in study.blends if b.name in series]
        sampled = [f for f in study.factors if not _fixed(study.priors, f, study.models)]
        sampled += [MODEL_FACTOR] if blends else []
        for factor in sampled:
            if factor not in owner:
                raise InputError(file, "sobol.groups", f"sampled factor {factor!r} is in no group",
                                 "put every sampled factor in one group")
    return groups


def series_factors(study: Study, members: Sequence[str]) -> list[str]:
    """The sampled priors of a series (fixed for all its members: not a factor), then the model choice."""
    factors = [f for f in study.factors if not _fixed(study.priors, f, members)]
    return factors + ([MODEL_FACTOR] if len(members) > 1 else [])


def unit_inputs(priors: PriorSet, names: Sequence[str], members: Sequence[str], choice: np.ndarray,
                columns: dict[str, np.ndarray]) -> xr.Dataset:
    """Inputs (dim ``draw``) for draws served by ``members[choice]``: each prior of the draw's model maps
    its unit column through its inverse CDF; a prior without a column is fixed and takes its value."""
    n = len(choice)
    variables = {"model": ("draw", np.asarray(members)[choice])}
    for name in names:
        u = columns.get(name, np.full(n, 0.5))
        values = np.empty(n)
        for m, model in enumerate(members):
            mask = choice == m
            values[mask] = priors.get(name, model).ppf(u[mask])
        variables[name] = ("draw", values, {"units": priors.get(name).unit})
    return xr.Dataset(variables)


def series_evaluator(study: Study, fits: xr.Dataset, members: Sequence[str], factors: Sequence[str],
                     targets: Sequence[str]) -> sensitivity.Evaluate:
    """The unit design of one series -> its targets, through the study's energy core and pathways."""
    choice_law = distributions.from_spec({"dist": "categorical", "values": list(members)})

    def pathway_energy_wh(inputs: xr.Dataset) -> np.ndarray:
        outputs = energy.evaluate(inputs, fits, study.input_token_divisor, study.power_utilisation)
        return energy.apply_pathways(outputs["energy_wh"], [inputs[p] for p in study.pathway_priors]).values

    def evaluate(unit: np.ndarray) -> dict[str, np.ndarray]:
        columns = dict(zip(factors, unit.T))
        choice = choice_law.ppf(columns[MODEL_FACTOR]) if MODEL_FACTOR in columns else np.zeros(len(unit), dtype=int)
        inputs = unit_inputs(study.priors, study.factors, members, choice, columns)
        energy_wh = pathway_energy_wh(inputs)
        results = {"energy_wh": energy_wh} if "energy_wh" in targets else {}
        if "log_energy_wh" in targets:  # re-evaluated only where output tokens are below the floor
            short = np.flatnonzero(inputs["output_tokens"].values < LOG_MIN_OUTPUT_TOKENS)
            if short.size:
                floored = inputs.isel(draw=short).assign(output_tokens=("draw", np.full(short.size, LOG_MIN_OUTPUT_TOKENS)))
                energy_wh = energy_wh.copy()
                energy_wh[short] = pathway_energy_wh(floored)
            if not np.all(energy_wh > 0):
                raise InputError(study.path, "sobol.targets", "log_energy_wh needs positive energy, but some draws "
                                 "give zero or negative energy", "priors with positive support, or target energy_wh only")
            results["log_energy_wh"] = np.log(energy_wh)
        return results

    return evaluate


def blend_members(study: Study, fits: xr.Dataset, name: str) -> list[str]:
    """A blend's members; a ``top`` blend ranks the models by median baseline energy over the first
    block of the study's Monte Carlo draws (the same draws ``uqenergy run`` starts with)."""
    blend = next(b for b in study.blends if b.name == name)
    if blend.members:
        return list(blend.members)
    draws = min(study.draws, BLOCK_DRAWS)
    inputs = next(monte_carlo_inputs(study.priors, study.factors, study.models, draws, study.seed))
    outputs = energy.evaluate(inputs, fits, study.input_token_divisor, study.power_utilisation)
    return rank_by_median(outputs["energy_wh"])[: blend.top]


def analyse_study(study: Study, section: Section, setting: str | None = None,
                  backend: Backend | None = None) -> tuple[list[dict], list[dict]]:
    """Index records and second-order pairs of every series of one (setting of a) study; the design's rows
    are evaluated in chunks on ``backend`` when it is not the local one."""
    fits = study_fits(study)
    candidates = series_candidates(study)
    records, pairs = [], []
    for name in section.series or candidates:
        members = [name] if name in study.models else blend_members(study, fits, name)
        factors = series_factors(study, members)
        groups = {g: kept for g, fs in section.groups.items() if (kept := [f for f in fs if f in factors])}
        seed = np.random.SeedSequence(study.seed, spawn_key=(SEED_KEY, candidates.index(name)))
        evaluate = series_evaluator(study, fits, members, factors, section.targets)
        if backend is not None and backend.scheduler != LOCAL:
            evaluate = partial(evaluate_in_chunks, backend, evaluate)
        indices = sensitivity.analyse(factors, groups, evaluate, section.options, seed)
        prefix = {"scenario": study.scenario, **({"setting": setting} if setting else {}), "series": name}
        records += [prefix | r for r in indices.records]
        pairs += [prefix | r for r in indices.second_order]
    return records, pairs


def evaluate_in_chunks(backend: Backend, evaluate: sensitivity.Evaluate, unit: np.ndarray) -> dict[str, np.ndarray]:
    """``evaluate(unit)`` by chunks of :data:`CHUNK_ROWS` rows on ``backend`` (rows are independent: same numbers)."""
    parts = list(backend.map(_evaluate, evaluate, [unit[a:a + CHUNK_ROWS] for a in range(0, len(unit), CHUNK_ROWS)]))
    return {target: np.concatenate([part[target] for part in parts]) for target in parts[0]}


def _evaluate(evaluate: sensitivity.Evaluate, rows: np.ndarray) -> dict[str, np.ndarray]:
    return evaluate(rows)


def run_sensitivity(path_or_study: str | Path | Study, *, seed: int | None = None,
                    scheduler: str | None = None) -> SensitivityResult:
    """Sensitivity indices of a study's series (its ``[sobol]`` section), per setting.

    Parameters
    ----------
    path_or_study : str, pathlib.Path or Study
        A study file, the name of a bundled study, or a loaded :class:`Study`.
    seed : int, optional
        Seed, instead of the file's (ignored for a loaded study).
    scheduler : str, optional
        Where the design is evaluated (a Dask scheduler address); default the study's.

    Returns
    -------
    SensitivityResult
        One record per (setting, series, target, factor, base sample size)
        (``records``; ``to_dataframe()``), second-order pairs if asked, warnings.

    Examples
    --------
    >>> import uqenergy
    >>> indices = uqenergy.run_sensitivity("sobol_traditional").to_dataframe()
    >>> list(indices.columns[:6])
    ['scenario', 'series', 'target', 'factor', 'S1', 'S1_conf']
    >>> indices.query("series == 'blend' and target == 'log_energy_wh'").sort_values("ST").factor.iloc[-1]
    'group:workload'
    """
    study = path_or_study if isinstance(path_or_study, Study) else load_study(path_or_study, seed=seed)
    scheduler = parse_scheduler(scheduler, study.path, "--scheduler") if scheduler else study.scheduler
    method = read_section(study).options.method
    warnings = [f"{study.path}: blends.{b.name}: trimmed blends have no sensitivity indices (trimming depends on "
                "the whole sample); analyse the untrimmed blend of the same models" for b in study.blends if b.trim]
    records, pairs = [], []
    with Backend(scheduler) as backend:
        for setting, variant in expand_settings(study) or [(None, study)]:
            more_records, more_pairs = analyse_study(variant, read_section(variant), setting, backend)
            records += more_records
            pairs += more_pairs
            warnings += [w for w in variant.priors.warnings if w not in warnings]
    return SensitivityResult(study, method, records, pairs, warnings)


def dominant(records: Sequence[dict], method: str) -> list[tuple[dict, dict | None]]:
    """Per (setting, series, target), at its largest base sample size: the record of the factor and of
    the group (None without groups) with the largest main index (ST for Sobol)."""
    index = sensitivity.MAIN_INDEX[method]
    final: dict[tuple, int] = {}
    for r in records:
        key = (r.get("setting"), r["series"], r["target"])
        final[key] = max(final.get(key, 0), r["base_samples"])
    best: dict[tuple, list] = {key: [None, None] for key in final}
    for r in records:
        key = (r.get("setting"), r["series"], r["target"])
        slot = best[key][r["factor"].startswith(sensitivity.GROUP_PREFIX)]
        if r["base_samples"] == final[key] and (slot is None or r[index] > slot[index]):
            best[key][r["factor"].startswith(sensitivity.GROUP_PREFIX)] = r
    return [(factor, group) for factor, group in best.values()]

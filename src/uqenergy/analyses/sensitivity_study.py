"""Which prior drives a study's energy: the analysis its ``[sobol]`` section asks for, per series and target.

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

Two-level and fleet studies: the indices of the *mean*. What a fleet total or
a published average depends on is the mean energy per query of a state of
knowledge, an expectation over the aleatory inputs (answer lengths, which
facility serves a query, which model of the blend). Its factors are the study's
epistemic priors (:func:`uqenergy.analyses.two_level.split_levels`), and, for a
blend with a Dirichlet ``concentration``, its model shares (``model_mix:MODEL``:
one gamma variate per member, normalised); a fleet study adds ``fleet_overhead``.
Each row of the Saltelli design is one state of knowledge; its mean is taken
over ``inner_draws`` aleatory draws by the two-level machinery
(:func:`uqenergy.analyses.two_level.inner_means`), all pathways applied.

Every row takes the *same* inner draws (common random numbers). The mean is
then one fixed, smooth function of the epistemic inputs (the exact mean up to a
relative error of order ``1 / sqrt(inner_draws)`` that moves slowly with them),
and the Saltelli estimators see no noise from the inner sample. Fresh inner
draws per row would add independent noise of variance ``sigma^2 / inner_draws``
to every row: it inflates the output variance and every total-order index by
about twice that noise over the variance (Jansen's estimator averages
``(f(A) - f(AB))^2``), which no number of base samples removes.
docs/sensitivity.md shows the effect.

Targets: ``mean_energy_wh`` (Wh per query: a series' mean; a fleet mix's
share-weighted mean before the fleet overhead) and ``fleet_gwh_per_day`` (a
fleet mix's total per day: the mean x ``fleet_overhead`` x queries per day).

The ``[sobol]`` section (method, sample sizes, series, targets, groups, inner
draws) is parsed by :mod:`uqenergy.config.sobol`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import special

from uqenergy.analyses import sensitivity, two_level
from uqenergy.analyses.fleet import WH_PER_GWH
from uqenergy.analyses.results import RecordsResult
from uqenergy.analyses.series import InMemory, series_members
from uqenergy.config import distributions
from uqenergy.config.blends import untrimmed_series
from uqenergy.config.errors import InputError
from uqenergy.config.fleet import Fleet, load_fleet
from uqenergy.config.priors import PriorSet
from uqenergy.config.scheduler import LOCAL, parse_scheduler
from uqenergy.config.sobol import MIX_FACTOR, MODEL_FACTOR
from uqenergy.config.study import Study, load_study
from uqenergy.engine import energy
from uqenergy.engine.backend import Backend
from uqenergy.engine.per_query import evaluate_study, study_data
from uqenergy.engine.sampling import BLOCK_DRAWS, inputs_from_uniforms, monte_carlo_inputs

LOG_MIN_OUTPUT_TOKENS = 1.0
FLEET_OVERHEAD = "fleet_overhead"
TARGET_SEPARATOR = "/"  # a fleet design's output keys: MIX/TARGET
CHUNK_ROWS = 2**15  # design rows per chunk on a Dask scheduler
SEED_KEY = 0x50B01  # spawn-key prefix that keeps sensitivity streams apart from the Monte Carlo blocks


@dataclass
class SensitivityResult(RecordsResult):
    """Flat index records (and second-order pairs) for every setting, series and target."""

    study: Study
    method: str
    records: list[dict]
    second_order: list[dict]
    warnings: list[str] = field(default_factory=list)


def series_factors(study: Study, members: Sequence[str]) -> list[str]:
    """The sampled priors of a series (fixed for all its members: not a factor), then the model choice."""
    factors = [f for f in study.factors if not study.priors.is_fixed(f, members)]
    return factors + ([MODEL_FACTOR] if len(members) > 1 else [])


def unit_inputs(
    priors: PriorSet, names: Sequence[str], members: Sequence[str], choice: np.ndarray, columns: dict[str, np.ndarray]
) -> xr.Dataset:
    """Inputs (dim ``draw``) for draws served by ``members[choice]``: each prior of the draw's model maps
    its unit column through its inverse CDF; a prior without a column is fixed and takes its value."""
    n = len(choice)
    variables: dict[str, tuple] = {"model": ("draw", np.asarray(members)[choice])}
    for name in names:
        u = columns.get(name, np.full(n, 0.5))
        values = np.empty(n)
        for m, model in enumerate(members):
            mask = choice == m
            values[mask] = priors.get(name, model).ppf(u[mask])
        variables[name] = ("draw", values, {"units": priors.get(name).unit})
    return xr.Dataset(variables)


def series_evaluator(
    study: Study, fits: xr.Dataset, members: Sequence[str], factors: Sequence[str], targets: Sequence[str]
) -> sensitivity.Evaluate:
    """The unit design of one series -> its targets, through the study's energy core and pathways."""
    choice_law = distributions.from_spec({"dist": "categorical", "values": list(members)})

    def pathway_energy_wh(inputs: xr.Dataset) -> np.ndarray:
        outputs = evaluate_study(study, inputs, fits)
        return energy.apply_pathways(outputs["energy_wh"], [inputs[p] for p in study.pathway_priors]).values

    def evaluate(unit: np.ndarray) -> dict[str, np.ndarray]:
        columns = dict(zip(factors, unit.T))
        choice = choice_law.ppf(columns[MODEL_FACTOR]) if MODEL_FACTOR in columns else np.zeros(len(unit), dtype=int)
        inputs = unit_inputs(study.priors, study.factors, members, choice, columns)
        energy_wh = pathway_energy_wh(inputs)
        results = {"energy_wh": energy_wh} if "energy_wh" in targets else {}
        if "log_energy_wh" in targets:  # re-evaluated only where output tokens are below the floor
            drawn_tokens = inputs["output_tokens"].values if "output_tokens" in inputs else np.ones(len(unit))
            short = np.flatnonzero(drawn_tokens < LOG_MIN_OUTPUT_TOKENS)
            if short.size:
                floored = inputs.isel(draw=short).assign(
                    output_tokens=("draw", np.full(short.size, LOG_MIN_OUTPUT_TOKENS))
                )
                energy_wh = energy_wh.copy()
                energy_wh[short] = pathway_energy_wh(floored)
            if not np.all(energy_wh > 0):
                raise InputError(
                    study.path,
                    "sobol.targets",
                    "log_energy_wh needs positive energy, but some draws give zero or negative energy",
                    "priors with positive support, or target energy_wh only",
                )
            results["log_energy_wh"] = np.log(energy_wh)
        return results

    return evaluate


def first_block_wh(study: Study, fits: xr.Dataset) -> np.ndarray:
    """Baseline energy per query in Wh (model, draw) of the first block of the study's Monte Carlo draws
    (the draws ``uqenergy run`` starts with): a ``top`` blend ranks its models on them."""
    draws = min(study.draws, BLOCK_DRAWS)
    inputs = next(monte_carlo_inputs(study.priors, study.factors, study.models, draws, study.seed))
    return evaluate_study(study, inputs, fits)["energy_wh"].transpose("model", "draw").values


def analyse_study(
    study: Study, setting: str | None = None, backend: Backend | None = None
) -> tuple[list[dict], list[dict]]:
    """Index records and second-order pairs of every series of one (setting of a) study, as its ``[sobol]``
    section asks; the design's rows are evaluated in chunks on ``backend`` when it is not the local one."""
    fits = study_data(study)
    section = study.sobol
    candidates = untrimmed_series(study.models, study.blends)
    first_block = InMemory(first_block_wh(study, fits))
    records, pairs = [], []
    for name in section.series or candidates:
        members = series_members(study, name, first_block)
        factors = series_factors(study, members)
        groups = _groups(section.groups, factors, members)
        seed = np.random.SeedSequence(study.seed, spawn_key=(SEED_KEY, candidates.index(name)))
        evaluate = series_evaluator(study, fits, members, factors, section.targets)
        if backend is not None and backend.scheduler != LOCAL:
            evaluate = partial(evaluate_in_chunks, backend, evaluate)
        indices = sensitivity.analyse(factors, groups, evaluate, section.options, seed)
        prefix = {"scenario": study.scenario, **({"setting": setting} if setting else {}), "series": name}
        records += [prefix | r for r in indices.records]
        pairs += [prefix | r for r in indices.second_order]
    return records, pairs


# --- the mean over the aleatory inputs: two-level and fleet studies ----------------------------------------------


def mix_factors(study: Study, name: str, members: Sequence[str]) -> list[str]:
    """A blend's model shares as factors (``model_mix:MODEL``) when it draws them (a Dirichlet concentration)."""
    blend = next((b for b in study.blends if b.name == name), None)
    return [f"{MIX_FACTOR}:{m}" for m in members] if blend is not None and blend.concentration is not None else []


def mean_factors(study: Study, members: Sequence[str]) -> list[str]:
    """The epistemic priors sampled for at least one of ``members``: the factors of their mean energy per query."""
    return [f for f in two_level.split_levels(study)[0] if not study.priors.is_fixed(f, members)]


def mix_weights(study: Study, name: str, members: Sequence[str], columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Share of the series' queries each member serves (model, row): Dirichlet(a, ..., a) shares as normalised
    gamma(a) variates of the ``model_mix`` columns (the law of :func:`uqenergy.analyses.two_level.series_weights`),
    else equal shares."""
    factors = mix_factors(study, name, members)
    if not factors:
        return np.full((len(members), n), 1.0 / len(members))
    blend = next(b for b in study.blends if b.name == name)
    gammas = special.gammaincinv(blend.concentration, np.stack([columns[f] for f in factors]))
    return gammas / gammas.sum(axis=0)


def state_mean_wh(
    study: Study, columns: dict[str, np.ndarray], n: int, inner: int, backend: Backend, common: bool = True
) -> np.ndarray:
    """Mean energy per query (model, row) in Wh of each of the study's models, all pathways applied, under the
    states of knowledge of the design's rows: each epistemic prior maps its column (0.5 when it has none: a fixed
    prior's value) through every model's inverse CDF; the mean is over ``inner`` aleatory draws, the same for
    every row when ``common``."""
    epistemic = two_level.split_levels(study)[0]
    uniforms = np.stack([columns.get(name, np.full(n, 0.5)) for name in epistemic]).reshape(len(epistemic), 1, n)
    uniforms = np.broadcast_to(uniforms, (len(epistemic), len(study.models), n))
    theta = inputs_from_uniforms(study.priors, epistemic, study.models, uniforms).rename(draw="outer")
    divisors = two_level.state_divisors(study, theta)
    job = two_level.inner_job(study, theta, study.seed, inner, common=common)
    model_mean_wh, _ = two_level.inner_means(job, backend)
    return energy.apply_pathways(model_mean_wh, [divisors[p] for p in study.pathways])


def mean_evaluator(
    study: Study, name: str, members: Sequence[str], factors: Sequence[str], backend: Backend, common: bool = True
) -> sensitivity.Evaluate:
    """The unit design of one series of a two-level study -> ``mean_energy_wh`` of each row's state of knowledge."""
    served = replace(study, models=list(members), blends=[])

    def evaluate(unit: np.ndarray) -> dict[str, np.ndarray]:
        columns = dict(zip(factors, unit.T))
        model_wh = state_mean_wh(served, columns, len(unit), study.sobol.inner_draws, backend, common)
        return {"mean_energy_wh": (mix_weights(study, name, members, columns, len(unit)) * model_wh).sum(axis=0)}

    return evaluate


def fleet_evaluator(
    fleet: Fleet, runs: dict[str, Study], members: Sequence[str], factors: Sequence[str], backend: Backend
) -> sensitivity.Evaluate:
    """The unit design -> ``MIX/mean_energy_wh`` and ``MIX/fleet_gwh_per_day`` of every mix of the fleet; ``runs``
    maps each workload to its study (one setting's)."""
    targets = fleet.study.sobol.targets

    def evaluate(unit: np.ndarray) -> dict[str, np.ndarray]:
        columns, n = dict(zip(factors, unit.T)), len(unit)
        mean_wh, total_wh = {}, {}
        for workload, study in runs.items():
            served = replace(study, models=list(members), blends=[])
            model_wh = state_mean_wh(served, columns, n, fleet.study.sobol.inner_draws, backend)
            mean_wh[workload] = (mix_weights(study, fleet.series, members, columns, n) * model_wh).sum(axis=0)
            overhead = study.priors.get(FLEET_OVERHEAD).ppf(columns.get(FLEET_OVERHEAD, np.full(n, 0.5)))
            total_wh[workload] = mean_wh[workload] * overhead * fleet.queries_per_day
        outputs: dict[str, np.ndarray] = {}
        for mix, shares in fleet.mixes.items():
            by_target = {
                "mean_energy_wh": sum(s * mean_wh[w] for w, s in shares.items()),
                "fleet_gwh_per_day": sum(s * total_wh[w] for w, s in shares.items()) / WH_PER_GWH,
            }
            outputs |= {f"{mix}{TARGET_SEPARATOR}{t}": by_target[t] for t in targets}
        return outputs

    return evaluate


def analyse_mean(study: Study, setting: str | None, backend: Backend) -> tuple[list[dict], list[dict]]:
    """Index records of the mean energy per query of every series of a two-level study (its ``[sobol]`` section)."""
    section = study.sobol
    candidates = untrimmed_series(study.models, study.blends)
    first_block = InMemory(first_block_wh(study, study_data(study)))
    records = []
    for name in section.series or candidates:
        members = series_members(study, name, first_block)
        factors = mean_factors(study, members) + mix_factors(study, name, members)
        seed = np.random.SeedSequence(study.seed, spawn_key=(SEED_KEY, candidates.index(name)))
        evaluate = mean_evaluator(study, name, members, factors, backend)
        indices = sensitivity.analyse(
            factors, _groups(section.groups, factors, members), evaluate, section.options, seed
        )
        prefix = {"scenario": study.scenario, **({"setting": setting} if setting else {}), "series": name}
        records += [prefix | r | {"inner_draws": section.inner_draws} for r in indices.records]
    return records, []


def analyse_fleet(fleet: Fleet, backend: Backend) -> list[dict]:
    """Index records of each mix's mean energy per query and fleet total, per setting of a fleet study."""
    study, section = fleet.study, fleet.study.sobol
    first_block = InMemory(first_block_wh(study, study_data(study)))
    members = series_members(study, fleet.series, first_block)
    records = []
    for setting in fleet.settings:
        runs = {w: s for (s_name, w), s in fleet.runs.items() if s_name == setting}
        factors = list(dict.fromkeys(f for s in runs.values() for f in mean_factors(s, members)))
        factors += mix_factors(study, fleet.series, members)
        factors += [] if study.priors.is_fixed(FLEET_OVERHEAD) else [FLEET_OVERHEAD]
        seed = np.random.SeedSequence(study.seed, spawn_key=(SEED_KEY, fleet.settings.index(setting)))
        evaluate = fleet_evaluator(fleet, runs, members, factors, backend)
        indices = sensitivity.analyse(
            factors, _groups(section.groups, factors, members), evaluate, section.options, seed
        )
        for r in indices.records:
            mix, target = r["target"].split(TARGET_SEPARATOR)
            head = {"scenario": study.scenario, **({"setting": setting} if setting else {})}
            records.append(
                head
                | {"series": f"{fleet.series}, {mix} mix", "mix": mix}
                | r
                | {"target": target, "inner_draws": section.inner_draws}
            )
    return records


def _groups(
    groups: Mapping[str, Sequence[str]], factors: Sequence[str], members: Sequence[str]
) -> dict[str, list[str]]:
    """The section's groups restricted to a design's factors (``model_mix`` stands for every model share)."""

    def columns(factor: str) -> list[str]:
        return [f"{MIX_FACTOR}:{m}" for m in members] if factor == MIX_FACTOR else [factor]

    return {g: kept for g, fs in groups.items() if (kept := [c for f in fs for c in columns(f) if c in factors])}


def evaluate_in_chunks(backend: Backend, evaluate: sensitivity.Evaluate, unit: np.ndarray) -> dict[str, np.ndarray]:
    """``evaluate(unit)`` by chunks of :data:`CHUNK_ROWS` rows on ``backend`` (rows are independent: same numbers)."""
    parts = list(backend.map(_evaluate, evaluate, [unit[a : a + CHUNK_ROWS] for a in range(0, len(unit), CHUNK_ROWS)]))
    return {target: np.concatenate([part[target] for part in parts]) for target in parts[0]}


def _evaluate(evaluate: sensitivity.Evaluate, rows: np.ndarray) -> dict[str, np.ndarray]:
    return dict(evaluate(rows))


def run_sensitivity(
    path_or_study: str | Path | Study, *, seed: int | None = None, scheduler: str | None = None
) -> SensitivityResult:
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
    method = study.sobol.options.method
    if study.sobol.design == "fleet":
        fleet = load_fleet(study.path, seed=study.seed)
        with Backend(scheduler) as backend:
            records = analyse_fleet(fleet, backend)
        warnings = list(dict.fromkeys(w for s in fleet.runs.values() for w in s.priors.warnings))
        return SensitivityResult(study, method, records, [], warnings)
    warnings = [
        f"{study.path}: blends.{b.name}: trimmed blends have no sensitivity indices (trimming depends on "
        "the whole sample); analyse the untrimmed blend of the same models"
        for b in study.blends
        if b.trim
    ]
    records, pairs = [], []
    with Backend(scheduler) as backend:
        runs: list[tuple[str | None, Study]] = [(s.name, s.study) for s in study.settings] or [(None, study)]
        for setting, variant in runs:
            analyse = analyse_mean if study.sobol.design == "two-level" else analyse_study
            more_records, more_pairs = analyse(variant, setting, backend)
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

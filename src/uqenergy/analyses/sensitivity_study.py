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

The ``[sobol]`` section (method, sample sizes, series, targets, groups) is
parsed by :mod:`uqenergy.config.sobol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr

from uqenergy.analyses import sensitivity
from uqenergy.analyses.results import RecordsResult
from uqenergy.analyses.series import InMemory, series_members
from uqenergy.config import distributions
from uqenergy.config.blends import untrimmed_series
from uqenergy.config.errors import InputError
from uqenergy.config.priors import PriorSet
from uqenergy.config.scheduler import LOCAL, parse_scheduler
from uqenergy.config.sobol import MODEL_FACTOR
from uqenergy.config.study import Study, load_study
from uqenergy.engine import energy
from uqenergy.engine.backend import Backend
from uqenergy.engine.per_query import evaluate_study, study_data
from uqenergy.engine.sampling import BLOCK_DRAWS, monte_carlo_inputs

LOG_MIN_OUTPUT_TOKENS = 1.0
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
            more_records, more_pairs = analyse_study(variant, setting, backend)
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

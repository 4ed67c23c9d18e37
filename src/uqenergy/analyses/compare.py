"""Published per-query estimates against our distributions: where each falls, by how much, and why.

A compare study is TOML with a ``[compare]`` table: the scenario ``studies`` to
run (one per scenario, e.g. ``paper_traditional`` and ``paper_test_time``), the
``estimates`` file, the ``series`` to compare with (default the untrimmed
``blend``), and ``draws`` and ``seed`` for every scenario run. An optional
``[overstatement]`` table adds the non-production / production energy ratio
(:mod:`uqenergy.analyses.overstatement`).

Each estimate is placed on the distribution of the study whose ``scenario``
equals the estimate's ``query_type``, at the estimate's boundary: an estimate
that includes facility overhead is compared with our energy per query; a
server-only or accelerator-only one with our energy without PUE (IT energy).
Our model has no accelerator-only share of node power, so for an
accelerator-only figure the IT energy is an upper bound and a ``below``
verdict is expected. The verdict is ``within`` our central 90% interval
(P5-P95), ``above`` or ``below`` it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import xarray as xr

from uqenergy.analyses.audit import decompose, stated_factors, substituted_energy_wh
from uqenergy.analyses.blends import pool, rank_by_median, trim_masks
from uqenergy.analyses.results import RecordsResult
from uqenergy.config.errors import InputError, check_keys, require_names, require_seed, require_text
from uqenergy.config.estimates import PublicEstimate, load_estimates
from .overstatement import (Overstatement, non_production_priors, parse_overstatement, ratio_draws,
                            ratio_record)
from uqenergy.config.files import existing, read_toml, resolve
from uqenergy.engine.simulate import simulate
from uqenergy.config.errors import positive_int
from uqenergy.config.study import Study, load_study
from uqenergy.engine.throughput import study_fits

SECTIONS = frozenset({"compare", "overstatement"})
COMPARE_KEYS = frozenset({"name", "description", "estimates", "studies", "series", "draws", "seed"})
DEFAULT_SERIES = "blend"
COMPARED_WITH = {
    "datacenter": "our energy per query (with PUE)",
    "server": "our IT energy per query (without PUE)",
    "accelerator": "our IT energy per query (without PUE), an upper bound for accelerator-only energy",
}


@dataclass
class CompareStudy:
    path: Path
    name: str
    description: str
    estimates: list[PublicEstimate]
    studies: list[Study]
    series: str
    overstatement: Overstatement | None


@dataclass
class CompareResult(RecordsResult):
    """``records`` go to compare.json, ``estimates`` (sources) to estimates.json, ``overstatement`` to summary.json."""

    study: CompareStudy
    records: list[dict]
    estimates: list[dict]
    overstatement: list[dict]
    warnings: list[str]


def _scenario_studies(names, file, draws: int | None, seed: int | None) -> list[Study]:
    names = require_names(names, file, "compare.studies")
    studies = [load_study(existing(name, "studies", file, "compare.studies"), draws=draws, seed=seed) for name in names]
    scenarios = [s.scenario for s in studies]
    if len(set(scenarios)) != len(scenarios):
        raise InputError(file, "compare.studies", "two studies share a scenario", "one study per scenario")
    return studies


def load_compare_study(path: str | Path, *, draws: int | None = None, seed: int | None = None) -> CompareStudy:
    """Parse and validate a compare study (a path or a bundled name); ``draws``/``seed`` override the file."""
    path = resolve(path, "studies")
    doc = read_toml(path)
    check_keys(doc, SECTIONS, path)
    table = doc.get("compare")
    if not isinstance(table, dict):
        raise InputError(path, "compare", "missing [compare] table", "a [compare] table with studies and estimates")
    check_keys(table, COMPARE_KEYS, path, "compare.")
    if "estimates" not in table and "overstatement" not in doc:
        raise InputError(path, "compare.estimates", "nothing to compare", "an estimates file, an [overstatement] table, or both")
    draws = positive_int(draws, path, "--draws") if draws is not None else (
        positive_int(table["draws"], path, "compare.draws") if "draws" in table else None)
    if seed is not None or "seed" in table:
        seed = require_seed(seed, path, "--seed") if seed is not None else require_seed(table["seed"], path, "compare.seed")
    studies = _scenario_studies(table.get("studies"), path, draws, seed)
    series = table.get("series", DEFAULT_SERIES)
    for study in studies:
        if study.power_utilisation != "prior":  # the audit and the overstatement ratio substitute PU as an input
            raise InputError(path, "compare.studies", f"study {study.name!r} computes PU from load",
                             "studies whose power utilisation is a prior (power_utilisation = \"prior\")")
        if series not in study.models and series not in [b.name for b in study.blends]:
            raise InputError(path, "compare.series", f"study {study.name!r} has no series {series!r}",
                             "a model or blend of every study: " + ", ".join([*study.models, *(b.name for b in study.blends)]))
    if not isinstance(table.get("estimates", ""), str):
        raise InputError(path, "compare.estimates", f"expected a file name, got {table['estimates']!r}", "e.g. \"public_estimates\"")
    estimates = load_estimates(existing(table["estimates"], "priors", path, "compare.estimates")) if "estimates" in table else []
    scenarios = {s.scenario for s in studies}
    for estimate in estimates:
        if estimate.query_type not in scenarios:
            raise InputError(path, "compare.studies", f"no study of scenario {estimate.query_type!r} for estimate {estimate.id!r}",
                             "studies whose scenarios cover: " + ", ".join(sorted({e.query_type for e in estimates})))
    overstatement = parse_overstatement(doc["overstatement"], path) if "overstatement" in doc else None
    for study in studies if overstatement else []:
        non_production_priors(study, overstatement, path)  # fail early on a bad prior file
    name = require_text(table.get("name", path.stem), path, "compare.name")
    description = table.get("description", "")
    if description:
        require_text(description, path, "compare.description")
    return CompareStudy(path, name, description, estimates, studies, series, overstatement)


def series_members(study: Study, energy_wh: xr.DataArray, series: str) -> tuple[list[str], list]:
    """The models pooled into ``series`` and its trim windows (a model is a pool of one)."""
    if series in study.models:
        return [series], []
    blend = next(b for b in study.blends if b.name == series)
    return blend.members or rank_by_median(energy_wh)[: blend.top], blend.trim


def pool_series(values: xr.DataArray, members: list[str], trims: list) -> np.ndarray:
    """Pooled draws (model, draw) of the series' members, trimmed on ``values`` themselves."""
    return pool(values, trim_masks(values, members, trims))


@dataclass
class Scenario:
    """One scenario study's draws (all inputs, every draw) and the series they are pooled into."""

    study: Study
    inputs: xr.Dataset
    energy_wh: xr.DataArray
    fits: xr.Dataset
    members: list[str]
    trims: list
    _log_medians: dict = field(default_factory=dict, repr=False)

    @classmethod
    def run(cls, study: Study, series: str) -> "Scenario":
        energy_wh, _, inputs = simulate(replace(study, save_draws=study.draws))
        return cls(study, inputs, energy_wh, study_fits(study), *series_members(study, energy_wh, series))

    def draws_wh(self, values: dict[str, float]) -> np.ndarray:
        """Pooled per-query energy with ``values`` substituted for our inputs."""
        energy_wh = substituted_energy_wh(self.inputs, self.fits, self.study.input_token_divisor, values)
        energy_wh = xr.broadcast(energy_wh, self.energy_wh)[0].transpose("model", "draw")
        return pool_series(energy_wh, self.members, self.trims)

    def log_median(self, values: dict[str, float]) -> float:
        """ln of the pooled median with ``values`` substituted (cached: estimates share substitutions)."""
        key = tuple(sorted(values.items()))
        if key not in self._log_medians:
            self._log_medians[key] = math.log(np.quantile(self.draws_wh(values), 0.5))
        return self._log_medians[key]


def boundary_values(boundary: str) -> dict[str, float]:
    """Inputs fixed to compare at an estimate's boundary: no PUE unless it covers the datacenter."""
    return {} if boundary == "datacenter" else {"pue": 1.0}


def place(value_wh: float, draws: np.ndarray) -> dict:
    """Percentile of ``value_wh`` among our draws, ratio to our median with its 90% interval, and verdict."""
    p5, median, p95 = np.quantile(draws, [0.05, 0.5, 0.95])
    verdict = "below" if value_wh < p5 else "above" if value_wh > p95 else "within"
    return {
        "percentile": float(100.0 * np.mean(draws <= value_wh)),
        "ratio_median": float(value_wh / median), "ratio_p5": float(value_wh / p95), "ratio_p95": float(value_wh / p5),
        "verdict": verdict,
    }


def compare_estimate(estimate: PublicEstimate, scenario: Scenario, series: str) -> dict:
    """The compare.json record of one estimate: placement and the assumption audit of its gap."""
    base = boundary_values(estimate.boundary)
    factors = stated_factors(estimate.assumptions)

    def log_median(subset: frozenset[str]) -> float:
        return scenario.log_median(base | {k: v for f in subset for k, v in factors[f].items()})

    return {
        "estimate_id": estimate.id, "value_wh": estimate.value_wh, "scenario": scenario.study.scenario,
        "series": series, **place(estimate.value_wh, scenario.draws_wh(base)),
        "contributions": decompose(estimate.value_wh, log_median, list(factors)),
    }


def _warnings(study: CompareStudy) -> list[str]:
    messages = list(dict.fromkeys(w for s in study.studies for w in s.priors.warnings))
    for e in study.estimates:
        if not e.verified:
            messages.append(f"estimate {e.id}: marked verified = false (figure not confirmed in the cited source {e.url})")
        if e.boundary == "accelerator":
            messages.append(f"estimate {e.id}: accelerator-only; compared with {COMPARED_WITH['accelerator']}")
    return messages


def run_compare(path_or_study: str | Path | CompareStudy, *, draws: int | None = None,
                seed: int | None = None) -> CompareResult:
    """Place published per-query estimates on our distributions, audit each gap, and (if asked) the overstatement ratio.

    Parameters
    ----------
    path_or_study : str, pathlib.Path or CompareStudy
        A compare study file, the name of a bundled one, or a loaded :class:`CompareStudy`.
    draws : int, optional
        Draws per model, instead of the files' (ignored for a loaded study).
    seed : int, optional
        Seed, instead of the files' (ignored for a loaded study).

    Returns
    -------
    CompareResult
        One record per estimate (``records``; ``to_dataframe()``), the estimates'
        sources, overstatement records, warnings.

    Examples
    --------
    >>> import uqenergy
    >>> placed = uqenergy.run_compare("public_estimates", draws=2000, seed=1).to_dataframe()
    >>> placed.shape
    (17, 10)
    >>> sorted(placed.verdict.unique())
    ['above', 'within']
    """
    study = path_or_study if isinstance(path_or_study, CompareStudy) else load_compare_study(path_or_study, draws=draws, seed=seed)
    records, overstatement = [], []
    if study.estimates:
        scenarios = {s.scenario: Scenario.run(s, study.series) for s in study.studies}
        records = [compare_estimate(e, scenarios[e.query_type], study.series) for e in study.estimates]
    if study.overstatement is not None:
        for s in study.studies:
            ratios, production_wh = ratio_draws(s, non_production_priors(s, study.overstatement, study.path))
            values = pool_series(ratios, *series_members(s, production_wh, study.series))
            overstatement.append(ratio_record(s, study.series, values, study.overstatement))
    details = [e.record() | {"compared_with": COMPARED_WITH[e.boundary]} for e in study.estimates]
    return CompareResult(study, records, details, overstatement, _warnings(study))


def format_table(result: CompareResult) -> str:
    """A plain-text summary for the terminal."""
    verified = {e["estimate_id"]: e["verified"] for e in result.estimates}
    lines = [f"{'estimate':<44} {'Wh':>8} {'scenario':<12} {'pct':>6} {'ratio (90%)':>22}  verdict"] if result.records else []
    for r in result.records:
        flag = "" if verified[r["estimate_id"]] else " (unverified)"
        lines.append(f"{r['estimate_id']:<44} {r['value_wh']:>8.3g} {r['scenario']:<12} {r['percentile']:>6.1f} "
                     f"{r['ratio_median']:>7.3g}x ({r['ratio_p5']:.3g}-{r['ratio_p95']:.3g})  {r['verdict']}{flag}")
    for r in result.overstatement:
        lines.append(f"{r['scenario']} {r['series']}: non-production / production energy median {r['median']:.3g}x "
                     f"(90% {r['p5']:.3g}-{r['p95']:.3g}); {100 * r['share_in_claimed_range']:.0f}% of draws in the "
                     f"claimed {r['claimed_low']:g}-{r['claimed_high']:g}x")
    return "\n".join(lines)

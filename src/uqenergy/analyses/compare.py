"""Published per-query estimates against our distributions: where each falls, by how much, and why.

A compare study (:mod:`uqenergy.config.compare`) names the scenario studies,
the estimates file and the series to compare with; its optional
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
from uqenergy.analyses.overstatement import ratio_draws, ratio_record
from uqenergy.analyses.results import RecordsResult
from uqenergy.analyses.series import InMemory, series_members, series_pool
from uqenergy.config.compare import CompareStudy, load_compare_study
from uqenergy.config.estimates import PublicEstimate
from uqenergy.config.study import Study
from uqenergy.engine.simulate import simulate
from uqenergy.engine.throughput import study_fits

COMPARED_WITH = {
    "datacenter": "our energy per query (with PUE)",
    "server": "our IT energy per query (without PUE)",
    "accelerator": "our IT energy per query (without PUE), an upper bound for accelerator-only energy",
}


@dataclass
class CompareResult(RecordsResult):
    """``records`` go to compare.json, ``estimates`` (sources) to estimates.json, ``overstatement`` to summary.json."""

    study: CompareStudy
    records: list[dict]
    estimates: list[dict]
    overstatement: list[dict]
    warnings: list[str]


def _pooled(study: Study, series: str, members: list[str], values: xr.DataArray) -> np.ndarray:
    """Pooled draws of ``series`` from ``values`` (model, draw) of its ``members``, trimmed on ``values`` themselves."""
    draws = InMemory(values.transpose("model", "draw").values)
    return draws.pool(series_pool(study, series, members, draws))


@dataclass
class Scenario:
    """One scenario study's draws (all inputs, every draw) and the series they are pooled into."""

    study: Study
    inputs: xr.Dataset
    energy_wh: xr.DataArray
    fits: xr.Dataset
    series: str
    members: list[str]
    _log_medians: dict = field(default_factory=dict, repr=False)

    @classmethod
    def run(cls, study: Study, series: str) -> Scenario:
        energy_wh, _, inputs = simulate(replace(study, save_draws=study.draws))
        assert inputs is not None  # save_draws = draws keeps every draw
        members = series_members(study, series, InMemory(energy_wh.values))
        return cls(study, inputs, energy_wh, study_fits(study), series, members)

    def draws_wh(self, values: dict[str, float]) -> np.ndarray:
        """Pooled per-query energy with ``values`` substituted for our inputs."""
        energy_wh = substituted_energy_wh(self.inputs, self.fits, self.study.input_token_divisor, values)
        energy_wh = xr.broadcast(energy_wh, self.energy_wh)[0]
        return _pooled(self.study, self.series, self.members, energy_wh)

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
        "ratio_median": float(value_wh / median),
        "ratio_p5": float(value_wh / p95),
        "ratio_p95": float(value_wh / p5),
        "verdict": verdict,
    }


def compare_estimate(estimate: PublicEstimate, scenario: Scenario, series: str) -> dict:
    """The compare.json record of one estimate: placement and the assumption audit of its gap."""
    base = boundary_values(estimate.boundary)
    factors = stated_factors(estimate.assumptions)

    def log_median(subset: frozenset[str]) -> float:
        return scenario.log_median(base | {k: v for f in subset for k, v in factors[f].items()})

    return {
        "estimate_id": estimate.id,
        "value_wh": estimate.value_wh,
        "scenario": scenario.study.scenario,
        "series": series,
        **place(estimate.value_wh, scenario.draws_wh(base)),
        "contributions": decompose(estimate.value_wh, log_median, list(factors)),
    }


def _warnings(study: CompareStudy) -> list[str]:
    messages = list(dict.fromkeys(w for s in study.studies for w in s.priors.warnings))
    for e in study.estimates:
        if not e.verified:
            messages.append(
                f"estimate {e.id}: marked verified = false (figure not confirmed in the cited source {e.url})"
            )
        if e.boundary == "accelerator":
            messages.append(f"estimate {e.id}: accelerator-only; compared with {COMPARED_WITH['accelerator']}")
    return messages


def run_compare(
    path_or_study: str | Path | CompareStudy, *, draws: int | None = None, seed: int | None = None
) -> CompareResult:
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
    study = (
        path_or_study
        if isinstance(path_or_study, CompareStudy)
        else load_compare_study(path_or_study, draws=draws, seed=seed)
    )
    records, overstatement = [], []
    if study.estimates:
        scenarios = {s.scenario: Scenario.run(s, study.series) for s in study.studies}
        records = [compare_estimate(e, scenarios[e.query_type], study.series) for e in study.estimates]
    if study.overstatement is not None:
        for s in study.studies:
            ratios, production_wh = ratio_draws(s, study.non_production_priors[s.scenario])
            members = series_members(s, study.series, InMemory(production_wh.values))
            values = _pooled(s, study.series, members, ratios)
            overstatement.append(ratio_record(s, study.series, values, study.overstatement))
    details = [e.record() | {"compared_with": COMPARED_WITH[e.boundary]} for e in study.estimates]
    return CompareResult(study, records, details, overstatement, _warnings(study))


def format_table(result: CompareResult) -> str:
    """A plain-text summary for the terminal."""
    verified = {e["estimate_id"]: e["verified"] for e in result.estimates}
    lines = (
        [f"{'estimate':<44} {'Wh':>8} {'scenario':<12} {'pct':>6} {'ratio (90%)':>22}  verdict"]
        if result.records
        else []
    )
    for r in result.records:
        flag = "" if verified[r["estimate_id"]] else " (unverified)"
        lines.append(
            f"{r['estimate_id']:<44} {r['value_wh']:>8.3g} {r['scenario']:<12} {r['percentile']:>6.1f} "
            f"{r['ratio_median']:>7.3g}x ({r['ratio_p5']:.3g}-{r['ratio_p95']:.3g})  {r['verdict']}{flag}"
        )
    for r in result.overstatement:
        lines.append(
            f"{r['scenario']} {r['series']}: non-production / production energy median {r['median']:.3g}x "
            f"(90% {r['p5']:.3g}-{r['p95']:.3g}); {100 * r['share_in_claimed_range']:.0f}% of draws in the "
            f"claimed {r['claimed_low']:g}-{r['claimed_high']:g}x"
        )
    return "\n".join(lines)

"""Published per-query estimates against our distributions: like with like, then where the gap comes from.

A compare study (:mod:`uqenergy.config.compare`) names the scenario studies,
the estimates file and the series to compare with; its optional
``[overstatement]`` table adds the non-production / production energy ratio
(:mod:`uqenergy.analyses.overstatement`).

Each estimate is compared with the study whose ``scenario`` equals its
``query_type``, twice:

- **primary**: with our credible distribution of the *same statistic* (the mean
  or the median energy per query under each state of knowledge, from the
  two-level design of :mod:`uqenergy.analyses.two_level`) at the estimate's own
  *boundary* (:mod:`uqenergy.config.boundaries`). Only epistemic uncertainty
  widens it. A figure with ``statistic = "unspecified"`` is compared with the
  mean (:data:`UNSPECIFIED_RULE`). ``ratio = published / ours`` with its 90%
  credible interval, the percentile of the published value in our credible
  distribution, and the verdict: ``within``, ``above`` or ``below`` its 90%
  interval (P5-P95);
- **secondary** (``per_query_*``): the placement on the per-query distribution
  (one-level draws, query-to-query variability included) and the assumption
  audit of the gap (:mod:`uqenergy.analyses.audit`).

An estimate that names a ``closed_model`` is also compared, when the compare
study has a ``closed_models`` study, with that model's prediction
(:mod:`uqenergy.analyses.closed_models`): a second record with ``comparator =
"closed_model"`` (the first has ``comparator = "scenario"``), the same statistic
at the same boundary (:func:`compare_closed_model`).

Boundary: our energy core's node power at utilisation PU covers the server rung
(accelerators and host at load) and PUE the facility rung. Each state of
knowledge (or per-query draw) moves our energy to a boundary with the ladder's
priors: accelerator = server / ``server_overhead``; provisioned = server x
``provisioning_overhead``; facility = provisioned x PUE. A study without the
``provisioning_overhead`` prior (the paper's) has no provisioned rung: its
facility energy is PUE x server energy, and it cannot be compared at the
provisioned or accelerator rungs.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import xarray as xr

from uqenergy.analyses.audit import decompose, stated_factors, substituted_energy_wh
from uqenergy.analyses.closed_models import ClosedModelResult, run_closed_models
from uqenergy.analyses.overstatement import mean_ratio_record, ratio_draws, ratio_record
from uqenergy.analyses.results import RecordsResult
from uqenergy.analyses.series import InMemory, series_members, series_pool
from uqenergy.analyses.two_level import outer_uniforms, two_level, without_trimmed_blends
from uqenergy.config.boundaries import RUNG_PRIORS, ladder_factor
from uqenergy.config.compare import CompareStudy, load_compare_study
from uqenergy.config.estimates import UNSPECIFIED_RULE, PublicEstimate
from uqenergy.config.priors import build_prior, merge_spec
from uqenergy.config.study import Study
from uqenergy.engine.simulate import simulate
from uqenergy.engine.throughput import study_fits

COMPARED_WITH = {
    "accelerator": "our server energy / server_overhead (accelerators only)",
    "server": "our server energy (node at utilisation PU, without PUE)",
    "provisioned": "our server energy x provisioning_overhead (idle capacity included, without PUE)",
    "facility": "our server energy x provisioning_overhead x PUE",
}
LADDER_SEED_KEY = 3  # entropy word of the per-query rung draws (two_level uses 0 and 1, fleet 2)
#: A study without the provisioned rung's prior (the paper's priors) counts no idle capacity: its facility
#: energy is PUE x server energy, as the paper's is. Declared, not a silent default of the ladder.
NO_IDLE_CAPACITY = {RUNG_PRIORS["provisioned"]: 1.0}
#: What our 90% interval carries, by comparator (a record's ``interval``): a scenario study's two-level
#: design gives a *credible* interval of the statistic (epistemic uncertainty only); a closed model's
#: prediction a *predictive* one (it also carries the concurrency, the configuration residual of the size
#: regression and the facility's PUE, which vary between deployments).
INTERVALS = {"scenario": "credible", "closed_model": "predictive"}


@dataclass
class CompareResult(RecordsResult):
    """``records`` go to compare.json, ``estimates`` (sources) to estimates.json, ``drift`` to drift.json,
    ``overstatement`` to summary.json."""

    study: CompareStudy
    records: list[dict]
    estimates: list[dict]
    overstatement: list[dict]
    warnings: list[str]
    drift: list[dict] = field(default_factory=list)


def _pooled(study: Study, series: str, members: list[str], values: xr.DataArray) -> np.ndarray:
    """Pooled draws of ``series`` from ``values`` (model, draw) of its members, trimmed on ``values`` themselves."""
    draws = InMemory(values.transpose("model", "draw").values)
    return draws.pool(series_pool(study, series, members, draws))


def boundary_values(boundary: str) -> dict[str, float]:
    """Inputs fixed to compare at an estimate's boundary: no PUE unless it covers the facility."""
    return {} if boundary == "facility" else {"pue": 1.0}


def _ladder(study: Study, uniforms) -> dict[str, np.ndarray | float]:
    """The ladder priors below the facility rung, through their inverse CDFs at ``uniforms(name)``.

    A study without ``provisioning_overhead`` (the paper's priors) gets :data:`NO_IDLE_CAPACITY`;
    one without ``server_overhead`` has no accelerator rung (the compare study's loader refuses
    estimates there).
    """
    names = [RUNG_PRIORS["server"], RUNG_PRIORS["provisioned"]]
    drawn = {n: study.priors.get(n).ppf(uniforms(n)) for n in names if n in study.priors.base}
    return NO_IDLE_CAPACITY | drawn


def server_rung_study(study: Study) -> Study:
    """``study`` with its (fleet-average) PUE fixed at 1: the energy core then gives the server rung.

    With the facility-to-facility ratio of the honest priors every query's PUE is
    ``1 + (pue - 1) x ratio`` = 1 as well, and the aleatory draws stay those of ``study``.
    """
    pue = study.priors.get("pue")
    fixed = build_prior("pue", merge_spec(pue.spec, {"dist": "fixed", "value": 1.0}), pue.file, "priors.pue")
    priors = replace(
        study.priors, base=study.priors.base | {"pue": fixed}, by_model=study.priors.by_model | {"pue": {}}
    )
    return replace(study, priors=priors)


@dataclass
class Scenario:
    """One scenario study: its per-query draws (all inputs) and its states of knowledge (two-level)."""

    study: Study
    inputs: xr.Dataset
    energy_wh: xr.DataArray
    fits: xr.Dataset
    series: str
    members: list[str]
    statistics: dict[str, np.ndarray]  # "mean" / "median" -> (outer,) facility energy per query of the series
    outer_ladder: dict[str, np.ndarray | float]  # ladder priors and fleet-average pue per state of knowledge
    draw_ladder: dict[str, np.ndarray | float]  # ladder priors below the facility per per-query draw
    outer: int
    inner: int
    _log_medians: dict = field(default_factory=dict, repr=False)
    _server_median: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def run(cls, study: Study, series: str, outer: int, inner: int) -> Scenario:
        energy_wh, _, inputs = simulate(replace(study, save_draws=study.draws))
        assert inputs is not None  # save_draws = draws keeps every draw
        members = series_members(study, series, InMemory(energy_wh.values))
        states = two_level(without_trimmed_blends(study), outer=outer, inner=inner, keep_inner=inner)
        statistics = {
            "mean": states["mean_energy_wh"].sel(series=series, pathway="baseline").values,
            "median": states["median_energy_wh"].sel(series=series).values,
        }
        size = energy_wh.sizes["draw"]

        def per_draw(name: str) -> np.ndarray:
            rng = np.random.default_rng([study.seed, LADDER_SEED_KEY, zlib.crc32(name.encode())])
            return rng.random(size)

        outer_ladder = _ladder(study, lambda n: outer_uniforms(n, outer, study.seed))
        return cls(
            study,
            inputs,
            energy_wh,
            study_fits(study),
            series,
            members,
            statistics,
            outer_ladder | {"pue": states["pue"].isel(model=0).values},
            _ladder(study, per_draw),
            outer,
            inner,
        )

    def draws_wh(self, values: dict[str, float], boundary: str) -> np.ndarray:
        """Pooled per-query energy at ``boundary`` with ``values`` substituted for our inputs.

        The energy core applies each query's PUE itself (``values`` hold ``pue = 1`` below the
        facility, :func:`boundary_values`); the ladder takes its server energy to the other rungs.
        """
        energy_wh = substituted_energy_wh(self.inputs, self.fits, self.study.input_token_divisor, values)
        energy_wh = xr.broadcast(energy_wh, self.energy_wh)[0].transpose("model", "draw")
        rung = "provisioned" if boundary == "facility" else boundary
        energy_wh = energy_wh * ladder_factor("server", rung, self.draw_ladder)
        return _pooled(self.study, self.series, self.members, energy_wh)

    def server_statistic(self, statistic: str) -> np.ndarray:
        """Our credible distribution (outer,) of ``statistic`` of the energy per query at the server rung.

        The mean is the facility mean over the state's fleet-average PUE: exact in expectation
        (each query's facility-to-facility ratio has mean one and is independent of the rest),
        up to the Monte Carlo error of the state's inner draws. The
        median is not a ratio of medians: it is the median of each state's per-query server
        energy, from a second two-level run with the PUE fixed at 1 (:func:`server_rung_study`;
        same seed, so the same states of knowledge).
        """
        if statistic == "mean":
            return self.statistics["mean"] / self.outer_ladder["pue"]
        if self._server_median is None:
            study = without_trimmed_blends(server_rung_study(self.study))
            states = two_level(study, outer=self.outer, inner=self.inner, keep_inner=self.inner)
            self._server_median = states["median_energy_wh"].sel(series=self.series).values
        return self._server_median

    def credible_wh(self, statistic: str, boundary: str) -> np.ndarray:
        """Our credible distribution (outer,) of ``statistic`` of the energy per query at ``boundary``.

        At the facility rung, the two-level run's own statistic (each query's PUE included) times
        the provisioned rung; below it, :meth:`server_statistic` moved along the ladder state by
        state (the ladder's factors are constants within a state, so moving a statistic adds no error).
        """
        if boundary == "facility":
            return self.statistics[statistic] * ladder_factor("server", "provisioned", self.outer_ladder)
        return self.server_statistic(statistic) * ladder_factor("server", boundary, self.outer_ladder)

    def log_median(self, values: dict[str, float], boundary: str) -> float:
        """ln of the pooled per-query median with ``values`` substituted (cached: estimates share substitutions)."""
        key = (boundary, *sorted(values.items()))
        if key not in self._log_medians:
            self._log_medians[key] = math.log(np.quantile(self.draws_wh(values, boundary), 0.5))
        return self._log_medians[key]


def place(value_wh: float, draws: np.ndarray) -> dict:
    """Percentile of ``value_wh`` among ``draws``, ratio value / draws (median, P5, P95), verdict, our P5-P95."""
    p5, median, p95 = np.quantile(draws, [0.05, 0.5, 0.95])
    verdict = "below" if value_wh < p5 else "above" if value_wh > p95 else "within"
    return {
        "percentile": float(100.0 * np.mean(draws <= value_wh)),
        "ratio_median": float(value_wh / median),
        "ratio_p5": float(value_wh / p95),
        "ratio_p95": float(value_wh / p5),
        "verdict": verdict,
        "ours_p5_wh": float(p5),
        "ours_median_wh": float(median),
        "ours_p95_wh": float(p95),
    }


def compared_statistic(estimate: PublicEstimate) -> str:
    """The statistic of ours an estimate is compared with: its own, or the mean for ``unspecified``."""
    return UNSPECIFIED_RULE if estimate.statistic == "unspecified" else estimate.statistic


def comparison_record(
    estimate: PublicEstimate,
    comparator: str,
    scenario: str,
    series: str,
    statistic_wh: np.ndarray,
    per_query_wh: np.ndarray,
    contributions: dict,
) -> dict:
    """The compare.json record of one estimate against one comparator.

    Parameters
    ----------
    estimate : PublicEstimate
        The published figure.
    comparator : str
        ``"scenario"`` (a scenario study's two-level design) or ``"closed_model"`` (a closed model's
        prediction); sets the record's ``interval`` (:data:`INTERVALS`).
    scenario, series : str
        What the figure was compared with: the scenario and its series (a model, a blend, a closed model).
    statistic_wh : numpy.ndarray
        Our distribution of the compared statistic at the estimate's boundary [Wh], one value per state
        (of knowledge, or of the closed model).
    per_query_wh : numpy.ndarray
        Our per-query draws at the estimate's boundary [Wh] (the ``per_query_*`` columns).
    contributions : dict
        The assumption audit of the per-query gap (:func:`~uqenergy.analyses.audit.decompose`), or empty.

    Returns
    -------
    dict
        ``estimate_id``, ``comparator``, ``interval``, the figure's ``statistic`` and the
        ``compared_statistic``, ``boundary``, ``scenario``, ``series``, the placement of :func:`place`
        on ``statistic_wh`` and (``per_query_*``, without our quantiles) on ``per_query_wh``, and
        ``contributions``.
    """
    per_query = place(estimate.value_wh, per_query_wh)
    return {
        "estimate_id": estimate.id,
        "comparator": comparator,
        "interval": INTERVALS[comparator],
        "value_wh": estimate.value_wh,
        "statistic": estimate.statistic,
        "compared_statistic": compared_statistic(estimate),
        "boundary": estimate.boundary,
        "scenario": scenario,
        "series": series,
        **place(estimate.value_wh, statistic_wh),
        **{f"per_query_{k}": v for k, v in per_query.items() if not k.startswith("ours_")},
        "contributions": contributions,
    }


def compare_estimate(estimate: PublicEstimate, scenario: Scenario, series: str) -> dict:
    """The compare.json record of one estimate against a scenario study (``comparator = "scenario"``).

    Parameters
    ----------
    estimate : PublicEstimate
        The published figure; its ``query_type`` is the scenario's.
    scenario : Scenario
        The scenario study's per-query draws and states of knowledge.
    series : str
        The series compared with.

    Returns
    -------
    dict
        The record of :func:`comparison_record`: our credible distribution of the figure's statistic at
        its boundary, the per-query placement, and the assumption audit of that gap.
    """
    base = boundary_values(estimate.boundary)
    factors = stated_factors(estimate.assumptions)

    def log_median(subset: frozenset[str]) -> float:
        return scenario.log_median(base | {k: v for f in subset for k, v in factors[f].items()}, estimate.boundary)

    return comparison_record(
        estimate,
        "scenario",
        scenario.study.scenario,
        series,
        scenario.credible_wh(compared_statistic(estimate), estimate.boundary),
        scenario.draws_wh(base, estimate.boundary),
        decompose(estimate.value_wh, log_median, list(factors)),
    )


def compare_closed_model(estimate: PublicEstimate, closed: ClosedModelResult) -> dict:
    """The compare.json record of an estimate against the prediction for its ``closed_model``.

    Each draw of the closed-model run is one state of the model (size, hardware, precision,
    concurrency, the size regression's posterior predictive with its configuration residual, the
    ladder); its ``mean_energy_wh`` and ``median_energy_wh`` are the mean and median query under it.
    They are moved from the study's boundary down to the estimate's, draw by draw, with that draw's
    own rung priors. Their spread carries more than what we do not know (concurrency, the residual of
    one configuration, the facility's PUE vary between deployments), so the record's ``interval`` is
    ``"predictive"``. The per-query columns place the figure on ``energy_wh`` (answer length drawn
    too). No assumption audit: the prediction has no energy-core inputs to substitute.

    Parameters
    ----------
    estimate : PublicEstimate
        The published figure, naming a model of ``closed``'s study in ``closed_model``.
    closed : ClosedModelResult
        The closed-model run.

    Returns
    -------
    dict
        The record of :func:`comparison_record`, ``comparator = "closed_model"`` and empty
        ``contributions``.
    """
    draws = closed.samples.sel(model=estimate.closed_model)
    rungs = {name: draws[name].values for name in closed.study.rung_priors}
    factor = ladder_factor(closed.study.boundary, estimate.boundary, rungs)
    return comparison_record(
        estimate,
        "closed_model",
        closed.study.scenario,
        estimate.closed_model,
        draws[f"{compared_statistic(estimate)}_energy_wh"].values * factor,
        draws["energy_wh"].values * factor,
        {},
    )


def claim_drift(estimates: list[PublicEstimate]) -> list[dict]:
    """How each claim drifted across the versions of its source: one record per version, oldest first.

    Entries sharing a ``claim`` are versions of one claim; each record gives the
    value and its ratio to the first version's. Claims with one version are left out.
    """
    claims: dict[str, list[PublicEstimate]] = {}
    for e in estimates:
        claims.setdefault(e.claim, []).append(e)
    records = []
    for claim, versions in claims.items():
        if len(versions) < 2:
            continue
        versions = sorted(versions, key=lambda e: e.date)
        first = versions[0].value_wh
        records += [
            {
                "claim": claim,
                "estimate_id": e.id,
                "version": e.version,
                "date": e.date,
                "value_wh": e.value_wh,
                "statistic": e.statistic,
                "boundary": e.boundary,
                "change_from_first": e.value_wh / first,
            }
            for e in versions
        ]
    return records


def _warnings(study: CompareStudy) -> list[str]:
    messages = list(dict.fromkeys(w for s in study.studies for w in s.priors.warnings))
    for e in study.estimates:
        if not e.verified:
            messages.append(
                f"estimate {e.id}: marked verified = false (figure not confirmed in the cited source {e.url})"
            )
    return messages


def run_compare(
    path_or_study: str | Path | CompareStudy, *, draws: int | None = None, seed: int | None = None
) -> CompareResult:
    """Compare published per-query estimates with ours, like with like, audit each gap, and (if asked) the
    overstatement ratio.

    Parameters
    ----------
    path_or_study : str, pathlib.Path or CompareStudy
        A compare study file, the name of a bundled one, or a loaded :class:`CompareStudy`.
    draws : int, optional
        Per-query draws per model, instead of the files' (ignored for a loaded study).
    seed : int, optional
        Seed, instead of the files' (ignored for a loaded study).

    Returns
    -------
    CompareResult
        One record per estimate (``records``; ``to_dataframe()``), the estimates'
        sources, the drift of claims across versions, overstatement records, warnings.

    Examples
    --------
    >>> import uqenergy
    >>> compared = uqenergy.run_compare("public_estimates", draws=2000, seed=1).to_dataframe()
    >>> compared.loc[compared.estimate_id == "devries_2023_chatgpt", ["statistic", "boundary"]].values.tolist()
    [['mean', 'provisioned']]
    >>> sorted(compared.compared_statistic.unique())
    ['mean', 'median']
    """
    study = (
        path_or_study
        if isinstance(path_or_study, CompareStudy)
        else load_compare_study(path_or_study, draws=draws, seed=seed)
    )
    records, overstatement = [], []
    if study.estimates:
        scenarios = {
            s.scenario: Scenario.run(s, study.series, study.outer_draws, study.inner_draws) for s in study.studies
        }
        records = [compare_estimate(e, scenarios[e.query_type], study.series) for e in study.estimates]
    if study.closed_models is not None and any(e.closed_model for e in study.estimates):
        closed = run_closed_models(study.closed_models)
        records += [compare_closed_model(e, closed) for e in study.estimates if e.closed_model]
    if study.overstatement is not None:
        for s in study.studies:
            non_production = study.non_production_priors[s.scenario]
            ratios, production_wh = ratio_draws(s, non_production)
            members = series_members(s, study.series, InMemory(production_wh.values))
            values = _pooled(s, study.series, members, ratios)
            overstatement.append(ratio_record(s, study.series, values, study.overstatement))
            overstatement.append(
                mean_ratio_record(
                    s, study.series, non_production, study.overstatement, study.outer_draws, study.inner_draws
                )
            )
    details = [e.record() | {"compared_with": COMPARED_WITH[e.boundary]} for e in study.estimates]
    return CompareResult(study, records, details, overstatement, _warnings(study), claim_drift(study.estimates))


def format_table(result: CompareResult) -> str:
    """A plain-text summary for the terminal."""
    verified = {e["estimate_id"]: e["verified"] for e in result.estimates}
    lines: list[str] = []
    for i, r in enumerate(result.records):
        if i == 0 or r["interval"] != result.records[i - 1]["interval"]:  # a header per kind of interval
            ratio = f"ratio (90% {r['interval']})"
            lines.append(
                f"{'estimate':<44} {'Wh':>7} {'compared with':<40} {'pct':>5} {ratio:>22}  {'verdict':<7}  per query"
            )
        flag = "" if verified[r["estimate_id"]] else " (unverified)"
        what = f"{r['series']} {r['compared_statistic']} @ {r['boundary']}"
        lines.append(
            f"{r['estimate_id']:<44} {r['value_wh']:>7.3g} {what:<40} {r['percentile']:>5.1f} "
            f"{r['ratio_median']:>6.3g}x ({r['ratio_p5']:.3g}-{r['ratio_p95']:.3g})  {r['verdict']:<7}  "
            f"{r['per_query_ratio_median']:.3g}x ({r['per_query_ratio_p5']:.2g}-{r['per_query_ratio_p95']:.2g})"
            f"{flag}"
        )
    claims: dict[str, list[dict]] = {}
    for r in result.drift:
        claims.setdefault(r["claim"], []).append(r)
    for claim, versions in claims.items():
        steps = ", ".join(f"{v['version']} ({v['date']}) {v['value_wh']:.3g} Wh" for v in versions)
        lines.append(f"drift of {claim}: {steps}")
    for r in result.overstatement:
        what = "mean energy" if r["quantity"].startswith("mean_") else "per-query energy"
        lines.append(
            f"{r['scenario']} {r['series']}: non-production / production {what} median {r['median']:.3g}x "
            f"(90% {r['p5']:.3g}-{r['p95']:.3g}); {100 * r['share_in_claimed_range']:.0f}% inside the "
            f"claimed {r['claimed_low']:g}-{r['claimed_high']:g}x"
        )
    return "\n".join(lines)

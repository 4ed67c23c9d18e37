"""Fleet totals: queries per day x energy per query x overheads, for mixes of workloads, with water and carbon.

A fleet study (its ``[fleet]`` section: workloads, mixes, grids) is parsed by
:mod:`uqenergy.config.fleet`.

Fleet energy (Oviedo et al., Joule 2026, fleet scripts) is
``queries_per_day x mean energy per query x fleet_overhead``. Scenarios:
``baseline``, and ``improved`` by each efficiency pathway, by all of them
(``combined``) or by the paper's fleet-wide ``interventions`` multiplier
(``fleet_interventions``). A workload without a pathway is not improved by it.

Two methods:

- ``paper``: the mean of the pooled per-query draws of a one-level run, each
  draw divided by its own improvement multiplier, mixed as share-weighted means.
  Its interval is the Monte Carlo noise of that mean, as the paper's bootstrap:
  the bootstrap's normal limit, mean +- z * sd / sqrt(n), workloads independent;
- ``honest``: the mean energy per query under each state of knowledge of a
  two-level run (:func:`uqenergy.analyses.two_level.two_level`), fleet priors drawn per
  state of knowledge from the same name-keyed streams, so every workload and
  setting shares them; a mix is the share-weighted mean of the same state's
  means, never a blend of quantiles.

Water and carbon (honest method; Li et al., arXiv:2304.03271): water =
E_IT x WUE + E_facility x water intensity of electricity, E_IT = E_facility / PUE
with each state of knowledge's PUE; carbon = E_facility x grid carbon intensity.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr

from uqenergy.analyses.results import RecordsResult, provenance
from uqenergy.analyses.series import InMemory, pathway_divisors, series_members
from uqenergy.analyses.two_level import level_seed, outer_uniforms, two_level
from uqenergy.config.catalogue import prior_records
from uqenergy.config.distributions import Z95
from uqenergy.config.fleet import ENVIRONMENT_PRIORS, FLEET_PRIORS, Fleet, load_fleet
from uqenergy.config.priors import PriorSet
from uqenergy.config.study import Study
from uqenergy.engine.simulate import simulate

PAPER_LEVEL = 2  # entropy word of the paper method's fleet-prior streams (two_level uses 0 and 1)
WH_PER_GWH = 1e9
ML_PER_M3 = 1e6
G_PER_T = 1e6


@dataclass
class FleetResult(RecordsResult):
    fleet: Fleet
    records: list[dict]
    samples: xr.Dataset
    warnings: list[str]


# --- the two methods, per workload --------------------------------------------------------------------------


def _divisor_labels(study: Study, labels: list[str]) -> dict[str, str]:
    """For each fleet label, the workload's pathway that gives it (``baseline`` when the workload lacks it)."""
    own = {"baseline", *study.pathways, *(["combined"] if study.combined else [])}
    return {label: label if label in own else "baseline" for label in labels if label != "interventions"}


def paper_moments(study: Study, fleet: Fleet, progress=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean (label,) and covariance (label, label) of the pooled per-query energy with overhead, in Wh, and n.

    One-level draws of the study with the paper's deterministic throughput fit,
    pooled over the series' members untrimmed; each draw divided by its own
    pathway or interventions multiplier, and multiplied by its own overhead draw
    (the paper: one fixed factor).
    """
    energy_wh, divisors, _ = simulate(replace(study, save_draws=1, throughput_uncertainty=False), progress)
    members = series_members(study, fleet.series, InMemory(energy_wh.values))
    pooled = energy_wh.sel(model=members).values.ravel()
    pooled_divisors = pathway_divisors(
        study, {name: d.sel(model=members).values.ravel() for name, d in divisors.items()}
    )
    fleet_draws = {}
    for name in FLEET_PRIORS:
        rng = np.random.default_rng([level_seed(study.seed, PAPER_LEVEL), zlib.crc32(name.encode())])
        fleet_draws[name] = study.priors.get(name).sample(rng, pooled.size)
    with_overhead = pooled * fleet_draws["fleet_overhead"]
    rows = [
        with_overhead / pooled_divisors[p] if p != "baseline" else with_overhead
        for p in _divisor_labels(study, fleet.labels).values()
    ]
    rows.append(with_overhead / fleet_draws["fleet_interventions"])
    values = np.vstack(rows)
    return values.mean(axis=1), np.atleast_2d(np.cov(values)), pooled.size


def honest_draws(study: Study, fleet: Fleet, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean facility and IT energy per query with overhead, (label, outer) each, in Wh, per state of knowledge."""
    result = two_level(study, outer=fleet.outer_draws, inner=study.draws, keep_inner=1, progress=progress)
    overhead, interventions = (
        study.priors.get(n).ppf(outer_uniforms(n, fleet.outer_draws, study.seed)) for n in FLEET_PRIORS
    )
    weights = result["weights"].sel(series=fleet.series).values  # (model, outer)
    per_model = result["mean_energy_wh"].sel(series=study.models)  # (series = model, pathway, outer)
    facility, it = [], []
    for pathway in _divisor_labels(study, fleet.labels).values():
        model_wh = per_model.sel(pathway=pathway).values  # (model, outer)
        facility.append((weights * model_wh).sum(axis=0))
        it.append((weights * model_wh / result["pue"].values).sum(axis=0))
    facility.append(facility[0] / interventions)
    it.append(it[0] / interventions)
    return np.vstack(facility) * overhead, np.vstack(it) * overhead


# --- mixes, quantities and records ----------------------------------------------------------------------------


def _run_key(study: Study) -> str:
    """What determines a workload run: equal keys give equal results (settings often leave a workload alone)."""
    priors = [(n, m, study.priors.get(n, m).spec) for n in [*study.factors, *FLEET_PRIORS] for m in study.models]
    knobs = (
        study.models,
        [(b.name, b.top, b.members) for b in study.blends],
        study.pathways,
        study.draws,
        study.seed,
        study.input_token_divisor,
        study.power_utilisation,
        study.throughput_uncertainty,
        study.quantization,
        str(study.throughput_file),
    )
    return json.dumps([priors, knobs], default=str, sort_keys=True)


def _paper_summary(mean: float, variance: float) -> dict:
    """The paper's interval: Monte Carlo noise of a mean (its bootstrap's normal limit)."""
    mean, half = float(mean), Z95 * math.sqrt(max(float(variance), 0.0))
    return {"p5": mean - half, "median": mean, "p95": mean + half, "mean": mean}


def _summary(values: np.ndarray) -> dict:
    p5, median, p95 = np.quantile(values, [0.05, 0.5, 0.95])
    return {"p5": float(p5), "median": float(median), "p95": float(p95), "mean": float(np.mean(values))}


def paper_quantities(fleet: Fleet, mix: str, moments: dict) -> dict[str, list[dict]]:
    """Per quantity, one summary per label: the mix's share-weighted means and their Monte Carlo noise.

    Workloads are independent runs, so the variance of the mixed mean is the
    share-squared sum of theirs; a reduction factor (baseline / improved mean)
    takes its noise from the delta method, with the covariance of the two means.
    """
    shares = fleet.mixes[mix]
    mean = sum(s * moments[w][0] for w, s in shares.items())
    cov = sum(s * s * moments[w][1] / moments[w][2] for w, s in shares.items())
    per_query = [_paper_summary(mean[i], cov[i, i]) for i in range(len(fleet.labels))]
    scale = fleet.queries_per_day / WH_PER_GWH
    relative = cov[0, 0] / mean[0] ** 2 + np.diag(cov) / mean**2 - 2 * cov[0] / (mean[0] * mean)
    ratio = mean[0] / mean
    return {
        "energy_gwh_per_day": [{k: v * scale for k, v in stats.items()} for stats in per_query],
        "energy_wh_per_query": per_query,
        "reduction_factor": [_paper_summary(r, r * r * v) for r, v in zip(ratio, relative)],
    }


def honest_quantities(
    fleet: Fleet, mix: str, draws: dict, environment: dict
) -> dict[tuple[str, str | None], np.ndarray]:
    """(quantity, grid) -> (label, outer) draws of one mix: the share-weighted mean of each state of knowledge.

    Water per query = E_IT x WUE + E_facility x water intensity (Wh x L/kWh = mL);
    carbon = E_facility x carbon intensity.
    """
    shares = fleet.mixes[mix]
    facility_wh = sum(s * draws[w][0] for w, s in shares.items())
    it_wh = sum(s * draws[w][1] for w, s in shares.items())
    n = fleet.queries_per_day
    out: dict[tuple[str, str | None], np.ndarray] = {
        ("energy_gwh_per_day", None): facility_wh * n / WH_PER_GWH,
        ("energy_wh_per_query", None): facility_wh,
        ("reduction_factor", None): facility_wh[:1] / facility_wh,
    }
    for grid, env in environment.items():
        water_ml = (
            it_wh * env["water_use_effectiveness_l_per_kwh"]
            + facility_wh * env["water_intensity_electricity_l_per_kwh"]
        )
        co2e_g = facility_wh * env["grid_carbon_intensity_g_per_kwh"] / 1000
        out |= {
            ("water_ml_per_query", grid): water_ml,
            ("co2e_g_per_query", grid): co2e_g,
            ("water_m3_per_day", grid): water_ml * n / ML_PER_M3,
            ("co2e_t_per_day", grid): co2e_g * n / G_PER_T,
        }
    return out


QUANTITY_ORDER = (
    "energy_gwh_per_day",
    "water_m3_per_day",
    "co2e_t_per_day",
    "reduction_factor",
    "energy_wh_per_query",
    "water_ml_per_query",
    "co2e_g_per_query",
)


def fleet_records(fleet: Fleet, paper: dict, honest: dict) -> list[dict]:
    """Flat records in reading order: quantity, setting, mix, pathway, grid, method.

    ``paper[(setting, mix)]`` and ``honest[(setting, mix)]`` are what
    :func:`paper_quantities` and :func:`honest_quantities` return.
    """
    grids = {grid for quantities in honest.values() for _, grid in quantities}
    records = []
    for quantity in QUANTITY_ORDER:
        for setting in fleet.settings:
            for mix in fleet.mixes:
                for i, label in enumerate(fleet.labels):
                    if quantity == "reduction_factor" and label == "baseline":
                        continue
                    head = {
                        "scenario": "baseline" if label == "baseline" else "improved",
                        **({"setting": setting} if setting is not None else {}),
                        "mix": mix,
                        "pathway": label,
                        "quantity": quantity,
                    }
                    if quantity in paper[(setting, mix)]:
                        records.append(head | {"method": "paper", **paper[(setting, mix)][quantity][i]})
                    for grid in [g for g in fleet.grids if g in grids] + [None]:
                        if (quantity, grid) in honest[(setting, mix)]:
                            where = {"grid": grid} if grid is not None else {}
                            records.append(
                                head
                                | where
                                | {"method": "honest", **_summary(honest[(setting, mix)][(quantity, grid)][i])}
                            )
    return records


def environment_draws(fleet: Fleet) -> dict[str, dict[str, np.ndarray]]:
    """Each grid's environment priors at the fleet's states of knowledge (outer draws)."""
    return {
        grid: {
            name: prior.ppf(outer_uniforms(name, fleet.outer_draws, fleet.study.seed)) for name, prior in priors.items()
        }
        for grid, priors in fleet.grids.items()
    }


def work_draws(fleet: Fleet) -> int:
    """Per-query energies a run evaluates or draws (for a progress bar): both methods, each distinct workload run."""
    unique = {_run_key(s): s for s in fleet.runs.values()}.values()
    return sum(s.draws * len(s.models) * (1 + fleet.outer_draws) for s in unique)


def run_fleet(
    path_or_fleet: str | Path | Fleet, *, draws: int | None = None, seed: int | None = None, progress=None
) -> FleetResult:
    """Fleet totals by both methods (the paper's and the honest Monte Carlo) for every workload mix.

    Parameters
    ----------
    path_or_fleet : str, pathlib.Path or Fleet
        A fleet study file, the name of a bundled one, or a loaded :class:`Fleet`.
    draws : int, optional
        Draws per model, instead of the file's (ignored for a loaded fleet).
    seed : int, optional
        Seed, instead of the file's (ignored for a loaded fleet).
    progress : callable, optional
        Called with the draws done, for a progress bar.

    Returns
    -------
    FleetResult
        One record per (setting, mix, scenario, pathway, quantity, grid, method)
        (``records``; ``to_dataframe()``), the honest draws (``samples``), warnings.

    Examples
    --------
    >>> import uqenergy
    >>> fleet = uqenergy.run_fleet("paper_fleet", draws=2000, seed=1).to_dataframe()
    >>> list(fleet.columns)
    ['scenario', 'mix', 'pathway', 'quantity', 'method', 'p5', 'median', 'p95', 'mean', 'grid']
    >>> fleet.query("quantity == 'energy_gwh_per_day' and mix == 'traditional'").method.unique().tolist()
    ['paper', 'honest']
    """
    fleet = path_or_fleet if isinstance(path_or_fleet, Fleet) else load_fleet(path_or_fleet, draws=draws, seed=seed)
    cache: dict[str, tuple] = {}
    results = {}
    for (setting, workload), study in fleet.runs.items():
        key = _run_key(study)
        if key not in cache:
            cache[key] = (paper_moments(study, fleet, progress), honest_draws(study, fleet, progress))
        results[(setting, workload)] = cache[key]
    environment = environment_draws(fleet)
    paper, honest = {}, {}
    for setting in fleet.settings:
        for mix, shares in fleet.mixes.items():
            paper[(setting, mix)] = paper_quantities(fleet, mix, {w: results[(setting, w)][0] for w in shares})
            honest[(setting, mix)] = honest_quantities(
                fleet, mix, {w: results[(setting, w)][1] for w in shares}, environment
            )
    studies = list({_run_key(s): s for s in fleet.runs.values()}.values())
    warnings = list(dict.fromkeys(w for s in studies for w in s.priors.warnings))
    return FleetResult(fleet, fleet_records(fleet, paper, honest), fleet_samples(fleet, honest), warnings)


def fleet_samples(fleet: Fleet, honest: dict) -> xr.Dataset:
    """The honest method's states of knowledge per query: dims (setting, mix, pathway, [grid,] outer), with provenance."""
    settings, mixes, grids = [s or "" for s in fleet.settings], list(fleet.mixes), list(fleet.grids)

    def stack(quantity: str, grid_dim: bool) -> np.ndarray:
        return np.array(
            [
                [
                    np.stack([honest[(s, m)][(quantity, g)] for g in grids], axis=1)
                    if grid_dim
                    else honest[(s, m)][(quantity, None)]
                    for m in mixes
                ]
                for s in fleet.settings
            ]
        )

    dims = ("setting", "mix", "pathway", "outer")
    env_dims = ("setting", "mix", "pathway", "grid", "outer")
    variables: dict[str, tuple] = {
        "energy_wh_per_query": (
            dims,
            stack("energy_wh_per_query", False),
            {"units": "Wh", "long_name": "mean facility energy per query with fleet overhead, per state of knowledge"},
        )
    }
    if grids:
        variables |= {
            "water_ml_per_query": (
                env_dims,
                stack("water_ml_per_query", True),
                {"units": "mL", "long_name": "mean water per query"},
            ),
            "co2e_g_per_query": (
                env_dims,
                stack("co2e_g_per_query", True),
                {"units": "gCO2e", "long_name": "mean emissions per query"},
            ),
        }
    study = fleet.study
    attrs = provenance(study) | {
        "priors": json.dumps(used_priors(fleet)),
        "design": "fleet",
        "queries_per_day": fleet.queries_per_day,
        "series": fleet.series,
        "outer_draws": fleet.outer_draws,
        "inner_draws": study.draws,
        "mixes": json.dumps(fleet.mixes),
        "workloads": json.dumps(fleet.descriptions),
        "note": "samples.nc keeps the honest method's states of knowledge (outer draws) of the mean per query; "
        "per-day totals are these times queries_per_day",
    }
    coords = {"setting": settings, "mix": mixes, "pathway": fleet.labels, "outer": np.arange(fleet.outer_draws)}
    return xr.Dataset(variables, coords=coords | ({"grid": grids} if grids else {})).assign_attrs(attrs)


def used_priors(fleet: Fleet) -> list[dict]:
    """Prior records of the fleet study, then each prior a workload, setting or grid changes, tagged with it."""
    study = fleet.study
    names = [*study.factors, *FLEET_PRIORS]
    records = prior_records(
        study.priors, [*names, *(p for p in ENVIRONMENT_PRIORS if p in study.priors.base)], study.models
    )
    base = {(r["prior"], r["model"]): r for r in records}
    for (setting, workload), variant in fleet.runs.items():
        tag = f"workload {workload}" + (f", setting {setting}" if setting is not None else "")
        records += [
            r | {"prior": f"{r['prior']} [{tag}]"}
            for r in prior_records(variant.priors, names, variant.models)
            if base.get((r["prior"], r["model"]), {}).get("distribution") != r["distribution"]
        ]
    for grid, priors in fleet.grids.items():
        records += [
            r | {"prior": f"{name} [grid {grid}]"}
            for name, prior in priors.items()
            for r in prior_records(PriorSet({name: prior}, {}, []), [name], [])
            if prior is not study.priors.get(name)
        ]
    return records


def headline(records: list[dict]) -> list[str]:
    """One line per (setting, mix, scenario/pathway) of the energy per day: paper beside honest."""
    rows: dict[tuple, dict] = {}
    for r in records:
        if r["quantity"] == "energy_gwh_per_day" and r["pathway"] in ("baseline", "combined", "interventions"):
            rows.setdefault((r.get("setting"), r["mix"], r["pathway"]), {})[r["method"]] = r
    lines = []
    for (setting, mix, pathway), methods in rows.items():
        where = f"{setting} · " if setting is not None else ""
        paper, honest = methods["paper"], methods["honest"]
        lines.append(
            f"{where}{mix:<12} {pathway:<13} paper {paper['mean']:.3g} GWh/day "
            f"(MC noise {paper['p5']:.3g}-{paper['p95']:.3g}); honest median {honest['median']:.3g}, "
            f"mean {honest['mean']:.3g} (90% {honest['p5']:.3g}-{honest['p95']:.3g})"
        )
    return lines

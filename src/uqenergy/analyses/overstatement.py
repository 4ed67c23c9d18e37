"""How much a non-production assumption set overstates per-query energy, as a distribution.

The same query (same model, same token lengths: the *aleatory* inputs share
their random numbers) is priced twice: once under a study's production priors
and once under a non-production prior set (low-concurrency throughput, power
at the rated maximum, a high PUE). The *epistemic* inputs of the two sets are
independent unknowns and get independent random numbers. Energy is linear in
the effective tokens, which both sides share, so the ratio is that of energy
per effective token; it is defined for zero-token draws too.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr

from uqenergy.analyses.intervals import summarize
from uqenergy.analyses.two_level import level_seed, two_level, without_trimmed_blends
from uqenergy.config.compare import Overstatement
from uqenergy.config.priors import PriorSet
from uqenergy.config.study import INPUT_PRIORS, OPTIONAL_PRIORS, Study
from uqenergy.engine import energy
from uqenergy.engine.sampling import chunk_ranges, inputs_from_uniforms, monte_carlo_uniforms
from uqenergy.engine.throughput import study_fits

QUANTITY = "energy_ratio_non_production_to_production"
MEAN_QUANTITY = "mean_energy_ratio_non_production_to_production"
NON_PRODUCTION_SEED_KEY = 4  # entropy word of the non-production side's states of knowledge


def _factors(study: Study, priors: PriorSet) -> list[str]:
    extra = ["throughput_z"] if study.throughput_uncertainty else []
    extra += [name for name in OPTIONAL_PRIORS if name in study.priors.base or name in priors.base]
    return [*INPUT_PRIORS, *extra]


def _shared(name: str, *prior_sets: PriorSet) -> bool:
    return all(name in p.base and p.get(name).kind == "aleatory" for p in prior_sets)


def paired_inputs(study: Study, priors: PriorSet, start: int, stop: int) -> tuple[xr.Dataset, xr.Dataset]:
    """Production and non-production inputs for draws [start, stop): aleatory inputs shared, epistemic ones independent."""
    factors = _factors(study, priors)
    n = len(factors)
    uniforms = monte_carlo_uniforms(study.seed, 2 * n, len(study.models), start, stop)
    shared = np.array([_shared(name, study.priors, priors) for name in factors])
    other = np.where(shared[:, None, None], uniforms[:n], uniforms[n:])
    sides = []
    for prior_set, u in ((study.priors, uniforms[:n]), (priors, other)):
        own = [i for i, name in enumerate(factors) if name in prior_set.base]
        sides.append(inputs_from_uniforms(prior_set, [factors[i] for i in own], study.models, u[own], start))
    return sides[0], sides[1]


def _energy_per_token_wh(
    inputs: xr.Dataset, fits: xr.Dataset, input_token_divisor: float
) -> tuple[xr.DataArray, xr.DataArray]:
    outputs = energy.evaluate(inputs, fits, input_token_divisor)
    per_token = energy.energy_per_query_wh(
        inputs["pue"], inputs["node_power_kw"], inputs["power_utilisation"], 1.0, outputs["tokens_per_s"]
    )
    return per_token, outputs["energy_wh"]


def ratio_draws(study: Study, priors: PriorSet) -> tuple[xr.DataArray, xr.DataArray]:
    """Non-production / production energy ratio and production energy per query, both (model, draw)."""
    fits = study_fits(study)
    ratios, production = [], []
    for start, stop in chunk_ranges(study.draws, study.chunk_draws):
        prod_inputs, np_inputs = paired_inputs(study, priors, start, stop)
        prod_per_token, prod_energy = _energy_per_token_wh(prod_inputs, fits, study.input_token_divisor)
        np_per_token, _ = _energy_per_token_wh(np_inputs, fits, study.input_token_divisor)
        ratios.append((np_per_token / prod_per_token).transpose("model", "draw"))
        production.append(prod_energy.transpose("model", "draw"))
    return xr.concat(ratios, "draw"), xr.concat(production, "draw")


def ratio_record(study: Study, series: str, ratios: np.ndarray, overstatement: Overstatement) -> dict:
    """A summary record of the ratio, with the share of draws inside the claimed range."""
    return {
        "scenario": study.scenario,
        "series": series,
        "pathway": "baseline",
        "quantity": QUANTITY,
        **summarize(ratios),
        **_in_range(ratios, overstatement),
    }


def _in_range(ratios: np.ndarray, overstatement: Overstatement) -> dict:
    inside = (ratios >= overstatement.claimed_low) & (ratios <= overstatement.claimed_high)
    return {
        "claimed_low": overstatement.claimed_low,
        "claimed_high": overstatement.claimed_high,
        "share_in_claimed_range": float(inside.mean()),
        "claim_source": overstatement.claim_source,
    }


def mean_ratio_draws(study: Study, priors: PriorSet, series: str, outer: int, inner: int) -> np.ndarray:
    """Ratio of the mean energy per query, non-production / production, one per pair of states of knowledge.

    Each side runs the two-level design (:func:`uqenergy.analyses.two_level.two_level`)
    of ``study`` under its own priors. The non-production side takes its states
    of knowledge from a seed of its own: the production and the non-production
    PUE are separate unknowns, so the two sides' epistemic draws are independent.
    Both sides average the same aleatory laws (answer lengths, model), so the
    ratio compares like with like: the mean a fleet of such queries would see.
    """
    study = without_trimmed_blends(study)
    production = two_level(study, outer=outer, inner=inner, keep_inner=1)
    other = replace(study, priors=priors)
    seed = level_seed(study.seed, NON_PRODUCTION_SEED_KEY)
    non_production = two_level(other, outer=outer, inner=inner, seed=seed, keep_inner=1)
    select = {"series": series, "pathway": "baseline"}
    return non_production["mean_energy_wh"].sel(select).values / production["mean_energy_wh"].sel(select).values


def mean_ratio_record(
    study: Study, series: str, priors: PriorSet, overstatement: Overstatement, outer: int, inner: int
) -> dict:
    """A summary record of the ratio of mean energies, with the share of states of knowledge in the claimed range."""
    ratios = mean_ratio_draws(study, priors, series, outer, inner)
    return {
        "scenario": study.scenario,
        "series": series,
        "pathway": "baseline",
        "quantity": MEAN_QUANTITY,
        **summarize(ratios),
        **_in_range(ratios, overstatement),
    }

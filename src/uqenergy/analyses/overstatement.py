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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from uqenergy.engine import energy
from uqenergy.config.errors import InputError, check_keys, require_names, require_number
from uqenergy.analyses.intervals import summarize
from uqenergy.config.priors import PriorSet, load_prior_files
from uqenergy.config.files import existing
from uqenergy.engine.sampling import chunk_ranges, inputs_from_uniforms, monte_carlo_uniforms
from uqenergy.config.study import INPUT_PRIORS, OPTIONAL_PRIORS, Study
from uqenergy.engine.throughput import study_fits

SECTION_KEYS = frozenset({"priors", "claimed_range", "claim_source"})
QUANTITY = "energy_ratio_non_production_to_production"


@dataclass(frozen=True)
class Overstatement:
    """The non-production prior files and the published claim the ratio is held against."""

    prior_files: tuple[Path, ...]
    claimed_low: float
    claimed_high: float
    claim_source: str


def parse_overstatement(table, file) -> Overstatement:
    """Validate an ``[overstatement]`` table."""
    if not isinstance(table, dict):
        raise InputError(file, "overstatement", "expected a table", "[overstatement] with priors, claimed_range, claim_source")
    check_keys(table, SECTION_KEYS, file, "overstatement.")
    names = require_names(table.get("priors"), file, "overstatement.priors")
    claimed = table.get("claimed_range")
    if not (isinstance(claimed, list) and len(claimed) == 2):
        raise InputError(file, "overstatement.claimed_range", f"expected [low, high], got {claimed!r}", "two ratios, e.g. [4, 20]")
    low, high = (require_number(v, file, "overstatement.claimed_range", positive=True) for v in claimed)
    if not low < high:
        raise InputError(file, "overstatement.claimed_range", f"low {low:g} is not below high {high:g}", "low < high")
    source = table.get("claim_source")
    if not isinstance(source, str) or not source.strip():
        raise InputError(file, "overstatement.claim_source", "missing or empty", "a citation for the claimed range")
    files = tuple(existing(name, "priors", Path(file), "overstatement.priors") for name in names)
    return Overstatement(files, low, high, source)


def non_production_priors(study: Study, overstatement: Overstatement, file) -> PriorSet:
    """The non-production prior files with the study's own ``[priors]`` overrides layered on top."""
    overrides = study.document.get("priors", {})
    priors = load_prior_files(list(overstatement.prior_files), [(study.path, {"priors": overrides})] if overrides else [])
    priors.require(INPUT_PRIORS, file, "overstatement.priors")
    return priors


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


def _energy_per_token_wh(inputs: xr.Dataset, fits: xr.Dataset, input_token_divisor: float) -> tuple[xr.DataArray, xr.DataArray]:
    outputs = energy.evaluate(inputs, fits, input_token_divisor)
    per_token = energy.energy_per_query_wh(inputs["pue"], inputs["node_power_kw"], inputs["power_utilisation"],
                                           1.0, outputs["tokens_per_s"])
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
    inside = (ratios >= overstatement.claimed_low) & (ratios <= overstatement.claimed_high)
    return {
        "scenario": study.scenario, "series": series, "pathway": "baseline", "quantity": QUANTITY,
        **summarize(ratios), "claimed_low": overstatement.claimed_low, "claimed_high": overstatement.claimed_high,
        "share_in_claimed_range": float(inside.mean()), "claim_source": overstatement.claim_source,
    }

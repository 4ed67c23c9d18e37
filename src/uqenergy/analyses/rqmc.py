"""Randomised quasi-Monte Carlo: replicated scrambled Sobol' points, and MCSEs from the spread between replicates.

With ``[intervals] design = "rqmc"`` a study's ``draws`` per model are split into
``replicates`` independent scrambled Sobol' sequences (Owen 1997, "Scrambled net
variance for integrals of smooth functions", Ann. Statist. 25:1541; drawn as in
:func:`uqenergy.engine.sampling.sobol_uniforms`). Every figure is computed from
all draws together, as in plain Monte Carlo; its MCSE is the standard deviation
of the same figure computed on each replicate alone, divided by the square root
of the number of replicates (L'Ecuyer et al. 2018, "Randomized quasi-Monte Carlo:
an introduction for practitioners", MCQMC 2016, sec. 5): the formula for plain
Monte Carlo draws would overstate it, because the points of one replicate are
not independent. The first-order spread of the pooled figure is that of the mean of
the replicates' figures, which is what this MCSE estimates.
"""

from __future__ import annotations

import math
import statistics

import xarray as xr

from uqenergy.analyses.results import StudyResult
from uqenergy.analyses.summaries import finish, summary_records
from uqenergy.config.errors import InputError
from uqenergy.config.intervals import FIGURES
from uqenergy.config.study import Study
from uqenergy.engine.simulate import replicate_draws, simulate, streams


def replicated_mcse(record: dict, replicates: list[dict]) -> dict:
    """``record`` (of all draws) with each figure's MCSE from the spread of that figure over ``replicates``
    (records of the same series, one per replicate): sd / sqrt(replicates)."""
    spread = {
        f"mcse_{name}": statistics.stdev([r[name] for r in replicates]) / math.sqrt(len(replicates))
        for name in FIGURES
        if name in record
    }
    return record | spread


def run_rqmc(study: Study, progress=None) -> StudyResult:
    """Run a study with randomised quasi-Monte Carlo draws; records with MCSEs from the replicates."""
    replicates = study.intervals.replicates
    if study.draws % replicates or study.draws < 2 * replicates:
        raise InputError(
            study.path,
            "study.draws",
            f"{study.draws:,} draws do not split into {replicates} replicates",
            f"a multiple of {replicates}, best {replicates} x a power of 2",
        )
    if streams(study):
        raise InputError(
            study.path,
            "study.draws",
            f"{study.draws:,} draws per model do not fit the memory budget, and an rqmc run holds its draws",
            "fewer draws, a larger memory_budget_mb, or the one-level design",
        )
    energy_wh, divisors, saved = simulate(study, progress)
    records, members = summary_records(study, energy_wh, divisors)
    m = replicate_draws(study)
    per_replicate = [
        summary_records(study, *_replicate(energy_wh, divisors, slice(r * m, (r + 1) * m)))[0]
        for r in range(replicates)
    ]
    records = [replicated_mcse(record, [part[i] for part in per_replicate]) for i, record in enumerate(records)]
    result = finish(study, (records, members), saved)
    result.samples.attrs |= {"rqmc_replicates": replicates, "rqmc_replicate_draws": m}
    return result


def _replicate(
    energy_wh: xr.DataArray, divisors: dict[str, xr.DataArray], draws: slice
) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    return energy_wh.isel(draw=draws), {k: d.isel(draw=draws) for k, d in divisors.items()}

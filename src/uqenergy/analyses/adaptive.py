"""Adaptive sample size: draw in batches until every reported figure is stable to the study's tolerance.

In the spirit of JCGM 101:2008 (GUM Supplement 1), section 7.9: a figure is
stable when twice its standard uncertainty is within the numerical tolerance
(relative to the figure, or absolute in Wh). JCGM 101 estimates that
uncertainty from the spread between batches; here it is each figure's MCSE
over all draws so far (p5, p25, median, p75, p95 and mean of every reported
series). After each batch the run grows to the larger of one more batch and
the draws the current MCSEs predict are needed (an MCSE falls as
1/sqrt(draws)), in whole batches, up to the study's ``draws``. Batches extend
the block-seeded draws of :mod:`uqenergy.engine.sampling`, so an adaptive run that
stops at N draws gives exactly the result of a fixed run of N draws.
"""

from __future__ import annotations

import math
from dataclasses import replace

import xarray as xr

from uqenergy.analyses.results import StudyResult
from uqenergy.analyses.summaries import finish, summary_records
from uqenergy.config.study import Study
from uqenergy.engine.simulate import simulate


def next_draws(done: int, growth: float, batch_draws: int, max_draws: int) -> int:
    """Draws to reach next: at least one more batch, enough for ``growth`` times ``done``, in whole batches."""
    wanted = max(done + batch_draws, math.ceil(min(growth * done, max_draws)))
    return min(max_draws, batch_draws * math.ceil(wanted / batch_draws))


def run_adaptively(study: Study, progress=None) -> StudyResult:
    """Run a one-level study in batches until its records meet the tolerance or ``study.draws`` is reached."""
    settings = study.intervals
    parts, done, target = [], 0, min(settings.batch_draws, study.draws)
    while True:
        parts.append(simulate(replace(study, draws=target), progress, first=done))
        done = target
        energy_wh = xr.concat([p[0] for p in parts], dim="draw", combine_attrs=_sum_clamped)
        divisors = {k: xr.concat([p[1][k] for p in parts], dim="draw") for k in parts[0][1]}
        records, members = summary_records(study, energy_wh, divisors)
        growth = max(settings.tolerance_ratio(r) for r in records)
        if growth <= 1 or done >= study.draws:
            break
        target = next_draws(done, growth, settings.batch_draws, study.draws)
    saved = xr.concat([p[2] for p in parts if p[2] is not None], dim="draw", data_vars="minimal")
    result = finish(replace(study, draws=done), (records, members), saved)
    result.samples.attrs |= {
        "adaptive_tolerance": _describe_tolerance(settings),
        "adaptive_max_draws": study.draws,
        "adaptive_batch_draws": settings.batch_draws,
        "adaptive_tolerance_met": int(growth <= 1),
    }
    return result


def _sum_clamped(attrs: list[dict], context=None) -> dict:
    """The attributes of the batches' energy with their clamped draws added up (others: the first batch's)."""
    first = dict(attrs[0]) if attrs else {}
    if attrs and all("clamped_draws" in a for a in attrs):
        first["clamped_draws"] = sum(a["clamped_draws"] for a in attrs)
    return first


def _describe_tolerance(settings) -> str:
    if settings.absolute_tolerance_wh is not None:
        return f"2 MCSE <= {settings.absolute_tolerance_wh:g} Wh"
    return f"2 MCSE <= {settings.relative_tolerance:g} x figure"

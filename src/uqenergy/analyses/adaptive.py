"""Adaptive sample size: draw in batches until every reported figure is stable to the study's tolerance.

In the spirit of JCGM 101:2008 (GUM Supplement 1), section 7.9: a figure is
stable when twice its standard uncertainty is within the numerical tolerance
(relative to the figure, or absolute in Wh). JCGM 101 estimates that
uncertainty from the spread between batches; here it is each figure's MCSE
over all draws so far (p5, p25, median, p75, p95 and mean of every reported
series). After each batch the run grows to the larger of one more batch and
the draws the current MCSEs predict are needed (an MCSE falls as
1/sqrt(draws)), in whole batches, up to the study's ``draws``; when the first
batch predicts more draws than that, the run is refused there
(:func:`check_reachable`) rather than spending them to miss. Batches extend
the block-seeded draws of :mod:`uqenergy.engine.sampling`, so an adaptive run that
stops at N draws gives exactly the result of a fixed run of N draws.
"""

from __future__ import annotations

import math
from dataclasses import replace

import xarray as xr

from uqenergy.analyses.results import StudyResult
from uqenergy.analyses.streaming import streamed_summary
from uqenergy.analyses.summaries import finish, summary_records
from uqenergy.config.errors import MAX_DRAWS, InputError
from uqenergy.config.study import Study
from uqenergy.engine.backend import Backend, memory_budget_bytes
from uqenergy.engine.simulate import in_memory_bytes, simulate

HELD_COPIES = 2  # an in-memory step holds its batches and their concatenation
REACH_MARGIN = 4  # refuse a tolerance whose predicted draws exceed the maximum this many times (tolerance 2x out)


def next_draws(done: int, growth: float, batch_draws: int, max_draws: int) -> int:
    """Draws to reach next: at least one more batch, enough for ``growth`` times ``done``, in whole batches."""
    wanted = max(done + batch_draws, math.ceil(min(growth * done, max_draws)))
    return min(max_draws, batch_draws * math.ceil(wanted / batch_draws))


def run_adaptively(study: Study, progress=None) -> StudyResult:
    """Run a one-level study in batches until its records meet the tolerance or ``study.draws`` is reached.

    While twice the draws so far fit in the study's memory budget the batches are kept and extended;
    beyond it each step reads all its draws again in streamed passes (:mod:`uqenergy.analyses.streaming`),
    at least doubling the draws, so that memory stays within the budget and the work within about twice a
    fixed run of the final draws."""
    settings = study.intervals
    budget = memory_budget_bytes(study.memory_budget_mb)
    parts: list = []
    done, target, passes = 0, min(settings.batch_draws, study.draws), 0
    while True:
        step = replace(study, draws=target)
        if HELD_COPIES * in_memory_bytes(step) <= budget:
            parts.append(simulate(step, progress, first=done))
            energy_wh = xr.concat([p[0] for p in parts], dim="draw", combine_attrs=_sum_clamped)
            divisors = {k: xr.concat([p[1][k] for p in parts], dim="draw") for k in parts[0][1]}
            summary = summary_records(study, energy_wh, divisors)
            saved = xr.concat([p[2] for p in parts if p[2] is not None], dim="draw", data_vars="minimal")
            del energy_wh, divisors
        else:
            parts.clear()  # what the streamed passes read again
            with Backend(study.scheduler) as backend:
                summary, saved, step_passes = streamed_summary(
                    step, backend, _beyond(progress, done * len(study.models))
                )
            passes += step_passes
        pilot, done = done == 0, target
        growth = max(settings.tolerance_ratio(r) for r in summary[0])
        if growth <= 1 or done >= study.draws:
            break
        if pilot:
            check_reachable(study, summary[0], done)
        target = next_draws(done, growth, settings.batch_draws, study.draws)
        if HELD_COPIES * in_memory_bytes(replace(study, draws=target)) > budget:
            target = max(target, min(study.draws, 2 * done))
    result = finish(replace(study, draws=done), summary, saved)
    result.samples.attrs |= {
        "adaptive_tolerance": _describe_tolerance(settings),
        "adaptive_max_draws": study.draws,
        "adaptive_batch_draws": settings.batch_draws,
        "adaptive_tolerance_met": int(growth <= 1),
    } | ({"streamed_passes": passes} if passes else {})
    return result


def check_reachable(study: Study, records: list[dict], done: int) -> None:
    """Refuse, after the first batch, a tolerance its MCSEs predict the maximum draws cannot meet.

    An MCSE falls as 1/sqrt(draws), so the tolerance ``t`` needs about ``done * (reached / t)^2`` draws, where
    ``reached`` is the tightest tolerance the first ``done`` draws meet; beyond :data:`REACH_MARGIN` times
    ``study.draws`` the run would only spend the maximum draws to miss its target (within it, the one batch's
    prediction is too uncertain to refuse on: the run goes on and reports ``tolerance_met``). Worked in
    logarithms: ``1e-300`` must not overflow."""
    settings = study.intervals
    reached, wanted = max(settings.reached_tolerance(r) for r in records), settings.tolerance
    log10_needed = math.log10(done) + 2 * (math.log10(reached) - math.log10(wanted)) if reached < math.inf else math.inf
    if log10_needed <= math.log10(REACH_MARGIN * study.draws):
        return
    key = settings.tolerance_key
    more = f", or up to {MAX_DRAWS:,} draws" if study.draws < MAX_DRAWS else ""
    if reached == math.inf:
        raise InputError(
            study.path,
            f"intervals.{key}",
            f"{wanted:g} cannot be met: a figure has no MCSE after {done:,} draws, or is 0 Wh and no relative "
            "tolerance holds it",
            "more batch_draws, or an absolute_tolerance_wh",
        )
    reachable = _round_up(reached * math.sqrt(done / study.draws))
    raise InputError(
        study.path,
        f"intervals.{key}",
        f"{wanted:g} needs about {_about(log10_needed)} draws per model by the MCSEs of the first {done:,} "
        f"(an MCSE falls as 1/sqrt(draws)), more than study.draws = {study.draws:,} allows",
        f"{key} = {reachable:g} or more with these draws{more}",
    )


def _round_up(value: float, digits: int = 2) -> float:
    """``value`` rounded up to ``digits`` significant digits."""
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return math.ceil(value / step) * step


def _about(log10_count: float) -> str:
    """A count given by its log10, to two significant digits (a power of ten beyond 10^15)."""
    if log10_count < 15:
        return f"{float(f'{10**log10_count:.2g}'):,.0f}"
    return f"10^{math.floor(log10_count)}"


def _beyond(progress, skip: int):
    """A progress callback that passes on only the draws after the first ``skip`` (those read again)."""
    if progress is None:
        return None
    seen = 0

    def report(size: int) -> None:
        nonlocal seen
        new = max(0, seen + size - skip) - max(0, seen - skip)
        seen += size
        if new:
            progress(new)

    return report


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

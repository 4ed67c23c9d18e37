"""Streamed summaries: a one-level study's records read in passes over its chunks, in bounded memory.

A study reads its series in passes over the chunks (see
:mod:`uqenergy.engine.orderstats`): pass 1 histograms every model's series, pass 2
keeps the draws around the wanted order statistics; blends follow once their
members' ranking and trim windows are known. Memory then depends on the
chunk size and the number of series, not on the number of draws. The records
are the in-memory run's, bit for bit. A study streams when
:func:`uqenergy.engine.simulate.streams` says its draws exceed its memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from uqenergy.analyses.series import Series, pathway_divisors, pathway_names, series_records, series_values
from uqenergy.config.study import Study
from uqenergy.engine.backend import Backend, memory_budget_bytes
from uqenergy.engine.orderstats import Pending, Plan, StreamedDraws
from uqenergy.engine.per_query import study_data
from uqenergy.engine.sampling import chunk_ranges
from uqenergy.engine.simulate import Job, chunk_draws

MIN_KEPT_DRAWS = 2**20  # a series may always keep this many draws per pass
KEPT_SHARE = 4  # kept draws take at most 1 / KEPT_SHARE of the budget


@dataclass(frozen=True)
class PassJob:
    """One pass: for each series, what to do with its draws in every chunk; and which draws to save."""

    job: Job  # its save_draws: which draws to keep in this pass
    plans: tuple[tuple[Series, Plan], ...]


def pass_chunk(job: PassJob, bounds: tuple[int, int]) -> tuple[list, xr.Dataset | None, int, np.ndarray]:
    """A pass over one chunk: each series' findings, the chunk's draws to save, its number of draws and its clamped
    draws per model."""
    chunk = chunk_draws(job.job, bounds)
    divisors = pathway_divisors(job.job.study, chunk.drawn)
    partials = [
        plan.apply(*series_values(series, chunk.energy_wh, divisors, chunk.start)) for series, plan in job.plans
    ]
    return partials, chunk.saved, chunk.energy_wh.size, chunk.clamped


def series_count(study: Study) -> int:
    """How many series a study reports."""
    blends = len(study.blends)
    return len(study.models) + blends + len(pathway_names(study)) * len(study.pathway_targets)


def kept_budget(study: Study) -> int:
    """Draws each streamed series may keep per pass."""
    return max(MIN_KEPT_DRAWS, memory_budget_bytes(study.memory_budget_mb) // (KEPT_SHARE * 8 * series_count(study)))


def streamed_bytes(study: Study) -> int:
    """Rough peak memory of a streamed run's kept draws (the chunks in flight come on top)."""
    return 8 * kept_budget(study) * series_count(study)


def streamed_summary(study: Study, backend: Backend, progress=None) -> tuple[tuple[list[dict], dict], xr.Dataset, int]:
    """Records and blend members of a one-level study, its first draws to save, and the passes it took."""
    budget = kept_budget(study)
    fits = study_data(study)
    trackers: dict[Series, StreamedDraws] = {}
    clamped = np.zeros(len(study.models), dtype=np.int64)
    saved: list[xr.Dataset] = []
    passes = 0

    def draws_of(series: Series) -> StreamedDraws:
        return trackers.setdefault(series, StreamedDraws(budget))

    chunks = chunk_ranges(study.draws, study.chunk_draws)
    while True:
        try:
            records = series_records(study, draws_of, clamped)
            return records, xr.concat(saved, dim="draw", data_vars="minimal"), passes
        except Pending:
            pass
        plans = tuple((series, plan) for series, tracker in trackers.items() if (plan := tracker.plan()) is not None)
        job = Job(study, fits, study.save_draws if passes == 0 else 0)
        for partials, piece, size, clamped_draws in backend.map(pass_chunk, PassJob(job, plans), chunks):
            for (series, _), partial in zip(plans, partials):
                trackers[series].absorb(partial)
            if piece is not None:
                saved.append(piece)
            if passes == 0:
                clamped += clamped_draws
                if progress is not None:
                    progress(size)
        for series, plan in plans:
            trackers[series].finish(plan)
        passes += 1

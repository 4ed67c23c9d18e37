"""Plain Monte Carlo over chunks: draws held in memory, or streamed in passes when they would not fit.

A chunk is a range of draws, a whole number of blocks (:mod:`uqenergy.sampling`),
and can be drawn again bit for bit. :func:`chunk_draws` draws and evaluates one
chunk; it is pure and picklable, so chunks run on any :class:`~uqenergy.backend.Backend`.

In memory (:func:`simulate_in_memory`), every draw's energy and pathway divisors
are kept and summarised at the end. Streamed (:func:`streamed_summary`), a
study reads its series in passes over the chunks (see
:mod:`uqenergy.orderstats`): pass 1 histograms every model's series, pass 2
keeps the draws around the wanted order statistics; blends follow once their
members' ranking and trim windows are known. Memory then depends on the
chunk size and the number of series, not on the number of draws. Both give
the same records bit for bit.

A study runs streamed when :func:`in_memory_bytes` exceeds its memory budget:
``[study] memory_budget_mb`` (see :func:`uqenergy.backend.memory_budget_bytes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import energy
from .backend import Backend, memory_budget_bytes
from .orderstats import Pending, Plan, StreamedDraws
from .sampling import chunk_ranges, monte_carlo_chunk
from .series import Series, pathway_divisors, pathway_names, series_records, series_values
from .study import Study

MIN_KEPT_DRAWS = 2**20  # a series may always keep this many draws per pass
KEPT_SHARE = 4  # kept draws take at most 1 / KEPT_SHARE of the budget


@dataclass(frozen=True)
class Job:
    """What every chunk of a study needs: the study and its throughput fits."""

    study: Study
    fits: xr.Dataset


@dataclass
class ChunkDraws:
    """One chunk: energy (model, draw), drawn pathway inputs by name, and its draws to save (or None)."""

    start: int
    energy_wh: np.ndarray
    drawn: dict[str, np.ndarray]
    saved: xr.Dataset | None


def chunk_draws(job: Job, bounds: tuple[int, int], save_draws: int = 0) -> ChunkDraws:
    """Draw and evaluate draws [start, stop); keep the Dataset of those among the first ``save_draws``."""
    study, (start, stop) = job.study, bounds
    inputs = monte_carlo_chunk(study.priors, study.factors, study.models, study.seed, start, stop)
    outputs = energy.evaluate(inputs, job.fits, study.input_token_divisor, study.power_utilisation)
    saved = xr.merge([inputs, outputs]).isel(draw=slice(0, save_draws - start)) if start < save_draws else None
    drawn = {p: inputs[p].transpose("model", "draw").values for p in study.pathway_priors}
    return ChunkDraws(start, outputs["energy_wh"].transpose("model", "draw").values, drawn, saved)


@dataclass(frozen=True)
class PassJob:
    """One pass: for each series, what to do with its draws in every chunk; and which draws to save."""

    job: Job
    plans: tuple[tuple[Series, Plan], ...]
    save_draws: int


def pass_chunk(job: PassJob, bounds: tuple[int, int]) -> tuple[list, xr.Dataset | None, int]:
    """A pass over one chunk: each series' findings, the chunk's draws to save, and its number of draws."""
    chunk = chunk_draws(job.job, bounds, job.save_draws)
    divisors = pathway_divisors(job.job.study, chunk.drawn)
    partials = [plan.apply(*series_values(series, chunk.energy_wh, divisors, chunk.start)) for series, plan in job.plans]
    return partials, chunk.saved, chunk.energy_wh.size


def _whole_chunk(job: PassJob, bounds: tuple[int, int]) -> ChunkDraws:
    return chunk_draws(job.job, bounds, job.save_draws)


def simulate_in_memory(study: Study, backend: Backend, progress=None, first: int = 0) -> Iterator[ChunkDraws]:
    """Every chunk of draws [first, study.draws), in order; the first ``study.save_draws`` keep their Dataset."""
    job = PassJob(Job(study, study.fits()), (), study.save_draws)
    for chunk in backend.map(_whole_chunk, job, chunk_ranges(study.draws, study.chunk_draws, first)):
        if progress is not None:
            progress(chunk.energy_wh.size)
        yield chunk


def series_count(study: Study) -> int:
    """How many series a study reports."""
    blends = len(study.blends)
    return len(study.models) + blends + len(pathway_names(study)) * len(study.pathway_targets)


def kept_budget(study: Study) -> int:
    """Draws each streamed series may keep per pass."""
    return max(MIN_KEPT_DRAWS, memory_budget_bytes(study.memory_budget_mb) // (KEPT_SHARE * 8 * series_count(study)))


def streamed_summary(study: Study, backend: Backend, progress=None) -> tuple[tuple[list[dict], dict], xr.Dataset, int]:
    """Records and blend members of a one-level study, its first draws to save, and the passes it took."""
    job, budget = Job(study, study.fits()), kept_budget(study)
    trackers: dict[Series, StreamedDraws] = {}
    saved, passes = [], 0

    def draws_of(series: Series) -> StreamedDraws:
        return trackers.setdefault(series, StreamedDraws(budget))

    chunks = chunk_ranges(study.draws, study.chunk_draws)
    while True:
        try:
            return series_records(study, draws_of), xr.concat(saved, dim="draw", data_vars="minimal"), passes
        except Pending:
            pass
        plans = tuple((series, plan) for series, tracker in trackers.items() if (plan := tracker.plan()) is not None)
        save = study.save_draws if passes == 0 else 0
        for partials, piece, size in backend.map(pass_chunk, PassJob(job, plans, save), chunks):
            for (series, _), partial in zip(plans, partials):
                trackers[series].absorb(partial)
            if piece is not None:
                saved.append(piece)
            if progress is not None and passes == 0:
                progress(size)
        for series, plan in plans:
            trackers[series].finish(plan)
        passes += 1


def in_memory_bytes(study: Study) -> int:
    """Rough peak memory of an in-memory run's draws: per model its energy, sorted baseline, pathway inputs
    and their product; and the largest pooled series with its sorted copy and mask."""
    members = max([len(b.members or range(b.top)) for b in study.blends], default=1)
    per_draw = len(study.models) * (3 + len(study.pathways)) + 3 * members
    return 8 * study.draws * per_draw


def streams(study: Study) -> bool:
    """Whether a run of ``study`` reads its draws in passes rather than holding them."""
    return in_memory_bytes(study) > memory_budget_bytes(study.memory_budget_mb)

"""Plain Monte Carlo over chunks of draws: draw a chunk's inputs, evaluate its energy, keep what is asked.

A chunk is a range of draws, a whole number of blocks (:mod:`uqenergy.engine.sampling`),
and can be drawn again bit for bit. :func:`chunk_draws` draws and evaluates one
chunk; it is pure and picklable, so chunks run on any
:class:`~uqenergy.engine.backend.Backend`. :func:`simulate_in_memory` runs every
chunk of a study in order; a study whose draws would not fit in its memory
budget (:func:`streams`) is summarised in passes instead
(:mod:`uqenergy.analyses.streaming`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from uqenergy.config.study import Study
from uqenergy.engine.backend import Backend, memory_budget_bytes
from uqenergy.engine.per_query import evaluate_study, study_data
from uqenergy.engine.sampling import chunk_ranges, monte_carlo_chunk, sobol_chunk


@dataclass(frozen=True)
class Job:
    """What every chunk of a study needs: the study and its energy model's data (:func:`study_data`)."""

    study: Study
    fits: xr.Dataset
    save_draws: int = 0  # keep the input/output Dataset of draws below this index


@dataclass
class ChunkDraws:
    """One chunk: energy (model, draw), drawn pathway inputs by name, its draws to save (or None), and per model
    how many of its draws were clamped to a measured range (zeros for the throughput model)."""

    start: int
    energy_wh: np.ndarray
    drawn: dict[str, np.ndarray]
    saved: xr.Dataset | None
    clamped: np.ndarray


def chunk_draws(job: Job, bounds: tuple[int, int]) -> ChunkDraws:
    """Draw and evaluate draws [start, stop); keep the Dataset of those among the first ``save_draws``."""
    study, (start, stop), save_draws = job.study, bounds, job.save_draws
    inputs = (
        sobol_chunk(study.priors, study.factors, study.models, study.seed, start, stop, replicate_draws(study))
        if study.intervals.quasi_random
        else monte_carlo_chunk(study.priors, study.factors, study.models, study.seed, start, stop)
    )
    outputs = evaluate_study(study, inputs, job.fits)
    saved = xr.merge([inputs, outputs]).isel(draw=slice(0, save_draws - start)) if start < save_draws else None
    shape = (len(study.models), stop - start)
    drawn = {p: model_by_draw(inputs[p], shape) for p in study.pathway_priors}
    clamped = (
        outputs["clamped"].sum("draw").transpose("model").values
        if "clamped" in outputs
        else np.zeros(len(study.models), dtype=np.int64)
    )
    return ChunkDraws(start, model_by_draw(outputs["energy_wh"], shape), drawn, saved, clamped)


def replicate_draws(study: Study) -> int:
    """Draws per replicate of a randomised quasi-Monte Carlo study: its draws split among its replicates."""
    return study.draws // study.intervals.replicates


def model_by_draw(values: xr.DataArray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` as a (model, draw) array; an input fixed for every draw (or every model) is broadcast."""
    array = values.transpose(*(d for d in ("model", "draw") if d in values.dims)).values
    if "draw" not in values.dims:
        array = array[..., np.newaxis]
    if "model" not in values.dims:
        array = array[np.newaxis, ...]
    return np.broadcast_to(array, shape)


def simulate_in_memory(study: Study, backend: Backend, progress=None, first: int = 0) -> Iterator[ChunkDraws]:
    """Every chunk of draws [first, study.draws), in order; the first ``study.save_draws`` keep their Dataset."""
    job = Job(study, study_data(study), study.save_draws)
    for chunk in backend.map(chunk_draws, job, chunk_ranges(study.draws, study.chunk_draws, first)):
        if progress is not None:
            progress(chunk.energy_wh.size)
        yield chunk


SUMMARY_THREADS = 2  # at most this many threads summarise an in-memory run's series (each holds a pooled copy)


def in_memory_bytes(study: Study) -> int:
    """Rough peak memory of an in-memory run's draws: per model its energy, sorted baseline, pathway inputs
    and their product; and the largest pooled series with its sorted copy and mask, on each of the
    :data:`SUMMARY_THREADS` threads that may summarise (counted whatever the machine: the estimate chooses an
    adaptive run's steps, which must not depend on the machine)."""
    members = max([len(b.members) or b.top or 0 for b in study.blends], default=1)
    per_draw = len(study.models) * (3 + len(study.pathways)) + 3 * members * SUMMARY_THREADS
    return 8 * study.draws * per_draw


CHUNK_ARRAYS = 8  # besides the drawn factors, a chunk's energy core holds about this many (model, draw) arrays


def chunk_bytes(study: Study) -> int:
    """Rough peak memory of one chunk in flight: its drawn factors and the energy core's arrays, per model."""
    start, stop = chunk_ranges(study.draws, study.chunk_draws)[0]
    return 8 * (stop - start) * len(study.models) * (len(study.factors) + CHUNK_ARRAYS)


def streams(study: Study) -> bool:
    """Whether a run of ``study`` reads its draws in passes rather than holding them."""
    return in_memory_bytes(study) > memory_budget_bytes(study.memory_budget_mb)


def simulate(
    study: Study, progress=None, first: int = 0
) -> tuple[xr.DataArray, dict[str, xr.DataArray], xr.Dataset | None]:
    """Run the Monte Carlo over chunks of draws [first, study.draws); return energy (model, draw), divisors and the
    saved draws (those among the study's first ``save_draws``; None if the range holds none of them).

    ``energy_wh.attrs["clamped_draws"]`` counts per model the draws clamped to a measured range."""
    # one shared coordinate, a range: a draw index per array would cost more memory than the draws
    coords = xr.Coordinates({"model": study.models, "draw": pd.RangeIndex(first, study.draws)})
    shape = (len(study.models), study.draws - first)
    energy_wh = xr.DataArray(np.empty(shape), coords=coords, dims=("model", "draw"))
    divisors = {p: xr.DataArray(np.empty(shape), coords=coords, dims=("model", "draw")) for p in study.pathway_priors}
    saved = []
    clamped = np.zeros(len(study.models), dtype=np.int64)
    with Backend(study.scheduler) as backend:
        for chunk in simulate_in_memory(study, backend, progress, first):
            where = slice(chunk.start - first, chunk.start - first + chunk.energy_wh.shape[-1])
            energy_wh.values[:, where] = chunk.energy_wh
            clamped += chunk.clamped
            for p, d in divisors.items():
                d.values[:, where] = chunk.drawn[p]
            if chunk.saved is not None:
                saved.append(chunk.saved)
    energy_wh.attrs["clamped_draws"] = clamped
    return energy_wh, divisors, xr.concat(saved, dim="draw", data_vars="minimal") if saved else None

"""Designs -> input Datasets: seeded, chunked, independent of the chunk size.

Draws are generated in fixed blocks of :data:`BLOCK_DRAWS`. Block ``b`` of the
``f``-th sampled factor for the ``m``-th model always takes its draws from
the stream ``SeedSequence(seed, spawn_key=(b,)).spawn(...)[m * n_factors + f]``
(what ``SeedSequence(seed).spawn`` would hand to block ``b``, spawned once more).
A chunk is a run of whole blocks, so the numbers do not depend on how a run is
chunked, and a longer run extends a shorter one. Priors that are fixed for every
model are constants with dim ``model`` only, not sampled factors.

Randomised quasi-Monte Carlo (:func:`sobol_chunk`) splits a run's draws into
replicates of ``m`` consecutive draws: draw ``i`` is point ``i % m`` of the
scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``, one dimension per sampled
factor) of replicate ``i // m`` and model ``k``, scrambled from the stream
``SeedSequence(seed, spawn_key=(RQMC_STREAM, i // m)).spawn(n_models)[k]``; so
these draws, too, do not depend on how a run is chunked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import xarray as xr

from uqenergy.config.priors import PriorSet

BLOCK_DRAWS = 2**16
RQMC_STREAM = 2**32  # first spawn key of the replicates' scrambling streams: no block index reaches it
DEFAULT_CHUNK_DRAWS = 2**18  # draws per model held in memory at once unless a study sets chunk_draws


def chunk_ranges(draws: int, chunk_draws: int | None, first: int = 0) -> list[tuple[int, int]]:
    """[start, stop) ranges from draw ``first`` to ``draws``, each a whole number of blocks long (about ``chunk_draws``)."""
    per_chunk = BLOCK_DRAWS * max(1, -(-(chunk_draws or DEFAULT_CHUNK_DRAWS) // BLOCK_DRAWS))
    return [(start, min(start + per_chunk, draws)) for start in range(first, draws, per_chunk)]


def _fill_blocks(out: np.ndarray, seed: int, start: int, draw) -> np.ndarray:
    """Fill ``out`` (factor, model, draw) for draws [start, start + n) from the blocks that hold them;
    ``draw(f, m, rng, size)`` gives a block's numbers for factor ``f`` and model ``m``."""
    n_factors, n_models, n = out.shape
    stop = start + n
    for block in range(start // BLOCK_DRAWS, -(-stop // BLOCK_DRAWS)):
        lo = block * BLOCK_DRAWS - start  # negative when the range starts inside this block
        hi = min(lo + BLOCK_DRAWS, n)
        skip = max(0, -lo)
        streams = np.random.SeedSequence(seed, spawn_key=(block,)).spawn(n_models * n_factors)
        for i, stream in enumerate(streams):
            f, m = i % n_factors, i // n_factors
            out[f, m, lo + skip : hi] = draw(f, m, np.random.default_rng(stream), hi - lo)[skip:]
    return out


def monte_carlo_draws(
    priors: PriorSet, factors: Sequence[str], models: Sequence[str], seed: int, start: int, stop: int
) -> np.ndarray:
    """Independent draws (factor, model, draw) for draws [start, stop), cut from the blocks that hold them."""
    return _fill_blocks(
        np.empty((len(factors), len(models), stop - start)),
        seed,
        start,
        lambda f, m, rng, size: priors.get(factors[f], models[m]).sample(rng, size),
    )


def monte_carlo_uniforms(seed: int, n_factors: int, n_models: int, start: int, stop: int) -> np.ndarray:
    """U(0, 1) numbers (factor, model, draw) for draws [start, stop) from the same block streams."""
    return _fill_blocks(
        np.empty((n_factors, n_models, stop - start)), seed, start, lambda f, m, rng, size: rng.random(size)
    )


def sobol_uniforms(seed: int, n_factors: int, n_models: int, replicate_draws: int, start: int, stop: int) -> np.ndarray:
    """Scrambled Sobol' points (factor, model, draw) for draws [start, stop) of replicates of ``replicate_draws``
    draws each (see the module's notes); the Sobol' balance is best when ``replicate_draws`` is a power of 2."""
    from scipy.stats import qmc  # only this design needs it

    out = np.empty((n_factors, n_models, stop - start))
    for replicate in range(start // replicate_draws, -(-stop // replicate_draws)):
        first = replicate * replicate_draws
        lo, hi = max(start, first), min(stop, first + replicate_draws)
        streams = np.random.SeedSequence(seed, spawn_key=(RQMC_STREAM, replicate)).spawn(n_models)
        for m, stream in enumerate(streams):
            points = qmc.Sobol(n_factors, scramble=True, seed=np.random.default_rng(stream))
            if lo > first:  # scipy 1.17 refuses fast_forward(0)
                points.fast_forward(lo - first)
            # scipy warns when a sequence's first draw is not 2^m points, and a chunk's share of a replicate need
            # not be: one point, then the rest, are the same points (no warnings.catch_warnings: not thread-safe)
            head = points.random(1) if lo == first else np.empty((0, n_factors))
            out[:, m, lo - start : hi - start] = np.concatenate([head, points.random(hi - lo - len(head))]).T
    return out


def constant_inputs(priors: PriorSet, names: Sequence[str], models: Sequence[str]) -> dict:
    """Fixed priors as (model,) variables."""
    return {
        name: (
            "model",
            [priors.get(name, m).distribution.value for m in models],
            {"units": priors.get(name).unit, "kind": priors.get(name).kind},
        )
        for name in names
    }


def _dataset(
    priors: PriorSet, factors: Sequence[str], models: Sequence[str], values: np.ndarray, draw_offset: int
) -> xr.Dataset:
    variables = {
        name: (("model", "draw"), values[f], {"units": priors.get(name).unit, "kind": priors.get(name).kind})
        for f, name in enumerate(factors)
    }
    draws = np.arange(draw_offset, draw_offset + values.shape[-1])
    return xr.Dataset(variables, coords={"model": list(models), "draw": draws})


def inputs_from_uniforms(
    priors: PriorSet, factors: Sequence[str], models: Sequence[str], uniforms: np.ndarray, draw_offset: int = 0
) -> xr.Dataset:
    """Map uniforms (factor, model, draw) of any design through each prior's inverse CDF into a Dataset."""
    values = np.stack(
        [
            np.stack([priors.get(name, model).ppf(uniforms[f, m]) for m, model in enumerate(models)])
            for f, name in enumerate(factors)
        ]
    )
    return _dataset(priors, factors, models, values, draw_offset)


def monte_carlo_inputs(
    priors: PriorSet,
    factors: Sequence[str],
    models: Sequence[str],
    draws: int,
    seed: int,
    chunk_draws: int | None = None,
    first: int = 0,
) -> Iterator[xr.Dataset]:
    """Plain Monte Carlo input Datasets for draws [first, draws), one per chunk: sampled factors (model, draw),
    constants (model)."""
    for start, stop in chunk_ranges(draws, chunk_draws, first):
        yield monte_carlo_chunk(priors, factors, models, seed, start, stop)


def monte_carlo_chunk(
    priors: PriorSet, factors: Sequence[str], models: Sequence[str], seed: int, start: int, stop: int
) -> xr.Dataset:
    """Plain Monte Carlo inputs for draws [start, stop): sampled factors (model, draw), constants (model)."""
    sampled = [f for f in factors if not priors.is_fixed(f)]
    values = monte_carlo_draws(priors, sampled, models, seed, start, stop)
    return _dataset(priors, sampled, models, values, start).assign(_constants(priors, factors, models))


def sobol_chunk(
    priors: PriorSet,
    factors: Sequence[str],
    models: Sequence[str],
    seed: int,
    start: int,
    stop: int,
    replicate_draws: int,
) -> xr.Dataset:
    """Randomised quasi-Monte Carlo inputs for draws [start, stop) (:func:`sobol_uniforms` through each prior's
    inverse CDF): sampled factors (model, draw), constants (model)."""
    sampled = [f for f in factors if not priors.is_fixed(f)]
    uniforms = sobol_uniforms(seed, len(sampled), len(models), replicate_draws, start, stop)
    return inputs_from_uniforms(priors, sampled, models, uniforms, start).assign(_constants(priors, factors, models))


def _constants(priors: PriorSet, factors: Sequence[str], models: Sequence[str]) -> dict:
    return constant_inputs(priors, [f for f in factors if priors.is_fixed(f)], models)

"""Designs -> input Datasets: seeded, chunked, independent of the chunk size.

Draws are generated in fixed blocks of :data:`BLOCK_DRAWS`; block ``b`` of
factor ``f`` for model ``m`` always takes its uniforms from the stream
``SeedSequence(seed).spawn(...)[b]`` spawned once more per (model, factor). A
chunk is a run of whole blocks, so the numbers do not depend on how a run is
chunked, and a longer run extends a shorter one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import xarray as xr

from .priors import PriorSet

BLOCK_DRAWS = 2**16


def block_uniforms(seed: int, block: int, n_models: int, n_factors: int, size: int) -> np.ndarray:
    """U(0, 1) numbers of shape (factor, model, size) for one block, from its own spawned streams."""
    block_seq = np.random.SeedSequence(seed, spawn_key=(block,))
    children = block_seq.spawn(n_models * n_factors)
    out = np.empty((n_factors, n_models, size))
    for i, child in enumerate(children):
        out[i % n_factors, i // n_factors] = np.random.default_rng(child).random(size)
    return out


def chunk_ranges(draws: int, chunk_draws: int | None, first: int = 0) -> list[tuple[int, int]]:
    """[start, stop) ranges of whole blocks from draw ``first`` to ``draws``, each at most about ``chunk_draws`` long."""
    per_chunk = BLOCK_DRAWS * max(1, -(-(chunk_draws or draws) // BLOCK_DRAWS))
    return [(start, min(start + per_chunk, draws)) for start in range(first, draws, per_chunk)]


def monte_carlo_uniforms(seed: int, n_models: int, n_factors: int, start: int, stop: int) -> np.ndarray:
    """Uniforms (factor, model, draw) for draws [start, stop), cut from the blocks that hold them."""
    blocks = range(start // BLOCK_DRAWS, -(-stop // BLOCK_DRAWS))
    parts = [block_uniforms(seed, b, n_models, n_factors, min(BLOCK_DRAWS, stop - b * BLOCK_DRAWS)) for b in blocks]
    return np.concatenate(parts, axis=-1)[..., start % BLOCK_DRAWS:]


def inputs_from_uniforms(priors: PriorSet, factors: Sequence[str], models: Sequence[str],
                         uniforms: np.ndarray, draw_offset: int = 0) -> xr.Dataset:
    """Map uniforms (factor, model, draw) through each prior's inverse CDF into a Dataset."""
    variables = {}
    for f, name in enumerate(factors):
        values = np.stack([priors.get(name, model).ppf(uniforms[f, m]) for m, model in enumerate(models)])
        prior = priors.get(name)
        variables[name] = (("model", "draw"), values, {"units": prior.unit, "kind": prior.kind})
    draws = np.arange(draw_offset, draw_offset + uniforms.shape[-1])
    return xr.Dataset(variables, coords={"model": list(models), "draw": draws})


def monte_carlo_inputs(priors: PriorSet, factors: Sequence[str], models: Sequence[str], draws: int,
                       seed: int, chunk_draws: int | None = None, first: int = 0) -> Iterator[xr.Dataset]:
    """Plain Monte Carlo input Datasets for draws [first, draws), one per chunk, dims (model, draw)."""
    for start, stop in chunk_ranges(draws, chunk_draws, first):
        uniforms = monte_carlo_uniforms(seed, len(models), len(factors), start, stop)
        yield inputs_from_uniforms(priors, factors, models, uniforms, draw_offset=start)

"""Pools of several models' per-query distributions.

``blend-paper`` reproduces Oviedo et al. (arXiv:2509.20241): take the models
with the highest median energy, trim each model's draws to its P5-P95, trim
that to its P10-P90, and pool. The trimming narrows the reported spread. The
honest ``blend`` pools the same models untrimmed: an equal-weight mixture,
which is what a reader should expect of a query served by one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr


def top_models_by_median(energy_wh: xr.DataArray, count: int) -> list[str]:
    """The ``count`` models with the highest median energy, highest first."""
    medians = energy_wh.median("draw")
    order = np.argsort(-medians.values, kind="stable")[:count]
    return [str(m) for m in energy_wh["model"].values[order]]


def trim_mask(values: np.ndarray, trims: Sequence[Sequence[float]]) -> np.ndarray:
    """Keep draws inside successive percentile windows, each taken on what the previous one kept."""
    keep = np.ones(values.shape, dtype=bool)
    for low_pct, high_pct in trims:
        low, high = np.percentile(values[keep], [low_pct, high_pct])
        keep &= (values >= low) & (values <= high)
    return keep


def pool(energy_wh: xr.DataArray, members: Sequence[str], trims: Sequence[Sequence[float]],
         divisor: xr.DataArray | None = None) -> np.ndarray:
    """Pooled draws of ``members``; trimming is decided on baseline energy, then ``divisor`` applied."""
    parts = []
    for model in members:
        values = energy_wh.sel(model=model).values
        keep = trim_mask(values, trims)
        scaled = values if divisor is None else values / divisor.sel(model=model).values
        parts.append(scaled[keep])
    return np.concatenate(parts)

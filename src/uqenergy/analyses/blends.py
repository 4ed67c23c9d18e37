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

from uqenergy.engine.orderstats import SortedDraws
from uqenergy.analyses.series import trim_window


def rank_by_median(energy_wh: xr.DataArray) -> list[str]:
    """Models ordered by median energy, highest first."""
    medians = np.median(energy_wh.values, axis=-1)
    return [str(m) for m in energy_wh["model"].values[np.argsort(-medians, kind="stable")]]


def trim_mask(values: np.ndarray, trims: Sequence[Sequence[float]]) -> np.ndarray:
    """Keep draws inside successive percentile windows, each taken on what the previous one kept
    (the windows of :func:`uqenergy.analyses.series.trim_window`, which the runs use)."""
    window = trim_window(SortedDraws(values), trims)
    if window is None:
        return np.zeros(np.shape(values), dtype=bool)
    return (values >= window[0]) & (values <= window[1])


def trim_masks(energy_wh: xr.DataArray, members: Sequence[str], trims: Sequence[Sequence[float]]) -> dict[str, np.ndarray]:
    """Per member, which draws survive trimming (decided on baseline energy)."""
    return {model: trim_mask(energy_wh.sel(model=model).values, trims) for model in members}


def pool(energy_wh: xr.DataArray, masks: dict[str, np.ndarray], divisor: xr.DataArray | None = None) -> np.ndarray:
    """Pooled kept draws of the members in ``masks``, each divided by ``divisor`` (a pathway) if given."""
    parts = []
    for model, keep in masks.items():
        values = energy_wh.sel(model=model).values
        scaled = values if divisor is None else values / divisor.sel(model=model).values
        parts.append(scaled[keep])
    return np.concatenate(parts)

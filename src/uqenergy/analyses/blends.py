"""Pools of several models' per-query distributions.

``blend-paper`` reproduces Oviedo et al. (arXiv:2509.20241): take the models
with the highest median energy, trim each model's draws to its P5-P95, trim
that to its P10-P90, and pool. The trimming narrows the reported spread. The
honest ``blend`` pools the same models untrimmed: an equal-weight mixture,
which is what a reader should expect of a query served by one of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr

from uqenergy.analyses.series import trim_window
from uqenergy.engine.orderstats import SortedDraws


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


def blend_definitions(attrs: dict) -> dict[str, tuple[list[str], list]]:
    """Blend name -> (members, trim windows), from the ``blend_members_*`` and ``blend_trim_*`` attributes."""
    blends = {}
    for key, value in attrs.items():
        name = key.removeprefix("blend_members_")
        if name != key and f"blend_trim_{name}" in attrs:
            blends[name] = ([m.strip() for m in value.split(",")], json.loads(attrs[f"blend_trim_{name}"]))
    return blends


def series_draws(energy_wh: xr.DataArray, attrs: dict, stop: int | None = None) -> dict[str, np.ndarray]:
    """Draws per model and per blend (pooled and trimmed as in the run) from the first ``stop`` saved draws."""
    prefix = energy_wh.isel(draw=slice(0, stop))
    draws = {str(m): prefix.sel(model=m).values for m in prefix["model"].values}
    for name, (members, trim) in blend_definitions(attrs).items():
        if all(m in draws for m in members):
            draws[name] = np.concatenate([draws[m][trim_mask(draws[m], trim)] for m in members])
    return draws

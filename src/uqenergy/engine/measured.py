"""Energy per query from measured configurations: GPU energy per output token against concurrency, then the ladder.

For one configuration group (model, GPU, GPU count, precision, task) the measured
table gives GPU energy per output token ``e_i`` at mean batches ``b_1 < ... < b_n``.
At a concurrency (mean batch) ``b``:

    ln e(b) = piecewise-linear interpolation of (ln b_i, ln e_i) at ln b,   b_1 <= b <= b_n

so ``e`` passes through every measured point exactly, is monotone between two
adjacent points and follows a power law ``e ~ b^slope`` between them. The data are
not smoothed: where a measured step goes up, so does the curve. Outside
``[b_1, b_n]`` the curve is clamped to the nearest measured point, never
extrapolated, and the draw is flagged ``clamped``.

Energy per query at a boundary of the ladder (:mod:`uqenergy.config.boundaries`):

    E [Wh] = e(b) [J/token] * output tokens * (product of the rung multipliers) / 3600

Everything is vectorised over draws; the only loop is over configurations.
:func:`energy_per_token_j` and :func:`energy_per_query_wh` are the two steps, so a
model of energy per token from elsewhere (a regression's predictive draws) can use
the second alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from uqenergy.config.boundaries import rung_priors
from uqenergy.config.measured_study import CONCURRENCY, MeasuredSection

J_PER_WH = 3600.0


def energy_per_token_j(batch_points, energy_points_j, mean_batch) -> tuple[np.ndarray, np.ndarray]:
    """GPU energy per output token at ``mean_batch``, interpolated in log-log between measured points, clamped.

    Parameters
    ----------
    batch_points : array_like
        Measured mean batches of one configuration group, increasing.
    energy_points_j : array_like
        Measured GPU energy per output token at those batches (J/token).
    mean_batch : array_like
        Concurrency (mean batch) of each draw, any shape.

    Returns
    -------
    energy_j : numpy.ndarray
        Energy per output token (J) of each draw; the measured value at a measured batch.
    clamped : numpy.ndarray of bool
        Whether the draw lay outside the measured batches (its energy is the nearest end point's).

    Examples
    --------
    >>> from uqenergy.engine.measured import energy_per_token_j
    >>> energy, clamped = energy_per_token_j([8, 32], [4.0, 1.0], [8, 16, 64])
    >>> energy.round(6).tolist(), clamped.tolist()
    ([4.0, 2.0, 1.0], [False, False, True])
    """
    batch = np.asarray(mean_batch, dtype=float)
    log_batch = np.log(np.asarray(batch_points, dtype=float))
    log_energy = np.log(np.asarray(energy_points_j, dtype=float))
    energy_j = np.exp(np.interp(np.log(batch), log_batch, log_energy))
    return energy_j, (batch < batch_points[0]) | (batch > batch_points[-1])


def energy_per_query_wh(energy_per_token_j, output_tokens, multipliers: Sequence = ()):
    """Energy of one query in Wh: energy per output token x output tokens x each rung's multiplier.

    Parameters
    ----------
    energy_per_token_j : array_like or xarray.DataArray
        Energy per output token at the accelerators (J/token).
    output_tokens : array_like or xarray.DataArray
        Output tokens of the query.
    multipliers : sequence of array_like
        Boundary-ladder multipliers from the accelerators up to the reported rung (none: accelerators).

    Returns
    -------
    array_like
        Energy per query (Wh), broadcast over the inputs.
    """
    energy_wh = energy_per_token_j * output_tokens / J_PER_WH
    for multiplier in multipliers:
        energy_wh = energy_wh * multiplier
    return energy_wh


def measured_curves(section: MeasuredSection) -> xr.Dataset:
    """The measured points of a study's configurations, (model, point), padded with NaN; and mean output lengths.

    Variables: ``measured_batch``, ``measured_energy_per_token_j`` and ``measured_output_tokens``
    per point; ``measured_points`` (how many per model) and ``mean_output_tokens`` (the mean of the points'
    output lengths: what a study with ``output_tokens = "measured"`` charges a query).
    """
    width = max(len(c.points) for c in section.configurations)

    def padded(column: str) -> np.ndarray:
        values = np.full((len(section.configurations), width), np.nan)
        for i, c in enumerate(section.configurations):
            values[i, : len(c.points)] = [getattr(p, column) for p in c.points]
        return values

    tokens = padded("mean_output_tokens")
    dims = ("model", "point")
    return xr.Dataset(
        {
            "measured_batch": (dims, padded("mean_batch"), {"units": "requests", "long_name": "measured mean batch"}),
            "measured_energy_per_token_j": (
                dims,
                padded("energy_per_output_token_j"),
                {"units": "J/token", "long_name": "measured GPU energy per output token"},
            ),
            "measured_output_tokens": (dims, tokens, {"units": "tokens", "long_name": "measured mean output length"}),
            "measured_points": ("model", [len(c.points) for c in section.configurations]),
            "mean_output_tokens": (
                "model",
                np.nanmean(tokens, axis=1),
                {"units": "tokens", "long_name": "mean of the measured output lengths"},
            ),
        },
        coords={"model": section.labels},
    )


def _points(curves: xr.Dataset, model: str) -> tuple[np.ndarray, np.ndarray]:
    n = int(curves["measured_points"].sel(model=model))
    point = curves.sel(model=model).isel(point=slice(0, n))
    return point["measured_batch"].values, point["measured_energy_per_token_j"].values


def interpolate(curves: xr.Dataset, model: xr.DataArray, mean_batch: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """:func:`energy_per_token_j` of each draw's configuration: ``model`` is a dimension or a per-draw variable."""
    if "model" in mean_batch.dims:
        batch = mean_batch.transpose("model", ...)
        energy, clamped = np.empty(batch.shape), np.empty(batch.shape, dtype=bool)
        for i, name in enumerate(batch["model"].values):
            energy[i], clamped[i] = energy_per_token_j(*_points(curves, name), batch.values[i])
    else:
        batch, names = xr.broadcast(mean_batch, model)
        energy, clamped = np.empty(batch.shape), np.zeros(batch.shape, dtype=bool)
        for name in curves["model"].values:
            where = names.values == name
            energy[where], clamped[where] = energy_per_token_j(*_points(curves, name), batch.values[where])
    return (
        xr.DataArray(energy, coords=batch.coords, dims=batch.dims),
        xr.DataArray(clamped, coords=batch.coords, dims=batch.dims),
    )


def evaluate(inputs: xr.Dataset, curves: xr.Dataset, section: MeasuredSection) -> xr.Dataset:
    """Per-query outputs of a measured study for a Dataset of inputs (variables named as the priors).

    Needs ``concurrency``, ``output_tokens`` when the study draws them, and the multipliers of the
    rungs up to the study's boundary;
    ``model`` is a dimension or a per-draw variable of configuration names. Returns
    ``energy_per_token_j`` (at the accelerators), ``effective_tokens``, ``clamped`` and ``energy_wh``
    (at the study's boundary).
    """
    energy_j, clamped = interpolate(curves, inputs["model"], inputs[CONCURRENCY])
    if section.output_tokens == "prior":
        tokens = inputs["output_tokens"]
    else:
        tokens = curves["mean_output_tokens"].sel(model=inputs["model"])
    energy_wh = energy_per_query_wh(energy_j, tokens, [inputs[r] for r in rung_priors(section.boundary)])
    outputs = xr.Dataset(
        {
            "energy_per_token_j": energy_j.assign_attrs(units="J/token", long_name="GPU energy per output token"),
            "effective_tokens": tokens.assign_attrs(units="tokens"),
            "clamped": clamped.assign_attrs(long_name="concurrency outside the measured batches (clamped)"),
            "energy_wh": energy_wh.assign_attrs(units="Wh", long_name=f"energy per query at the {section.boundary}"),
        }
    )
    if "draw" in inputs.dims:  # every draw has its outputs, even when each input is fixed
        draws = inputs.sizes["draw"]
        outputs = outputs.map(lambda v: v if "draw" in v.dims else v.expand_dims(draw=draws, axis=-1), keep_attrs=True)
    return outputs

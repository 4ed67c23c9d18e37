"""Saved draws in ArviZ's layout: which variables go to which ``InferenceData`` group.

Laid out with xarray alone, so that a run writes ``inference.nc``
(:func:`uqenergy.outputs.files.write_inference`) without loading ArviZ;
:func:`uqenergy.analyses.arviz_data.inference_data` hands the same groups to ArviZ.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def inference_groups(samples: xr.Dataset) -> dict[str, xr.Dataset]:
    """ArviZ's groups of the saved draws, by group name.

    One-level runs: every variable with draws in the ``prior`` group (chain 1,
    draw). Two-level runs: the outer draws (epistemic inputs, ``mean_energy_wh``)
    in ``prior``, the pooled per-query ``energy_wh`` in ``prior_predictive``.
    Variables without draws (fixed values, blend membership) go to ``constant_data``.
    """
    draw = "outer" if "outer" in samples.dims else "draw"
    per_query = [v for v in samples.data_vars if "kept" in samples[v].dims]
    drawn = [v for v in samples.data_vars if draw in samples[v].dims and v not in per_query]
    groups = {"constant_data": samples.drop_vars(drawn + per_query).drop_dims([draw, "kept"], errors="ignore")}
    if drawn:  # none when every prior is fixed
        groups["prior"] = _one_chain(samples[drawn].rename({draw: "draw"}))
    if per_query:
        pooled = samples[per_query].stack(draw=("outer", "kept"))
        groups["prior_predictive"] = _one_chain(
            pooled.drop_vars(["draw", "outer", "kept"]).assign_coords(draw=np.arange(pooled.sizes["draw"]))
        )
    return groups


def _one_chain(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.expand_dims(chain=[0]).transpose("chain", "draw", ...)

"""The saved draws as ArviZ ``InferenceData`` (the one module that loads ArviZ)."""

from __future__ import annotations

import warnings

import xarray as xr

from uqenergy.analyses.inference import inference_groups

with warnings.catch_warnings():  # arviz 0.23 announces its 1.0 rewrite on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az


def inference_data(samples: xr.Dataset) -> az.InferenceData:
    """The draws as ArviZ InferenceData, so ``arviz.summary`` and ArviZ plots work on them
    (groups as :func:`inference_groups` lays them out)."""
    return az.InferenceData(**inference_groups(samples))  # type: ignore[arg-type]  # arviz annotates loosely

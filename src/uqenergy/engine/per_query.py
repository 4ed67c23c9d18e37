"""Which energy model evaluates a study's draws: the paper's throughput model or measured configurations.

A study without a ``[measured]`` section runs the energy core of
:mod:`uqenergy.engine.energy` on its throughput fits; a measured study runs
:mod:`uqenergy.engine.measured` on its configurations' measured curves. Every design
(plain, streamed, adaptive, two-level, Sobol) asks this module, so each works on both.
"""

from __future__ import annotations

import xarray as xr

from uqenergy.config.study import Study
from uqenergy.engine import energy, measured
from uqenergy.engine.throughput import study_fits


def study_data(study: Study) -> xr.Dataset:
    """What the study's energy model needs besides the draws: throughput fits, or measured curves (model, point)."""
    return measured.measured_curves(study.measured) if study.measured is not None else study_fits(study)


def evaluate_study(study: Study, inputs: xr.Dataset, data: xr.Dataset) -> xr.Dataset:
    """Per-query outputs (``energy_wh`` and what it is made of) of ``inputs`` under the study's energy model."""
    if study.measured is not None:
        return measured.evaluate(inputs, data, study.measured)
    return energy.evaluate(inputs, data, study.input_token_divisor, study.power_utilisation)

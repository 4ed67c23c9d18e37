"""The energy core: pure, vectorised functions from inputs to per-query energy.

Per-query energy (Oviedo et al., arXiv:2509.20241, eq. 1):

    E [Wh] = PUE * P_node [kW] * PU * L_eff [tokens] / TPS [tokens/s] * 1000 / 3600

The core never knows how its inputs were drawn: Monte Carlo, Latin hypercube,
a Saltelli design or a fixed scenario all arrive as arrays (numpy or xarray,
any shape that broadcasts) and leave the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from uqenergy.engine.throughput import tokens_per_s

WH_PER_KW_S = 1000.0 / 3600.0  # 1 kW for 1 s is 1000 J = 1000/3600 Wh


def effective_tokens(output_tokens, input_tokens=0.0, input_token_divisor: float = math.inf):
    """Tokens charged to a query: L_out + L_in / k (k = inf: output only; the paper's sensitivity uses k = 30)."""
    if math.isinf(input_token_divisor):
        return output_tokens
    return output_tokens + input_tokens / input_token_divisor


def energy_per_query_wh(pue, node_power_kw, power_utilisation, effective_tokens, tokens_per_s):
    """Facility energy of one query in Wh: the node's share of time at its drawn power, times PUE."""
    return pue * node_power_kw * power_utilisation * effective_tokens / tokens_per_s * WH_PER_KW_S


def proportional_power_utilisation(tokens_per_s, tps_max, idle_fraction: float = 0.24, dynamic_fraction: float = 0.56):
    """PU rising linearly with load: PU = a + b * TPS / TPS_max (Oviedo et al., sensitivity analysis)."""
    return idle_fraction + dynamic_fraction * tokens_per_s / tps_max


def apply_pathways(energy_wh, multipliers: Sequence):
    """Energy after efficiency pathways, each a divisor (a 3x gain divides energy by 3); they compose by product."""
    for multiplier in multipliers:
        energy_wh = energy_wh / multiplier
    return energy_wh


def evaluate(
    inputs: xr.Dataset,
    throughput_fits: xr.Dataset,
    input_token_divisor: float = math.inf,
    power_utilisation: str = "prior",
) -> xr.Dataset:
    """Per-query outputs for a Dataset of inputs (variables named as the priors).

    Needs ``pue``, ``node_power_kw``, ``power_utilisation``, ``input_tokens`` and
    ``output_tokens``; uses ``throughput_z`` (fit uncertainty, in predictive SDs)
    when present, divides the benchmark throughput by ``throughput_scale``
    when present (a deployment slower than the benchmarks, e.g. low concurrency),
    and multiplies the output tokens by ``output_token_multiplier`` when present
    (test-time scaling: a reasoning query generates that many times the tokens;
    throughput and energy follow the longer answer; with ``reasoning_share`` and
    ``reasoning_draw`` only a query whose draw is below the share reasons, the others
    keep the traditional length), and by ``output_length_scale``
    when present (how far the typical answer length sits from the prior's median:
    an epistemic scale of the output-token distribution, acting the same way).
    ``pue`` and ``power_utilisation`` are fleet averages when the facility-to-facility
    ratios are present: a query's facility has PUE ``1 + (pue - 1) * pue_facility_ratio``
    (its overhead scaled, so never below 1) and PU
    ``min(power_utilisation * power_utilisation_facility_ratio, 1)``; both ratios have
    mean one, so they spread the queries without moving the mean (up to the PU cap).
    ``model`` is a dimension or a per-draw variable of model names.
    Returns ``tokens_per_s``, ``effective_tokens`` and ``energy_wh``. With
    ``power_utilisation = "proportional"`` PU follows the load
    (:func:`proportional_power_utilisation`) instead of its input, and is returned too.
    """
    fits = throughput_fits.sel(model=inputs["model"]) if "model" in inputs.variables else throughput_fits
    output_tokens = inputs["output_tokens"]
    if "output_token_multiplier" in inputs:
        output_tokens = output_tokens * _reasoning_multiplier(inputs)
    if "output_length_scale" in inputs:
        output_tokens = output_tokens * inputs["output_length_scale"]
    tps = tokens_per_s(fits, inputs["input_tokens"], output_tokens, inputs.get("throughput_z"))
    if "throughput_scale" in inputs:
        tps = tps / inputs["throughput_scale"]
    tokens = effective_tokens(output_tokens, inputs["input_tokens"], input_token_divisor)
    proportional = power_utilisation == "proportional"
    pu = proportional_power_utilisation(tps, fits["tps_max"]) if proportional else inputs["power_utilisation"]
    if "power_utilisation_facility_ratio" in inputs:
        pu = np.minimum(pu * inputs["power_utilisation_facility_ratio"], 1.0)
    pue = inputs["pue"]
    if "pue_facility_ratio" in inputs:
        pue = 1.0 + (pue - 1.0) * inputs["pue_facility_ratio"]
    energy = energy_per_query_wh(pue, inputs["node_power_kw"], pu, tokens, tps)
    outputs = {  # outputs mix epistemic and aleatory inputs: they carry their own attributes, not an input's kind
        "tokens_per_s": _described(tps, units="tokens/s"),
        "effective_tokens": _described(tokens, units="tokens"),
        "energy_wh": _described(energy, units="Wh", long_name="facility energy per query"),
    }
    if proportional:
        outputs["power_utilisation"] = _described(pu, units="1", long_name="power utilisation proportional to load")
    return xr.Dataset(outputs)


def _reasoning_multiplier(inputs: xr.Dataset) -> xr.DataArray:
    """Each query's test-time token multiplier: ``output_token_multiplier`` if it reasons, else 1.

    Without ``reasoning_share`` every query reasons. With it, a query reasons when its
    ``reasoning_draw`` (uniform) is below ``reasoning_share``; the others answer at the
    traditional length.

    Parameters
    ----------
    inputs : xarray.Dataset
        Holds ``output_token_multiplier``, and ``reasoning_share`` with ``reasoning_draw`` or neither.

    Returns
    -------
    xarray.DataArray
        The multiplier of each query's output tokens.
    """
    multiplier = inputs["output_token_multiplier"]
    if "reasoning_share" not in inputs:
        return multiplier
    return xr.where(inputs["reasoning_draw"] < inputs["reasoning_share"], multiplier, 1.0)


def _described(values: xr.DataArray, **attrs: str) -> xr.DataArray:
    """``values`` with exactly ``attrs`` (none inherited from the inputs it was computed from)."""
    described = values.copy(deep=False)
    described.attrs = dict(attrs)
    return described

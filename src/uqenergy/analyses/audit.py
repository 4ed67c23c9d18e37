"""Assumption audit: put an estimate's stated assumptions into our draws and split the gap by factor.

Per-query energy is a product, E = PUE * P_node * PU * L_eff / TPS * c, so
substituting a stated value for one of its inputs moves ln E by a clean
amount. The audit compares ``f(S) = ln median E_S``, the log median of our
distribution with the factors in ``S`` set to the estimate's stated values
and every other input left to our priors. The total gap to the estimate
telescopes exactly,

    ln(estimate / median E) = [f(all stated) - f(none)] + [ln estimate - f(all stated)],

the second bracket being what the stated assumptions do not explain
(``unexplained``). The first bracket is split between factors by their
Shapley values: the average, over every order of substituting the factors
one at a time, of the step in ``f`` each factor causes. One fixed order would
also sum exactly, but its shares would depend on the order, because the
median of a product of random factors is not the product of their medians
(and the ``tokens`` factor also moves TPS through the throughput fit). The
Shapley average is order-free and still sums exactly (Shapley, 1953, "A
value for n-person games"; used for attribution in sensitivity analysis by
Owen, "Sobol' indices and Shapley value", SIAM/ASA JUQ 2, 2014,
doi:10.1137/130936233).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import combinations

import xarray as xr

from uqenergy.engine import energy

#: Factor -> the stated assumptions (and core inputs) it substitutes.
FACTORS: dict[str, tuple[str, ...]] = {
    "throughput": ("tokens_per_s",),
    "power_utilisation": ("power_utilisation",),
    "pue": ("pue",),
    "tokens": ("input_tokens", "output_tokens"),
    "hardware": ("node_power_kw",),
}
UNEXPLAINED = "unexplained"
#: (stated input, our scale of it that a stated value replaces as well)
STATED_SCALES = (
    ("output_tokens", "output_length_scale"),
    ("output_tokens", "output_token_multiplier"),
    ("pue", "pue_facility_ratio"),
    ("power_utilisation", "power_utilisation_facility_ratio"),
)


def stated_factors(assumptions: dict) -> dict[str, dict[str, float]]:
    """The factors an estimate's assumptions let us substitute, with their input values."""
    factors = {}
    for factor, names in FACTORS.items():
        values = {name: assumptions[name] for name in names if name in assumptions}
        if values:
            factors[factor] = values
    return factors


def substituted_energy_wh(
    inputs: xr.Dataset, fits: xr.Dataset, input_token_divisor: float, values: dict[str, float]
) -> xr.DataArray:
    """Per-query energy from our draws with some inputs replaced by fixed values.

    ``tokens_per_s`` replaces the throughput model's output (node throughput);
    any other key replaces the input of that name, so the throughput fit still
    sees substituted token lengths. A stated value also sets our scales of that
    input to one (:data:`STATED_SCALES`): a stated 500 output tokens are 500
    tokens, a stated PUE is the PUE of the facility.
    """
    tps = values.get("tokens_per_s")
    inputs = inputs.assign({name: value for name, value in values.items() if name != "tokens_per_s"})
    # a stated value is the value: no scale of ours applies on top of it
    inputs = inputs.assign({scale: 1.0 for name, scale in STATED_SCALES if name in values and scale in inputs})
    outputs = energy.evaluate(inputs, fits, input_token_divisor)
    if tps is None:
        return outputs["energy_wh"]
    return energy.energy_per_query_wh(
        inputs["pue"], inputs["node_power_kw"], inputs["power_utilisation"], outputs["effective_tokens"], tps
    )


def _subsets(players: Iterable[str]) -> list[frozenset[str]]:
    players = list(players)
    return [frozenset(c) for k in range(len(players) + 1) for c in combinations(players, k)]


def shapley_values(value: Callable[[frozenset[str]], float], players: list[str]) -> dict[str, float]:
    """Shapley value of each player for the set function ``value``; they sum to value(all) - value(none)."""
    n = len(players)
    cache = {s: value(s) for s in _subsets(players)}
    shares = {}
    for player in players:
        others = [p for p in players if p != player]
        shares[player] = sum(
            math.factorial(len(s))
            * math.factorial(n - len(s) - 1)
            / math.factorial(n)
            * (cache[s | {player}] - cache[s])
            for s in _subsets(others)
        )
    return shares


def decompose(value_wh: float, log_median: Callable[[frozenset[str]], float], factors: list[str]) -> dict[str, float]:
    """Shares of ln(value_wh / our median) per factor plus ``unexplained``; they sum to the total exactly."""
    cache = {s: log_median(s) for s in _subsets(factors)}
    shares = shapley_values(cache.__getitem__, factors)
    shares[UNEXPLAINED] = math.log(value_wh) - cache[frozenset(factors)]
    return shares

"""The assumption audit: Shapley shares are order-free and the decomposition of the log-ratio is exact."""

from __future__ import annotations

import functools
import math
from itertools import permutations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from uqenergy.analyses.audit import UNEXPLAINED, decompose, shapley_values, stated_factors, substituted_energy_wh
from uqenergy.config.benchmarks import read_benchmarks
from uqenergy.config.files import data_dir
from uqenergy.engine.throughput import fit_throughput

MODEL = "Llama 3.1 405B"


@pytest.fixture(scope="module")
def fits():
    return fit_throughput(read_benchmarks(data_dir("priors") / "throughput_h100.csv"), [MODEL])


def _inputs(n: int, random: bool) -> xr.Dataset:
    """One model's inputs; log-normal PUE and PU and exponential tokens when ``random``, else constants."""
    u = (np.arange(n) + 0.5) / n
    rng = np.random.default_rng(3)
    shuffled = [rng.permutation(u) for _ in range(3)]
    values = {
        "pue": stats.lognorm(s=0.13, scale=1.3).ppf(shuffled[0]) if random else np.full(n, 1.3),
        "power_utilisation": stats.lognorm(s=0.25, scale=0.6).ppf(shuffled[1]) if random else np.full(n, 0.6),
        "output_tokens": np.round(stats.expon(scale=300 / math.log(2)).ppf(shuffled[2]))
        if random
        else np.full(n, 300.0),
        "node_power_kw": np.full(n, 10.2),
        "input_tokens": np.full(n, 500.0),
    }
    return xr.Dataset(
        {k: (("model", "draw"), v[None, :]) for k, v in values.items()}, coords={"model": [MODEL], "draw": np.arange(n)}
    )


def _log_median_function(inputs, fits, factors):
    @functools.cache
    def log_median(subset):
        values = {k: v for f in subset for k, v in factors[f].items()}
        return math.log(float(np.median(substituted_energy_wh(inputs, fits, math.inf, values))))

    return log_median


def _sequential(log_median, order):
    """Contributions when the factors are substituted one at a time in ``order``."""
    shares, done = {}, frozenset()
    for factor in order:
        shares[factor] = log_median(done | {factor}) - log_median(done)
        done = done | {factor}
    return shares


STATED = {
    "pue": 1.1,
    "power_utilisation": 0.9,
    "node_power_kw": 6.5,
    "output_tokens": 500,
    "input_tokens": 100,
    "tokens_per_s": 900.0,
    "hardware": "A100",
}


def test_stated_factors_group_assumptions():
    factors = stated_factors(STATED)
    assert factors == {
        "throughput": {"tokens_per_s": 900.0},
        "power_utilisation": {"power_utilisation": 0.9},
        "pue": {"pue": 1.1},
        "tokens": {"input_tokens": 100, "output_tokens": 500},
        "hardware": {"node_power_kw": 6.5},
    }
    assert stated_factors({"hardware": "text only", "batch_size": 8}) == {}


def test_shapley_is_the_average_over_orders_and_sums_exactly():
    weights = {"a": 0.3, "b": -1.2, "c": 0.7}

    def value(s):  # an interaction between a and c
        return sum(weights[p] for p in s) + (0.5 if {"a", "c"} <= s else 0.0)

    shares = shapley_values(value, list(weights))
    orders = list(permutations(weights))
    for p in weights:
        average = np.mean([_sequential(value, order)[p] for order in orders])
        assert shares[p] == pytest.approx(average, abs=1e-12)
    assert shares["a"] == pytest.approx(0.55) and shares["b"] == pytest.approx(-1.2)
    assert sum(shares.values()) == pytest.approx(value(set(weights)) - value(set()), abs=1e-12)


def test_deterministic_inputs_give_each_factor_its_log_ratio(fits):
    """With every input fixed, ln E is a sum, so each share is exactly ln(stated / ours)."""
    inputs = _inputs(11, random=False)
    stated = {k: v for k, v in STATED.items() if k not in ("output_tokens", "input_tokens", "hardware")}
    factors = stated_factors(stated)
    log_median = _log_median_function(inputs, fits, factors)
    ours_tps = float(
        substituted_energy_wh(inputs, fits, math.inf, {}).pipe(lambda e: 1.3 * 10.2 * 0.6 * 300 / e / 3.6)[0, 0]
    )
    value_wh = 1.1 * 6.5 * 0.9 * 300 / 900.0 / 3.6 * 2.0  # the stated factors, times a gap of 2 they do not explain
    shares = decompose(value_wh, log_median, list(factors))
    assert shares["pue"] == pytest.approx(math.log(1.1 / 1.3), abs=1e-12)
    assert shares["power_utilisation"] == pytest.approx(math.log(0.9 / 0.6), abs=1e-12)
    assert shares["hardware"] == pytest.approx(math.log(6.5 / 10.2), abs=1e-12)
    assert shares["throughput"] == pytest.approx(math.log(ours_tps / 900.0), abs=1e-9)
    assert shares[UNEXPLAINED] == pytest.approx(math.log(2.0), abs=1e-12)


def test_random_inputs_decompose_exactly_though_orders_disagree(fits):
    inputs = _inputs(4001, random=True)
    factors = stated_factors({k: v for k, v in STATED.items() if k != "tokens_per_s"})
    log_median = _log_median_function(inputs, fits, factors)
    value_wh = 2.9
    shares = decompose(value_wh, log_median, list(factors))
    total = math.log(value_wh) - log_median(frozenset())
    assert sum(shares.values()) == pytest.approx(total, abs=1e-12)
    # substituting in different orders gives different shares (medians of products do not factor) ...
    forward = _sequential(log_median, list(factors))
    backward = _sequential(log_median, list(reversed(factors)))
    assert max(abs(forward[f] - backward[f]) for f in factors) > 1e-3
    # ... each order still sums to the same explained part, and Shapley is their average over all orders
    assert sum(forward.values()) == pytest.approx(sum(backward.values()), abs=1e-12)
    for f in factors:
        average = np.mean([_sequential(log_median, order)[f] for order in permutations(factors)])
        assert shares[f] == pytest.approx(average, abs=1e-12)


def test_substituted_tokens_move_throughput_through_the_fit(fits):
    """Stated token lengths change both L_eff and the fitted TPS: the core is rerun, not rescaled."""
    inputs = _inputs(5, random=False)
    base = float(substituted_energy_wh(inputs, fits, math.inf, {})[0, 0])
    longer_input = float(substituted_energy_wh(inputs, fits, math.inf, {"input_tokens": 5000.0})[0, 0])
    assert longer_input > 1.5 * base  # more input tokens: lower throughput on the fit, more energy per query


def test_stated_output_tokens_are_the_tokens_of_every_query_reasoning_or_not(fits):
    """A stated output length replaces our multiplier and length scale (STATED_SCALES): with a reasoning share,
    the queries that reason and those that do not are charged the same stated tokens."""
    inputs = _inputs(6, random=False)
    n = inputs.sizes["draw"]
    scales = {
        "output_token_multiplier": 15.0,
        "output_length_scale": 2.0,
        "reasoning_share": 0.5,
        "reasoning_draw": (np.arange(n) + 0.5) / n,  # half the queries reason
    }
    scaled = inputs.assign({k: (("model", "draw"), np.broadcast_to(v, (1, n))) for k, v in scales.items()})
    stated = {"output_tokens": 500.0}
    plain = substituted_energy_wh(inputs, fits, math.inf, stated)
    np.testing.assert_allclose(substituted_energy_wh(scaled, fits, math.inf, stated), plain, rtol=1e-12)
    unstated = substituted_energy_wh(scaled, fits, math.inf, {}).values[0]
    assert unstated[0] > 5 * unstated[-1]  # unstated, the queries that reason are charged 15x the tokens

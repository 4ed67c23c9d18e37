import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from uqenergy.config.benchmarks import read_benchmarks
from uqenergy.config.files import resolve
from uqenergy.engine import energy
from uqenergy.engine.throughput import fit_throughput

FITS = fit_throughput(
    read_benchmarks(resolve("throughput_h100", "priors", suffix=".csv")),
    ["DeepSeek-R1", "Llama 3.1 405B", "Llama 3.1 70B", "Mixtral 8x22B", "Llama-3.1 Nemotron Ultra 253B"],
)
positive = st.floats(0.01, 100.0)


def test_one_query_by_hand():
    # 1.2 * 10 kW * 0.5 * 300 tokens / 1000 tokens/s = 1.8 kJ = 0.5 Wh
    assert energy.energy_per_query_wh(1.2, 10.0, 0.5, 300, 1000.0) == pytest.approx(0.5)


@given(positive, positive, positive, st.floats(1, 1e5), st.floats(1, 1e5), st.floats(1.0, 10.0))
def test_linear_in_pue_and_node_power(pue, power, pu, tokens, tps, factor):
    e = energy.energy_per_query_wh(pue, power, pu, tokens, tps)
    assert energy.energy_per_query_wh(factor * pue, power, pu, tokens, tps) == pytest.approx(factor * e)
    assert energy.energy_per_query_wh(pue, factor * power, pu, tokens, tps) == pytest.approx(factor * e)
    assert e > 0


@given(st.lists(st.floats(1.01, 50.0), min_size=1, max_size=4))
def test_pathways_compose_multiplicatively(divisors):
    assert energy.apply_pathways(1.0, divisors) == pytest.approx(1.0 / np.prod(divisors))


def _inputs(output_tokens, input_tokens=500.0, model="Llama 3.1 405B"):
    n = len(output_tokens)
    one = ("draw", np.ones(n))
    return xr.Dataset(
        {
            "pue": one,
            "power_utilisation": one,
            "node_power_kw": ("draw", np.full(n, 10.2)),
            "output_tokens": ("draw", np.asarray(output_tokens, float)),
            "input_tokens": ("draw", np.full(n, input_tokens)),
        }
    ).expand_dims(model=[model])


@pytest.mark.parametrize("model", FITS["model"].values.tolist())
def test_energy_does_not_decrease_with_output_tokens(model):
    tokens = np.arange(0, 50_001, 7.0)
    out = energy.evaluate(_inputs(tokens, model=model), FITS)["energy_wh"].sel(model=model).values
    assert out[0] == 0.0  # a zero-token query costs nothing, never NaN
    assert np.all(np.diff(out) >= 0) and np.isfinite(out).all()


def test_input_tokens_count_through_the_divisor():
    base = energy.evaluate(_inputs([300.0]), FITS)
    longer = energy.evaluate(_inputs([300.0]), FITS, input_token_divisor=30)
    assert longer["effective_tokens"].item() == pytest.approx(300 + 500 / 30)
    assert (longer["energy_wh"] / base["energy_wh"]).item() == pytest.approx((300 + 500 / 30) / 300)


def test_proportional_power_utilisation_spans_its_range():
    assert energy.proportional_power_utilisation(0.0, 100.0) == pytest.approx(0.24)
    assert energy.proportional_power_utilisation(100.0, 100.0) == pytest.approx(0.80)

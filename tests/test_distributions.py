import numpy as np
import pytest
from scipy import stats

from uqenergy.config.distributions import Z95, from_spec, lognormal_from_p5_p95
from uqenergy.config.errors import InputError

U = np.linspace(0.001, 0.999, 999)


@pytest.mark.parametrize("p5,p95", [(0.4, 0.9), (1.05, 1.6), (1.5, 10.0)])
def test_lognormal_p5_p95_round_trip(p5, p95):
    law = from_spec({"dist": "lognormal", "p5": p5, "p95": p95})
    assert law.ppf(np.array([0.05, 0.95])) == pytest.approx([p5, p95], rel=1e-12)


def test_lognormal_fit_matches_the_paper_formula():
    mu, sigma = lognormal_from_p5_p95(0.4, 0.9)
    assert sigma == pytest.approx((np.log(0.9) - np.log(0.4)) / (2 * 1.645), rel=1e-3)
    assert mu == pytest.approx(np.log(0.4) + Z95 * sigma)


def test_lognormal_median_gsd_and_mu_sigma_agree():
    a = from_spec({"dist": "lognormal", "median": 2.0, "gsd": 1.5})
    b = from_spec({"dist": "lognormal", "mu": np.log(2.0), "sigma": np.log(1.5)})
    np.testing.assert_allclose(a.ppf(U), b.ppf(U))
    assert a.median() == pytest.approx(2.0)


def test_exponential_from_median_and_mean():
    by_median = from_spec({"dist": "exponential", "median": 300})
    assert by_median.median() == pytest.approx(300)
    by_mean = from_spec({"dist": "exponential", "mean": 300 / np.log(2)})
    np.testing.assert_allclose(by_median.ppf(U), by_mean.ppf(U))


@pytest.mark.parametrize(
    "spec,reference",
    [
        ({"dist": "uniform", "low": 1, "high": 3}, stats.uniform(1, 2)),
        ({"dist": "triangular", "low": 0, "mode": 1, "high": 4}, stats.triang(0.25, 0, 4)),
        ({"dist": "normal", "mean": 1, "sd": 2}, stats.norm(1, 2)),
        ({"dist": "beta", "alpha": 2, "beta": 5}, stats.beta(2, 5)),
    ],
)
def test_inverse_cdf_matches_scipy(spec, reference):
    np.testing.assert_allclose(from_spec(spec).ppf(U), reference.ppf(U))


def test_fixed_and_categorical():
    assert set(from_spec({"dist": "fixed", "value": 3.0}).ppf(U)) == {3.0}
    cat = from_spec({"dist": "categorical", "values": ["a", "b", "c"], "weights": [1, 2, 1]})
    counts = np.bincount(cat.ppf(np.random.default_rng(1).random(100_000)), minlength=3) / 100_000
    np.testing.assert_allclose(counts, [0.25, 0.5, 0.25], atol=0.01)


def test_truncation_keeps_draws_inside_bounds():
    law = from_spec({"dist": "lognormal", "p5": 0.4, "p95": 0.9}).truncated(0.0, 1.0)
    assert law.ppf(U).max() <= 1.0
    assert law.ppf(np.array([0.5]))[0] < 0.6


@pytest.mark.parametrize(
    "spec,key",
    [
        ({"dist": "lognormal", "p5": 0.9, "p95": 0.4}, "prior.p5"),
        ({"dist": "lognormal", "p5": 0.5, "p95": 0.5}, "prior.p5"),
        ({"dist": "lognormal", "p5": -1, "p95": 2}, "prior.p5"),
        ({"dist": "lognormal", "median": 1, "gsd": 0.5}, "prior.gsd"),
        ({"dist": "exponential", "median": -300}, "prior.median"),
        ({"dist": "exponential", "median": "300"}, "prior.median"),
        ({"dist": "exponential", "median": float("nan")}, "prior.median"),
        ({"dist": "weibull", "k": 1}, "prior.dist"),
        ({"dist": "uniform", "low": 1}, "prior"),
        ({"dist": "exponential", "median": 1, "mean": 2}, "prior.mean"),
        ({"dist": "triangular", "low": 0, "mode": 5, "high": 4}, "prior.mode"),
        ({"dist": "categorical", "values": []}, "prior.values"),
        ({"dist": "categorical", "values": ["a", "b"], "weights": [1]}, "prior.weights"),
    ],
)
def test_bad_parameters_name_the_key(spec, key):
    with pytest.raises(InputError) as err:
        from_spec(spec, "f.toml")
    assert err.value.key == key
    assert err.value.message.startswith(f"f.toml: {key}: ")


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "lognormal", "p5": 0.4, "p95": 0.9},
        {"dist": "exponential", "median": 300},
        {"dist": "triangular", "low": 0, "mode": 1, "high": 4},
    ],
)
def test_direct_sampling_has_the_law_of_the_inverse_cdf(spec):
    law = from_spec(spec)
    draws = law.sample(np.random.default_rng(5), 200_000)
    assert stats.kstest(draws, law.cdf).pvalue > 1e-4

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


LAWS = [
    {"dist": "lognormal", "p5": 0.4, "p95": 0.9},
    {"dist": "exponential", "median": 300},
    {"dist": "uniform", "low": 1, "high": 3},
    {"dist": "triangular", "low": 0, "mode": 1, "high": 4},
    {"dist": "triangular", "low": 0, "mode": 0, "high": 4},
    {"dist": "triangular", "low": 0, "mode": 4, "high": 4},
    {"dist": "normal", "mean": 1, "sd": 2},
    {"dist": "beta", "alpha": 2, "beta": 5, "loc": 1, "scale": 2},
]


@pytest.mark.parametrize("spec", LAWS, ids=lambda s: s["dist"])
def test_closed_forms_are_scipys_numbers_to_the_bit(spec):
    """The closed forms (no scipy.stats) give scipy.stats' own inverse CDF and CDF, bit for bit, and its mean
    (the exponential's within an ulp: its inverse CDF multiplies in another order, as it always has, and its CDF
    uses numpy's expm1)."""
    law = from_spec(spec)
    rtol = 1e-15 if spec["dist"] == "exponential" else 0
    u = np.concatenate([[0.0], U, np.random.default_rng(3).random(10_000)])
    np.testing.assert_allclose(law.ppf(u), law.frozen.ppf(u), rtol=rtol)
    x = np.linspace(law.frozen.ppf(0.0001) - 1, law.frozen.ppf(0.9999) + 1, 5_001)
    np.testing.assert_allclose(law.cdf(x), law.frozen.cdf(x), rtol=rtol, atol=0)
    assert law.mean() == pytest.approx(law.frozen.mean(), rel=1e-14)


@pytest.mark.parametrize("spec", LAWS, ids=lambda s: s["dist"])
def test_mass_outside_without_scipy_agrees_with_scipy(spec):
    law = from_spec(spec)
    for low, high in [(-np.inf, np.inf), (0.5, 2.0), (1.2, np.inf), (-np.inf, 0.7), (0.9, 350.0)]:
        below = law.frozen.cdf(low) if np.isfinite(low) else 0.0
        above = law.frozen.sf(high) if np.isfinite(high) else 0.0
        assert law.mass_outside(low, high) == pytest.approx(below + above, rel=1e-12, abs=1e-15)


def test_z95_is_the_normal_quantile():
    assert Z95 == stats.norm.ppf(0.95)


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

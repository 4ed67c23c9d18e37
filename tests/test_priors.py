import numpy as np
import pytest

from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir, resolve
from uqenergy.config.priors import load_prior_files

JOULE = resolve("joule2026", "priors")
V1 = resolve("arxiv_v1", "priors")

PRIOR = """
[priors.x]
dist = "lognormal"
p5 = 1.0
p95 = 2.0
unit = "1"
bounds = [0.0, inf]
kind = "epistemic"
source = "test"
"""


def test_joule_set_has_every_figure_sourced_and_bounded():
    priors = load_prior_files([JOULE])
    for name in priors.names():
        prior = priors.get(name)
        assert prior.source.strip() and prior.unit and prior.kind in ("epistemic", "aleatory")
    assert priors.get("node_power_kw").ppf(np.array([0.5]))[0] == 10.2
    assert priors.get("node_power_kw", "DeepSeek-R1").ppf(np.array([0.5]))[0] == 12.8


def test_v1_set_overrides_single_priors_and_keeps_the_rest():
    joule, v1 = load_prior_files([JOULE]), load_prior_files([V1])
    assert v1.get("node_power_kw").ppf(np.array([0.5]))[0] == 11.3
    assert v1.get("node_power_kw", "DeepSeek-R1").ppf(np.array([0.5]))[0] == 14.1
    assert v1.get("pue").ppf(np.array([0.05, 0.95])) == pytest.approx([1.05, 1.40])
    assert v1.get("pue").unit == joule.get("pue").unit  # inherited metadata
    u = np.linspace(0.01, 0.99, 50)
    np.testing.assert_array_equal(v1.get("power_utilisation").ppf(u), joule.get("power_utilisation").ppf(u))


def test_mass_outside_bounds_is_reported_with_its_size():
    priors = load_prior_files([JOULE])
    pu = priors.get("power_utilisation")
    assert pu.mass_outside_bounds() == pytest.approx(0.0191, abs=5e-4)  # P(PU > 1) of the paper's fit
    assert any("power_utilisation" in w and "1.9%" in w for w in priors.warnings)


def test_truncate_restricts_to_bounds(write):
    path = write("p.toml", PRIOR.replace("p95 = 2.0", "p95 = 2.0\ntruncate = true").replace("[0.0, inf]", "[0.0, 1.5]"))
    prior = load_prior_files([path]).get("x")
    assert prior.mass_outside_bounds() == 0.0
    assert prior.ppf(np.linspace(0, 1, 101)).max() <= 1.5


@pytest.mark.parametrize(
    "spec",
    [
        'dist = "categorical"\nvalues = [100, 1000]\nweights = [0.25, 0.75]',
        'dist = "lognormal"\np5 = 80\np95 = 2500\ntruncate = true',
        'dist = "exponential"\nmedian = 300',
    ],
)
def test_the_mean_is_that_of_the_draws(write, spec):
    """Prior.mean is the mean of what is sampled: a categorical's weighted values, a truncated law's own mean."""
    text = PRIOR.replace('dist = "lognormal"\np5 = 1.0\np95 = 2.0', spec).replace("[0.0, inf]", "[1.0, 1500.0]")
    prior = load_prior_files([write("p.toml", text)]).get("x")
    draws = prior.sample(np.random.default_rng(3), 400_000)
    assert prior.mean() == pytest.approx(draws.mean(), abs=4 * draws.std() / np.sqrt(draws.size))


def test_layering_through_extends(write):
    base = write("base.toml", PRIOR)
    top = write("top.toml", f'[meta]\nextends = ["{base}"]\n[priors.x]\np95 = 3.0\n')
    assert load_prior_files([top]).get("x").ppf(np.array([0.95]))[0] == pytest.approx(3.0)


@pytest.mark.parametrize(
    "text,key",
    [
        (PRIOR.replace("kind =", "knd ="), "priors.x.knd"),
        (PRIOR.replace('kind = "epistemic"', 'kind = "random"'), "priors.x.kind"),
        (PRIOR.replace('source = "test"', ""), "priors.x.source"),
        (PRIOR.replace("bounds = [0.0, inf]", "bounds = [30.0, 40.0]"), "priors.x.bounds"),
        (PRIOR.replace("bounds = [0.0, inf]", "bounds = [1.0]"), "priors.x.bounds"),
        (PRIOR.replace("p5 = 1.0", "p5 = 1.0\nmedian = 3"), "priors.x.median"),
        (PRIOR.replace("p5 = 1.0", "p5 = 1.0\nmode = 3"), "priors.x.mode"),
        (
            "[priors.x]\ndist = 'fixed'\nvalue = -10.2\nunit='kW'\nbounds=[0.0, inf]\nkind='epistemic'\nsource='s'",
            "priors.x.bounds",
        ),
        ("[prior.x]\n", "prior"),
    ],
)
def test_bad_prior_files(write, text, key):
    path = write("bad.toml", text)
    with pytest.raises(InputError) as err:
        load_prior_files([path])
    assert err.value.key == key and err.value.file == str(path)


def test_syntax_error_and_missing_file(write, tmp_path):
    with pytest.raises(InputError, match="not valid TOML"):
        load_prior_files([write("bad.toml", "[priors.x\n")])
    with pytest.raises(InputError, match="no such file"):
        load_prior_files([tmp_path / "absent.toml"])


def test_circular_and_missing_layering(write, tmp_path):
    write("a.toml", '[meta]\nextends = ["b.toml"]\n')
    write("b.toml", '[meta]\nextends = ["a.toml"]\n')
    with pytest.raises(InputError, match="circular"):
        load_prior_files([tmp_path / "a.toml"])
    with pytest.raises(InputError, match="no such file"):
        load_prior_files([write("c.toml", '[meta]\nextends = ["nowhere.toml"]\n')])


def test_a_categorical_prior_samples_its_values_with_their_weights(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        PRIOR.replace(
            'dist = "lognormal"\np5 = 1.0\np95 = 2.0', 'dist = "categorical"\nvalues = [1.1, 1.5]\nweights = [3, 1]'
        )
    )
    prior = load_prior_files([path]).get("x")
    draws = prior.sample(np.random.default_rng(0), 40_000)
    assert set(np.unique(draws)) == {1.1, 1.5}  # the values, never the category indices 0 and 1
    assert abs(np.mean(draws == 1.1) - 0.75) < 0.01  # 4 sigma of a binomial share at n = 40,000
    u = np.linspace(0.001, 0.999, 999)
    assert np.array_equal(np.unique(prior.ppf(u)), [1.1, 1.5])
    assert np.mean(prior.ppf(u) == 1.1) == pytest.approx(0.75, abs=0.002)


def test_a_categorical_prior_weighs_its_values_outside_the_bounds(tmp_path):
    path = tmp_path / "p.toml"
    text = PRIOR.replace(
        'dist = "lognormal"\np5 = 1.0\np95 = 2.0', 'dist = "categorical"\nvalues = [-1.0, 1.5]\nweights = [1, 3]'
    )
    path.write_text(text)
    assert load_prior_files([path]).get("x").mass_outside_bounds() == pytest.approx(0.25)
    path.write_text(text.replace("[-1.0, 1.5]", "[-1.0, -2.0]"))
    with pytest.raises(InputError, match="all of the prior's mass lies outside"):
        load_prior_files([path])


def test_honest_facility_ratios_have_mean_one():
    """The facility-to-facility ratios spread queries without moving the fleet average: their laws have mean one."""
    priors = load_prior_files([data_dir("priors") / "honest.toml"], [])
    for name in ("pue_facility_ratio", "power_utilisation_facility_ratio"):
        assert priors.get(name).kind == "aleatory"
        assert priors.get(name).distribution.mean() == pytest.approx(1.0, abs=1e-4)
    for name in ("pue", "power_utilisation", "output_length_scale", "server_overhead", "provisioning_overhead"):
        assert priors.get(name).kind == "epistemic"

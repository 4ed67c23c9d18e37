"""Fleet totals: the paper's published figures, closed forms of the honest method, water and carbon, bad input."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from uqenergy.analyses.fleet import honest_quantities, paper_moments, paper_quantities, run_fleet
from uqenergy.analyses.two_level import outer_uniforms
from uqenergy.config.distributions import Z95
from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir
from uqenergy.config.fleet import FLEET_PRIORS, load_fleet
from uqenergy.config.study import load_study
from uqenergy.engine import energy
from uqenergy.engine.sampling import monte_carlo_inputs
from uqenergy.engine.throughput import study_fits

PRIORS_DIR = data_dir("priors")
NEMOTRON = "Llama-3.1 Nemotron Ultra 253B"  # constant throughput: energy per query is linear in output tokens
LONG = 5000 / 300
RECORD_KEYS = ["scenario", "mix", "pathway", "quantity", "method", "p5", "median", "p95", "mean"]

# Oviedo et al. (Joule 2026), fleet scripts (seed 42, 10,000 draws per model), GWh/day for 1e9 queries.
PUBLISHED = {
    ("traditional", "baseline"): "0.73",
    ("traditional", "interventions"): "0.33",
    ("long", "baseline"): "10.5",
    ("long", "interventions"): "5.05",
    ("mixed", "baseline"): "1.71",
    ("mixed", "interventions"): "0.80",
}
PUBLISHED_DRAWS = 10_000

FLEET = f"""
[study]
name = "fleet-test"
scenario = "fleet"
priors = ["{PRIORS_DIR / "fleet.toml"}"]
throughput = "{PRIORS_DIR / "throughput_h100.csv"}"
models = ["{NEMOTRON}"]
draws = 2000
seed = 11

[pathways]
names = ["model", "serving", "hardware", "routing"]

[fleet]
queries_per_day = 2e9
series = "{NEMOTRON}"
outer_draws = 2000
grids = ["default", "us_average", "us_average+microsoft_fleet"]

[fleet.workloads.traditional]
pathways = ["model", "serving", "hardware"]
priors.output_token_multiplier = {{ dist = "fixed", value = 1.0 }}

[fleet.workloads.long]
priors.output_token_multiplier = {{ dist = "fixed", value = {LONG!r} }}

[fleet.mixes]
traditional = {{ traditional = 1.0 }}
long = {{ long = 1.0 }}
mixed = {{ traditional = 0.9, long = 0.1 }}
"""


def _within_quantile_band(draws: np.ndarray, prob: float, value: float, z: float = 4.0) -> bool:
    """True when ``value`` lies between the empirical quantiles at prob -+ z binomial standard errors."""
    half = z * math.sqrt(prob * (1 - prob) / draws.size)
    low, high = np.quantile(draws, [max(prob - half, 0), min(prob + half, 1)])
    return low <= value <= high


def _records(records, **match):
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("fleet") / "fleet.toml"
    path.write_text(FLEET)
    fleet = load_fleet(path)
    return fleet, run_fleet(fleet)


def test_paper_method_reproduces_the_published_fleet_figures():
    """Within 5%, and within the Monte Carlo noise of both runs plus the rounding of the published figures."""
    draws = 40_000
    fleet = load_fleet("paper_fleet", draws=draws)
    moments = {w: paper_moments(study, fleet) for (_, w), study in fleet.runs.items()}
    for mix in fleet.mixes:
        quantities = paper_quantities(fleet, mix, moments)["energy_gwh_per_day"]
        for label in ("baseline", "interventions"):
            ours = quantities[fleet.labels.index(label)]
            text = PUBLISHED[(mix, label)]
            published, half_unit = float(text), 0.5 * 10.0 ** -len(text.split(".")[1])  # as printed, rounded
            se = (ours["p95"] - ours["mean"]) / Z95  # the method's own Monte Carlo standard error
            tolerance = 4 * se * math.sqrt(1 + draws / PUBLISHED_DRAWS) + half_unit
            assert abs(ours["mean"] - published) <= tolerance, (mix, label, ours["mean"], published, tolerance)
            assert abs(ours["mean"] / published - 1) < 0.05


def test_paper_interval_is_the_bootstrap_of_the_mean():
    """The paper's fleet interval bootstraps the mean of the pooled draws; its normal limit is what we report."""
    rng = np.random.default_rng(0)
    sample = rng.lognormal(0.0, 1.0, 20_000) * rng.exponential(1.0, 20_000)
    means = np.array([rng.choice(sample, sample.size).mean() for _ in range(2000)])
    moments = {"w": (np.array([sample.mean()]), np.array([[sample.var(ddof=1)]]), sample.size)}

    one = SimpleNamespace(mixes={"m": {"w": 1.0}}, labels=["baseline"], queries_per_day=1e9)
    ours = paper_quantities(one, "m", moments)["energy_wh_per_query"][0]
    low, high = np.quantile(means, [0.05, 0.95])
    width = high - low
    assert abs(ours["p5"] - low) < 0.1 * width and abs(ours["p95"] - high) < 0.1 * width


def test_output_token_multiplier_scales_the_tokens_the_core_sees():
    study = load_study("paper_traditional", draws=1000)
    inputs = next(monte_carlo_inputs(study.priors, study.factors, study.models, 1000, 1))
    fits = study_fits(study)
    scaled = energy.evaluate(inputs.assign(output_token_multiplier=7.5), fits)
    direct = energy.evaluate(inputs.assign(output_tokens=inputs["output_tokens"] * 7.5), fits)
    xr.testing.assert_allclose(scaled["energy_wh"], direct["energy_wh"])
    xr.testing.assert_allclose(scaled["tokens_per_s"], direct["tokens_per_s"])


def test_honest_total_is_the_closed_form_epistemic_lognormal(small):
    """Constant throughput: the mean per state of knowledge is c x PUE x PU x E[tokens], log-normal in PUE x PU."""
    fleet, result = small
    study = fleet.study
    pue, pu = (study.priors.get(n).distribution.frozen for n in ("pue", "power_utilisation"))
    mu = math.log(pue.kwds["scale"] * pu.kwds["scale"])
    sigma = math.hypot(pue.kwds["s"], pu.kwds["s"])
    tps = float(study_fits(study)["tps_max"].sel(model=NEMOTRON))
    mean_tokens = 300 / math.log(2)
    scale = 2e9 * 1.325632 * 10.2 * mean_tokens / tps / 3600 * 1000 / 1e9  # GWh/day per unit PUE x PU
    draws = 2e9 / 1e9 * result.samples["energy_wh_per_query"].sel(mix="traditional", pathway="baseline").values[0]
    for prob in (0.05, 0.5, 0.95):
        assert _within_quantile_band(draws, prob, scale * math.exp(mu + stats.norm.ppf(prob) * sigma))
    record = _records(
        result.records, mix="traditional", pathway="baseline", quantity="energy_gwh_per_day", method="honest"
    )[0]
    assert record["median"] == pytest.approx(np.median(draws))
    assert record["mean"] == pytest.approx(scale * math.exp(mu + sigma**2 / 2), rel=0.04)


def test_long_queries_are_the_multiplier_times_the_traditional_ones_state_by_state(small):
    fleet, result = small
    energy_wh = result.samples["energy_wh_per_query"].sel(pathway="baseline").values[0]
    traditional, long_, mixed = (energy_wh[list(fleet.mixes).index(m)] for m in ("traditional", "long", "mixed"))
    np.testing.assert_allclose(long_ / traditional, LONG, rtol=1e-9)
    np.testing.assert_allclose(mixed, 0.9 * traditional + 0.1 * long_, rtol=1e-12)
    record = _records(result.records, mix="mixed", pathway="baseline", quantity="energy_gwh_per_day", method="honest")[
        0
    ]
    assert record["p95"] == pytest.approx(2 * np.quantile(mixed, 0.95))
    blended = 0.9 * np.quantile(traditional, 0.95) + 0.1 * np.quantile(long_, 0.95)  # not how a mix is made
    assert record["p95"] == pytest.approx(2 * blended)  # here equal: the workloads move together (one PUE, one PU)


def test_mix_of_independent_workloads_is_not_a_blend_of_quantiles():
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(0, 0.5, (1, 4000)), rng.lognormal(3, 0.5, (1, 4000))

    two = SimpleNamespace(mixes={"m": {"a": 0.9, "b": 0.1}}, queries_per_day=1e9)
    out = honest_quantities(two, "m", {"a": (a, a), "b": (b, b)}, {})
    mixed = out[("energy_wh_per_query", None)][0]
    np.testing.assert_allclose(mixed, 0.9 * a[0] + 0.1 * b[0])
    blended = 0.9 * np.quantile(a, 0.95) + 0.1 * np.quantile(b, 0.95)
    assert np.quantile(mixed, 0.95) < 0.97 * blended  # independent spreads partly cancel


def test_combined_reduction_is_the_product_of_the_pathway_multipliers(small):
    """One workload: baseline / combined per state of knowledge = model x serving x hardware, a log-normal."""
    fleet, result = small
    priors = fleet.study.priors
    laws = [priors.get(f"pathway_{p}").distribution.frozen for p in ("model", "serving", "hardware")]
    mu = sum(math.log(law.kwds["scale"]) for law in laws)
    sigma = math.sqrt(sum(law.kwds["s"] ** 2 for law in laws))
    energy_wh = result.samples["energy_wh_per_query"].sel(mix="traditional").values[0]
    labels = list(result.samples["pathway"].values)
    ratio = energy_wh[labels.index("baseline")] / energy_wh[labels.index("combined")]
    for prob in (0.05, 0.5, 0.95):
        assert _within_quantile_band(ratio, prob, math.exp(mu + stats.norm.ppf(prob) * sigma))
    record = _records(
        result.records, mix="traditional", pathway="combined", quantity="reduction_factor", method="honest"
    )[0]
    assert record["median"] == pytest.approx(np.median(ratio))


def test_routing_improves_only_the_workloads_that_have_it(small):
    fleet, result = small
    energy_wh = result.samples["energy_wh_per_query"].values[0]
    labels = list(result.samples["pathway"].values)
    traditional = energy_wh[list(fleet.mixes).index("traditional")]
    np.testing.assert_array_equal(traditional[labels.index("routing")], traditional[labels.index("baseline")])
    long_ = energy_wh[list(fleet.mixes).index("long")]
    law = fleet.study.priors.get("pathway_routing").distribution
    ratio = long_[labels.index("baseline")] / long_[labels.index("routing")]
    assert _within_quantile_band(ratio, 0.5, law.median())


def test_water_and_carbon_follow_the_environment_priors(small):
    """water = E_IT x WUE + E x water intensity with E_IT = E / PUE, carbon = E x intensity, per state of knowledge."""
    fleet, result = small
    samples, seed, outer = result.samples, fleet.study.seed, fleet.outer_draws
    energy_wh = samples["energy_wh_per_query"].sel(mix="mixed", pathway="baseline").values[0]
    pue = fleet.study.priors.get("pue").ppf(outer_uniforms("pue", outer, seed))
    for grid, priors in fleet.grids.items():
        env = {name: prior.ppf(outer_uniforms(name, outer, seed)) for name, prior in priors.items()}
        water = samples["water_ml_per_query"].sel(mix="mixed", pathway="baseline", grid=grid).values[0]
        expected = energy_wh * (
            env["water_use_effectiveness_l_per_kwh"] / pue + env["water_intensity_electricity_l_per_kwh"]
        )
        np.testing.assert_allclose(water, expected, rtol=1e-9)
        carbon = samples["co2e_g_per_query"].sel(mix="mixed", pathway="baseline", grid=grid).values[0]
        intensity = carbon / energy_wh * 1000
        law = priors["grid_carbon_intensity_g_per_kwh"].distribution
        for prob in (0.05, 0.95):
            assert _within_quantile_band(intensity, prob, float(law.ppf(prob)))
    carbon = samples["co2e_g_per_query"].sel(mix="mixed", pathway="baseline").values[0]
    grids = list(samples["grid"].values)
    np.testing.assert_array_equal(carbon[grids.index("us_average")], carbon[grids.index("us_average+microsoft_fleet")])
    record = _records(result.records, mix="mixed", pathway="baseline", quantity="co2e_t_per_day", grid="us_average")[0]
    assert record["median"] == pytest.approx(np.median(carbon[grids.index("us_average")]) * 2e9 / 1e6)


def test_records_are_flat_finite_and_keyed_as_documented(small):
    fleet, result = small
    for r in result.records:
        keys = [k for k in r if k not in ("grid",)]
        assert keys == RECORD_KEYS
        assert all(math.isfinite(r[k]) for k in ("p5", "median", "p95", "mean"))
        assert r["p5"] <= r["median"] <= r["p95"]
        assert ("grid" in r) == (r["quantity"].startswith(("water", "co2e")))
        assert r["scenario"] == ("baseline" if r["pathway"] == "baseline" else "improved")
    methods = {(r["quantity"], r["method"]) for r in result.records}
    assert ("energy_gwh_per_day", "paper") in methods and ("water_m3_per_day", "paper") not in methods
    assert {r["pathway"] for r in result.records} == set(fleet.labels)


def test_workload_priors_win_over_settings(write):
    long_override = f'priors.output_token_multiplier = {{ dist = "fixed", value = {LONG!r} }}'
    assert long_override in FLEET
    text = (
        FLEET.replace("outer_draws = 2000", "outer_draws = 200").replace(long_override, "")
        + """
[[settings]]
name = "x2"
priors.output_token_multiplier = { dist = "fixed", value = 2.0 }

[[settings]]
name = "x8"
priors.output_token_multiplier = { dist = "fixed", value = 8.0 }
"""
    )
    fleet = load_fleet(write("settings.toml", text))
    assert fleet.settings == ["x2", "x8"]
    result = run_fleet(fleet)
    energy_wh = result.samples["energy_wh_per_query"].sel(pathway="baseline")
    np.testing.assert_array_equal(
        energy_wh.sel(setting="x2", mix="traditional"), energy_wh.sel(setting="x8", mix="traditional")
    )
    np.testing.assert_allclose(energy_wh.sel(setting="x8", mix="long") / energy_wh.sel(setting="x2", mix="long"), 4.0)
    assert all("setting" in r for r in result.records)


BAD = {
    "negative queries": ("queries_per_day = 2e9", "queries_per_day = -5", "fleet.queries_per_day"),
    "share above 1": (
        "mixed = { traditional = 0.9, long = 0.1 }",
        "mixed = { traditional = 1.2, long = -0.2 }",
        "fleet.mixes.mixed.traditional",
    ),
    "shares not summing to 1": (
        "mixed = { traditional = 0.9, long = 0.1 }",
        "mixed = { traditional = 0.8, long = 0.1 }",
        "fleet.mixes.mixed",
    ),
    "unknown workload": (
        "mixed = { traditional = 0.9, long = 0.1 }",
        "mixed = { traditional = 0.9, agents = 0.1 }",
        "fleet.mixes.mixed.agents",
    ),
    "unknown pathway": (
        'pathways = ["model", "serving", "hardware"]',
        'pathways = ["model", "teleport"]',
        "fleet.workloads.traditional.pathways",
    ),
    "unknown grid": (
        'grids = ["default", "us_average", "us_average+microsoft_fleet"]',
        'grids = ["us_average+atlantis"]',
        "fleet.grids",
    ),
    "unknown series": (f'series = "{NEMOTRON}"', 'series = "blend-paper"', "fleet.series"),
    "unknown key": ("outer_draws = 2000", "outer_draw = 2000", "fleet.outer_draw"),
    "bad workload prior": ("value = 1.0 }", "value = -1.0 }", "fleet.workloads.traditional"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_fleet_input_is_a_one_line_error(cli, write, tmp_path, case):
    old, new, key = BAD[case]
    assert old in FLEET
    path = write(f"{case.replace(' ', '_')}.toml", FLEET.replace(old, new, 1))
    code, out, err = cli("fleet", path, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"uqenergy: error: {path}: {key}") and err.count("\n") == 1


def test_fleet_priors_must_be_epistemic_for_the_honest_method(write):
    text = FLEET.replace("[fleet]", '[priors.fleet_overhead]\nkind = "aleatory"\n\n[fleet]')
    with pytest.raises(InputError, match=r"priors\.fleet_overhead\.kind"):  # found before anything runs
        run_fleet(load_fleet(write("aleatory.toml", text)))


def test_cli_writes_fleet_json_samples_and_report(cli, write, tmp_path):
    path = write("cli.toml", FLEET.replace("outer_draws = 2000", "outer_draws = 100"))
    code, out, _err = cli("fleet", path, "--out", tmp_path / "out", "--draws", "500", "--seed", "3")
    assert code == 0 and "mixed" in out and "GWh/day" in out
    folder = tmp_path / "out"
    records = json.loads((folder / "fleet.json").read_text())
    assert {r["quantity"] for r in records} >= {
        "energy_gwh_per_day",
        "water_m3_per_day",
        "co2e_t_per_day",
        "reduction_factor",
        "water_ml_per_query",
        "co2e_g_per_query",
    }
    assert (folder / "report.md").is_file() and (folder / "figures" / "fleet.png").is_file()
    with xr.open_dataset(folder / "samples.nc", engine="h5netcdf") as samples:
        assert samples.attrs["seed"] == 3 and samples.attrs["inner_draws"] == 500
        assert samples.sizes["outer"] == 100
    assert "energy_gwh_per_day" in (folder / "report.md").read_text()


def test_fleet_priors_are_sourced_and_validate(cli):
    code, out, _ = cli(
        "validate",
        PRIORS_DIR / "fleet.toml",
        data_dir("studies") / "paper_fleet.toml",
        data_dir("studies") / "fleet_reasoning_growth.toml",
    )
    assert code == 0 and out.count("ok:") == 3
    fleet = load_fleet("paper_fleet")
    for name in (*FLEET_PRIORS, "output_token_multiplier"):
        prior = fleet.study.priors.get(name)
        assert prior.kind == "epistemic" and "Oviedo" in prior.source
    assert fleet.study.priors.get("fleet_overhead").distribution.value == pytest.approx(1.10 * 1.076 * 1.12)
    long_study = fleet.runs[(None, "long")]
    assert long_study.priors.get("output_token_multiplier").distribution.value * 300 == pytest.approx(5000)

"""Two-level (epistemic outer / aleatory inner) design: closed form, chunk invariance, levels, outputs."""

import json
import math
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import optimize, stats

from test_intervals import NEMOTRON, PRIORS
from uqenergy.analyses import two_level as tl
from uqenergy.analyses.run import run_study
from uqenergy.config.intervals import QUANTILES
from uqenergy.config.study import load_study

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

MEAN_TOKENS = 300 / math.log(2)  # exponential output tokens with median 300
WH_PER_TOKEN = 10.2 / 5200 * 1000 / 3600  # Nemotron: 10.2 kW node at a constant 5,200 tokens/s, per unit PUE x PU


def _study(write, models=(NEMOTRON,), extra="", uncertainty="false", name="two.toml"):
    quoted = ", ".join(f'"{m}"' for m in models)
    return load_study(
        write(
            name,
            f"""
[study]
name = "two"
scenario = "traditional"
priors = ["{PRIORS}"]
models = [{quoted}]
draws = 16000
seed = 3
throughput_uncertainty = {uncertainty}
{extra}
[intervals]
design = "two-level"
outer_draws = 1000
""",
        )
    )


def _state_of_knowledge(study):
    """PUE x PU, the only epistemic factor that varies for Nemotron: log-normal (mu, sigma)."""
    pue, pu = (study.priors.get(n).distribution.frozen for n in ("pue", "power_utilisation"))
    return math.log(pue.kwds["scale"] * pu.kwds["scale"]), math.hypot(pue.kwds["s"], pu.kwds["s"])


def _pooled_quantile(study, prob):
    """Quantile of E = c W round(X): P(E <= x) = E_W[1 - exp(-(floor(x / (c W)) + 1/2) / mean)], W log-normal."""
    mu, sigma = _state_of_knowledge(study)
    z = np.linspace(-9, 9, 200_001)
    weights = stats.norm.pdf(z) * (z[1] - z[0])
    w = np.exp(mu + sigma * z)

    def cdf(x):
        tokens = np.floor(x / (WH_PER_TOKEN * w))
        return np.sum(weights * np.where(tokens >= 0, 1 - np.exp(-(tokens + 0.5) / MEAN_TOKENS), 0.0))

    return optimize.brentq(lambda x: cdf(x) - prob, 1e-6, 50.0, xtol=1e-12)


@pytest.fixture(scope="module")
def closed_form(tmp_path_factory):
    folder = tmp_path_factory.mktemp("closed")

    def write(name, text):
        (folder / name).write_text(text)
        return folder / name

    study = _study(write)
    return study, run_study(study).records


def test_mean_energy_is_the_closed_form_epistemic_lognormal(closed_form):
    study, records = closed_form
    record = next(r for r in records if r["quantity"] == "mean_energy_wh")
    mu, sigma = _state_of_knowledge(study)
    mean_tokens = math.exp(-0.5 / MEAN_TOKENS) / (1 - math.exp(-1 / MEAN_TOKENS))  # E[round(X)], X exponential
    law = stats.lognorm(sigma, scale=WH_PER_TOKEN * mean_tokens * math.exp(mu))
    assert record["draws"] == record["outer_draws"] == 1000 and record["inner_draws"] == 16000
    for name, prob in QUANTILES.items():
        assert abs(record[name] - law.ppf(prob)) <= 4 * record[f"mcse_{name}"], name
    assert abs(record["mean"] - law.mean()) <= 4 * record["mcse_mean"]


def test_pooled_per_query_energy_is_covered_within_its_clustered_mcse(closed_form):
    study, records = closed_form
    record = next(r for r in records if r["quantity"] == "energy_wh")
    for name, prob in QUANTILES.items():
        assert abs(record[name] - _pooled_quantile(study, prob)) <= 4 * record[f"mcse_{name}"], name
    mean_record = next(r for r in records if r["quantity"] == "mean_energy_wh")
    assert record["mean"] == mean_record["mean"]  # law of total expectation: one estimate of one number
    assert record["p95"] - record["p5"] > 2 * (mean_record["p95"] - mean_record["p5"])  # aleatory spread on top


def test_results_do_not_depend_on_chunks_or_workers(write):
    study = _study(write, models=(NEMOTRON, "Llama 3.1 70B"), uncertainty="true")
    runs = [tl.two_level(study, outer=30, inner=16_000, outer_chunk=c, workers=w) for c, w in ((30, 1), (7, 2), (1, 2))]
    assert runs[0].attrs["outer_draws"] == 30
    for other in runs[1:]:
        xr.testing.assert_identical(runs[0], other)


def test_whole_number_lookup_gives_the_draw_by_draw_numbers(write, monkeypatch):
    study = _study(write, models=(NEMOTRON, "Mixtral 8x22B"), uncertainty="true")
    looked_up = tl.two_level(study, outer=12, inner=16_000, outer_chunk=5)
    monkeypatch.setattr(tl, "lookup_low", lambda *args: None)
    by_draw = [tl.two_level(study, outer=12, inner=16_000, outer_chunk=c) for c in (12, 5)]
    xr.testing.assert_identical(*by_draw)
    xr.testing.assert_allclose(looked_up, by_draw[0], rtol=1e-12)


def test_a_longer_outer_run_extends_a_shorter_one(write):
    study = _study(write)
    short, long = tl.two_level(study, outer=10, inner=2_000), tl.two_level(study, outer=25, inner=2_000, keep_inner=50)
    np.testing.assert_array_equal(short["mean_energy_wh"], long["mean_energy_wh"].isel(outer=slice(0, 10)))


def test_studies_run_with_one_seed_share_their_states_of_knowledge(write):
    plain = tl.two_level(_study(write), outer=20, inner=100)
    extra = '[pathways]\nnames = ["model"]\n'
    with_pathway = tl.two_level(_study(write, extra=extra, uncertainty="true", name="other.toml"), outer=20, inner=100)
    for name in ("pue", "power_utilisation"):
        np.testing.assert_array_equal(plain[name], with_pathway[name])


def test_a_study_moves_a_prior_between_levels(write):
    moved = _study(write, extra='\n[priors.output_tokens]\nkind = "epistemic"\n')
    epistemic, aleatory = tl.split_levels(moved)
    assert "output_tokens" in epistemic and aleatory == ["input_tokens"]
    result = tl.two_level(moved, outer=50, inner=500)
    energy = result["energy_wh"].sel(model=NEMOTRON)
    assert bool((energy == energy.isel(kept=0)).all())  # nothing varies from query to query any more
    np.testing.assert_allclose(result["mean_energy_wh"].sel(series=NEMOTRON, pathway="baseline"), energy.isel(kept=0))


def test_blends_and_pathways_act_on_each_state_of_knowledge(write):
    extra = '[blends.mix]\nmembers = ["Llama 3.1 70B", "Mixtral 8x22B"]\n\n[pathways]\nnames = ["model"]\n'
    study = _study(write, models=("Llama 3.1 70B", "Mixtral 8x22B"), extra=extra)
    result = tl.two_level(study, outer=40, inner=1_000)
    mean = result["mean_energy_wh"]
    np.testing.assert_allclose(
        mean.sel(series="mix"), mean.sel(series=["Llama 3.1 70B", "Mixtral 8x22B"]).mean("series")
    )
    divisor = result["pathway_model"].sel(model="Mixtral 8x22B")
    np.testing.assert_allclose(
        mean.sel(series="Mixtral 8x22B", pathway="model"),
        mean.sel(series="Mixtral 8x22B", pathway="baseline") / divisor,
    )
    assert list(result["pathway"].values) == ["baseline", "model", "combined"]
    # one state of knowledge for all models: the same PUE for both
    np.testing.assert_array_equal(result["pue"].isel(model=0), result["pue"].isel(model=1))


def test_two_level_study_runs_from_the_cli(cli, tmp_path):
    out = tmp_path / "out"
    code, _stdout, err = cli("run", "two_level_traditional", "--draws", "2000", "--out", out, "--quiet")
    assert code == 0 and err == ""
    records = json.loads((out / "summary.json").read_text())
    blend = {r["quantity"]: r for r in records if r["series"] == "blend" and r["pathway"] == "baseline"}
    assert set(blend) == {"energy_wh", "mean_energy_wh"}
    for r in blend.values():
        assert {"hdi_low", "hdi_high", "mcse_p5", "mcse_median", "mcse_p95", "mcse_mean"} <= set(r)
        assert r["outer_draws"] == 2000 and r["inner_draws"] == 2000
    # the credible interval of the mean is far narrower than the spread of single queries
    assert (
        blend["mean_energy_wh"]["p95"] - blend["mean_energy_wh"]["p5"]
        < blend["energy_wh"]["p95"] - blend["energy_wh"]["p5"]
    )
    assert {r["pathway"] for r in records if r["series"] == "blend"} == {
        "baseline",
        "model",
        "serving",
        "hardware",
        "combined",
    }
    samples = xr.open_dataset(out / "samples.nc", engine="h5netcdf")
    assert samples["mean_energy_wh"].dims == ("series", "pathway", "outer") and samples.attrs["design"] == "two-level"
    idata = az.from_netcdf(out / "inference.nc")
    assert idata.prior["mean_energy_wh"].dims == ("chain", "draw", "series", "pathway")
    assert idata.prior_predictive["energy_wh"].dims == ("chain", "draw", "model")
    table = az.summary(idata, group="prior", var_names=["mean_energy_wh"], kind="stats")
    assert table.loc["mean_energy_wh[blend, baseline]", "mean"] == pytest.approx(
        blend["mean_energy_wh"]["mean"], rel=1e-3
    )


def test_dirichlet_shares_have_the_dirichlet_moments():
    """Blend shares with concentration a over k members: mean 1/k, variance (1/k)(1 - 1/k) / (k a + 1), sum one."""
    from dataclasses import replace as _replace

    import numpy as _np

    from uqenergy import load_study
    from uqenergy.analyses.two_level import series_weights

    study = load_study("two_level_traditional")
    (blend,) = study.blends
    in_series = _np.vstack([_np.eye(5, dtype=bool), _np.array([[True, True, True, False, False]])])
    weights = series_weights(_replace(study, blends=[blend]), in_series, 20_000, seed=7)
    shares = weights[-1, :3]
    k, a = 3, blend.concentration
    _np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    _np.testing.assert_allclose(shares.mean(axis=1), 1 / k, atol=0.005)
    _np.testing.assert_allclose(shares.var(axis=1), (1 / k) * (1 - 1 / k) / (k * a + 1), rtol=0.05)
    assert _np.all(weights[-1, 3:] == 0)


SHARE_PRIORS = """[priors.reasoning_share]
dist = "beta"
alpha = 9.0
beta = 1.0
unit = "1"
bounds = [0.0, 1.0]
kind = "epistemic"
source = "test"

[priors.reasoning_draw]
dist = "uniform"
low = 0.0
high = 1.0
unit = "1"
bounds = [0.0, 1.0]
kind = "aleatory"
source = "test"
"""


def _reasoning_study(write, extra=""):
    """Nemotron at a constant 5,200 tokens/s, the fleet's epistemic token multiplier and a reasoning share."""
    write("share.toml", SHARE_PRIORS)
    return load_study(
        write(
            "reasoning.toml",
            f"""
[study]
name = "reasoning"
scenario = "test-time"
priors = ["{PRIORS}", "fleet", "share.toml"]
models = ["{NEMOTRON}"]
draws = 20000
seed = 5
{extra}
[intervals]
design = "two-level"
outer_draws = 400
""",
        )
    )


def test_the_mean_of_a_reasoning_deployment_is_linear_in_the_share_and_the_multiplier(write):
    """At a constant throughput energy is proportional to tokens, so under each state of knowledge the mean is
    c x PUE x PU x E[round(X)] x (1 - share + share x multiplier): the interval of the mean carries both priors
    through this closed form, state by state, to within the inner Monte Carlo error."""
    result = tl.two_level(_reasoning_study(write))
    state = result.sel(model=NEMOTRON)
    share, multiplier = state["reasoning_share"].values, state["output_token_multiplier"].values
    mean_tokens = math.exp(-0.5 / MEAN_TOKENS) / (1 - math.exp(-1 / MEAN_TOKENS))  # E[round(X)], X exponential
    second = (math.exp(-0.5 / MEAN_TOKENS) + math.exp(-1.5 / MEAN_TOKENS)) / (1 - math.exp(-1 / MEAN_TOKENS)) ** 2
    factor = 1 - share + share * multiplier
    expected = WH_PER_TOKEN * state["pue"].values * state["power_utilisation"].values * mean_tokens * factor
    # relative standard error of one state's mean of round(X) x (multiplier or 1) over 20,000 queries
    spread = np.sqrt(second * (share * multiplier**2 + 1 - share) / (mean_tokens * factor) ** 2 - 1)
    observed = result["mean_energy_wh"].sel(series=NEMOTRON, pathway="baseline").values
    assert np.all(np.abs(observed / expected - 1) < 5 * spread / math.sqrt(20000))
    assert share.min() < 0.8 and multiplier.max() / multiplier.min() > 10  # both priors really vary


def test_pinning_the_reasoning_share_or_the_multiplier_narrows_the_interval_of_the_mean(write):
    """The same states of knowledge (one seed) with one prior fixed at its median: the spread of ln(mean) drops by
    that prior's own share of it."""

    def log_means(extra=""):
        result = tl.two_level(_reasoning_study(write, extra), inner=4000)
        return np.log(result["mean_energy_wh"].sel(series=NEMOTRON, pathway="baseline").values)

    drawn = log_means()
    share = log_means('[priors.reasoning_share]\ndist = "fixed"\nvalue = 0.926\n')
    multiplier = log_means('[priors.output_token_multiplier]\ndist = "fixed"\nvalue = 15.0\n')
    assert np.var(share) < np.var(drawn) and np.var(multiplier) < 0.5 * np.var(drawn)
    assert np.ptp(np.quantile(multiplier, [0.05, 0.95])) < 0.5 * np.ptp(np.quantile(drawn, [0.05, 0.95]))
    # Var ln(1 - s + s m) at m = 15 for s ~ Beta(9, 1): what pinning the share takes out
    s = stats.beta(9, 1).ppf((np.arange(100_000) + 0.5) / 100_000)
    assert np.var(drawn) - np.var(share) == pytest.approx(np.var(np.log(1 - s + 15 * s)), rel=0.5)

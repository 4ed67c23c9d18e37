"""Credible intervals and Monte Carlo standard errors: closed forms, ArviZ agreement, coverage over seeds."""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from uqenergy.analyses.arviz_data import inference_data
from uqenergy.analyses.intervals import (
    FIGURES,
    QUANTILES,
    equal_tailed_interval,
    figure_table,
    hdi_interval,
    quantile_mcse,
    summarize,
)
from uqenergy.analyses.run import run_study
from uqenergy.config.study import load_study

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

PRIORS = "joule2026"
NEMOTRON = "Llama-3.1 Nemotron Ultra 253B"  # two benchmark rows: a constant 5,200 tokens/s


def exact_hdi(law, level):
    """Shortest interval of a continuous law holding ``level``: minimise the width over the lower tail mass."""
    best = optimize.minimize_scalar(
        lambda p: law.ppf(p + level) - law.ppf(p),
        bounds=(1e-12, 1 - level - 1e-12),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return law.ppf([best.x, best.x + level])


def test_equal_tailed_and_hdi_intervals_match_a_lognormal():
    law, level = stats.lognorm(0.5), 0.8
    rng = np.random.default_rng(3)
    # the HDI endpoint's Monte Carlo SD, from repeats (it is noisier than a quantile: the width is flat at its minimum)
    repeats = np.array([hdi_interval(law.rvs(20_000, random_state=rng), level) for _ in range(20)])
    sd_at_200k = repeats.std(axis=0, ddof=1) * np.sqrt(20_000 / 200_000)
    draws = law.rvs(200_000, random_state=rng)
    low, high = hdi_interval(draws, level)
    assert np.all(np.abs([low, high] - exact_hdi(law, level)) <= 4 * sd_at_200k)
    for bound, prob in zip(equal_tailed_interval(draws, level), (0.1, 0.9)):
        assert abs(bound - law.ppf(prob)) <= 4 * quantile_mcse(draws, prob)
    assert high - low < np.subtract(*equal_tailed_interval(draws, level)[::-1])  # skewed: the HDI is shorter
    assert np.mean((draws >= low) & (draws <= high)) == pytest.approx(level, abs=1e-4)


@pytest.mark.parametrize("size, level", [(10, 0.5), (11, 0.9), (1_000, 0.94), (12_345, 0.9)])
def test_hdi_is_arviz_hdi(size, level):
    draws = np.random.default_rng(size).lognormal(size=size)
    assert hdi_interval(draws, level) == tuple(float(x) for x in az.hdi(draws, hdi_prob=level))
    assert (summarize(draws, level)["hdi_low"], summarize(draws, level)["hdi_high"]) == hdi_interval(draws, level)


def test_hdi_of_a_symmetric_law_is_the_equal_tailed_interval():
    draws = np.random.default_rng(4).normal(size=100_000)
    low, high = hdi_interval(draws, 0.9)
    assert low == pytest.approx(stats.norm.ppf(0.05), abs=0.03) and high == pytest.approx(
        stats.norm.ppf(0.95), abs=0.03
    )


@pytest.mark.parametrize("prob", QUANTILES.values())
def test_closed_form_quantile_mcse_agrees_with_arviz(prob):
    draws = np.random.default_rng(5).lognormal(0.0, 0.5, 20_000)
    ours, theirs = quantile_mcse(draws, prob), float(az.mcse(draws, method="quantile", prob=prob))
    assert 0.75 <= ours / theirs <= 1.33  # ArviZ estimates the ESS from the draws; for independent draws it is about n


def test_summary_mcse_agrees_with_arviz_for_the_mean_and_every_quantile():
    draws = np.random.default_rng(6).lognormal(0.0, 0.5, 20_000)
    record = summarize(draws)
    assert record["mcse_mean"] / float(az.mcse(draws, method="mean")) == pytest.approx(1.0, abs=0.1)
    for name, prob in QUANTILES.items():
        assert record[f"mcse_{name}"] / float(az.mcse(draws, method="quantile", prob=prob)) == pytest.approx(
            1.0, abs=0.3
        )


def _spread_and_reported(make_draws, reps=300):
    records = [summarize(make_draws()) for _ in range(reps)]
    spread = {f: np.std([r[f] for r in records], ddof=1) for f in FIGURES}
    reported = {f: np.mean([r[f"mcse_{f}"] for r in records]) for f in FIGURES}
    return spread, reported


def test_reported_mcse_matches_the_spread_over_seeds():
    # 300 repeats: the observed SD itself carries about 4% relative error, so a factor 1.25 is ~5 of its SEs
    rng = np.random.default_rng(7)
    spread, reported = _spread_and_reported(lambda: rng.lognormal(0.0, 0.6, 4_000))
    for f in FIGURES:
        assert 0.8 <= reported[f] / spread[f] <= 1.25, f


def test_clustered_mcse_matches_the_spread_and_the_independent_formula_would_not():
    # 100 clusters (outer draws) of 40 draws sharing a lognormal factor: the two-level pooled sample's structure
    rng = np.random.default_rng(8)

    def clustered():
        return rng.lognormal(0.0, 0.4, (100, 1)) * rng.exponential(1.0, (100, 40))

    spread, reported = _spread_and_reported(clustered)
    for f in FIGURES:
        assert 0.75 <= reported[f] / spread[f] <= 1.33, f
    naive = [np.mean([quantile_mcse(clustered(), 0.5) for _ in range(50)]), spread["median"]]
    assert naive[0] < 0.7 * naive[1]  # treating the 4,000 draws as independent understates the error


def _closed_form_study(write, extra=""):
    return write(
        "closed.toml",
        f"""
[study]
name = "closed"
scenario = "closed-form"
priors = ["{PRIORS}"]
models = ["{NEMOTRON}"]
draws = 200000
seed = 11

[priors.output_tokens]
dist = "fixed"
value = 300
{extra}""",
    )


def closed_form_energy(study):
    """E = PUE x PU x (10.2 kW x 300 tokens / 5,200 tokens/s / 3.6): a product of log-normals, itself log-normal."""
    pue, pu = (study.priors.get(name).distribution.frozen for name in ("pue", "power_utilisation"))
    scale = 10.2 * 300 / 5200 / 3.6 * pue.kwds["scale"] * pu.kwds["scale"]
    return stats.lognorm(np.hypot(pue.kwds["s"], pu.kwds["s"]), scale=scale)


def test_product_of_lognormals_is_covered_within_mcse(write):
    study = load_study(_closed_form_study(write))
    law = closed_form_energy(study)
    record = run_study(study).records[0]
    for name, prob in QUANTILES.items():
        assert abs(record[name] - law.ppf(prob)) <= 4 * record[f"mcse_{name}"], name
    assert abs(record["mean"] - law.mean()) <= 4 * record["mcse_mean"]
    exact = exact_hdi(law, 0.9)
    assert record["hdi_level"] == 0.9 and abs(record["hdi_low"] - exact[0]) < 0.05 * exact[0]
    assert abs(record["hdi_high"] - exact[1]) < 0.05 * exact[1]


def test_hdi_level_is_a_study_setting(write):
    study = load_study(_closed_form_study(write, "\n[intervals]\nhdi_level = 0.5\n"), draws=20_000)
    record = run_study(study).records[0]
    law = closed_form_energy(study)
    assert record["hdi_level"] == 0.5
    assert record["hdi_high"] - record["hdi_low"] < law.ppf(0.75) - law.ppf(0.25)


def test_figure_table_lists_every_figure_with_its_mcse(small_study):
    records = run_study(small_study, draws=5_000).records
    rows = figure_table(records)
    assert len(rows) == len(records) * len(FIGURES)
    for row in rows:
        record = next(r for r in records if all(r[k] == row[k] for k in ("series", "pathway", "quantity")))
        assert row["value"] == record[row["figure"]] and row["mcse"] == record[f"mcse_{row['figure']}"] > 0
        assert row["relative_mcse"] == pytest.approx(row["mcse"] / abs(row["value"]))


def test_inference_data_works_with_arviz(small_study):
    result = run_study(small_study, draws=3_000)
    idata = inference_data(result.samples)
    assert idata.prior.sizes["chain"] == 1 and idata.prior.sizes["draw"] == 3_000
    table = az.summary(idata, group="prior", var_names=["energy_wh"], kind="stats", hdi_prob=0.9)
    mean = result.samples["energy_wh"].sel(model="Llama 3.1 70B").mean().item()
    assert table.loc["energy_wh[Llama 3.1 70B]", "mean"] == pytest.approx(mean, abs=1e-3)


@pytest.mark.parametrize(
    "table, key",
    [
        ("hdi_level = 1.5", "intervals.hdi_level"),
        ("levels = 0.9", "intervals.levels"),
        ('design = "nested"', "intervals.design"),
        ("relative_tolerance = 0.01\nabsolute_tolerance_wh = 0.001", "intervals.absolute_tolerance_wh"),
        ("batch_draws = 1000", "intervals.batch_draws"),
        ("outer_draws = 100", "intervals.outer_draws"),
        ('design = "two-level"\nrelative_tolerance = 0.01', "intervals.relative_tolerance"),
        ('design = "two-level"', "blends.blend-paper.trim"),
        ("relative_tolerance = 0", "intervals.relative_tolerance"),
    ],
)
def test_bad_intervals_settings_are_input_errors(cli, small_study, table, key):
    path = small_study.with_name("bad.toml")
    path.write_text(small_study.read_text() + "\n[intervals]\n" + table + "\n")
    code, _, err = cli("validate", path)
    assert code == 2 and f"{path}: {key}:" in err and "Traceback" not in err

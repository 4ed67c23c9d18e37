"""The size regression: its exact posterior against closed forms, recovery of known coefficients,
coverage records, the closed-model study and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from conftest import PRIORS_DIR
from uqenergy.analyses.closed_models import run_closed_models
from uqenergy.analyses.predictive import (
    HeldOut,
    compare_forms,
    coverage_records,
    inference_data,
    inside,
    leave_one_model_out,
)
from uqenergy.config.files import resolve
from uqenergy.config.measured import read_measured
from uqenergy.engine.predictive import (
    COEFFICIENTS,
    PRIOR_BETA_SD,
    PRIOR_SIGMA2_SCALE,
    PRIOR_SIGMA2_SHAPE,
    RegressionData,
    conjugate_posterior,
    fit_posterior,
    gpu_count_for_weights,
    predict_new_model,
    regression_data,
)

COVERAGE_KEYS = {"form", "level", "nominal", "observed", "observed_per_model", "n_points", "n_models", "gpu"}


@pytest.fixture(scope="module")
def data() -> RegressionData:
    return regression_data(read_measured(resolve("mlenergy_v3", "priors", suffix=".csv")).configurations)


def test_conjugate_posterior_matches_numerical_integration():
    """One covariate: the normal-inverse-gamma posterior mean and variance of beta against brute-force
    integration of likelihood x prior over (beta, sigma^2)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 1))
    y = 0.7 * x[:, 0] + 0.3 * rng.normal(size=12)
    mean, cov, shape, scale = conjugate_posterior(x, y)

    def density(beta, sigma2):
        prior = stats.norm.pdf(beta, 0, np.sqrt(sigma2) * PRIOR_BETA_SD) * stats.invgamma.pdf(
            sigma2, PRIOR_SIGMA2_SHAPE, scale=PRIOR_SIGMA2_SCALE
        )
        return prior * np.prod(stats.norm.pdf(y, beta * x[:, 0], np.sqrt(sigma2)))

    limits = ([0.0, 1.4], [1e-4, 1.0])
    moments = [
        integrate.nquad(lambda b, s, k=k: b**k * density(b, s), limits, opts={"limit": 100})[0] for k in range(3)
    ]
    post_mean = moments[1] / moments[0]
    post_var = moments[2] / moments[0] - post_mean**2
    assert mean[0] == pytest.approx(post_mean, rel=1e-4)
    # marginal of beta: Student-t with 2 * shape dof and scale^2 = (scale / shape) * cov
    t_var = scale / shape * cov[0, 0] * (2 * shape) / (2 * shape - 2)
    assert t_var == pytest.approx(post_var, rel=1e-3)


def test_exact_draws_follow_the_student_t_marginal(data):
    """The pooled form's independent draws of each coefficient follow its closed-form Student-t marginal."""
    mean, cov, shape, scale = conjugate_posterior(data.covariates, data.log_energy)
    posterior = fit_posterior(data, "pooled", chains=4, draws=5000, seed=1)
    beta = posterior.flat("beta")
    for j in range(len(COEFFICIENTS)):
        marginal = stats.t(2 * shape, loc=mean[j], scale=np.sqrt(scale / shape * cov[j, j]))
        # KS test at n = 20,000: a wrong scale or centre by a few percent fails it
        assert stats.kstest(beta[:, j], marginal.cdf).pvalue > 1e-3, COEFFICIENTS[j]


def _simulate(data: RegressionData, beta, tau, sigma, rng) -> RegressionData:
    effects = tau * rng.standard_normal(len(data.models))
    y = data.covariates @ beta + effects[data.model_index] + sigma * rng.standard_normal(data.log_energy.size)
    return RegressionData(data.covariates, y, data.model_index, data.models, data.gpus)


@pytest.mark.slow
def test_recovery_of_known_coefficients_and_new_model_coverage(data):
    """Data simulated from known coefficients on the measured design: over repeated fits the 90% posterior
    intervals hold the true coefficients, and the 90% predictive intervals of unseen models hold their
    points, as often as a binomial count allows.

    Tolerance: each of R = 20 fits gives one interval per coefficient; if the intervals are calibrated, the
    hits of one coefficient are Binomial(20, 0.9) and fall below its 0.1% quantile (13) with probability
    0.001. New-model points: 5 independent unseen models per fit, one point each, 100 in all,
    Binomial(100, 0.9), checked between its 0.1% and 99.9% quantiles."""
    truth = np.array([-1.0, 0.3, 0.35, -0.5, 0.4, 0.05, 0.15, -0.7, 0.25, 0.9])
    tau, sigma, repeats, new_models = 0.25, 0.25, 20, 5
    rng = np.random.default_rng(2024)
    coefficient_hits = np.zeros(truth.size, dtype=int)
    new_hits = 0
    for r in range(repeats):
        simulated = _simulate(data, truth, tau, sigma, rng)
        posterior = fit_posterior(simulated, "model-effect", chains=2, draws=500, warmup=200, seed=r)
        low, high = np.quantile(posterior.flat("beta"), [0.05, 0.95], axis=0)
        coefficient_hits += (low <= truth) & (truth <= high)
        rows = rng.integers(data.log_energy.size, size=new_models)
        x = data.covariates[rows]
        y_new = x @ truth + tau * rng.standard_normal(new_models) + sigma * rng.standard_normal(new_models)
        draws = predict_new_model(posterior, np.tile(x, (4000, 1)), rng).reshape(4000, new_models)
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        new_hits += int(np.sum((lo <= y_new) & (y_new <= hi)))
    assert coefficient_hits.min() >= stats.binom.ppf(0.001, repeats, 0.9), dict(zip(COEFFICIENTS, coefficient_hits))
    n = repeats * new_models
    assert stats.binom.ppf(0.001, n, 0.9) <= new_hits <= stats.binom.ppf(0.999, n, 0.9), new_hits


def test_inside_is_the_central_interval():
    """Uniform PITs (a calibrated model) fall inside each central interval at its nominal rate."""
    pit = (np.arange(10_000) + 0.5) / 10_000
    for level in (0.1, 0.5, 0.9):
        assert inside(pit, level).mean() == pytest.approx(level, abs=1e-4)


def test_coverage_records_schema_and_counts(data):
    """coverage.json records: the documented keys and types, overall and per GPU, counts of points and models."""
    held = leave_one_model_out(data, "pooled", seed=1, predictive_draws=500)
    records = coverage_records(held)
    json.dumps(records, allow_nan=False)
    assert all(set(r) == COVERAGE_KEYS for r in records)
    assert {r["gpu"] for r in records} == {"all", "H100", "B200"}
    overall = [r for r in records if r["gpu"] == "all"]
    assert all(r["n_points"] == data.log_energy.size and r["n_models"] == len(data.models) for r in overall)
    per_gpu = {r["gpu"]: r["n_points"] for r in records if r["gpu"] != "all" and r["nominal"] == 0.5}
    assert sum(per_gpu.values()) == data.log_energy.size
    for r in records:
        assert isinstance(r["level"], str) and 0 <= r["observed"] <= 1 and 0 < r["nominal"] < 1
    # observed coverage rises with the nominal level
    observed = [r["observed"] for r in overall]
    assert observed == sorted(observed)


def test_coverage_counts_a_hand_made_case():
    points = HeldOut(
        "f",
        pd.DataFrame(
            {"model": ["a", "a", "b", "b"], "gpu": ["H100"] * 4, "log_energy": 0.0, "pit": [0.5, 0.99, 0.3, 0.5]}
        ),
    )
    record = next(r for r in coverage_records(points, levels=(0.5,)) if r["gpu"] == "all")
    assert record["observed"] == 0.75  # 0.99 lies outside [0.25, 0.75]
    assert record["observed_per_model"] == 0.75  # (1/2 + 2/2) / 2
    assert (record["n_points"], record["n_models"]) == (4, 2)


def test_inference_data_groups_and_loo(data):
    forms = {
        name: inference_data(fit_posterior(data, name, chains=2, draws=300, warmup=200, seed=2), data)
        for name in ("pooled", "model-effect")
    }
    idata = forms["model-effect"]
    assert {"posterior", "posterior_predictive", "observed_data", "log_likelihood"} <= set(idata.groups())
    assert idata.log_likelihood["log_energy_per_token"].shape == (2, 300, data.log_energy.size)
    records = compare_forms(forms)
    assert [r["rank"] for r in records] == [0, 1]
    for r in records:
        assert r["k_good"] + r["k_ok"] + r["k_bad"] + r["k_very_bad"] == data.log_energy.size
    # a per-model effect explains what is shared by a model's configurations: it predicts better
    assert records[0]["form"] == "model-effect"


def test_gpu_count_holds_every_measured_configuration(data):
    """The memory rule never asks for more GPUs than a measured configuration used."""
    table = read_measured(resolve("mlenergy_v3", "priors", suffix=".csv"))
    rows = table.configurations
    count, capped = gpu_count_for_weights(
        [c.total_params_b for c in rows], [c.precision for c in rows], [c.gpu for c in rows]
    )
    assert not capped.any()
    assert np.all(count <= np.array([c.gpu_count for c in rows]))


@pytest.fixture(scope="module")
def closed():
    return run_closed_models("closed_models", draws=20_000, seed=5)


def test_closed_models_records(closed):
    assert {r["quantity"] for r in closed.records} == {"energy_wh", "mean_energy_wh", "median_energy_wh"}
    assert {r["series"] for r in closed.records} == {
        "GPT-4o",
        "GPT-4o mini",
        "Gemini Flash-class",
        "Claude Sonnet-class",
    }
    assert all(r["boundary"] == "facility" for r in closed.records)
    json.dumps(closed.records, allow_nan=False)
    assert np.isfinite(closed.samples["energy_wh"]).all()


def test_closed_models_mean_query_is_the_mean_over_queries(closed):
    """Law of total expectation: the mean per-query energy equals the mean of the per-state mean, within MCSE."""
    samples = closed.samples
    for model in samples["model"].values:
        per_query = samples["energy_wh"].sel(model=model).values
        per_state = samples["mean_energy_wh"].sel(model=model).values
        difference = per_query - per_state  # zero-mean given each state of knowledge
        assert abs(difference.mean()) < 4 * difference.std() / np.sqrt(difference.size)


def test_closed_models_follow_size(closed):
    """A larger model costs more per token: GPT-4o's median energy per token exceeds GPT-4o mini's."""
    median = closed.samples["gpu_energy_per_output_token_j"].median("draw")
    assert float(median.sel(model="GPT-4o")) > 3 * float(median.sel(model="GPT-4o mini"))


def test_every_closed_model_prior_names_its_source(closed):
    for model in closed.study.models:
        for quantity in model.quantities.values():
            assert quantity.prior.source.strip() and quantity.firmness


def test_run_closed_models_command(cli, tmp_path):
    code, out, err = cli("run", "closed_models", "--draws", "5000", "--out", tmp_path / "out")
    assert code == 0, err
    records = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(records) == 12
    assert "GPT-4o" in out
    assert "posterior predictive of the size regression" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_fit_command_writes_coverage(cli, tmp_path):
    code, _out, err = cli("fit", "--draws", "200", "--out", tmp_path / "fit")
    assert code == 0, err
    folder = tmp_path / "fit"
    coverage = json.loads((folder / "coverage.json").read_text())
    assert all(set(r) == COVERAGE_KEYS for r in coverage)
    for name in ("calibration.png", "pit.png", "held-out.png"):
        assert (folder / "figures" / name).is_file()
    assert {p.name for p in folder.glob("posterior-*.nc")} == {
        "posterior-pooled.nc",
        "posterior-model-effect.nc",
        "posterior-model-effect-t4.nc",
    }


GOOD_MODEL = """
[models."M"]
vendor = "V"
task = "lm-arena-chat"
[models."M".active_params_b]
dist = "lognormal"
p5 = 10
p95 = 50
firmness = "estimated"
estimated_by = "someone"
source = "a paper"
[models."M".total_params_b]
dist = "lognormal"
p5 = 20
p95 = 100
firmness = "rumoured"
source = "a forum"
[models."M".gpu]
dist = "categorical"
values = ["H100", "B200"]
firmness = "our assumption"
source = "ours"
[models."M".precision]
dist = "categorical"
values = ["fp8"]
firmness = "our assumption"
source = "ours"
"""
STUDY = f"""
[closed_models]
name = "c"
models_file = "models.toml"
models = ["M"]
priors = ["{PRIORS_DIR / "measured.toml"}"]
draws = 100
"""
CLOSED_CASES = [
    ("closed-firmness-unknown", ('firmness = "rumoured"', 'firmness = "likely"'), "unknown firmness 'likely'"),
    ("closed-estimated-without-party", ('estimated_by = "someone"\n', ""), "estimated_by: missing for an estimated"),
    ("closed-source-missing", ('source = "a forum"\n', ""), "total_params_b.source: missing"),
    ("closed-gpu-unknown", ('values = ["H100", "B200"]', 'values = ["H100", "TPUv5"]'), "unknown gpu 'TPUv5'"),
    (
        "closed-gpu-continuous",
        ('dist = "categorical"\nvalues = ["H100", "B200"]', 'dist = "uniform"\nlow = 1\nhigh = 2'),
        "'uniform' does not fit gpu",
    ),
    (
        "closed-params-not-positive",
        ('dist = "lognormal"\np5 = 20\np95 = 100', 'dist = "normal"\nmean = 20\nsd = 30'),
        "puts mass at or below zero parameters",
    ),
    (
        "closed-quantity-missing",
        (
            '[models."M".precision]\ndist = "categorical"\nvalues = ["fp8"]\nfirmness = "our assumption"\nsource = "ours"\n',
            "",
        ),
        "precision: missing",
    ),
    ("closed-task-unknown", ('task = "lm-arena-chat"', 'task = "poetry"'), "unknown task 'poetry'"),
]


@pytest.mark.parametrize("row", CLOSED_CASES, ids=[c[0] for c in CLOSED_CASES])
def test_closed_model_prior_errors(row, cli, tmp_path):
    _name, (old, new), expected = row
    assert old in GOOD_MODEL
    (tmp_path / "models.toml").write_text(GOOD_MODEL.replace(old, new, 1))
    (tmp_path / "study.toml").write_text(STUDY)
    code, out, err = cli("run", tmp_path / "study.toml", "--out", tmp_path / "out")
    assert code == 2, (out, err)
    assert err.startswith("uqenergy: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert not (tmp_path / "out").exists()


STUDY_CASES = [
    ("closed-study-unknown-model", ('models = ["M"]', 'models = ["GPT-9"]'), "unknown name 'GPT-9'"),
    ("closed-study-unknown-form", ("draws = 100", 'draws = 100\nform = "cubic"'), "unknown form 'cubic'"),
    ("closed-study-unknown-boundary", ("draws = 100", 'draws = 100\nboundary = "planet"'), "unknown boundary 'planet'"),
    (
        "closed-study-missing-prior",
        (f'priors = ["{PRIORS_DIR / "measured.toml"}"]', f'priors = ["{PRIORS_DIR / "boundaries.toml"}"]'),
        "prior 'concurrency' is not defined",
    ),
]


@pytest.mark.parametrize("row", STUDY_CASES, ids=[c[0] for c in STUDY_CASES])
def test_closed_model_study_errors(row, cli, tmp_path):
    _name, (old, new), expected = row
    (tmp_path / "models.toml").write_text(GOOD_MODEL)
    (tmp_path / "study.toml").write_text(STUDY.replace(old, new, 1))
    code, out, err = cli("run", tmp_path / "study.toml", "--out", tmp_path / "out")
    assert code == 2, (out, err)
    assert err.startswith("uqenergy: error: ") and err.count("\n") == 1, err
    assert expected in err, err


def test_good_closed_model_study_runs(cli, tmp_path):
    (tmp_path / "models.toml").write_text(GOOD_MODEL)
    (tmp_path / "study.toml").write_text(STUDY)
    code, _out, err = cli("run", tmp_path / "study.toml", "--out", tmp_path / "out", "--quiet")
    assert code == 0, err

"""Non-production / production energy ratio: a distribution, with closed-form checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from uqenergy.analyses.compare import run_compare
from uqenergy.analyses.overstatement import paired_inputs
from uqenergy.config.compare import load_compare_study
from uqenergy.config.distributions import Z95
from uqenergy.config.files import data_dir
from uqenergy.config.study import load_study
from uqenergy.engine import energy
from uqenergy.engine.throughput import study_fits

PRIORS = data_dir("priors")

STUDY = f"""
[study]
name = "one_model"
scenario = "traditional"
priors = ["{PRIORS / "joule2026.toml"}"]
throughput = "{PRIORS / "throughput_h100.csv"}"
models = ["Llama 3.1 405B"]
draws = 40000
seed = 11

[blends.blend]
top = 1
"""

COMPARE = f"""
[compare]
studies = ["one_model.toml"]

[overstatement]
priors = ["{PRIORS / "non_production.toml"}"]
claimed_range = [4, 20]
claim_source = "test"
"""


def _log_normal(p5: float, p95: float) -> tuple[float, float]:
    sigma = math.log(p95 / p5) / (2 * Z95)
    return math.log(p5) + Z95 * sigma, sigma


def test_throughput_scale_divides_throughput(write):
    study = load_study(write("one_model.toml", STUDY))
    inputs = xr.Dataset(
        {"pue": 1.2, "node_power_kw": 10.2, "power_utilisation": 0.7, "input_tokens": 500.0, "output_tokens": 300.0}
    )
    fits = study_fits(study).isel(model=0)
    plain = energy.evaluate(inputs, fits)
    slower = energy.evaluate(inputs.assign(throughput_scale=4.0), fits)
    assert float(slower["tokens_per_s"]) == pytest.approx(float(plain["tokens_per_s"]) / 4.0, rel=1e-12)
    assert float(slower["energy_wh"]) == pytest.approx(4.0 * float(plain["energy_wh"]), rel=1e-12)


def test_non_production_priors_run_as_an_ordinary_study(write, cli, tmp_path):
    path = write(
        "np.toml", STUDY.replace("joule2026.toml", "non_production.toml").replace("draws = 40000", "draws = 2000")
    )
    assert "throughput_scale" in load_study(path).factors
    code, _, err = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err


def test_paired_inputs_share_the_query_not_the_unknowns(write):
    study = load_study(write("one_model.toml", STUDY))
    spec = load_compare_study(write("c.toml", COMPARE))
    production, non_production = paired_inputs(study, spec.non_production_priors[study.scenario], 0, 20000)
    assert np.array_equal(production["output_tokens"].values, non_production["output_tokens"].values)
    assert "throughput_scale" in non_production and "throughput_scale" not in production
    correlation = np.corrcoef(np.log(production["pue"].values.ravel()), np.log(non_production["pue"].values.ravel()))[
        0, 1
    ]
    assert abs(correlation) < 0.03  # independent epistemic unknowns (4 sigma for 20,000 draws is 0.028)


def test_ratio_matches_the_closed_form_log_normal(write):
    """ln ratio = ln PUE_np - ln PUE_p - ln PU_p + ln scale (PU_np = 1): a sum of independent normals."""
    write("one_model.toml", STUDY)
    result = run_compare(write("c.toml", COMPARE))
    per_query, of_means = result.overstatement
    parts = [_log_normal(1.4, 1.8), _log_normal(1.05, 1.6), _log_normal(0.4, 0.9), _log_normal(2, 20)]
    mu = parts[0][0] - parts[1][0] - parts[2][0] + parts[3][0]
    sigma = math.sqrt(sum(s**2 for _, s in parts))
    law = stats.lognorm(s=sigma, scale=math.exp(mu))
    # Per state of knowledge both sides average the same token law through the same throughput fit, so the
    # ratio of means is the same per-token ratio: the same log-normal, drawn once per pair of states.
    for record, n in ((per_query, per_query["draws"]), (of_means, of_means["draws"])):
        for name, q in (("p5", 0.05), ("median", 0.5), ("p95", 0.95)):
            # standard error of a sample quantile: sqrt(q(1-q)/n) / density; allow 4 SE (plus 1% inner noise)
            se = math.sqrt(q * (1 - q) / n) / law.pdf(law.ppf(q))
            assert record[name] == pytest.approx(law.ppf(q), abs=4 * se + 0.01 * law.ppf(q))
        assert record["share_in_claimed_range"] == pytest.approx(law.cdf(20) - law.cdf(4), abs=0.04)
        assert record["series"] == "blend"
    assert per_query["quantity"] == "energy_ratio_non_production_to_production"
    assert of_means["quantity"] == "mean_energy_ratio_non_production_to_production"


def test_bundled_overstatement_study_gives_a_plausible_ratio(cli, tmp_path):
    out = tmp_path / "out"
    code, _stdout, err = cli("compare", "non_production_overstatement", "--draws", 5000, "--out", out, "--quiet")
    assert code == 0, err
    records = json.loads((out / "summary.json").read_text())
    assert {r["scenario"] for r in records} == {"traditional", "test-time"}
    for r in records:
        assert 1 < r["p5"] < r["median"] < r["p95"]
        assert 4 <= r["median"] <= 20  # non-production settings overstate, by a factor inside the paper's claim
        assert 0 < r["share_in_claimed_range"] < 1
    assert not (out / "compare.json").exists()

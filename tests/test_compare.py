"""Placing published estimates on our distributions: percentile, ratio interval, verdict, boundary, CLI."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from uqenergy.analyses.closed_models import run_closed_models
from uqenergy.analyses.compare import Scenario, format_table, place, run_compare
from uqenergy.config.boundaries import ladder_factor
from uqenergy.config.compare import load_compare_study
from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir
from uqenergy.config.study import load_study

PRIORS = data_dir("priors")
RECORD_FIELDS = {
    "estimate_id",
    "comparator",
    "interval",
    "value_wh",
    "statistic",
    "compared_statistic",
    "boundary",
    "scenario",
    "series",
    "percentile",
    "ratio_median",
    "ratio_p5",
    "ratio_p95",
    "verdict",
    "ours_p5_wh",
    "ours_median_wh",
    "ours_p95_wh",
    "per_query_percentile",
    "per_query_ratio_median",
    "per_query_ratio_p5",
    "per_query_ratio_p95",
    "per_query_verdict",
    "contributions",
}

SCENARIO = """
[study]
name = "{name}"
scenario = "{scenario}"
priors = ["{priors}"]
throughput = "{priors_dir}/throughput_h100.csv"
models = ["Llama 3.1 405B", "Llama 3.1 70B"]
draws = 4000
seed = 3

[priors.output_tokens]
median = {median}
source = "test"

[blends.blend]
top = 2
concentration = 4
"""

# value_wh of "formula" is the paper's equation at its stated assumptions: the audit must explain all of it.
FORMULA_WH = 1.2 * 10.2 * 0.7 * 500 / 4000 / 3.6


def _estimate(name: str, statistic: str, boundary: str, query_type: str = "traditional", value: float = 0.3) -> str:
    return f"""
[estimates.{name}]
value_wh = {value!r}
kind = "estimate"
statistic = "{statistic}"
boundary = "{boundary}"
subject = "s"
query_type = "{query_type}"
date = "2025"
citation = "c"
url = "https://example.org/{name}"
verified = {"false" if name == "mean_server" else "true"}
"""


STATISTICS = ("mean", "median", "unspecified")
RUNGS = ("accelerator", "server", "provisioned", "facility")
ESTIMATES = (
    "".join(_estimate(f"{s}_{b}", s, b) for s in STATISTICS for b in RUNGS)
    + _estimate("formula", "mean", "facility", value=FORMULA_WH)
    + """
[estimates.formula.assumptions]
output_tokens = 500
pue = 1.2
power_utilisation = 0.7
node_power_kw = 10.2
tokens_per_s = 4000
"""
    + _estimate("long", "median", "facility", "test-time", 40.0)
    + """
[estimates.long.assumptions]
pue = 1.12
output_tokens = 1500
input_tokens = 10000
"""
)

COMPARE = """
[compare]
name = "small_compare"
estimates = "estimates.toml"
studies = ["traditional.toml", "test_time.toml"]
series = "{series}"
outer_draws = 300
inner_draws = 400
"""


@pytest.fixture
def compare_study(write):
    for name, scenario, median in (("traditional", "traditional", 300), ("test_time", "test-time", 5000)):
        write(
            f"{name}.toml",
            SCENARIO.format(
                name=name, scenario=scenario, priors=PRIORS / "honest.toml", priors_dir=PRIORS, median=median
            ),
        )
    write("estimates.toml", ESTIMATES)
    return write("compare.toml", COMPARE.format(series="blend"))


def test_place_on_a_closed_form_distribution():
    """Log-normal draws on a uniform grid: percentile, ratios and verdict follow the quantile function."""
    law = stats.lognorm(s=0.8, scale=0.3)
    draws = law.ppf((np.arange(200_000) + 0.5) / 200_000)
    for q, verdict in ((0.5, "within"), (0.02, "below"), (0.06, "within"), (0.94, "within"), (0.99, "above")):
        value = float(law.ppf(q))
        r = place(value, draws)
        assert r["percentile"] == pytest.approx(100 * q, abs=0.01)
        assert r["verdict"] == verdict
        assert r["ratio_median"] == pytest.approx(value / 0.3, rel=1e-4)
        assert r["ratio_p5"] == pytest.approx(value / law.ppf(0.95), rel=1e-4)
        assert r["ratio_p95"] == pytest.approx(value / law.ppf(0.05), rel=1e-4)
        assert r["ratio_p5"] < r["ratio_median"] < r["ratio_p95"]


def test_run_compare_places_and_audits_every_estimate(compare_study):
    result = run_compare(compare_study)
    records = {r["estimate_id"]: r for r in result.records}
    assert set(records) == {f"{s}_{b}" for s in STATISTICS for b in RUNGS} | {"formula", "long"}
    for r in result.records:
        assert set(r) == RECORD_FIELDS
        # the audit explains the per-query gap
        assert sum(r["contributions"].values()) == pytest.approx(math.log(r["per_query_ratio_median"]), abs=1e-12)
        for prefix in ("", "per_query_"):
            percentile = r[f"{prefix}percentile"]
            expected = "below" if percentile < 5 else "above" if percentile > 95 else "within"
            assert r[f"{prefix}verdict"] == expected
        # our credible interval of the statistic is narrower than the per-query spread it leaves out
        assert r["ratio_p95"] / r["ratio_p5"] < r["per_query_ratio_p95"] / r["per_query_ratio_p5"]
        assert r["ours_median_wh"] == pytest.approx(r["value_wh"] / r["ratio_median"])
    assert records["long"]["scenario"] == "test-time" and records["mean_facility"]["scenario"] == "traditional"
    # no stated assumptions: the whole gap is unexplained
    assert records["mean_facility"]["contributions"] == {
        "unexplained": pytest.approx(math.log(records["mean_facility"]["per_query_ratio_median"]))
    }
    assert set(records["formula"]["contributions"]) == {
        "throughput",
        "power_utilisation",
        "pue",
        "tokens",
        "hardware",
        "unexplained",
    }
    unverified = [w for w in result.warnings if "verified = false" in w]
    assert len(unverified) == 1 and "mean_server" in unverified[0]
    details = {d["estimate_id"]: d for d in result.estimates}
    assert details["mean_server"]["verified"] is False and "without PUE" in details["mean_server"]["compared_with"]


def test_every_statistic_and_boundary_meets_its_own_comparator(compare_study):
    """Each (statistic, boundary) path: the comparator is our credible distribution of that statistic, moved
    up the ladder state by state; ``unspecified`` follows the documented rule (the mean)."""
    study = load_compare_study(compare_study)
    scenario = Scenario.run(study.studies[0], "blend", study.outer_draws, study.inner_draws)
    records = {r["estimate_id"]: r for r in run_compare(study).records}
    mean, median = (scenario.statistics[s] for s in ("mean", "median"))
    # exponential answer lengths are right-skewed: under every state of knowledge the median is below the mean
    assert np.all(median < mean)
    rungs = {b: {s: scenario.credible_wh(s, b) for s in ("mean", "median")} for b in RUNGS}
    ladder = scenario.outer_ladder
    for s in ("mean", "median"):
        # each rung below the facility is the one below times its prior, state by state
        np.testing.assert_allclose(rungs["server"][s] / rungs["accelerator"][s], ladder["server_overhead"])
        np.testing.assert_allclose(rungs["provisioned"][s] / rungs["server"][s], ladder["provisioning_overhead"])
    # the mean's facility rung is the fleet-average PUE exactly (each facility's ratio has mean one) ...
    np.testing.assert_allclose(rungs["facility"]["mean"] / rungs["provisioned"]["mean"], ladder["pue"])
    # ... the median's is not: it is the median of each state's queries at the server rung, each query with its
    # own facility's PUE = 1 + (pue - 1) x ratio, so the step lies between 1 and the largest PUE drawn
    step = rungs["facility"]["median"] / rungs["provisioned"]["median"]
    assert np.all(step > 1.0) and np.all(step < 1.0 + (ladder["pue"] - 1.0) * 4.0)
    assert np.abs(step / ladder["pue"] - 1.0).max() > 1e-3
    for statistic in STATISTICS:
        for boundary in RUNGS:
            record = records[f"{statistic}_{boundary}"]
            compared = "mean" if statistic == "unspecified" else statistic
            assert (record["statistic"], record["compared_statistic"], record["boundary"]) == (
                statistic,
                compared,
                boundary,
            )
            assert record == {**record, **place(0.3, rungs[boundary][compared])}
    # the rule for unspecified: the same comparison as a mean
    for boundary in RUNGS:
        assert records[f"unspecified_{boundary}"]["ratio_median"] == records[f"mean_{boundary}"]["ratio_median"]


def test_series_is_configurable(write, compare_study):
    one_model = run_compare(write("compare_model.toml", COMPARE.format(series="Llama 3.1 70B")))
    assert {r["series"] for r in one_model.records} == {"Llama 3.1 70B"}


def test_cli_writes_compare_json_and_chart(cli, compare_study, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = cli("compare", compare_study, "--out", out, "--draws", 2000)
    assert code == 0, stderr
    records = json.loads((out / "compare.json").read_text())
    assert len(records) == 14 and all(set(r) == RECORD_FIELDS for r in records)
    assert (out / "figures" / "published-estimates.png").stat().st_size > 10_000
    assert len(json.loads((out / "estimates.json").read_text())) == 14
    assert "mean_server" in stdout and "(unverified)" in stdout and "verified = false" in stderr


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda t: t.replace('series = "blend"', 'series = "blend-x"'), "compare.series"),
        (lambda t: t + "colour = 1\n", "compare.colour"),
        (lambda t: t.replace('"test_time.toml"', ""), "compare.studies"),
        (
            lambda t: t.replace(
                'studies = ["traditional.toml", "test_time.toml"]', 'studies = ["traditional.toml", "traditional.toml"]'
            ),
            "compare.studies",
        ),
        (lambda t: t.replace('estimates = "estimates.toml"\n', ""), "compare.estimates"),
        (lambda t: t + "seed = -1\n", "compare.seed"),
        (lambda t: t + "draws = 0\n", "compare.draws"),
        (lambda t: t.replace("outer_draws = 300", "outer_draws = 0"), "compare.outer_draws"),
    ],
)
def test_bad_compare_study_is_an_input_error(write, compare_study, edit, key):
    path = write("bad_compare.toml", edit(COMPARE.format(series="blend")).replace(", ]", "]"))
    with pytest.raises(InputError) as err:
        load_compare_study(path)
    assert err.value.key == key


def test_cli_bad_study_exits_2_with_one_line(cli, write, compare_study):
    code, _, err = cli("compare", write("bad.toml", COMPARE.format(series="nope")))
    assert code == 2 and err.count("\n") == 1 and err.startswith("uqenergy: error:")


def test_a_rung_the_study_cannot_reach_is_an_input_error(write, compare_study):
    """The paper's priors have no provisioned rung and no accelerator share: such estimates cannot be compared."""
    text = (compare_study.parent / "traditional.toml").read_text()
    write("traditional.toml", text.replace(str(PRIORS / "honest.toml"), str(PRIORS / "joule2026.toml")))
    with pytest.raises(InputError) as err:
        load_compare_study(compare_study)
    assert (err.value.key == "compare.studies" and "provisioning_overhead" in err.value.message) or (
        "server_overhead" in err.value.message
    )


def test_ladder_factor_composes_both_ways_and_assumes_no_rung():
    """One factor between any two rungs: the product of the rung priors between them, its inverse going down,
    composing along the ladder; a missing rung prior is an error, never a silent factor of one."""
    values = {"server_overhead": 1.5, "provisioning_overhead": 1.2, "pue": 1.1}
    assert ladder_factor("accelerator", "facility", values) == pytest.approx(1.5 * 1.2 * 1.1)
    assert ladder_factor("facility", "server", values) == pytest.approx(1 / (1.2 * 1.1))
    for a, b, c in itertools.product(RUNGS, repeat=3):
        assert ladder_factor(a, b, values) * ladder_factor(b, a, values) == pytest.approx(1.0)
        assert ladder_factor(a, c, values) == pytest.approx(ladder_factor(a, b, values) * ladder_factor(b, c, values))
    assert ladder_factor("provisioned", "provisioned", {}) == 1.0
    with pytest.raises(KeyError, match="provisioning_overhead"):
        ladder_factor("server", "facility", {"pue": 1.1})


def test_median_below_the_facility_is_the_median_of_server_energy(write):
    """Paper priors have one PUE per state of knowledge (no facility-to-facility ratio): the median of each
    state's queries at the server rung is then exactly the facility median over that PUE (a closed form the
    second, PUE-free two-level run must reproduce draw for draw)."""
    for name, scenario, median in (("traditional", "traditional", 300), ("test_time", "test-time", 5000)):
        write(
            f"{name}.toml",
            SCENARIO.format(
                name=name, scenario=scenario, priors=PRIORS / "joule2026.toml", priors_dir=PRIORS, median=median
            ),
        )
    write("estimates.toml", _estimate("m", "median", "server"))
    study = load_compare_study(write("compare.toml", COMPARE.format(series="blend")))
    scenario = Scenario.run(study.studies[0], "blend", study.outer_draws, study.inner_draws)
    np.testing.assert_allclose(
        scenario.server_statistic("median"), scenario.statistics["median"] / scenario.outer_ladder["pue"], rtol=1e-12
    )
    assert "pue_facility_ratio" not in study.studies[0].priors.base


CLOSED = {  # estimate -> (closed model, statistic, boundary)
    "closed_mean_facility": ("GPT-4o", "mean", "facility"),
    "closed_median_accelerator": ("Gemini Flash-class", "median", "accelerator"),
    "closed_unspecified_provisioned": ("GPT-4o mini", "unspecified", "provisioned"),
}


def _closed_compare(write, compare_study, closed="closed_models", estimates=CLOSED):
    text = "".join(
        _estimate(name, statistic, boundary).replace('date = "2025"', f'closed_model = "{model}"\ndate = "2025"')
        for name, (model, statistic, boundary) in estimates.items()
    )
    write("estimates.toml", ESTIMATES + text)
    return write(
        "compare_closed.toml", COMPARE.format(series="blend") + f"closed_models = {json.dumps(closed)}\ndraws = 2000\n"
    )


def test_closed_model_predictions_are_a_second_comparator(write, compare_study):
    """An estimate naming a closed model also meets that model's prediction: the same statistic at the same rung,
    each draw of the closed-model run moved down the ladder by its own rung draws. Checked against the run's own
    draws in closed form: at the accelerator the median query is GPU energy per token x the median answer length."""
    study = load_compare_study(_closed_compare(write, compare_study))
    result = run_compare(study)
    records = result.records
    closed = [r for r in records if r["comparator"] == "closed_model"]
    assert {r["estimate_id"] for r in closed} == set(CLOSED) and len(records) == 14 + 2 * len(CLOSED)
    assert all(set(r) == RECORD_FIELDS for r in records)
    # a closed model's interval carries what varies between deployments: predictive, not credible
    assert {r["comparator"]: r["interval"] for r in records} == {"scenario": "credible", "closed_model": "predictive"}
    headers = [line for line in format_table(result).splitlines() if line.startswith("estimate ")]
    assert ["ratio (90% credible)" in headers[0], "ratio (90% predictive)" in headers[1]] == [True, True]
    draws = run_closed_models(study.closed_models).samples
    tokens = study.closed_models.priors.get("output_tokens")
    median_tokens, mean_tokens = float(tokens.ppf(np.array(0.5))), tokens.law.mean()
    for r in closed:
        model, statistic, boundary = CLOSED[r["estimate_id"]]
        d = draws.sel(model=model)
        per_token_wh = d["gpu_energy_per_output_token_j"].values / 3600
        expected = {
            "facility": per_token_wh * mean_tokens * d["ladder_multiplier"].values,
            "accelerator": per_token_wh * median_tokens,
            "provisioned": per_token_wh * mean_tokens * d["ladder_multiplier"].values / d["pue"].values,
        }[boundary]
        assert (r["series"], r["boundary"], r["compared_statistic"]) == (
            model,
            boundary,
            compared_statistic_of(statistic),
        )
        placed = place(0.3, expected)
        assert r["verdict"] == placed.pop("verdict")
        assert r == {**r, **{k: pytest.approx(v, rel=1e-9) for k, v in placed.items()}}
        assert r["contributions"] == {}


def compared_statistic_of(statistic: str) -> str:
    return "mean" if statistic == "unspecified" else statistic


@pytest.mark.parametrize(
    "estimates, closed, message",
    [
        ({"x": ("GPT-5", "mean", "facility")}, "closed_models", "names closed model 'GPT-5', not in study"),
        ({"x": ("GPT-4o", "mean", "facility")}, 7, "expected a study name"),
    ],
)
def test_a_closed_model_the_study_cannot_predict_is_an_input_error(write, compare_study, estimates, closed, message):
    with pytest.raises(InputError) as err:
        load_compare_study(_closed_compare(write, compare_study, closed, estimates).as_posix())
    assert err.value.key == "compare.closed_models" and message in err.value.message


def test_a_closed_model_above_its_study_boundary_or_of_another_scenario_is_an_input_error(write, compare_study):
    closed = (data_dir("studies") / "closed_models.toml").read_text()
    write("closed_server.toml", closed.replace('boundary = "facility"', 'boundary = "server"'))
    path = _closed_compare(write, compare_study, "closed_server.toml", {"x": ("GPT-4o", "mean", "facility")})
    with pytest.raises(InputError, match="above the study's boundary 'server'"):
        load_compare_study(path)
    write("closed_tt.toml", closed.replace('scenario = "traditional"', 'scenario = "test-time"'))
    path = _closed_compare(write, compare_study, "closed_tt.toml", {"x": ("GPT-4o", "mean", "server")})
    with pytest.raises(InputError, match="is not the study's scenario 'test-time'"):
        load_compare_study(path)


def test_audit_explains_a_figure_that_states_every_factor(write):
    """Paper priors (no provisioned rung, one PUE per facility): with every factor of the equation stated,
    the audit explains the whole per-query gap."""
    write(
        "traditional.toml",
        SCENARIO.format(
            name="t", scenario="traditional", priors=PRIORS / "joule2026.toml", priors_dir=PRIORS, median=300
        ),
    )
    formula = ESTIMATES[ESTIMATES.index("[estimates.formula]") : ESTIMATES.index("[estimates.long]")]
    write("estimates.toml", formula)
    compare = COMPARE.format(series="blend").replace('"traditional.toml", "test_time.toml"', '"traditional.toml"')
    (record,) = run_compare(write("compare.toml", compare)).records
    assert record["contributions"]["unexplained"] == pytest.approx(0.0, abs=1e-9)


PINNED_SHARE = """
[priors.test-time.reasoning_share]
dist = "fixed"
value = 1.0
source = "test: every compared query reasons"
"""


def _share_compare(write, pinned: str) -> Path:
    """A test-time study with a Beta reasoning share (priors/honest_test_time.toml), and a compare of it."""
    write(
        "test_time.toml",
        SCENARIO.format(
            name="test_time",
            scenario="test-time",
            priors=PRIORS / "honest_test_time.toml",
            priors_dir=PRIORS,
            median=300,
        ),
    )
    write("estimates.toml", _estimate("long", "mean", "facility", "test-time", 40.0))
    compare = COMPARE.format(series="blend").replace('"traditional.toml", "test_time.toml"', '"test_time.toml"')
    return write("compare.toml", compare + pinned)


def test_a_compare_pins_a_scenario_prior_for_per_reasoning_query_figures(write):
    """[priors.test-time.reasoning_share] fixed at 1: every compared query reasons. Same seeds, so each state of
    knowledge is the study's own with more queries reasoning: its mean can only rise, and it is the mean of the
    study run with the same override."""
    pinned = load_compare_study(_share_compare(write, PINNED_SHARE))
    share = load_compare_study(_share_compare(write, ""))
    (study,) = pinned.studies
    assert study.priors.get("reasoning_share").describe().startswith("fixed(value=1.0)")
    assert share.studies[0].priors.get("reasoning_share").spec["dist"] == "beta"
    means = [
        Scenario.run(s.studies[0], "blend", s.outer_draws, s.inner_draws).statistics["mean"] for s in (pinned, share)
    ]
    assert np.all(means[0] >= means[1]) and np.mean(means[0] > means[1]) > 0.5
    overridden = load_study(study.path, overrides={"reasoning_share": {"dist": "fixed", "value": 1.0}})
    direct = Scenario.run(overridden, "blend", pinned.outer_draws, pinned.inner_draws).statistics["mean"]
    np.testing.assert_allclose(means[0], direct, rtol=1e-12)


@pytest.mark.parametrize(
    "pinned, key, message",
    [
        (PINNED_SHARE.replace("test-time", "chat"), "priors.chat", "not the scenario of a compare study"),
        (PINNED_SHARE.replace("reasoning_share", "reasoning_shar"), "priors.test-time.reasoning_shar", "defines no"),
        (PINNED_SHARE.replace("1.0", "1.5"), "priors.test-time: priors.reasoning_share", "outside"),
        ("[priors.test-time]\nreasoning_share = 1\n", "priors.test-time", "expected a table of tables"),
    ],
)
def test_a_bad_scenario_prior_override_is_an_input_error(write, pinned, key, message):
    with pytest.raises(InputError) as err:
        load_compare_study(_share_compare(write, pinned))
    assert Path(err.value.file).name == "compare.toml" and err.value.key.startswith(key), err.value.message
    assert message in err.value.message

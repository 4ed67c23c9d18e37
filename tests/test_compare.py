"""Placing published estimates on our distributions: percentile, ratio interval, verdict, boundary, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from uqenergy.analyses.compare import place, run_compare
from uqenergy.config.compare import load_compare_study
from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir

PRIORS = data_dir("priors")
RECORD_FIELDS = {
    "estimate_id",
    "value_wh",
    "scenario",
    "series",
    "percentile",
    "ratio_median",
    "ratio_p5",
    "ratio_p95",
    "verdict",
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

[blends.blend-paper]
top = 2
trim = [[5, 95], [10, 90]]
"""

# value_wh of "formula" is the paper's equation at its stated assumptions: the audit must explain all of it.
FORMULA_WH = 1.2 * 10.2 * 0.7 * 500 / 4000 / 3.6

ESTIMATES = f"""
[estimates.facility]
value_wh = 0.3
kind = "disclosure"
boundary = "datacenter"
subject = "s"
query_type = "traditional"
date = "2025"
citation = "c"
url = "https://example.org/a"
verified = true

[estimates.it_only]
value_wh = 0.3
kind = "estimate"
boundary = "server"
subject = "s"
query_type = "traditional"
date = "2025"
citation = "c"
url = "https://example.org/b"
verified = false

[estimates.formula]
value_wh = {FORMULA_WH!r}
kind = "estimate"
boundary = "datacenter"
subject = "s"
query_type = "traditional"
date = "2025"
citation = "c"
url = "https://example.org/c"
verified = true

[estimates.formula.assumptions]
output_tokens = 500
pue = 1.2
power_utilisation = 0.7
node_power_kw = 10.2
tokens_per_s = 4000

[estimates.long]
value_wh = 40.0
kind = "estimate"
boundary = "datacenter"
subject = "s"
query_type = "test-time"
date = "2025-05-01"
citation = "c"
url = "https://example.org/d"
verified = true

[estimates.long.assumptions]
pue = 1.12
output_tokens = 1500
input_tokens = 10000
"""

COMPARE = """
[compare]
name = "small_compare"
estimates = "estimates.toml"
studies = ["traditional.toml", "test_time.toml"]
series = "{series}"
"""


@pytest.fixture
def compare_study(write):
    for name, scenario, median in (("traditional", "traditional", 300), ("test_time", "test-time", 5000)):
        write(
            f"{name}.toml",
            SCENARIO.format(
                name=name, scenario=scenario, priors=PRIORS / "joule2026.toml", priors_dir=PRIORS, median=median
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
    assert set(records) == {"facility", "it_only", "formula", "long"}
    for r in result.records:
        assert set(r) == RECORD_FIELDS
        assert sum(r["contributions"].values()) == pytest.approx(math.log(r["ratio_median"]), abs=1e-12)
        expected = "below" if r["percentile"] < 5 else "above" if r["percentile"] > 95 else "within"
        assert r["verdict"] == expected
    assert records["long"]["scenario"] == "test-time" and records["facility"]["scenario"] == "traditional"
    # no stated assumptions: the whole gap is unexplained
    assert records["facility"]["contributions"] == {
        "unexplained": pytest.approx(math.log(records["facility"]["ratio_median"]))
    }
    # every factor of the equation stated: the audit explains the whole gap
    assert set(records["formula"]["contributions"]) == {
        "throughput",
        "power_utilisation",
        "pue",
        "tokens",
        "hardware",
        "unexplained",
    }
    assert records["formula"]["contributions"]["unexplained"] == pytest.approx(0.0, abs=1e-9)
    # a server-only figure meets our energy without PUE: same value, larger ratio by about our PUE
    pue_effect = records["it_only"]["ratio_median"] / records["facility"]["ratio_median"]
    assert 1.05 < pue_effect < 1.6
    unverified = [w for w in result.warnings if "verified = false" in w]
    assert len(unverified) == 1 and "it_only" in unverified[0]
    details = {d["estimate_id"]: d for d in result.estimates}
    assert details["it_only"]["verified"] is False and "without PUE" in details["it_only"]["compared_with"]


def test_series_is_configurable(write, compare_study):
    paper = run_compare(write("compare_paper.toml", COMPARE.format(series="blend-paper")))
    honest = run_compare(compare_study)
    assert {r["series"] for r in paper.records} == {"blend-paper"}
    # the trimmed pool is narrower: its ratio interval is tighter for the same estimate
    width = {r["series"]: r["ratio_p95"] / r["ratio_p5"] for r in (paper.records[0], honest.records[0])}
    assert width["blend-paper"] < width["blend"]


def test_cli_writes_compare_json_and_chart(cli, compare_study, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = cli("compare", compare_study, "--out", out, "--draws", 2000)
    assert code == 0, stderr
    records = json.loads((out / "compare.json").read_text())
    assert len(records) == 4 and all(set(r) == RECORD_FIELDS for r in records)
    assert (out / "figures" / "published-estimates.png").stat().st_size > 10_000
    assert len(json.loads((out / "estimates.json").read_text())) == 4
    assert "it_only" in stdout and "(unverified)" in stdout and "verified = false" in stderr


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

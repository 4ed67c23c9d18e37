"""The paper's published figures (Joule-version scripts, seed 42, 10,000 draws per model), checked on the
records of :func:`uqenergy.analyses.run.run_study`, the path ``uqenergy run`` takes.

Our runs use 400,000 draws per model, so the reference itself carries Monte Carlo
noise sqrt(40) times ours; a figure agrees when it lies within 4 combined
standard errors (plus half a unit of the published rounding).
"""

import numpy as np
import pytest

from uqenergy.analyses.run import run_study

REFERENCE_DRAWS = 10_000
OUR_DRAWS = 400_000
STATS = ("p5", "p25", "median", "p75", "p95", "mean")

TRADITIONAL = {
    ("DeepSeek-R1", "baseline"): (0.045, 0.257, 0.633, 1.292, 2.985, 0.959),
    ("Llama 3.1 405B", "baseline"): (0.050, 0.192, 0.385, 0.682, 1.324, 0.499),
    ("Llama-3.1 Nemotron Ultra 253B", "baseline"): (0.010, 0.052, 0.130, 0.263, 0.615, 0.196),
    ("Mixtral 8x22B", "baseline"): (0.009, 0.032, 0.064, 0.112, 0.212, 0.082),
    ("Llama 3.1 70B", "baseline"): (0.014, 0.049, 0.095, 0.166, 0.321, 0.122),
    ("blend-paper", "baseline"): (0.052, 0.165, 0.308, 0.602, 1.301, 0.438),
    ("blend-paper", "model"): (0.012, 0.037, 0.079, 0.169, 0.443, 0.134),
    ("blend-paper", "serving"): (0.018, 0.057, 0.113, 0.225, 0.526, 0.172),
    ("blend-paper", "hardware"): (0.027, 0.084, 0.159, 0.312, 0.679, 0.229),
}
TEST_TIME = {
    ("blend-paper", "baseline"): (0.859, 2.151, 3.907, 7.047, 21.838, 6.218),
    ("blend-paper", "model"): (0.175, 0.483, 1.008, 2.169, 6.741, 1.894),
    ("blend-paper", "serving"): (0.284, 0.742, 1.420, 2.848, 8.566, 2.442),
    ("blend-paper", "hardware"): (0.443, 1.093, 2.008, 3.714, 11.317, 3.250),
}


def _records(name):
    """The run's energy records by (series, pathway), and the members of its ``blend-paper``."""
    result = run_study(name)
    assert result.study.draws == OUR_DRAWS
    records = {(r["series"], r["pathway"]): r for r in result.records if r["quantity"] == "energy_wh"}
    return records, result.samples.attrs["blend_members_blend-paper"].split(", ")


@pytest.fixture(scope="module")
def traditional():
    return _records("paper_traditional")


@pytest.fixture(scope="module")
def test_time():
    return _records("paper_test_time")


def _check(record, published):
    scale = np.sqrt(1 + OUR_DRAWS / REFERENCE_DRAWS)  # our standard error combined with the reference's
    for stat, expected in zip(STATS, published):
        ours, se = record[stat], record[f"mcse_{stat}"]
        assert abs(ours - expected) <= 4 * scale * se + 0.0005, (stat, ours, expected, se)


@pytest.mark.parametrize("key", TRADITIONAL)
def test_traditional_reproduces_published_figures(traditional, key):
    _check(traditional[0][key], TRADITIONAL[key])


@pytest.mark.parametrize("key", TEST_TIME)
def test_test_time_reproduces_published_figures(test_time, key):
    _check(test_time[0][key], TEST_TIME[key])


def test_blend_is_the_papers_top_three(traditional, test_time):
    expected = {"DeepSeek-R1", "Llama 3.1 405B", "Llama-3.1 Nemotron Ultra 253B"}
    assert set(traditional[1]) == expected and set(test_time[1]) == expected


def test_trimmed_medians_sit_in_the_published_seed_bands(traditional, test_time):
    # seeds 1-5 of the published scripts: 0.302-0.311 Wh and 3.84-3.93 Wh
    for records, (low, high) in ((traditional[0], (0.302, 0.311)), (test_time[0], (3.84, 3.93))):
        record = records[("blend-paper", "baseline")]
        median, se = record["median"], record["mcse_median"]
        assert low - 3 * se <= median <= high + 3 * se

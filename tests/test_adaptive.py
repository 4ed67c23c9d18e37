"""Adaptive sample size: stops when every figure is stable, earlier for a looser tolerance, equal to a fixed run."""

from dataclasses import replace

import pytest

from test_intervals import NEMOTRON, PRIORS, closed_form_energy
from uqenergy.analyses.adaptive import next_draws
from uqenergy.analyses.run import run_study
from uqenergy.config.intervals import FIGURES, QUANTILES, IntervalSettings
from uqenergy.config.study import load_study


def _study(write, tolerance: str, draws: int = 2_000_000, tokens: str = "") -> object:
    return load_study(
        write(
            "adaptive.toml",
            f"""
[study]
name = "adaptive"
scenario = "traditional"
priors = ["{PRIORS}"]
models = ["{NEMOTRON}", "Llama 3.1 70B"]
draws = {draws}
seed = 5
{tokens}
[intervals]
{tolerance}
batch_draws = 20000
""",
        )
    )


def _stable(record, tolerance) -> bool:
    return all(2 * record[f"mcse_{f}"] <= tolerance * abs(record[f]) for f in FIGURES)


def test_a_loose_tolerance_stops_earlier_and_both_meet_what_they_report(write):
    loose = run_study(_study(write, "relative_tolerance = 0.05"))
    tight = run_study(_study(write, "relative_tolerance = 0.01"))
    assert loose.study.draws < tight.study.draws < 2_000_000
    for result, tolerance in ((loose, 0.05), (tight, 0.01)):
        assert result.samples.attrs["adaptive_tolerance_met"] == 1
        assert result.study.draws % 20_000 == 0
        for r in result.records:
            assert r["tolerance_met"] and _stable(r, tolerance) and r["draws"] >= result.study.draws


def test_adaptive_result_is_the_fixed_run_of_the_same_draws(write):
    adaptive = run_study(_study(write, "relative_tolerance = 0.03"))
    fixed = run_study(replace(adaptive.study, intervals=IntervalSettings()))
    assert fixed.study.draws == adaptive.study.draws
    assert [{k: v for k, v in r.items() if k != "tolerance_met"} for r in adaptive.records] == fixed.records


def test_adaptive_figures_are_within_tolerance_of_the_exact_answer(write):
    study = _study(
        write, "absolute_tolerance_wh = 0.002", tokens='\n[priors.output_tokens]\ndist = "fixed"\nvalue = 300\n'
    )
    study = replace(study, models=[NEMOTRON])
    result = run_study(study)
    law = closed_form_energy(study)
    record = result.records[0]
    assert record["tolerance_met"]
    exact = {**{n: law.ppf(p) for n, p in QUANTILES.items()}, "mean": law.mean()}
    for f in FIGURES:  # 2 MCSE <= tolerance, so 1.5 x tolerance is a 3-sigma band
        assert abs(record[f] - exact[f]) <= 1.5 * 0.002, f


def test_the_maximum_caps_the_run_and_the_shortfall_is_reported(write):
    """A maximum of one batch: the first batch is the whole run, reported with its shortfall (a larger maximum
    that the first batch predicts too small is refused: tests/test_resources.py)."""
    result = run_study(_study(write, "relative_tolerance = 0.0005", draws=20_000))
    assert result.study.draws == 20_000 and result.samples.attrs["adaptive_tolerance_met"] == 0
    assert not all(r["tolerance_met"] for r in result.records)


@pytest.mark.parametrize(
    "done, growth, expected",
    [
        (20_000, 1.5, 40_000),  # at least one more batch
        (20_000, 3.1, 80_000),  # enough for the predicted need, in whole batches
        (20_000, float("inf"), 100_000),  # never beyond the maximum
    ],
)
def test_next_draws(done, growth, expected):
    assert next_draws(done, growth, batch_draws=20_000, max_draws=100_000) == expected

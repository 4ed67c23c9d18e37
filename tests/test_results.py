"""Results for notebooks: a study's summary as an xarray.Dataset equal to its records, every result as a DataFrame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import SMALL_STUDY
from uqenergy.analyses.compare import CompareResult
from uqenergy.analyses.fleet import FleetResult
from uqenergy.analyses.results import SUMMARY_DIMS, StudyResult, records_dataset
from uqenergy.analyses.run import design_of, run_study
from uqenergy.analyses.sensitivity_study import SensitivityResult
from uqenergy.config.files import data_dir
from uqenergy.config.study import load_study
from uqenergy.engine.sampling import BLOCK_DRAWS

STUDIES = data_dir("studies")
TWO_LEVEL = (
    SMALL_STUDY.replace("[blends.blend-paper]\ntop = 2\ntrim = [[5, 95], [10, 90]]\n", "").replace(
        "draws = 20000", "draws = 2000"
    )
    + '\n[intervals]\ndesign = "two-level"\nouter_draws = 40\n'
)
ADAPTIVE = (
    SMALL_STUDY.replace("draws = 20000", "draws = 40000")
    + "\n[intervals]\nrelative_tolerance = 0.2\nbatch_draws = 10000\n"
)


def _study(design: str, write):
    if design == "settings":
        return load_study(STUDIES / "paper_input_length.toml", draws=2000)
    if design == "two-level":
        return load_study(write("two.toml", TWO_LEVEL))
    if design == "adaptive":
        return load_study(write("adaptive.toml", ADAPTIVE))
    if design == "streamed":  # over a 1 MB budget: summarised in passes over the chunks
        study = load_study(write("big.toml", SMALL_STUDY.replace("draws = 20000", f"draws = {BLOCK_DRAWS + 1000}")))
        return replace(study, memory_budget_mb=1, chunk_draws=BLOCK_DRAWS)
    return load_study(write("small.toml", SMALL_STUDY.replace("draws = 20000", "draws = 4000")))


@pytest.mark.parametrize("design", ["in-memory", "settings", "two-level", "adaptive", "streamed"])
def test_summary_holds_every_number_of_every_record_and_nothing_else(design, write):
    study = _study(design, write)
    assert design_of(study) == design
    result = run_study(study)
    summary = result.summary
    dims = [d for d in SUMMARY_DIMS if any(d in r for r in result.records)]
    assert ("setting" in dims) == (design == "settings")
    quantities = list(dict.fromkeys(r["quantity"] for r in result.records))
    assert list(summary.data_vars) == quantities
    assert ("mean_energy_wh" in quantities) == (design == "two-level")
    for r in result.records:
        cell = summary[r["quantity"]].sel({d: r[d] for d in dims})
        numbers = {k: float(v) for k, v in r.items() if isinstance(v, (int, float))}
        assert {s: float(cell.sel(statistic=s)) for s in numbers} == numbers
        assert np.isnan(cell.drop_sel(statistic=list(numbers)).values).all()
    filled = sum(int(np.isfinite(summary[q]).any("statistic").sum()) for q in quantities)
    assert filled == len(result.records)
    assert summary.attrs["scenario"] == study.scenario
    if design == "adaptive":
        met = summary["energy_wh"].sel(statistic="tolerance_met").values
        assert set(met[np.isfinite(met)]) <= {0.0, 1.0}


def test_summary_coordinates_keep_the_records_order(write):
    result = run_study(_study("in-memory", write))
    summary = result.summary
    assert list(summary["series"].values) == list(dict.fromkeys(r["series"] for r in result.records))
    assert list(summary["pathway"].values) == ["baseline", "model", "serving", "combined"]
    assert list(summary.to_dataframe().index.names) == ["series", "pathway", "statistic"]


def test_records_that_share_a_cell_are_refused():
    record = {"series": "a", "pathway": "baseline", "quantity": "energy_wh", "median": 1.0}
    with pytest.raises(ValueError, match="share"):
        records_dataset([record, record | {"median": 2.0}], SUMMARY_DIMS)


RECORDS = {
    StudyResult: [
        {"scenario": "traditional", "series": "a", "pathway": "baseline", "quantity": "energy_wh", "median": 0.3},
        {
            "scenario": "traditional",
            "series": "b",
            "pathway": "baseline",
            "quantity": "energy_wh",
            "median": 0.1,
            "hdi_low": 0.01,
        },
    ],
    SensitivityResult: [
        {
            "scenario": "traditional",
            "series": "blend",
            "target": "energy_wh",
            "factor": "pue",
            "S1": 0.1,
            "S1_conf": 0.02,
            "ST": 0.2,
            "ST_conf": 0.03,
            "base_samples": 1024,
            "converged": True,
        }
    ],
    FleetResult: [
        {
            "scenario": "1e9 queries/day",
            "mix": "traditional",
            "pathway": "baseline",
            "quantity": "energy_gwh_per_day",
            "method": "honest",
            "median": 0.7,
        },
        {
            "scenario": "1e9 queries/day",
            "mix": "traditional",
            "pathway": "baseline",
            "quantity": "energy_gwh_per_day",
            "method": "paper",
            "median": 0.73,
            "grid": "us",
        },
    ],
    CompareResult: [{"estimate_id": "x_2024", "value_wh": 0.3, "verdict": "within", "contributions": {"pue": 1.1}}],
}


@pytest.mark.parametrize("kind", RECORDS)
def test_every_result_gives_its_records_as_a_dataframe(kind):
    records = RECORDS[kind]
    result = kind.__new__(kind)  # only the records matter here; runs are covered above and in the doctests
    result.records = records
    frame = result.to_dataframe()
    keys = list(dict.fromkeys(k for r in records for k in r))
    assert list(frame.columns) == keys and len(frame) == len(records)
    for i, r in enumerate(records):
        row = frame.iloc[i]
        assert {k: row[k] for k in r} == r
        assert all(row[k] is None or row[k] != row[k] for k in keys if k not in r)  # a missing key is empty


def test_a_run_gives_one_row_per_record(write):
    result = run_study(_study("in-memory", write))
    frame = result.to_dataframe()
    assert frame.to_dict("records") == result.records

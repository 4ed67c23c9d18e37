"""Measured studies: the interpolation reproduces every measured point, clamps and counts, and the ladder multiplies."""

from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

import uqenergy
from uqenergy.config.boundaries import BOUNDARIES, rung_priors
from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir
from uqenergy.config.intervals import IntervalSettings
from uqenergy.config.measured import read_measured
from uqenergy.config.measured_study import Configuration, MeasuredSection
from uqenergy.config.study import load_study
from uqenergy.engine.measured import energy_per_query_wh, energy_per_token_j, evaluate, measured_curves

TABLE = read_measured(data_dir("priors") / "mlenergy_v3.csv")
GROUPS = TABLE.groups()


def _section(points, boundary="accelerator", output_tokens="prior") -> MeasuredSection:
    return MeasuredSection(TABLE, points[0].task, boundary, output_tokens, (Configuration("c", points),))


@pytest.mark.parametrize("group", list(GROUPS), ids=lambda g: "-".join(map(str, g)))
def test_every_measured_configuration_is_reproduced_at_its_batch_point(group):
    """Concurrency at each measured mean batch, tokens fixed at its mean length, accelerator boundary:
    the model gives the measured energy per query (energy per token x mean output length)."""
    points = GROUPS[group]
    batch = np.array([p.mean_batch for p in points])
    tokens = np.array([p.mean_output_tokens for p in points])
    inputs = xr.Dataset(
        {"concurrency": (("model", "draw"), batch[None]), "output_tokens": (("model", "draw"), tokens[None])},
        coords={"model": ["c"]},
    )
    section = _section(points)
    outputs = evaluate(inputs, measured_curves(section), section)
    measured_j = np.array([p.energy_per_output_token_j * p.mean_output_tokens for p in points])
    np.testing.assert_allclose(outputs["energy_wh"].values[0] * 3600, measured_j, rtol=1e-13)
    assert not outputs["clamped"].any()


def test_between_points_the_curve_is_a_power_law_and_outside_it_is_clamped():
    points = GROUPS[("lm-arena-chat", "meta-llama/Llama-3.1-405B-Instruct-FP8", "H100", 8, "fp8")]
    batch = np.array([p.mean_batch for p in points])
    energy = np.array([p.energy_per_output_token_j for p in points])
    middle = np.sqrt(batch[:-1] * batch[1:])  # geometric midpoints: the geometric mean of the two energies
    values, clamped = energy_per_token_j(batch, energy, middle)
    np.testing.assert_allclose(values, np.sqrt(energy[:-1] * energy[1:]), rtol=1e-12)
    assert not clamped.any()
    values, clamped = energy_per_token_j(batch, energy, [1.0, batch[0], batch[-1], 1e5])
    np.testing.assert_array_equal(values[[0, -1]], energy[[0, -1]])
    assert clamped.tolist() == [True, False, False, True]
    # the example: concurrency alone moves energy per query about 7x between caps 8 and 256
    assert energy[0] == pytest.approx(13.975, rel=1e-3) and energy[0] / energy[-1] == pytest.approx(6.8, rel=0.01)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_each_rung_multiplies_the_one_below(boundary):
    e = np.array([0.5, 2.0])
    multipliers = [np.array([1.5, 2.0])] * len(rung_priors(boundary))
    expected = e * 300 / 3600 * np.prod(multipliers, axis=0) if multipliers else e * 300 / 3600
    np.testing.assert_allclose(energy_per_query_wh(e, 300, multipliers), expected)


def _study(tmp_path, measured: str, extra: str = "") -> str:
    path = tmp_path / "study.toml"
    path.write_text(
        f'[study]\nname = "m"\nscenario = "chat"\npriors = ["measured"]\ndraws = 3000\nseed = 3\n{extra}\n'
        f"[measured]\n{measured}\n"
    )
    return str(path)


def test_a_run_with_fixed_inputs_gives_the_measured_energy_and_names_each_configuration(tmp_path):
    """End to end: concurrency fixed at a measured batch point, accelerator boundary, measured tokens."""
    points = GROUPS[("lm-arena-chat", "meta-llama/Llama-3.1-8B-Instruct", "H100", 1, "bfloat16")]
    point = points[3]
    path = _study(
        tmp_path,
        'task = "lm-arena-chat"\nmodels = ["Llama 3.1 8B Instruct"]\ngpus = ["H100"]\nboundary = "accelerator"',
        f'[priors.concurrency]\ndist = "fixed"\nvalue = {point.mean_batch!r}\n',
    )
    result = uqenergy.run_study(path)
    (record,) = result.records
    tokens = np.mean([p.mean_output_tokens for p in points])
    assert record["median"] == pytest.approx(point.energy_per_output_token_j * tokens / 3600, rel=1e-12)
    assert record["p5"] == record["p95"]
    assert {k: record[k] for k in ("model", "gpu", "gpu_count", "precision", "boundary", "clamped_draws")} == {
        "model": "Llama 3.1 8B Instruct",
        "gpu": "H100",
        "gpu_count": 1,
        "precision": "bfloat16",
        "boundary": "accelerator",
        "clamped_draws": 0,
    }


def test_clamped_draws_are_counted_and_blends_name_their_members(tmp_path):
    path = _study(
        tmp_path,
        'task = "lm-arena-chat"\nmodels = ["Gemma 3 27B"]\ngpus = ["H100"]',
        '[blends.both]\nmembers = ["Gemma 3 27B (1xH100)", "Gemma 3 27B (2xH100)"]\n',
    )
    study = load_study(path)
    result = uqenergy.run_study(study)
    by_series = {r["series"]: r for r in result.records}
    concurrency = result.samples["concurrency"]
    for name in study.models:  # the 1xH100 sweep stops at a mean batch of about 32: most draws are clamped
        batch = result.samples["measured_batch"].sel(model=name)
        outside = ((concurrency.sel(model=name) < batch.min()) | (concurrency.sel(model=name) > batch.max())).sum()
        assert by_series[name]["clamped_draws"] == int(outside)
    assert by_series["Gemma 3 27B (1xH100)"]["clamped_draws"] > study.draws / 2
    both = by_series["both"]
    assert both["gpu"] == "H100" and both["gpu_count"] == "1 / 2"
    assert both["clamped_draws"] == sum(by_series[m]["clamped_draws"] for m in study.models)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_boundary_multiplies_accelerator_energy_by_the_drawn_rungs(tmp_path, boundary):
    result = uqenergy.run_study(_study(tmp_path, f'task = "gpqa"\nmodels = ["Qwen 3 8B"]\nboundary = "{boundary}"'))
    s = result.samples
    accelerator_wh = s["energy_per_token_j"] * s["effective_tokens"] / 3600
    ladder = np.prod([s[name] for name in rung_priors(boundary)], axis=0) if rung_priors(boundary) else 1.0
    np.testing.assert_allclose(s["energy_wh"], accelerator_wh * ladder, rtol=1e-12)
    assert {r["boundary"] for r in result.records} == {boundary}


def test_a_streamed_run_counts_the_same_clamped_draws(tmp_path):
    path = _study(tmp_path, 'task = "lm-arena-chat"\nmodels = ["Qwen 3 32B"]')
    study = load_study(path)
    plain = uqenergy.run_study(study).records
    streamed = uqenergy.run_study(replace(study, memory_budget_mb=1, chunk_draws=1)).records
    assert [r["clamped_draws"] for r in streamed] == [r["clamped_draws"] for r in plain]
    assert [r["median"] for r in streamed] == [r["median"] for r in plain]


@pytest.mark.parametrize(
    ("measured", "extra", "message"),
    [
        ('task = "chat"', "", "measured.task: unknown task 'chat' (tasks in the table: gpqa, lm-arena-chat"),
        ('task = "gpqa"\nmodels = ["GPT-5"]', "", "measured.models: 'GPT-5' was not measured on gpqa"),
        (
            'task = "gpqa"\nmodels = ["DeepSeek R1"]\ngpus = ["H100"]',
            "",
            "measured.models: 'DeepSeek R1' was not measured on H100 for gpqa (measured on B200",
        ),
        ('task = "gpqa"\ngpus = ["A100"]', "", "measured.gpus: unknown name 'A100' (one of H100, B200)"),
        ('task = "gpqa"\nboundary = "rack"', "", "measured.boundary: unknown boundary 'rack'"),
        ('task = "gpqa"\noutput_tokens = "median"', "", "measured.output_tokens: unknown choice 'median'"),
        ('task = "gpqa"\ntable = "nowhere.csv"', "", "measured.table: 'nowhere.csv': no such file"),
        ('task = "gpqa"', 'models = ["Llama 3.1 70B"]', "study.models: is not used by a measured study"),
    ],
)
def test_bad_measured_sections_give_one_line(tmp_path, measured, extra, message):
    with pytest.raises(InputError, match=None) as error:
        load_study(_study(tmp_path, measured, extra))
    assert message in error.value.message and "\n" not in error.value.message


def test_an_adaptive_run_counts_the_clamped_draws_of_every_batch(tmp_path):
    measured = 'task = "lm-arena-chat"\nmodels = ["Gemma 3 27B"]\ngpus = ["H100"]'
    plain = uqenergy.run_study(_study(tmp_path, measured))
    # the tolerance the first 1,000 draws predict needs about all 3,000: the run takes a second batch to its maximum
    first = uqenergy.run_study(replace(load_study(_study(tmp_path, measured)), draws=1000))
    reached = max(IntervalSettings(relative_tolerance=0.5).reached_tolerance(r) for r in first.records)
    tolerance = 1.01 * reached * (1000 / 3000) ** 0.5
    path = _study(tmp_path, measured, f"[intervals]\nrelative_tolerance = {tolerance}\nbatch_draws = 1000\n")
    adaptive = uqenergy.run_study(path)
    assert adaptive.records[0]["draws"] == 3000
    assert [r["clamped_draws"] for r in adaptive.records] == [r["clamped_draws"] for r in plain.records]


def test_a_measured_chunk_job_pickles_for_other_processes(tmp_path):
    import pickle

    from uqenergy.engine.per_query import study_data
    from uqenergy.engine.simulate import Job, chunk_draws

    study = load_study(_study(tmp_path, 'task = "gpqa"\nmodels = ["Qwen 3 8B"]'))
    job = Job(study, study_data(study), 10)
    again, here = chunk_draws(pickle.loads(pickle.dumps(job)), (0, 2000)), chunk_draws(job, (0, 2000))
    np.testing.assert_array_equal(again.energy_wh, here.energy_wh)
    np.testing.assert_array_equal(again.clamped, here.clamped)

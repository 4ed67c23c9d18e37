"""Degenerate inputs a probe found tracebacks for: each now runs with finite outputs or fails on one line."""

from __future__ import annotations

import json
import math

import pytest

from conftest import PRIORS_DIR

STUDY = f"""[study]
name = "d"
scenario = "traditional"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
models = ["Llama 3.1 70B", "DeepSeek-R1"]
draws = 600
seed = 1

[blends.blend]
top = 2

[pathways]
names = ["model", "serving"]
"""


def _fixed(name: str, value: float) -> str:
    return f'\n[priors.{name}]\ndist = "fixed"\nvalue = {value}\n'


def _run(cli, tmp_path, extra: str = "", *args) -> tuple[int, str, list[dict]]:
    study = tmp_path / "study.toml"
    study.write_text(STUDY + extra)
    out = tmp_path / "out"
    code, _, err = cli("run", study, "--out", out, "--quiet", *args)
    records = json.loads((out / "summary.json").read_text()) if code == 0 else []
    return code, err, records


def _finite(records: list[dict]) -> bool:
    return all(math.isfinite(v) for r in records for v in r.values() if isinstance(v, float))


@pytest.mark.parametrize("name", ["node_power_kw", "power_utilisation", "output_tokens"])
def test_an_energy_fixed_at_zero_runs_and_reports_zero(cli, tmp_path, name):
    code, err, records = _run(cli, tmp_path, _fixed(name, 0))
    assert code == 0, err
    baseline = [r for r in records if r["pathway"] == "baseline"]
    assert baseline and all(r["p5"] == r["median"] == r["p95"] == 0.0 for r in baseline) and _finite(records)
    assert (tmp_path / "out" / "report.md").exists()


@pytest.mark.parametrize("prior", ["pathway_model", "pathway_serving"])
def test_a_fixed_pathway_prior_scales_the_baseline_exactly(cli, tmp_path, prior):
    code, err, records = _run(cli, tmp_path, _fixed(prior, 2.0))
    assert code == 0, err
    pathway = prior.removeprefix("pathway_")
    by = {(r["series"], r["pathway"]): r for r in records}
    # a pathway divides energy by its factor: a fixed factor of 2 halves every quantile
    for quantile in ("p5", "median", "p95"):
        assert by[("blend", pathway)][quantile] == pytest.approx(by[("blend", "baseline")][quantile] / 2, rel=1e-12)


def test_every_prior_fixed_gives_one_value(cli, tmp_path):
    fixed = "".join(
        _fixed(name, value)
        for name, value in {
            "node_power_kw": 10.0,
            "pue": 1.2,
            "power_utilisation": 0.7,
            "output_tokens": 500,
            "input_tokens": 1000,
            "throughput_z": 0.0,
            "pathway_model": 2.0,
            "pathway_serving": 1.5,
        }.items()
    )
    code, err, records = _run(cli, tmp_path, fixed)
    assert code == 0, err
    assert _finite(records) and all(r["p5"] == r["p95"] for r in records if r["series"] != "blend")


@pytest.mark.parametrize("draws", [2, 3, 7, 20])
def test_a_few_draws_run_with_finite_outputs_and_figures(cli, tmp_path, draws):
    code, err, records = _run(cli, tmp_path, "", "--draws", str(draws))
    assert code == 0, err
    assert _finite(records) and {r["draws"] for r in records if r["series"] != "blend"} == {draws}
    assert any((tmp_path / "out" / "figures").glob("distributions-*.png"))


def test_one_draw_is_refused_up_front(cli, tmp_path):
    code, err, _ = _run(cli, tmp_path, "", "--draws", "1")
    assert code == 2 and "--draws: 1 is not a whole number in 2..1,000,000,000" in err


def test_energies_near_the_float_range_scale_exactly(cli, tmp_path):
    """Energy is proportional to node power: at 1e300 kW every figure, MCSEs included, is 1e300 times that at 1 kW
    (the squared deviations behind the mean's MCSE pass the float range; they are scaled, not overflowed)."""
    _, _, unit = _run(cli, tmp_path, _fixed("node_power_kw", 1.0))
    code, err, huge = _run(cli, tmp_path, _fixed("node_power_kw", 1e300))
    assert code == 0 and _finite(huge) and not err, err
    figures = ("p5", "median", "p95", "mean", "mcse_median", "mcse_mean")
    for low, high in zip(unit, huge):
        assert all(high[f] == pytest.approx(1e300 * low[f], rel=1e-9) for f in figures), low["series"]


def test_an_energy_beyond_the_float_range_is_a_one_line_error(cli, tmp_path):
    code, err, _ = _run(cli, tmp_path, _fixed("node_power_kw", 1e308))
    assert code == 2 and err.count("\n") == 1, err
    assert "priors: the energy per query of Llama 3.1 70B is not finite" in err


@pytest.mark.parametrize("seed", [2**63 - 1, 2**63, 2**64])
def test_seeds_up_to_64_bits_run_and_larger_are_refused(cli, tmp_path, seed):
    code, err, records = _run(cli, tmp_path, "", "--seed", str(seed), "--draws", "200")
    if seed < 2**63:
        assert code == 0 and _finite(records), err
    else:
        assert code == 2 and f"--seed: {seed} is too large" in err


def test_a_categorical_prior_feeds_its_values_not_their_indices(cli, tmp_path):
    # energy is proportional to PUE, and both runs draw the same category indices: every quantile doubles
    _, _, low = _run(cli, tmp_path, '\n[priors.pue]\ndist = "categorical"\nvalues = [1.1, 1.5]\n')
    _, _, high = _run(cli, tmp_path, '\n[priors.pue]\ndist = "categorical"\nvalues = [2.2, 3.0]\n')
    assert low and all(h["median"] == pytest.approx(2 * r["median"], rel=1e-12) for r, h in zip(low, high))


def test_library_warnings_are_one_line_and_quiet_silences_them(cli, tmp_path):
    """A name the figures' font cannot draw makes matplotlib warn once per glyph, over two lines each: the command
    prints one line per place a warning comes from, and nothing with --quiet."""
    name = "能源 😀"
    study = tmp_path / "study.toml"
    study.write_text(STUDY.replace('name = "d"', f'name = "{name}"') + f'\n[blends."{name}"]\ntop = 1\n')
    code, out, err = cli("run", study, "--out", tmp_path / "quiet", "--quiet")
    assert code == 0 and not out and not err, err
    code, _, err = cli("run", study, "--out", tmp_path / "loud")
    glyphs = [line for line in err.splitlines() if "Glyph" in line]
    assert code == 0 and len(glyphs) == 1, err
    assert glyphs[0].startswith("uqenergy: warning: UserWarning: Glyph ") and "missing from font" in glyphs[0]
    assert not any(line.startswith(" ") for line in err.splitlines())  # Python's format adds the source line

"""Named settings (one study under overrides), the paper's one-at-a-time studies, proportional PU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from uqenergy.analyses.run import run_study
from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir
from uqenergy.config.study import load_study
from uqenergy.engine import energy
from uqenergy.engine.throughput import study_fits

PRIORS_DIR = data_dir("priors")

HEAD = f"""
[study]
name = "settings-test"
scenario = "traditional"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
throughput = "{PRIORS_DIR / "throughput_h100.csv"}"
models = ["DeepSeek-R1", "Llama 3.1 405B", "Llama-3.1 Nemotron Ultra 253B"]
draws = 20000
save_draws = 20000
seed = 5

[blends.blend]
top = 2
"""

INPUT_LENGTH = (
    HEAD
    + """
[[settings]]
name = "main"

[[settings]]
name = "input_500"
study = { effective_tokens = "output+input" }

[[settings]]
name = "input_5000"
study = { effective_tokens = "output+input" }
priors.input_tokens = { value = 5000 }
"""
)

PROPORTIONAL = (
    HEAD
    + """
[[settings]]
name = "independent"

[[settings]]
name = "proportional"
study = { power_utilisation = "proportional" }
"""
)


@pytest.fixture(scope="module")
def input_length(tmp_path_factory):
    path = tmp_path_factory.mktemp("settings") / "input_length.toml"
    path.write_text(INPUT_LENGTH)
    return run_study(path)


def test_records_and_draws_are_tagged_by_setting(input_length):
    settings = ["main", "input_500", "input_5000"]
    assert [r["setting"] for r in input_length.records[::4]] == settings  # 3 models + 1 blend per setting
    assert list(input_length.records[0])[:3] == ["scenario", "setting", "series"]
    assert list(input_length.samples["setting"].values) == settings
    assert input_length.samples.attrs["settings"] == "main, input_500, input_5000"


def test_input_tokens_add_a_thirtieth_per_token(input_length):
    """Same seed, same factors: the settings share their draws, so at L_in = 500 every query's energy is
    scaled by exactly (L_out + 500/30) / L_out against the main analysis (same throughput)."""
    s = input_length.samples
    main, longer = s.sel(setting="main"), s.sel(setting="input_500")
    assert np.array_equal(main["output_tokens"], longer["output_tokens"])
    positive = main["output_tokens"] > 0
    ratio = (longer["energy_wh"] / main["energy_wh"]).where(positive)
    expected = ((main["output_tokens"] + 500 / 30) / main["output_tokens"]).where(positive)
    assert np.allclose(ratio, expected, equal_nan=True)


def test_longer_prompts_cost_more(input_length):
    median = {(r["setting"], r["series"]): r["median"] for r in input_length.records}
    for series in ("DeepSeek-R1", "Llama 3.1 405B", "Llama-3.1 Nemotron Ultra 253B", "blend"):
        assert median[("main", series)] < median[("input_500", series)] < median[("input_5000", series)]


def test_proportional_power_utilisation(tmp_path):
    """PU = 0.24 + 0.56 TPS / TPS_max: between 0.24 and 0.80; at the paper's short queries Llama 3.1 405B
    runs well below its benchmark maximum, so its energy falls, while Nemotron (constant TPS = max) rises."""
    path = tmp_path / "pu.toml"
    path.write_text(PROPORTIONAL)
    result = run_study(path)
    s = result.samples.sel(setting="proportional")
    fits = study_fits(load_study(path))
    pu = s["power_utilisation"]
    assert float(pu.min()) >= 0.24 and float(pu.max()) <= 0.80 + 1e-12
    assert np.allclose(pu, 0.24 + 0.56 * s["tokens_per_s"] / fits["tps_max"])
    median = {(r["setting"], r["series"]): r["median"] for r in result.records}
    assert median[("proportional", "Llama 3.1 405B")] < median[("independent", "Llama 3.1 405B")]
    assert (
        median[("proportional", "Llama-3.1 Nemotron Ultra 253B")]
        > median[("independent", "Llama-3.1 Nemotron Ultra 253B")]
    )
    variants = {s.name: s.study for s in load_study(path).settings}
    assert "power_utilisation" in variants["independent"].factors
    assert "power_utilisation" not in variants["proportional"].factors  # computed, not sampled


def test_settings_cli_writes_setting_records(write, cli, tmp_path):
    code, _, err = cli("run", write("pu.toml", PROPORTIONAL), "--out", tmp_path / "out", "--draws", "2000", "--quiet")
    assert code == 0, err
    records = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {r["setting"] for r in records} == {"independent", "proportional"}
    assert xr.open_dataset(tmp_path / "out" / "samples.nc", engine="h5netcdf").sizes["setting"] == 2


@pytest.mark.parametrize(
    "settings, key",
    [
        ('[[settings]]\nname = "a"\n[[settings]]\nname = "a"', "settings[1].name"),
        ('[[settings]]\nname = "has space"', "settings[0].name"),
        ('[[settings]]\nname = "a"\nstudy = { draws = 5 }', "settings.a.study.draws"),
        ('[[settings]]\nname = "a"\nstudy = { power_utilisation = "maybe" }', "settings.a: study.power_utilisation"),
        ('[[settings]]\nname = "a"\npriors.colour = { value = 1 }', "settings.a: priors.colour"),
        ('[[settings]]\nname = "a"\ncolour = 1', "settings[0].colour"),
    ],
)
def test_bad_settings_are_one_line_errors(write, cli, settings, key):
    code, out, err = cli("validate", write("bad.toml", HEAD + settings))
    assert code == 2 and out == "" and err.count("\n") == 1 and f": {key}" in err


def test_unknown_power_utilisation_mode(write):
    with pytest.raises(InputError, match=r"study\.power_utilisation"):
        load_study(write("bad.toml", HEAD.replace("seed = 5", 'seed = 5\npower_utilisation = "fixed"')))


def test_evaluate_selects_each_draws_model():
    """A per-draw ``model`` variable selects each draw's throughput fit, as a model dimension does."""
    study = load_study("paper_traditional")
    fits = study_fits(study)
    models = np.array(study.models)[[0, 1, 2, 3, 4, 0]]
    values = {"pue": 1.2, "node_power_kw": 10.2, "power_utilisation": 0.6, "input_tokens": 500.0}
    per_draw = xr.Dataset(
        {k: ("draw", np.full(6, v)) for k, v in values.items()}
        | {"output_tokens": ("draw", np.arange(1.0, 7.0) * 100), "model": ("draw", models)}
    )
    energy_wh = energy.evaluate(per_draw, fits)["energy_wh"].values
    for i, model in enumerate(models):
        one = per_draw.isel(draw=[i]).drop_vars("model").expand_dims(model=[model])
        assert energy.evaluate(one, fits)["energy_wh"].item() == pytest.approx(energy_wh[i])

import json
import subprocess
import sys

import pytest
import xarray as xr

from uqenergy.outputs.files import MARKER

RECORD_KEYS = {
    "scenario",
    "series",
    "pathway",
    "quantity",
    "p5",
    "p25",
    "median",
    "p75",
    "p95",
    "mean",
    "mcse_median",
    "draws",
}


def test_bare_run_writes_the_default_study(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _out, err = cli("run", "--draws", "2000", "--quiet")
    assert code == 0 and err == ""
    records = json.loads((tmp_path / "uqenergy-out" / "run-paper_traditional" / "summary.json").read_text())
    assert {r["series"] for r in records} >= {"DeepSeek-R1", "blend-paper", "blend"}
    assert {r["pathway"] for r in records} == {"baseline", "model", "serving", "hardware", "combined"}
    for r in records:
        assert RECORD_KEYS <= set(r) and r["scenario"] == "traditional" and r["quantity"] == "energy_wh"
        assert r["p5"] <= r["p25"] <= r["median"] <= r["p75"] <= r["p95"]
    samples = xr.open_dataset(tmp_path / "uqenergy-out" / "run-paper_traditional" / "samples.nc", engine="h5netcdf")
    assert samples.attrs["seed"] == 42 and samples.attrs["uqenergy_version"]
    assert len(samples.attrs["input_file_0_sha256"]) == 64
    assert set(samples["energy_wh"].dims) == {"model", "draw"}


def test_run_prints_headline_and_warnings(cli, tmp_path, small_study):
    code, out, err = cli("run", small_study, "--out", tmp_path / "o", "--draws", "500")
    assert code == 0 and "blend-paper" in out and "median" in out
    assert "warning" in err and "power_utilisation" in err


def test_previous_output_is_replaced_and_other_folders_are_refused(cli, tmp_path, small_study):
    out = tmp_path / "o"
    assert cli("run", small_study, "--out", out, "--draws", "500", "--quiet")[0] == 0
    assert cli("run", small_study, "--out", out, "--draws", "600", "--quiet")[0] == 0
    assert json.loads((out / "summary.json").read_text())[0]["draws"] == 600
    (out / "notes.txt").write_text("mine")  # a user's file inside a previous output is never deleted
    for force in ([], ["--force"]):
        code, _, err = cli("run", small_study, "--out", out, "--draws", "700", "--quiet", *force)
        assert code == 2 and "holds files uqenergy did not write (notes.txt)" in err
        assert (out / "notes.txt").read_text() == "mine" and json.loads((out / "summary.json").read_text())[0][
            "draws"
        ] == 600
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep")
    for force in ([], ["--force"]):
        code, _, err = cli("run", small_study, "--out", precious, "--draws", "500", *force)
        assert code == 2 and "not a uqenergy output" in err and (precious / "thesis.tex").read_text() == "keep"
    assert not (precious / MARKER).exists()


STUDY_ERRORS = {
    "toml syntax": ("[study\n", "not valid TOML"),
    "unknown key": ("models_typo", "study.models_typo: unknown key"),
    "unknown model": ('"Llama 3.1 70B"]', "study.models: unknown model 'GPT-5'"),
    "wrong type": ("draws = 20000", "study.draws: 'many' is not a whole number"),
    "p5 above p95": ("[priors.pue]\np5 = 1.6\np95 = 1.05\ndist = 'lognormal'", "priors.pue.p5"),
    "negative power": ("[priors.node_power_kw]\nvalue = -10.2", "physical bounds"),
    "undefined prior": ("[priors.puee]\nvalue = 1.2", "priors.puee: overrides a prior"),
}


@pytest.mark.parametrize("case", STUDY_ERRORS)
def test_bad_studies_fail_on_one_line(cli, write, tmp_path, small_study, case):
    fragment, expected = STUDY_ERRORS[case]
    text = small_study.read_text()
    if case == "toml syntax":
        text = fragment + text
    elif case == "unknown key":
        text = text.replace("seed = 7", "seed = 7\nmodels_typo = 1")
    elif case == "unknown model":
        text = text.replace(fragment, '"GPT-5"]')
    elif case == "wrong type":
        text = text.replace(fragment, 'draws = "many"')
    else:
        text += "\n" + fragment + "\n"
    bad = write("bad.toml", text)
    code, out, err = cli("run", bad, "--out", tmp_path / "never")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"uqenergy: error: {bad}: ") and expected in err
    assert not (tmp_path / "never").exists()


def test_missing_file_text_in_benchmark_and_zero_draws(cli, write, tmp_path, small_study):
    code, _, err = cli("run", tmp_path / "absent.toml")
    assert code == 2 and "absent.toml: no such file" in err
    table = write(
        "t.csv",
        "model,hardware,quantization,tokens_per_s,input_tokens,output_tokens,batch_size,"
        "node_power_kw,source\nLlama 3.1 70B,h,FP8,lots,500,2000,1,10,s\n",
    )
    bad = write("b.toml", small_study.read_text().replace('throughput = "', f'throughput = "{table}"\n# "'))
    code, _, err = cli("run", bad)
    assert code == 2 and "t.csv: line 2: tokens_per_s: 'lots' is not a number" in err
    code, _, err = cli("run", small_study, "--draws", "0", "--out", tmp_path / "never")
    assert code == 2 and "--draws: 0 is not a whole number" in err and not (tmp_path / "never").exists()


def test_validate_and_priors_commands(cli, small_study):
    code, out, _ = cli("validate", small_study, "arxiv_v1")
    assert code == 0 and out.count("ok:") == 2
    assert cli("validate", small_study, "arxiv_v1", "--quiet") == (0, "", "")  # nothing but errors
    code, out, _ = cli("priors", "list")
    assert code == 0 and "joule2026" in out and "arxiv_v1" in out
    code, out, _ = cli("priors", "show", "power_utilisation")
    assert code == 0 and "source:" in out and "outside the bounds" in out
    assert cli("priors", "show", "no_such_prior")[0] == 2


def test_real_process_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[study]\nname = 1\n")
    proc = subprocess.run([sys.executable, "-m", "uqenergy", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("uqenergy: error: ") and proc.stderr.count("\n") == 1

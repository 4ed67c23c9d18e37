"""What a new user meets first: output folders, report headlines and figures, overrides, own models, help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import uqenergy
from conftest import PRIORS_DIR, SMALL_STUDY
from uqenergy.cli import build_parser, default_out
from uqenergy.config.catalogue import show, study_catalogue
from uqenergy.config.files import bundled, data_dir
from uqenergy.config.reference import study_file_reference
from uqenergy.config.study import load_study
from uqenergy.engine.throughput import fit_throughput, study_fits
from uqenergy.outputs.progress import elapsed
from uqenergy.outputs.report import _fleet_headlines, _sobol_headlines

ROOT = Path(__file__).resolve().parents[1]
TWO_MODELS = SMALL_STUDY.replace(', "Llama 3.1 70B"]', "]").replace("top = 2", "top = 2")


# 1. every command and study has its own folder -------------------------------------------------------------


def test_each_command_and_study_writes_its_own_folder(cli, write, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = write("first.toml", SMALL_STUDY)
    second = write("second.toml", SMALL_STUDY.replace('name = "small"', 'name = "second"'))
    code, _, err = cli("run", first, "--draws", "500")
    assert code == 0 and "wrote uqenergy-out/run-first/summary.json" in err
    assert cli("run", second, "--draws", "500", "--quiet")[0] == 0
    sobol = write("sob.toml", SMALL_STUDY + '\n[sobol]\nbase_samples = [64]\nseries = ["blend"]\n')
    assert cli("sobol", sobol, "--quiet")[0] == 0
    out = tmp_path / "uqenergy-out"
    assert (out / "run-first" / "summary.json").is_file() and (out / "run-first" / "samples.nc").is_file()
    assert (out / "run-second" / "summary.json").is_file() and (out / "sobol-sob" / "sobol.json").is_file()
    # the same command and study replaces its own previous output
    assert cli("run", first, "--draws", "600", "--quiet")[0] == 0
    assert json.loads((out / "run-first" / "summary.json").read_text())[0]["draws"] == 600
    assert default_out("fleet", "studies/paper_fleet.toml") == Path("uqenergy-out/fleet-paper_fleet")


def test_a_study_given_to_the_wrong_command_names_the_right_one(cli, tmp_path):
    code, _, err = cli("compare", "paper_traditional", "--out", tmp_path / "o")
    assert code == 2 and "is a run study, not a compare study (uqenergy run paper_traditional" in err
    code, _, err = cli("run", "public_estimates", "--out", tmp_path / "o")
    assert code == 2 and "uqenergy compare public_estimates" in err


# 2. report headlines and figures for every kind of study ---------------------------------------------------


SETTINGS_STUDY = (
    SMALL_STUDY.replace('[pathways]\nnames = ["model", "serving"]\n', "")
    + """
[[settings]]
name = "short"

[[settings]]
name = "long_prompts"
study = { effective_tokens = "output+input", input_token_divisor = 3 }
"""
)


def test_settings_report_names_rows_by_setting(cli, write, tmp_path):
    out = tmp_path / "o"
    assert cli("run", write("s.toml", SETTINGS_STUDY), "--out", out, "--draws", "2000", "--quiet")[0] == 0
    report = (out / "report.md").read_text()
    heads = report.split("## Headline numbers")[1].split("##")[0]
    records = json.loads((out / "summary.json").read_text())
    blend = {r["setting"]: r for r in records if r["series"] == "blend"}
    assert heads.count("- ") == 2  # one line per blend, running through the settings
    line = next(x for x in heads.splitlines() if ", blend " in x or ", blend (" in x)
    for setting, r in blend.items():
        assert f"{setting} {uqenergy.outputs.plots.fmt(r['median'])} Wh" in line
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "settings-traditional-blend-paper.png",
        "settings-traditional-blend.png",
    ]
    assert "0 draws per row" not in report


def test_distributions_figure_draws_the_credible_interval_of_the_mean():
    records = [{"series": "m", "p5": 0.1, "p25": 0.2, "median": 0.3, "p75": 0.5, "p95": 1.0}]
    means = {"m": {"series": "m", "p5": 0.25, "median": 0.4, "p95": 0.6}}
    ax = uqenergy.plot_distributions(records, means=means)
    segments = [s for c in ax.collections for s in c.get_segments()]
    assert any(np.allclose([seg[0][0], seg[1][0]], [0.25, 0.6]) for seg in segments)
    assert "mean per query: 90% credible interval" in [t.get_text() for t in ax.figure.legends[0].get_texts()]


def test_two_level_headline_leads_with_the_credible_interval_of_the_mean(cli, tmp_path):
    out = tmp_path / "o"
    assert cli("run", "two_level_traditional", "--draws", "200", "--out", out, "--quiet")[0] == 0
    records = json.loads((out / "summary.json").read_text())
    mean = next(r for r in records if r["series"] == "blend" and r["quantity"] == "mean_energy_wh")
    fmt = uqenergy.outputs.plots.fmt
    report = (out / "report.md").read_text()
    assert f"90% credible interval {fmt(mean['p5'])}-{fmt(mean['p95'])} Wh" in report
    assert "energy per query, traditional, DeepSeek-R1" not in report.split("## Figures")[0]  # the blend leads


def test_sobol_headline_is_the_final_base_size():
    rung = {"scenario": "t", "series": "blend", "target": "energy_wh", "S1": 0.5, "S1_conf": 0.01, "ST_conf": 0.01}
    records = [
        rung | {"factor": "pue", "ST": 0.9, "base_samples": 1024, "converged": False},
        rung | {"factor": "pue", "ST": 0.6, "base_samples": 16384, "converged": True},
    ]
    (line,) = _sobol_headlines(records, {})
    assert "ST 0.60" in line and "converged at 16,384 base samples" in line and "NOT" not in line


def test_fleet_paper_band_is_labelled_monte_carlo_noise():
    head = {"scenario": "baseline", "mix": "traditional", "pathway": "baseline", "quantity": "energy_gwh_per_day"}
    records = [
        head | {"method": "paper", "p5": 0.728, "median": 0.731, "p95": 0.734, "mean": 0.731},
        head | {"method": "honest", "p5": 0.4, "median": 0.74, "p95": 1.5, "mean": 0.8},
    ]
    paper, honest = _fleet_headlines(records, {})
    assert "Monte Carlo noise band 0.728-0.734" in paper and "90% interval" not in paper
    assert "90% credible interval 0.4-1.5" in honest


def test_report_without_blends_has_no_blend_paragraph_and_explains_hdi_at_zero(cli, write, tmp_path):
    one = SMALL_STUDY.split("[blends.blend-paper]")[0].replace(
        'models = ["DeepSeek-R1", "Llama 3.1 405B", ', "models = ["
    )
    out = tmp_path / "o"
    assert cli("run", write("one.toml", one), "--out", out, "--draws", "20000", "--quiet")[0] == 0
    report = (out / "report.md").read_text()
    assert "A blend pools" not in report
    records = json.loads((out / "summary.json").read_text())
    if any(r["hdi_low"] == 0 for r in records):
        assert "starts at 0 Wh, where queries of zero output tokens put a point mass" in report


# 3. overrides reach every model -----------------------------------------------------------------------------


def test_study_override_reaches_every_model_unless_it_names_models(write):
    base = SMALL_STUDY + "\n[priors.node_power_kw]\nvalue = 6.0\n"
    study = load_study(write("o.toml", base))
    assert {study.priors.get("node_power_kw", m).distribution.value for m in study.models} == {6.0}
    named = base + '\n[priors.node_power_kw.models."DeepSeek-R1"]\nvalue = 9.0\n'
    study = load_study(write("n.toml", named))
    assert study.priors.get("node_power_kw", "DeepSeek-R1").distribution.value == 9.0
    assert study.priors.get("node_power_kw", "Llama 3.1 70B").distribution.value == 6.0
    # an override that changes only metadata keeps the per-model values
    source_only = SMALL_STUDY + '\n[priors.node_power_kw]\nsource = "checked again"\n'
    assert (
        load_study(write("s.toml", source_only)).priors.get("node_power_kw", "DeepSeek-R1").distribution.value == 12.8
    )


def test_set_overrides_every_model_and_is_recorded(cli, small_study, tmp_path):
    out = tmp_path / "o"
    args = ("run", small_study, "--out", out, "--draws", "4000", "--quiet")
    assert (
        cli(*args, "--set", "pue.p95=1.4", "--set", "node_power_kw.value=6", "--set", "output_tokens.median=600")[0]
        == 0
    )
    samples = xr.open_dataset(out / "samples.nc", engine="h5netcdf")
    assert json.loads(samples.attrs["overrides"]) == {
        "pue": {"p95": 1.4},
        "node_power_kw": {"value": 6},
        "output_tokens": {"median": 600},
    }
    assert float(samples["node_power_kw"].min()) == float(samples["node_power_kw"].max()) == 6.0
    assert float(samples["pue"].quantile(0.95)) == pytest.approx(1.4, rel=0.02)
    assert float(samples["output_tokens"].median()) == pytest.approx(600, rel=0.05)
    assert "Prior overrides given for this run" in (out / "report.md").read_text()
    code, _, err = cli("run", small_study, "--out", out, "--set", "pue=1.4")
    assert code == 2 and "--set: 'pue=1.4' is not NAME.KEY=VALUE" in err
    code, _, err = cli("run", small_study, "--out", out, "--set", "peu.p95=1.4")
    assert code == 2 and "overrides: priors.peu: overrides a prior the prior files do not define" in err


def test_run_study_takes_overrides():
    result = uqenergy.run_study("paper_traditional", draws=2000, seed=1, overrides={"node_power_kw": {"value": 6.0}})
    assert set(np.unique(result.samples["node_power_kw"].values)) == {6.0}
    assert json.loads(result.samples.attrs["overrides"]) == {"node_power_kw": {"value": 6.0}}


def test_priors_show_drops_a_note_that_described_other_numbers():
    pue = show("arxiv_v1").split("\n\n")[0] if "\n\n" in show("arxiv_v1") else show("arxiv_v1")
    block = pue[pue.index("pue:") :].split("\npower_utilisation")[0].split("\nnode_power_kw")[0]
    assert "p95=1.4" in block and "1.6" not in block


# 4. your own model ------------------------------------------------------------------------------------------


OWN_MODELS = (
    SMALL_STUDY
    + """
[models."given"]
hardware = "8xA100 80GB"
source = "our load test"
node_power_kw = 6.5
throughput = 1500

[models."uncertain"]
source = "vendor claim"
throughput = { dist = "lognormal", p5 = 1000, p95 = 3000 }

[models."points"]
hardware = "8xH100 80GB"
source = "our runs"
throughput = [
  { tokens_per_s = 2400, input_tokens = 200, output_tokens = 200 },
  { tokens_per_s = 1900, input_tokens = 1000, output_tokens = 200 },
  { tokens_per_s = 2600, input_tokens = 200, output_tokens = 1000 },
  { tokens_per_s = 1700, input_tokens = 2000, output_tokens = 1000 },
]
"""
)

POINTS_CSV = """model,hardware,quantization,tokens_per_s,input_tokens,output_tokens,batch_size,node_power_kw,source
points,8xH100 80GB,FP8,2400,200,200,dynamic,10,our runs
points,8xH100 80GB,FP8,1900,1000,200,dynamic,10,our runs
points,8xH100 80GB,FP8,2600,200,1000,dynamic,10,our runs
points,8xH100 80GB,FP8,1700,2000,1000,dynamic,10,our runs
"""


def test_inline_models_give_throughput_as_number_distribution_or_points(write):
    study = load_study(write("own.toml", OWN_MODELS), draws=20000)
    assert study.models[-3:] == ["given", "uncertain", "points"]
    result = uqenergy.run_study(study)
    tps = result.samples["tokens_per_s"]
    assert set(np.unique(tps.sel(model="given").values)) == {1500.0}
    assert set(np.unique(result.samples["node_power_kw"].sel(model="given").values)) == {6.5}
    p5, p95 = np.percentile(tps.sel(model="uncertain"), [5, 95])
    assert p5 == pytest.approx(1000, rel=0.05) and p95 == pytest.approx(3000, rel=0.05)
    # the fitted models are untouched by the drawn throughput of another model
    fits = study_fits(study)
    assert float(fits["residual_sd"].sel(model="Llama 3.1 70B")) == 0.0
    from uqenergy.config.benchmarks import read_benchmarks

    table = fit_throughput(read_benchmarks(write("p.csv", POINTS_CSV)), ["points"])
    np.testing.assert_allclose(fits["coefficients"].sel(model="points"), table["coefficients"].sel(model="points"))
    report_rows = json.loads(result.samples.attrs["throughput"])
    assert any(r["model"] == "given" and "1500 tokens/s (given)" in r["throughput"] for r in report_rows)


def test_model_errors_point_to_the_guide(cli, write, tmp_path):
    unknown = write("u.toml", SMALL_STUDY.replace('"Llama 3.1 70B"]', '"my-model"]'))
    code, _, err = cli("run", unknown, "--out", tmp_path / "o")
    assert code == 2 and "unknown model 'my-model'" in err and '[models."my-model"]' in err
    assert "docs/custom-model.md" in err
    fp16 = write(
        "fp16.csv",
        "model,hardware,quantization,tokens_per_s,input_tokens,output_tokens,batch_size,node_power_kw,source\n"
        "m,8xH100,FP16,1000,500,300,8,10,s\n",
    )
    only = SMALL_STUDY.replace(f'throughput = "{PRIORS_DIR / "throughput_h100.csv"}"', f'throughput = "{fp16}"')
    only = re.sub(r"models = \[.*\]", 'models = ["m"]', only).replace("top = 2", "top = 1")
    code, _, err = cli("run", write("q.toml", only), "--out", tmp_path / "o")
    assert code == 2 and "set study.quantization = 'FP16'" in err and "docs/custom-model.md" in err
    bad = write("b.toml", OWN_MODELS.replace('dist = "lognormal", p5 = 1000', 'dist = "normal", mean = 1000'))
    code, _, err = cli("run", bad, "--out", tmp_path / "o")
    assert code == 2 and "'normal' is not supported for throughput (lognormal; see" in err


# 5. missing extras and closed pipes -------------------------------------------------------------------------


def test_missing_optional_dependency_names_the_extra(cli, small_study, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "distributed", None)
    code, _, err = cli("run", small_study, "--scheduler", "threads", "--out", tmp_path / "o", "--draws", "500")
    assert code == 2 and err == (
        "uqenergy: error: this needs the optional package 'dask': pip install 'uqenergy[dask]'\n"
    )


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.run(
        f"{sys.executable} -m uqenergy priors show joule2026 | head -c 10 > /dev/null; "
        f"{sys.executable} -m uqenergy studies | head -c 1 > /dev/null",
        shell=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stderr == ""


# 6. warnings ------------------------------------------------------------------------------------------------


def test_warnings_once_per_prior_relative_and_only_for_used_priors(cli, write, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("run", write("s.toml", SETTINGS_STUDY), "--draws", "500")
    warnings = [line for line in err.splitlines() if "warning" in line]
    priors = [re.search(r"priors\.(\w+)", w).group(1) for w in warnings]
    assert code == 0 and sorted(priors) == ["power_utilisation", "pue"]  # no pathway priors: none used
    assert all(str(tmp_path) not in w and "site-packages" not in w for w in warnings)
    code, _, err = cli("validate", *(data_dir("studies") / f"{n}.toml" for n in bundled("studies")))
    assert code == 0 and len(err.splitlines()) <= 8
    code, out, err = cli("run", write("q.toml", SMALL_STUDY), "--draws", "500", "--quiet")
    assert (code, out, err) == (0, "", "")


# 7. throughput in the report's prior table ------------------------------------------------------------------


def test_report_prior_table_shows_throughput_with_hardware_and_source(cli, small_study, tmp_path):
    out = tmp_path / "o"
    assert cli("run", small_study, "--out", out, "--draws", "500", "--quiet")[0] == 0
    report = (out / "report.md").read_text()
    table = report.split("Throughput (tokens/s) of each model")[1]
    assert "| DeepSeek-R1 | loglinear, 3 rows FP8 | ln TPS" in table and "capped at 1,300 tokens/s" in table
    assert "8xH200 141GB FP8" in table and "Bercovich" in table


# 8. help, studies, the study-file reference -----------------------------------------------------------------


def test_every_subcommand_has_help_text():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        assert sub.description, name
        help_of = {a.dest: a.help for a in sub._actions if a.dest != "help"}
        assert all(help_of.values()), (name, help_of)
    assert {a.dest: a.help for a in subparsers._choices_actions}.keys() == subparsers.choices.keys()


def test_studies_lists_every_bundled_study_with_its_description(cli):
    code, out, _ = cli("studies")
    assert code == 0
    for name, command, description in study_catalogue():
        assert re.search(rf"uqenergy {command} +{name} +{re.escape(description)}", out)
        assert description
    assert len(out.splitlines()) == len(bundled("studies"))


def test_study_file_reference_is_generated_from_the_code():
    assert (ROOT / "docs" / "study-files.md").read_text() == study_file_reference()


# smaller items ----------------------------------------------------------------------------------------------


def test_energy_is_not_tagged_with_an_input_kind():
    samples = uqenergy.run_study("paper_traditional", draws=1000, seed=1).samples
    assert "kind" not in samples["energy_wh"].attrs and samples["energy_wh"].attrs["units"] == "Wh"
    assert samples["output_tokens"].attrs["kind"] == "aleatory"


def test_durations_and_counts_read_naturally(cli, small_study):
    assert elapsed(0.01) == "under 0.1 s" and elapsed(2.34) == "2.3 s" and elapsed(125) == "2 min 05 s"
    one = small_study.read_text().replace('"DeepSeek-R1", "Llama 3.1 405B", ', "").split("[blends")[0]
    small_study.write_text(one)
    code, out, _ = cli("validate", small_study)
    assert code == 0 and "1 model)" in out


def test_docs_report_names_the_files_written():
    text = (ROOT / "docs" / "report.md").read_text()
    assert "sobol.png" not in text and "sobol-<series>.png" in text


def _quick_start() -> list[list[str]]:
    """The uqenergy commands of the README's quick start, in order, as argument lists."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start")[1].split("\n## ")[0]
    return [line.split("#")[0].split()[1:] for line in block.splitlines() if line.strip().startswith("uqenergy ")]


@pytest.mark.slow
def test_readme_quick_start_keeps_every_output(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = _quick_start()
    assert [c[0] for c in commands][:2] == ["studies", "run"] and len(commands) >= 9
    written = []
    for args in commands:
        small = ["--draws", "300"] if args[0] in ("run", "compare", "fleet") else []
        code, _out, err = cli(*args, *small, *(["--quiet"] if args[0] != "studies" else []))
        assert code == 0, (args, err)
        if args[0] in ("run", "sobol", "compare", "fleet"):
            out = Path(args[args.index("--out") + 1]) if "--out" in args else None
            written.append(
                out
                or default_out(
                    args[0], args[1] if len(args) > 1 and not args[1].startswith("-") else "paper_traditional"
                )
            )
    assert len(set(written)) == len(written)
    for folder in written:  # every output of the walk-through is still on disk at the end
        assert (tmp_path / folder / "report.md").is_file(), folder

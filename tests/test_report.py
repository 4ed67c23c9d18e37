"""The report of an output folder: every record, the figures, priors and provenance; self-contained HTML."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_STUDY
from test_plots import COMPARE, FLEET, SOBOL
from uqenergy.cli import main
from uqenergy.config.errors import InputError
from uqenergy.config.study import load_study
from uqenergy.outputs import report
from uqenergy.outputs.files import write_manifest


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder written by ``uqenergy run`` on the small three-model study (20,000 draws, all saved)."""
    root = tmp_path_factory.mktemp("report")
    study = root / "small.toml"
    study.write_text(SMALL_STUDY)
    assert main(["run", str(study), "--out", str(root / "out"), "--quiet"]) == 0
    return root / "out"


def table_rows(markdown: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split(" | ")] for line in markdown.splitlines() if line.startswith("| ")
    ]


def test_run_leaves_report_and_figures(finished):
    names = sorted(p.name for p in (finished / "figures").iterdir())
    assert names == ["convergence-traditional.png", "distributions-traditional.png", "pathways-traditional.png"]
    assert (finished / "report.md").is_file() and (finished / "report.html").is_file()
    markdown = (finished / "report.md").read_text()
    for name in names:
        assert f"(figures/{name})" in markdown


def test_report_contains_every_record_of_summary_json(finished):
    records = json.loads((finished / "summary.json").read_text())
    rows = table_rows((finished / "report.md").read_text())
    for record in records:
        matching = [row for row in rows if row[:3] == [record["scenario"], record["series"], record["pathway"]]]
        assert len(matching) == 1, record
        for key in ("p5", "median", "p95", "mean"):
            assert f"{record[key]:.4g}" in matching[0]
        assert f"{record['draws']:,}" in matching[0]


def test_headline_gives_the_blends_median_and_intervals(finished):
    records = json.loads((finished / "summary.json").read_text())
    blend = next(r for r in records if r["series"] == "blend" and r["pathway"] == "baseline")
    markdown = (finished / "report.md").read_text()
    headline = markdown.split("## Headline numbers")[1].split("##")[0]
    assert f"median {blend['median']:.3g} Wh" in headline
    assert f"90% interval {blend['p5']:.3g}-{blend['p95']:.3g} Wh" in headline


def test_priors_are_listed_with_their_sources(finished):
    study = load_study(finished.parent / "small.toml")
    markdown = (finished / "report.md").read_text()
    priors_section = markdown.split("## Priors used")[1].split("## Provenance")[0]
    for name in study.factors:
        assert study.priors.get(name).source in priors_section
    assert study.priors.get("node_power_kw", "DeepSeek-R1").source in priors_section  # per-model override


def test_provenance_has_seed_and_input_file_hashes(finished):
    study = load_study(finished.parent / "small.toml")
    rows = table_rows((finished / "report.md").read_text())
    assert ["seed", "7"] in rows
    hashes = {row[1] for row in rows if len(row) == 2}
    for path in study.input_files:
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() in hashes


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained(finished):
    parser = _Collector()
    parser.feed((finished / "report.html").read_text())
    parser.close()
    tags = [t for t, _ in parser.tags]
    assert tags[0] == "html" and "body" in tags
    assert "script" not in tags and "link" not in tags
    for _, attrs in parser.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or not value.lower().startswith(("http:", "https:", "//")), value
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == len(list((finished / "figures").iterdir()))
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = "".join(parser.text)
    for record in json.loads((finished / "summary.json").read_text()):
        assert f"{record['median']:.4g}" in text


def test_series_draws_rebuild_the_runs_pools(finished):
    out = report.read_output(finished)
    records = {(r["series"], r["pathway"]): r for r in out.results["summary.json"]}
    draws = report.series_draws(out.energy_wh, out.attrs)
    # Every draw of this small run is saved, so the pools (trimmed or not) are the run's, up to float32 storage.
    for series in ("blend", "blend-paper", "DeepSeek-R1"):
        assert np.median(draws[series]) == pytest.approx(records[(series, "baseline")]["median"], rel=1e-7)
        assert draws[series].size == records[(series, "baseline")]["draws"]


def test_convergence_trace_ends_at_the_reported_values(finished):
    out = report.read_output(finished)
    baseline = [r for r in out.results["summary.json"] if r["pathway"] == "baseline"]
    trace = report.convergence_records(out.energy_wh, out.attrs, baseline)
    for record in baseline:
        points = sorted((p for p in trace if p["series"] == record["series"]), key=lambda p: p["draws"])
        assert [p["draws"] for p in points] == sorted({p["draws"] for p in points})  # strictly increasing
        assert points[-1]["draws"] == record["draws"]
        assert points[-1]["median"] == pytest.approx(record["median"], rel=1e-7)  # saved draws are float32
    members = out.attrs["blend_members_blend"].split(", ")
    assert {p["draws"] for p in trace if p["series"] == "blend"} >= {1000 * len(members), 2000 * len(members)}


def test_report_command_rebuilds_the_same_report(finished, tmp_path, cli):
    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    original = {
        name: (folder / name).read_bytes() for name in ("report.md", "report.html", "summary.json", "samples.nc")
    }
    shutil.rmtree(folder / "figures")
    (folder / "report.md").unlink()
    code, _, err = cli("report", folder)
    assert code == 0, err
    assert {p.name for p in (folder / "figures").iterdir()} == {p.name for p in (finished / "figures").iterdir()}
    for name, content in original.items():
        assert (folder / name).read_bytes() == content, name


def test_report_command_leaves_the_folder_alone_on_bad_input(finished, tmp_path, cli):
    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    (folder / "summary.json").write_text("[{broken")
    code, _, err = cli("report", folder)
    assert code == 2
    assert err.startswith("uqenergy: error: ") and "summary.json" in err and "Traceback" not in err
    assert (folder / "report.md").read_bytes() == (finished / "report.md").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy")]  # no staging folder left behind


@pytest.mark.parametrize("setup", ["missing", "not-an-output"])
def test_report_command_refuses_a_folder_uqenergy_did_not_write(setup, tmp_path, cli):
    folder = tmp_path / "folder"
    if setup == "not-an-output":
        folder.mkdir()
        (folder / "summary.json").write_text("[]")
    code, _, err = cli("report", folder)
    assert code == 2 and "is not a uqenergy output folder" in err


def test_report_is_generic_over_the_json_files_present(tmp_path, cli):
    folder = tmp_path / "other"
    folder.mkdir()
    for name, records in (("sobol.json", SOBOL), ("fleet.json", FLEET), ("compare.json", COMPARE)):
        (folder / name).write_text(json.dumps(records))
    (folder / "figures").mkdir()
    (folder / "figures" / "compare.png").write_bytes(b"a figure another command drew")
    write_manifest(folder)
    code, _, err = cli("report", folder)
    assert code == 0, err
    assert sorted(p.name for p in (folder / "figures").iterdir()) == [
        "compare.png",
        "fleet.png",
        "published-estimates.png",
        "sobol-blend.png",
    ]
    assert (folder / "figures" / "compare.png").read_bytes() == b"a figure another command drew"
    markdown = (folder / "report.md").read_text()
    for record in SOBOL:
        assert record["factor"] in markdown
    for record in COMPARE:
        assert record["estimate_id"] in markdown and record["verdict"] in markdown
    assert len([row for row in table_rows(markdown) if "monte-carlo" in row]) == 2
    assert "dominant factor output_tokens (ST 0.70 ± 0.04" in markdown


def test_empty_folder_has_nothing_to_report(tmp_path):
    with pytest.raises(InputError, match="holds no uqenergy results"):
        report.read_output(tmp_path)


def test_a_record_lacking_a_needed_key_is_an_input_error(tmp_path, cli):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "fleet.json").write_text(json.dumps([{k: v for k, v in FLEET[0].items() if k != "p95"}]))
    write_manifest(folder)
    code, _, err = cli("report", folder)
    assert code == 2
    assert "fleet.json: record 0: lacks p95" in err


def test_report_md_keeps_text_from_input_files_inert(tmp_path, cli):
    folder = tmp_path / "injected"
    folder.mkdir()
    hostile = "<script>alert(1)</script> [click](javascript:alert(1))\n# injected heading | cell"
    records = [r | {"series": hostile} for r in SOBOL]
    (folder / "sobol.json").write_text(json.dumps(records))
    write_manifest(folder)
    code, _, err = cli("report", folder)
    assert code == 0, err
    markdown = (folder / "report.md").read_text()
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown  # shown, never run
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown) and "\\[click\\]" in markdown  # no link
    assert not any(line.startswith("# injected") for line in markdown.splitlines())  # no new block
    assert "# injected heading \\| cell" in markdown  # one cell of its table row, not two

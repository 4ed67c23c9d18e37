"""Measured data from the command line: the import, the bundled measured studies, and the rows of docs/errors.md
(section "Measured tables and measured studies"), one test per row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import PRIORS_DIR, leaderboard_entry, leaderboard_task_file
from uqenergy.config.measured import COLUMNS, written_by_importer

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mlenergy"


def test_import_writes_a_table_a_study_can_run(cli, tmp_path):
    source = leaderboard_task_file(
        tmp_path,
        [
            leaderboard_entry(8),
            leaderboard_entry(64),
            leaderboard_entry(64, avg_power_watts=600.0),
            leaderboard_entry(8, model_id="o/One"),
        ],
    )
    code, _, err = cli("data", "import-mlenergy", str(source), "--out", str(tmp_path / "mine.csv"))
    assert code == 0, err
    assert "left out o/One on H100 x1 (bfloat16, lm-arena-chat): a single batch point" in err
    assert "wrote" in err and "2 configurations in 1 groups" in err
    assert written_by_importer(tmp_path / "mine.csv")
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "s"\nscenario = "chat"\npriors = ["measured"]\ndraws = 500\n'
        '[measured]\ntable = "mine.csv"\ntask = "lm-arena-chat"\n'
    )
    code, out, err = cli("run", str(study), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "Model 8B (1xH100)" in out
    # a second import replaces the table it wrote
    code, _, err = cli("data", "import-mlenergy", str(source), "--out", str(tmp_path / "mine.csv"), "--quiet")
    assert code == 0 and err == ""


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the shared reference files are beside the checkout in CI")
def test_importing_the_reference_files_reproduces_the_bundled_table(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("data", "import-mlenergy", *map(str, sorted(REFERENCE.glob("*.json"))))
    assert code == 0, err
    ours = (tmp_path / "mlenergy.csv").read_text().splitlines()
    bundled = (PRIORS_DIR / "mlenergy_v3.csv").read_text().splitlines()
    assert ours[1:] == bundled[1:]  # the first line names the source files


@pytest.mark.slow
@pytest.mark.parametrize("name", ["measured_chat", "measured_reasoning"])
def test_bundled_measured_studies_run_and_name_every_configuration(cli, tmp_path, name):
    code, _, err = cli("run", name, "--draws", "2000", "--out", str(tmp_path / name))
    assert code == 0, err
    records = json.loads((tmp_path / name / "summary.json").read_text())
    for r in records:
        assert {"model", "gpu", "gpu_count", "precision", "boundary", "clamped_draws"} <= r.keys(), r
        assert r["boundary"] == "facility"
    figures = {p.name for p in (tmp_path / name / "figures").iterdir()}
    assert {"measured-configurations.png", "energy-per-token.png"} <= figures
    report = (tmp_path / name / "report.md").read_text()
    assert "What the measurements say about the paper's test-time assumptions" in report
    assert "| DeepSeek R1 | DeepSeek V3.1 | family | 11,450 | 845 | 13.5x |" in report


def test_sobol_on_the_measured_chat_study_reports_gpu_choice_and_every_rung(tmp_path):
    import uqenergy
    from uqenergy.config.study import load_study

    study = load_study("sobol_measured_chat")
    section = study.sobol
    small = type(section)(
        type(section.options)(base_samples=(256,), resamples=20), ("log_energy_wh",), ("Llama 3.1 8B",), section.groups
    )
    from dataclasses import replace

    result = uqenergy.run_sensitivity(replace(study, sobol=small))
    factors = {r["factor"] for r in result.records}
    assert {
        "concurrency",
        "output_tokens",
        "server_overhead",
        "provisioning_overhead",
        "pue",
        "model_choice",
    } <= factors
    assert {"group:workload", "group:deployment", "group:hardware", "group:facility"} <= factors


TABLE_ROW = "lm-arena-chat,org/M,M,{gpu},1,bfloat16,8.0,8.0,Dense,{cap},{cap},500.0,{tps},{power},{energy},1"


def _table(rows: list[dict]) -> str:
    lines = [",".join(COLUMNS)]
    for row in rows:
        values = {"gpu": "H100", "cap": 8, "tps": 800.0, "power": 400.0} | row
        numbers = all(isinstance(values[k], float) for k in ("power", "tps"))
        values.setdefault("energy", values["power"] / values["tps"] if numbers else 1.0)
        lines.append(TABLE_ROW.format(**values))
    return "\n".join(lines) + "\n"


GOOD = [{"cap": 8}, {"cap": 16}]
STUDY = '[study]\nname = "s"\nscenario = "chat"\npriors = ["measured"]\ndraws = 100\n{study}\n[measured]\n{measured}\n'
# (row of docs/errors.md, what is broken: ("import", entries) | ("table", rows) | ("study", [study], [measured]), error)
CASES = [
    ("measured-import-missing-field", ("import", "missing"), "configurations[0].avg_power_watts: is missing"),
    (
        "measured-import-text-in-number",
        ("import", [leaderboard_entry(8), leaderboard_entry(16, avg_power_watts="many")]),
        "configurations[1].avg_power_watts: 'many' is not a number (a positive finite number)",
    ),
    (
        "measured-import-zero-power",
        ("import", [leaderboard_entry(8), leaderboard_entry(16, avg_power_watts=0)]),
        "configurations[1].avg_power_watts: 0 is not a positive finite number",
    ),
    (
        "measured-import-negative-throughput",
        ("import", [leaderboard_entry(8, output_throughput_tokens_per_sec=-5.0), leaderboard_entry(16)]),
        "configurations[0].output_throughput_tokens_per_sec: -5.0 is not a positive finite number",
    ),
    (
        "measured-import-unknown-gpu",
        ("import", [leaderboard_entry(8, gpu_model="A100"), leaderboard_entry(16, gpu_model="A100")]),
        "configurations[0].gpu_model: unknown GPU 'A100' (H100, B200)",
    ),
    ("measured-import-not-json", ("import", "{"), "chat.json: not valid JSON"),
    ("measured-import-out-foreign", ("import-out", "mine.csv"), "mine.csv: --out: exists and was not written"),
    (
        "measured-table-duplicate",
        ("table", [{"cap": 8}, {"cap": 8}, {"cap": 16}]),
        "repeats the configuration of row 1",
    ),
    ("measured-table-single-point", ("table", [{"cap": 8}]), "M, H100 x1, bfloat16, lm-arena-chat: has a single"),
    (
        "measured-table-unknown-gpu",
        ("table", [{"cap": 8, "gpu": "A100"}, {"cap": 16, "gpu": "A100"}]),
        "gpu: unknown GPU 'A100' (H100, B200)",
    ),
    (
        "measured-table-zero-power",
        ("table", [{"cap": 8, "power": 0}, {"cap": 16}]),
        "row 1: gpu_power_w: 0 is not a positive finite number",
    ),
    (
        "measured-table-text-in-number",
        ("table", [{"cap": 8, "tps": "fast"}, {"cap": 16}]),
        "row 1: tokens_per_s: 'fast' is not a number",
    ),
    (
        "measured-table-energy-mismatch",
        ("table", [{"cap": 8, "energy": 9.0}, {"cap": 16}]),
        "energy_per_output_token_j: 9 J is not gpu_power_w / tokens_per_s",
    ),
    ("measured-study-task", ("study", "", 'task = "chat"'), "measured.task: unknown task 'chat'"),
    ("measured-study-model", ("study", "", 'task = "gpqa"\nmodels = ["GPT-5"]'), "'GPT-5' was not measured on gpqa"),
    (
        "measured-study-model-gpu",
        ("study", "", 'task = "gpqa"\nmodels = ["DeepSeek R1"]\ngpus = ["H100"]'),
        "'DeepSeek R1' was not measured on H100 for gpqa",
    ),
    ("measured-study-gpu", ("study", "", 'task = "gpqa"\ngpus = ["A100"]'), "measured.gpus: unknown name 'A100'"),
    ("measured-study-boundary", ("study", "", 'task = "gpqa"\nboundary = "rack"'), "unknown boundary 'rack'"),
    (
        "measured-study-output-tokens",
        ("study", "", 'task = "gpqa"\noutput_tokens = "median"'),
        "measured.output_tokens: unknown choice 'median' (measured or prior)",
    ),
    (
        "measured-study-paper-key",
        ("study", 'models = ["Llama 3.1 70B"]', 'task = "gpqa"'),
        "study.models: is not used by a measured study",
    ),
    ("measured-study-table", ("study", "", 'task = "gpqa"\ntable = "nowhere.csv"'), "measured.table: 'nowhere.csv'"),
]


@pytest.mark.parametrize("row", CASES, ids=[c[0] for c in CASES])
def test_catalogue_row(row, cli, tmp_path):
    _name, (kind, *what), expected = row
    out = tmp_path / "out"
    if kind == "import":
        source = tmp_path / "lm-arena-chat.json"  # where leaderboard_task_file writes
        if what[0] == "missing":
            entry = leaderboard_entry(8)
            del entry["avg_power_watts"]
            leaderboard_task_file(tmp_path, [entry])
        elif what[0] == "{":
            source.write_text("{")
        else:
            leaderboard_task_file(tmp_path, what[0])
        args = ["data", "import-mlenergy", str(source), "--out", str(out / "t.csv")]
    elif kind == "import-out":
        (tmp_path / "mine.csv").write_text("my own notes\n")
        args = [
            "data",
            "import-mlenergy",
            str(leaderboard_task_file(tmp_path, [leaderboard_entry(8), leaderboard_entry(16)])),
            "--out",
        ]
        args.append(str(tmp_path / "mine.csv"))
    else:
        study, measured = what if kind == "study" else ("", 'table = "bad.csv"\ntask = "lm-arena-chat"')
        if kind == "table":
            (tmp_path / "bad.csv").write_text(_table(what[0]))
        (tmp_path / "study.toml").write_text(STUDY.format(study=study, measured=measured))
        args = ["run", str(tmp_path / "study.toml"), "--out", str(out)]
    code, _, err = cli(*args)
    assert code == 2, err
    assert err.startswith("uqenergy: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert not out.exists()
    if kind == "import-out":
        assert (tmp_path / "mine.csv").read_text() == "my own notes\n"

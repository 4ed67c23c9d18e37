"""The measured table (ML.ENERGY v3): the importer's rules and the reader's one-line errors."""

import json
from pathlib import Path

import pytest

from conftest import leaderboard_entry, leaderboard_task_file
from uqenergy.config.errors import InputError
from uqenergy.config.files import data_dir
from uqenergy.config.measured import COLUMNS, import_mlenergy, measured_csv, read_measured

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mlenergy"
BUNDLED = data_dir("priors") / "mlenergy_v3.csv"


def test_bundled_table_reads_and_every_group_has_two_batch_points():
    table = read_measured(BUNDLED)
    groups = table.groups()
    assert len(table.configurations) == 562 and len(groups) == 72
    assert all(len(rows) >= 2 for rows in groups.values())
    for c in table.configurations:
        assert c.energy_per_output_token_j == pytest.approx(c.gpu_power_w / c.tokens_per_s, rel=1e-12)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the shared reference files are beside the checkout in CI")
def test_bundled_table_is_the_import_of_the_reference_files():
    configurations, warnings = import_mlenergy(sorted(REFERENCE.glob("*.json")))
    assert warnings == []
    assert configurations == list(read_measured(BUNDLED).configurations)
    # three configurations were measured twice: averaged, energy per token recomputed from the means
    repeated = [c for c in configurations if c.runs == 2]
    assert len(repeated) == 3
    raw = [e for f in REFERENCE.glob("*.json") for e in json.loads(f.read_text())["configurations"]]
    for c in repeated:
        runs = [
            e
            for e in raw
            if (e["model_id"], e["gpu_model"], e["num_gpus"], e["max_num_seqs"])
            == (c.model_id, c.gpu, c.gpu_count, c.batch_cap)
            and e["weight_precision"] == c.precision
        ]
        assert c.gpu_power_w == pytest.approx(sum(e["avg_power_watts"] for e in runs) / len(runs), rel=1e-12)


def test_importer_averages_repeats_and_leaves_out_single_point_groups(tmp_path):
    configurations = [
        leaderboard_entry(8),
        leaderboard_entry(64),
        leaderboard_entry(64, avg_power_watts=600.0),
        leaderboard_entry(8, model_id="org/Lonely"),
    ]
    rows, warnings = import_mlenergy([leaderboard_task_file(tmp_path, configurations)])
    assert [(r.model_id, r.batch_cap, r.runs) for r in rows] == [("org/Model-8B", 8, 1), ("org/Model-8B", 64, 2)]
    assert rows[1].gpu_power_w == 500.0 and rows[1].energy_per_output_token_j == 500.0 / 6400.0
    assert warnings == ["left out org/Lonely on H100 x1 (bfloat16, lm-arena-chat): a single batch point"]
    written = tmp_path / "table.csv"
    written.write_text(measured_csv(rows, "test build"))
    assert list(read_measured(written).configurations) == rows


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"avg_power_watts": "many"}, "avg_power_watts"),
        ({"avg_power_watts": 0}, "avg_power_watts"),
        ({"output_throughput_tokens_per_sec": -5.0}, "output_throughput_tokens_per_sec"),
    ],
)
def test_importer_refuses_bad_numbers(tmp_path, change, key):
    path = leaderboard_task_file(tmp_path, [leaderboard_entry(8), leaderboard_entry(16, **change)])
    with pytest.raises(InputError, match=rf"configurations\[1\]\.{key}"):
        import_mlenergy([path])


def test_importer_refuses_a_missing_field(tmp_path):
    entry = leaderboard_entry(8)
    del entry["avg_power_watts"]
    with pytest.raises(InputError, match=r"configurations\[0\]\.avg_power_watts: is missing"):
        import_mlenergy([leaderboard_task_file(tmp_path, [entry])])


def _table(tmp_path: Path, rows: list[list]) -> Path:
    path = tmp_path / "measured.csv"
    path.write_text("\n".join([",".join(COLUMNS), *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


def _row(batch_cap=8, gpu="H100", power=400.0, tps=800.0, energy=None) -> list:
    return [
        "chat",
        "org/M",
        "M",
        gpu,
        1,
        "bfloat16",
        8.0,
        8.0,
        "Dense",
        batch_cap,
        batch_cap,
        500.0,
        tps,
        power,
        power / tps if energy is None else energy,
        1,
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row(8), _row(8)], "repeats the configuration of row 1"),
        ([_row(8)], "has a single batch point"),
        ([_row(8, gpu="A100"), _row(16, gpu="A100")], "unknown GPU 'A100'"),
        ([_row(8, power=0.0, energy=1.0), _row(16)], "gpu_power_w: 0.0 is not a positive finite number"),
        ([_row(8, energy=9.0), _row(16)], "is not gpu_power_w / tokens_per_s"),
    ],
)
def test_reader_refuses_bad_tables_with_one_line(tmp_path, rows, message):
    with pytest.raises(InputError, match=message) as error:
        read_measured(_table(tmp_path, rows))
    assert "\n" not in error.value.message


def test_reader_refuses_text_in_a_number_column(tmp_path):
    path = _table(tmp_path, [_row(8), _row(16)])
    path.write_text(path.read_text().replace("800.0", "fast", 1))
    with pytest.raises(InputError, match=r"row 1: tokens_per_s: 'fast' is not a number"):
        read_measured(path)

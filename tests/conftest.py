"""Shared fixtures: run the CLI in-process, write small study and prior files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uqenergy.cli import main
from uqenergy.config.files import data_dir

PRIORS_DIR = data_dir("priors")
STUDIES_DIR = data_dir("studies")


@pytest.fixture
def cli(capsys):
    """Run ``uqenergy ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def write(tmp_path):
    """Write a text file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write


SMALL_STUDY = f"""
[study]
name = "small"
scenario = "traditional"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
throughput = "{PRIORS_DIR / "throughput_h100.csv"}"
models = ["DeepSeek-R1", "Llama 3.1 405B", "Llama 3.1 70B"]
draws = 20000
seed = 7

[blends.blend-paper]
top = 2
trim = [[5, 95], [10, 90]]

[blends.blend]
top = 2

[pathways]
names = ["model", "serving"]
"""


@pytest.fixture
def small_study(write) -> Path:
    """A three-model study with 20,000 draws per model, written to a temporary folder."""
    return write("small.toml", SMALL_STUDY)


def leaderboard_entry(batch_cap: int, **changes) -> dict:
    """One configuration of an ML.ENERGY Leaderboard task file (a 1xH100 BF16 model), with ``changes``."""
    return {
        "model_id": "org/Model-8B",
        "nickname": "Model 8B",
        "gpu_model": "H100",
        "num_gpus": 1,
        "weight_precision": "bfloat16",
        "total_params_billions": 8.0,
        "activated_params_billions": 8.0,
        "architecture": "Dense Transformer",
        "max_num_seqs": batch_cap,
        "avg_batch_size": batch_cap * 0.95,
        "avg_output_len": 500.0,
        "output_throughput_tokens_per_sec": 100.0 * batch_cap,
        "avg_power_watts": 400.0,
    } | changes


def leaderboard_task_file(folder: Path, entries: list[dict], task: str = "lm-arena-chat") -> Path:
    """A leaderboard task file holding ``entries``."""
    path = folder / f"{task}.json"
    path.write_text(json.dumps({"task": task, "configurations": entries}))
    return path

"""Shared fixtures: run the CLI in-process, write small study and prior files."""

from __future__ import annotations

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

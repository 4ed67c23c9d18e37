"""Progress on stderr: a bar on a terminal, one summary line otherwise, nothing with --quiet."""

from __future__ import annotations

import io
import sys

import pytest

from conftest import SMALL_STUDY
from uqenergy.cli import main
from uqenergy.outputs import progress


class TerminalLike(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_delay(monkeypatch):
    monkeypatch.setattr(progress, "BAR_DELAY_S", 0.0)


def test_bar_on_a_terminal(no_delay):
    stream = TerminalLike()
    with progress.draw_progress(1000, stream=stream) as advance:
        for _ in range(4):
            advance(250)
    text = stream.getvalue()
    assert "0.00/1.00k" in text and "draws/s" in text and "\r" in text  # a bar redrawn in place
    assert text.rstrip().splitlines()[-1].startswith("uqenergy: 1,000 draws in ")


def test_one_line_when_not_a_terminal(no_delay):
    stream = io.StringIO()
    with progress.draw_progress(1000, stream=stream) as advance:
        advance(600)
        advance(400)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("uqenergy: 1,000 draws in ")
    assert "\r" not in stream.getvalue()


def test_short_runs_show_no_bar():
    stream = TerminalLike()
    with progress.draw_progress(1000, stream=stream) as advance:
        advance(1000)  # well within BAR_DELAY_S
    assert "%" not in stream.getvalue()
    assert stream.getvalue().startswith("uqenergy: 1,000 draws in ")


def test_quiet_prints_nothing(no_delay):
    stream = TerminalLike()
    with progress.draw_progress(1000, stream=stream, quiet=True) as advance:
        advance(1000)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_run_shows_progress_on_a_terminal_unless_quiet(quiet, no_delay, write, tmp_path, monkeypatch):
    study = write("tiny.toml", SMALL_STUDY.replace("draws = 20000", "draws = 3000"))
    stderr = TerminalLike()
    monkeypatch.setattr(sys, "stderr", stderr)
    args = ["run", study, "--out", tmp_path / "out"] + (["--quiet"] if quiet else [])
    assert main([str(a) for a in args]) == 0
    if quiet:
        assert stderr.getvalue() == ""
    else:
        assert "9.00k" in stderr.getvalue() and "\r" in stderr.getvalue()  # the bar, total 3 models x 3,000
        assert "uqenergy: 9,000 draws in " in stderr.getvalue()

"""Fuzzing: random prior and study documents either run with finite outputs or fail with the one-line error."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from uqenergy.cli import main
from uqenergy.config.errors import InputError
from uqenergy.config.files import resolve
from uqenergy.config.priors import load_prior_files

JOULE = resolve("joule2026", "priors")
SRC = Path(__file__).resolve().parents[1] / "src"
BASE_PRIORS = tomllib.loads(JOULE.read_text())["priors"]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(-1e3, 1e3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
KEYS = [
    "dist",
    "p5",
    "p95",
    "median",
    "gsd",
    "mean",
    "sd",
    "low",
    "high",
    "mode",
    "value",
    "values",
    "weights",
    "alpha",
    "beta",
    "unit",
    "bounds",
    "kind",
    "source",
    "truncate",
    "integer",
    "typo",
]


def _mutate(table: dict, data) -> dict:
    table = dict(table)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(KEYS))
        if data.draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = data.draw(junk)
    return {k: v for k, v in table.items() if v is not None}


def _toml(doc: dict) -> str | None:
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):  # not representable in TOML (e.g. None): not a file a user can write
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_prior_files_load_or_fail_cleanly(tmp_path, data):
    name = data.draw(st.sampled_from(sorted(BASE_PRIORS)))
    text = _toml({"priors": {name: _mutate({k: v for k, v in BASE_PRIORS[name].items() if k != "models"}, data)}})
    if text is None:
        return
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    try:
        prior = load_prior_files([path]).get(name)
    except InputError as err:
        assert "\n" not in err.message and err.message.startswith(str(path))
        return
    u = np.linspace(0.001, 0.999, 101)
    values = prior.ppf(u)
    assert np.isfinite(values).all() or prior.is_categorical or not np.isfinite(prior.bounds).all()


STUDY = {
    "study": {
        "name": "fuzz",
        "scenario": "traditional",
        "priors": [str(JOULE)],
        "models": ["Llama 3.1 70B", "DeepSeek-R1"],
        "draws": 500,
        "seed": 1,
    },
    "blends": {"blend": {"top": 2, "trim": [[5, 95]]}},
    "pathways": {"names": ["model"]},
}


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,  # the same examples on every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_studies_run_or_fail_on_one_line(tmp_path, capsys, data):
    doc = {section: dict(table) for section, table in STUDY.items()}
    section = data.draw(st.sampled_from(["study", "blends", "pathways", "priors"]))
    if section == "priors":
        name = data.draw(st.sampled_from(["pue", "output_tokens", "power_utilisation", "node_power_kw"]))
        doc["priors"] = {name: _mutate({}, data)}
    else:
        key = data.draw(st.sampled_from([*doc[section], "typo"]))
        doc[section][key] = data.draw(junk)
        if key in ("draws", "chunk_draws", "save_draws"):  # a valid but huge run is slow by right, not a bug
            assume(not isinstance(doc[section][key], int) or doc[section][key] <= 5000)
        doc[section] = {k: v for k, v in doc[section].items() if v is not None}
    text = _toml(doc)
    if text is None:
        return
    path = tmp_path / "study.toml"
    path.write_text(text)
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--quiet", "--force"])
    _, err = capsys.readouterr()
    if code == 0:
        records = json.loads((out / "summary.json").read_text())
        assert all(math.isfinite(v) for r in records for v in r.values() if isinstance(v, float))
    else:
        assert code == 2 and err.startswith("uqenergy: error: ") and err.count("\n") == 1, err


# --- the command as a process: generated study, prior and table files and tampered outputs ------------------------
CLI_SECONDS = 45  # far above a clean run of a few hundred draws; reaching it is a hang
TABLE_HEADER = "model,hardware,quantization,tokens_per_s,input_tokens,output_tokens,batch_size,node_power_kw,source"
TABLE_ROWS = [
    "Llama 3.1 70B,8xH100,FP8,14686.01,128,128,dynamic,11,s",
    "Llama 3.1 70B,8xH100,FP8,1840.12,2048,128,dynamic,11,s",
    "Llama 3.1 70B,8xH100,FP8,14630.41,500,2000,dynamic,11,s",
    "Llama 3.1 70B,8xH100,FP8,9000,1000,1000,dynamic,11,s",
]
cell = st.one_of(
    st.sampled_from(["", "0", "-1", "nan", "inf", "1e308", "variable", "x" * 300, '"', "128", "1024.0000001"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


@pytest.fixture(scope="module")
def finished_output(tmp_path_factory):
    """A small finished run with blends and pathways, to tamper with."""
    folder = tmp_path_factory.mktemp("finished")
    doc = {section: dict(table) for section, table in STUDY.items()}
    doc["study"]["draws"] = 300
    (folder / "study.toml").write_text(tomli_w.dumps(doc))
    assert main(["run", str(folder / "study.toml"), "--out", str(folder / "out"), "--quiet"]) == 0
    return (folder / "out").resolve()


def _generated_case(folder: Path, finished: Path, data) -> list[str]:
    """Write one generated input (or tampered output) into ``folder``; return the command's arguments."""
    kind = data.draw(st.sampled_from(["study", "prior", "table", "output"]))
    doc = {section: dict(table) for section, table in STUDY.items()}
    doc["study"]["draws"] = 300
    if kind == "study":
        section = data.draw(st.sampled_from(["study", "blends", "pathways", "intervals"]))
        key = data.draw(st.sampled_from([*doc.get(section, {}), "relative_tolerance", "memory_budget_mb", "typo"]))
        doc.setdefault(section, {})[key] = data.draw(junk)
        doc[section] = {k: v for k, v in doc[section].items() if v is not None}
        if isinstance(doc["study"].get("draws"), int) and doc["study"]["draws"] > 5000:
            doc["study"]["draws"] = 5000  # a valid but huge run is slow by right, not a bug
    elif kind == "prior":
        name = data.draw(st.sampled_from(sorted(BASE_PRIORS)))
        table = {k: v for k, v in BASE_PRIORS[name].items() if k != "models"}
        (folder / "prior.toml").write_text(_toml({"priors": {name: _mutate(table, data)}}) or "")
        doc["study"]["priors"] = [str(JOULE), "prior.toml"]
    elif kind == "table":
        rows = [row.split(",") for row in TABLE_ROWS]
        for _ in range(data.draw(st.integers(1, 4))):
            row, column = data.draw(st.integers(0, len(rows) - 1)), data.draw(st.integers(3, 7))
            rows[row][column] = data.draw(cell)
        (folder / "table.csv").write_text("\n".join([TABLE_HEADER, *(",".join(r) for r in rows)]) + "\n")
        doc["study"] |= {"throughput": "table.csv", "models": ["Llama 3.1 70B"], "throughput_uncertainty": True}
        doc["blends"] = {"blend": {"top": 1}}
    else:
        out = folder / "out"
        shutil.copytree(finished, out)
        if data.draw(st.booleans()):
            records = json.loads((out / "summary.json").read_text())
            key = data.draw(st.sampled_from(sorted({k for r in records for k in r})))
            records[data.draw(st.integers(0, len(records) - 1))][key] = data.draw(junk)
            (out / "summary.json").write_text(json.dumps(records))
        else:
            with h5py.File(out / "samples.nc", "r+") as samples:
                name = data.draw(st.sampled_from(sorted(samples.attrs)))
                samples.attrs[name] = data.draw(st.one_of(st.text(max_size=8), st.integers(-5, 5), st.just("[[1, 2]]")))
        return ["report", str(out)]
    text = _toml(doc)
    assume(text is not None)
    (folder / "study.toml").write_text(text)
    return ["run", str(folder / "study.toml"), "--out", str(folder / "result"), "--quiet"]


@pytest.mark.slow
@settings(
    max_examples=8,  # each a process of a few seconds
    deadline=None,
    derandomize=True,
    database=None,  # the same examples on every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_command_never_tracebacks_hangs_or_writes_non_finite_numbers(tmp_path_factory, finished_output, data):
    """``uqenergy`` as a process over a generated study, prior or table file or a tampered output: exit 0 with
    finite numbers, or one line and exit 2; never a traceback, another exit code or a hang."""
    folder = tmp_path_factory.mktemp("case")
    args = _generated_case(folder, finished_output, data)
    done = subprocess.run(
        [sys.executable, "-m", "uqenergy", *args],
        capture_output=True,
        text=True,
        timeout=CLI_SECONDS,
        cwd=folder,
        env=os.environ | {"PYTHONPATH": str(SRC)},
    )
    assert "Traceback" not in done.stderr, done.stderr
    if done.returncode == 2:
        assert done.stderr.startswith("uqenergy: error: ") and done.stderr.count("\n") == 1, done.stderr
        return
    assert done.returncode == 0, done.stderr
    result = Path(args[1]) if args[0] == "report" else folder / "result"
    records = json.loads((result / "summary.json").read_text())
    if args[0] == "run":
        assert done.stderr == "", done.stderr  # --quiet: nothing but errors
        assert all(math.isfinite(v) for r in records for v in r.values() if isinstance(v, float))
    assert (result / "report.md").is_file()

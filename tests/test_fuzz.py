"""Fuzzing: random prior and study documents either run with finite outputs or fail with the one-line error."""

from __future__ import annotations

import json
import math
import tomllib

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

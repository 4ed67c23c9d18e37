"""The ``uqenergy serve`` JSON API through Starlette's test client: what it runs, what it downloads, what it refuses."""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from conftest import STUDIES_DIR
from uqenergy.analyses.run import run_study
from uqenergy.config.study import load_study
from uqenergy.web.app import create_app
from uqenergy.web.whatif import MAX_PAGE_DRAWS, served_studies

SMALL = {"study": "paper_traditional", "draws": 4000, "seed": 3}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def _error(response) -> str:
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_page_runs_the_bundled_one_level_studies(client):
    listed = client.get("/api/studies").json()
    names = [s["name"] for s in listed["studies"]]
    assert listed["default"] == "paper_traditional"
    assert {"paper_traditional", "paper_test_time"} <= set(names)
    # not per-query one-level studies: a fleet, a comparison, a two-level design, named settings
    assert not {"paper_fleet", "public_estimates", "two_level_traditional", "paper_input_length"} & set(names)
    assert set(names) == set(served_studies())


def test_a_study_file_given_to_serve_joins_the_list(tmp_path):
    mine = tmp_path / "my_chat.toml"
    mine.write_text((STUDIES_DIR / "paper_traditional.toml").read_text().replace("draws = 400_000", "draws = 1000"))
    listed = TestClient(create_app(str(mine))).get("/api/studies").json()
    assert listed["default"] == "my_chat" and "my_chat" in [s["name"] for s in listed["studies"]]


def test_controls_are_the_studys_priors_with_unit_bounds_and_source(client):
    info = client.get("/api/study", params={"study": "paper_test_time"}).json()
    study = load_study("paper_test_time")
    assert [p["name"] for p in info["priors"]] == study.factors
    controls = {p["name"]: p for p in info["priors"]}
    assert controls["pue"]["parameters"] == {"p5": 1.05, "p95": 1.6}
    assert controls["pue"]["bounds"] == [1.0, None] and controls["pue"]["unit"] == "1"
    assert controls["output_tokens"]["parameters"] == {"median": 5000}  # the study's own override
    assert all(p["source"] for p in info["priors"])
    assert controls["node_power_kw"]["per_model"] == {"DeepSeek-R1": "fixed(value=12.8) [kW]"}
    assert info["series"] == [*study.models, "blend-paper", "blend"] and info["default_series"] == "blend"


def test_run_gives_the_records_of_the_same_study_run_from_python(client):
    result = client.post("/api/run", json=SMALL).json()
    expected = run_study("paper_traditional", draws=4000, seed=3).records
    assert result["records"] == expected
    assert result["baseline"] == next(r for r in expected if r["series"] == "blend" and r["pathway"] == "baseline")
    assert [r["pathway"] for r in result["pathways"]] == ["baseline", "model", "serving", "hardware", "combined"]
    sobol = result["sobol"]
    assert sobol["series"] == "blend" and {r["factor"] for r in sobol["records"]} >= {"output_tokens", "model_choice"}
    assert all(e["value_wh"] > 0 and e["citation"] for e in result["estimates"])
    density = result["distribution"]
    assert max(density["density"]) == 1.0 and density["energy_wh"] == sorted(density["energy_wh"])


def test_doubling_a_fixed_pue_doubles_every_quantile(client):
    """Energy is proportional to PUE: with PUE fixed, the same draws of everything else give exactly twice the energy."""
    one, two = (
        client.post("/api/run", json=SMALL | {"priors": {"pue": {"dist": "fixed", "value": value}}}).json()
        for value in (1.0, 2.0)
    )
    for key in ("p5", "p25", "median", "p75", "p95", "mean"):
        assert two["baseline"][key] == pytest.approx(2 * one["baseline"][key], rel=1e-12)
    assert "pue" not in {r["factor"] for r in one["sobol"]["records"]}  # fixed: not a factor any more


def test_a_trimmed_blend_is_analysed_through_its_untrimmed_twin(client):
    result = client.post("/api/run", json=SMALL | {"series": "blend-paper"}).json()
    assert result["series"] == "blend-paper" and result["sobol"]["series"] == "blend"


def test_downloaded_toml_reruns_to_the_pages_records(client, cli, tmp_path):
    request = SMALL | {"series": "Llama 3.1 70B", "priors": {"output_tokens": {"median": 420}, "pue": {"p95": 1.3}}}
    page = client.post("/api/run", json=request).json()
    toml = client.post("/api/study.toml", json=request)
    assert toml.headers["content-disposition"] == 'attachment; filename="paper_traditional_whatif.toml"'
    assert "what-if set on the uqenergy serve page; the study's prior: exponential(median=300)" in toml.text
    path = tmp_path / "paper_traditional_whatif.toml"
    path.write_text(toml.text)
    code, _, err = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == page["records"]
    assert client.post("/api/records.json", json=request).json() == page["records"]
    csv = client.post("/api/records.csv", json=request).text.splitlines()
    assert csv[0].startswith("scenario,series,pathway,quantity,p5") and len(csv) == len(page["records"]) + 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"study": "paper_traditional", "priors": {"pue": {"p5": 1.1}', "request: not valid JSON: "),
        ("[1, 2]", "request: expected a JSON object, got a list"),
        ('{"study": "paper_fleet"}', "request: study: 'paper_fleet' is not a study this page runs"),
        ('{"study": "paper_traditional", "drawz": 5}', "request: drawz: unknown key"),
        (
            '{"study": "paper_traditional", "priors": {"pue_typo": {"p5": 1.1}}}',
            "paper_traditional.toml: priors.pue_typo: overrides a prior the prior files do not define",
        ),
        (
            '{"study": "paper_traditional", "priors": {"pue": {"p5": 1.6, "p95": 1.6}}}',
            "paper_traditional.toml: priors.pue.p5: p5 = 1.6 is not below p95 = 1.6 (p5 < p95)",
        ),
        (
            '{"study": "paper_traditional", "priors": {"output_tokens": {"median": -300}}}',
            "paper_traditional.toml: priors.output_tokens.median: -300 is not positive (a positive number)",
        ),
        (
            '{"study": "paper_traditional", "draws": 1000000000000}',
            "paper_traditional.toml: study.draws: 1000000000000 is not a whole number in 2..1,000,000,000",
        ),
        (
            '{"study": "paper_traditional", "draws": 400001}',
            f"request: draws: 400,001 draws per model x 5 models is over the page's limit of {MAX_PAGE_DRAWS:,}",
        ),
        ('{"study": "paper_traditional", "series": "GPT-5"}', "request: series: 'GPT-5' is not a model or blend"),
        ('{"study": "paper_traditional", "seed": -1}', "paper_traditional.toml: study.seed: -1 is not a non-negative"),
    ],
    ids=[
        "malformed-json",
        "not-an-object",
        "study-not-served",
        "unknown-key",
        "unknown-prior",
        "p5-not-below-p95",
        "negative-median",
        "draws-1e12",
        "draws-over-page-limit",
        "unknown-series",
        "negative-seed",
    ],
)
@pytest.mark.parametrize("endpoint", ["/api/run", "/api/study.toml", "/api/records.csv"])
def test_bad_input_is_a_one_line_400(client, endpoint, body, expected):
    assert expected in _error(client.post(endpoint, content=body))


def test_unknown_study_in_the_query_is_a_400(client):
    assert "request: study: 'nope' is not a study this page runs" in _error(client.get("/api/study?study=nope"))


def test_serve_refuses_a_busy_port(cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = cli("serve", "--port", busy.getsockname()[1])
    assert code == 2 and err.startswith("uqenergy: error: --port: cannot listen on 127.0.0.1:") and err.count("\n") == 1


PRIOR_NAMES = ["pue", "power_utilisation", "node_power_kw", "output_tokens", "input_tokens", "pathway_model", "nope"]
PARAMETERS = ["dist", "p5", "p95", "median", "gsd", "mean", "sd", "value", "low", "high", "truncate", "bounds", "unit"]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["lognormal", "exponential", "fixed", "uniform", "normal", "categorical"]),
    st.lists(st.floats(-10, 10), max_size=3),
)
requests = st.one_of(
    st.fixed_dictionaries(
        {"study": st.sampled_from(["paper_traditional", "paper_test_time"])},
        optional={
            "series": st.one_of(st.sampled_from(["blend", "blend-paper", "Llama 3.1 70B"]), junk),
            "draws": st.one_of(st.integers(-5, 2000), st.just(10**12), junk),
            "seed": st.one_of(st.integers(-5, 10**6), junk),
            "priors": st.one_of(
                st.dictionaries(
                    st.sampled_from(PRIOR_NAMES),
                    st.one_of(st.dictionaries(st.sampled_from(PARAMETERS), junk, max_size=3), junk),
                    max_size=3,
                ),
                junk,
            ),
            "extra": junk,
        },
    ),
    st.recursive(junk, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner)),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,  # the same requests on every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(request=requests)
def test_fuzzed_requests_run_or_get_a_one_line_400(client, request):
    response = client.post("/api/run", content=json.dumps(request))
    if response.status_code == 200:
        result = response.json()  # strict JSON: no NaN or inf reached the response
        assert all(r["median"] >= 0 for r in result["records"])
    else:
        _error(response)

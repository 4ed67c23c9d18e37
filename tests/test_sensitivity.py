"""Sensitivity indices: SALib agreement, closed forms, invariants, the study glue, the sobol CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from SALib.analyze import pawn as salib_pawn
from SALib.analyze import sobol as salib_sobol
from SALib.sample import sobol as salib_sample
from SALib.test_functions import Ishigami

from conftest import PRIORS_DIR, SMALL_STUDY
from uqenergy.analyses.sensitivity import _child, _Saltelli, analyse, pawn_median_ks
from uqenergy.analyses.sensitivity_study import (
    dominant,
    mean_evaluator,
    run_sensitivity,
    series_evaluator,
    series_factors,
    unit_inputs,
)
from uqenergy.config import distributions
from uqenergy.config.errors import InputError
from uqenergy.config.sobol import MODEL_FACTOR, Options
from uqenergy.config.study import load_study
from uqenergy.engine.backend import Backend
from uqenergy.engine.throughput import study_fits

SIGMAS = {"x1": 0.2, "x2": 0.5, "x3": 1.0, "x4": 0.3}
ISHIGAMI_S1 = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}  # a = 7, b = 0.1 (Saltelli et al. 2008, Global SA: The Primer)
ISHIGAMI_ST = {"x1": 0.5576, "x2": 0.4424, "x3": 0.2437}
SOBOL_KEYS = ["scenario", "series", "target", "factor", "S1", "S1_conf", "ST", "ST_conf", "base_samples", "converged"]


def lognormal_product(unit: np.ndarray) -> dict[str, np.ndarray]:
    """E = 2 * X1 * X2 * X3 * X4 with independent log-normal X_i (median 1, log-SD sigma_i)."""
    laws = [distributions.from_spec({"dist": "lognormal", "mu": 0.0, "sigma": s}) for s in SIGMAS.values()]
    energy = 2.0 * np.prod([law.ppf(unit[:, i]) for i, law in enumerate(laws)], axis=0)
    return {"energy_wh": energy, "log_energy_wh": np.log(energy)}


def ishigami(unit: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": Ishigami.evaluate(-np.pi + 2 * np.pi * unit)}


def by_factor(records, target, n=None):
    n = n or max(r["base_samples"] for r in records)
    return {r["factor"]: r for r in records if r["target"] == target and r["base_samples"] == n}


def within(record, index, expected, widen=2.0):
    """|estimate - expected| within ``widen`` times the 95% CI half-width (plus rounding of the expected value)."""
    return abs(record[index] - expected) <= widen * record[f"{index}_conf"] + 1e-3


# --- agreement with SALib ------------------------------------------------------------------------


@pytest.mark.parametrize("second_order", [False, True])
def test_design_is_salibs_saltelli_design(second_order):
    n, names = 32, ["a", "b", "c"]
    problem = {"num_vars": 3, "names": names, "bounds": [[0, 1]] * 3}
    seed = np.random.SeedSequence(5)
    salib = salib_sample.sample(problem, n, calc_second_order=second_order, seed=np.random.default_rng(_child(seed, 0)))
    design = _Saltelli(names, {}, Options(second_order=second_order), seed)
    blocks = design._rows(n).reshape(design.blocks, n, 3)
    interleaved = blocks[[0, *range(2, design.blocks), 1]].transpose(1, 0, 2).reshape(-1, 3)
    assert np.array_equal(interleaved, salib)


def test_estimates_equal_salib_analyze():
    """Same design, same outputs: our S1/ST equal SALib's; the bootstrap CIs agree to resampling noise."""
    options = Options(base_samples=(1024,), second_order=True)
    ours = analyse(["x1", "x2", "x3"], {}, ishigami, options, np.random.SeedSequence(3))
    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    x = salib_sample.sample(
        problem, 1024, calc_second_order=True, seed=np.random.default_rng(_child(np.random.SeedSequence(3), 0))
    )
    salib = salib_sobol.analyze(problem, Ishigami.evaluate(x), calc_second_order=True, seed=11)
    mine = by_factor(ours.records, "y")
    for j, name in enumerate(problem["names"]):
        assert mine[name]["S1"] == pytest.approx(salib["S1"][j], abs=1e-9)
        assert mine[name]["ST"] == pytest.approx(salib["ST"][j], abs=1e-9)
        assert 0.7 < mine[name]["ST_conf"] / salib["ST_conf"][j] < 1.4
    s2 = {(p["factor"], p["factor_2"]): p["S2"] for p in ours.second_order}
    assert s2[("x1", "x3")] == pytest.approx(salib["S2"][0, 2], abs=1e-9)


def test_pawn_statistic_equals_salibs():
    rng = np.random.default_rng(2)
    x = rng.random((3000, 3))
    y = ishigami(x)["y"]
    expected = salib_pawn.analyze({"num_vars": 3, "names": ["a", "b", "c"]}, x, y)["median"]
    assert np.allclose(pawn_median_ks(x, y), expected)
    assert np.allclose(pawn_median_ks(x, np.exp(y)), expected)  # distribution-based: blind to monotone maps of y


# --- closed forms ----------------------------------------------------------------------------------


def test_ishigami_indices_through_the_wrapper():
    result = analyse(["x1", "x2", "x3"], {}, ishigami, Options(base_samples=(4096,)), np.random.SeedSequence(1))
    found = by_factor(result.records, "y")
    for name in ISHIGAMI_S1:
        assert within(found[name], "S1", ISHIGAMI_S1[name]), found[name]
        assert within(found[name], "ST", ISHIGAMI_ST[name]), found[name]


def test_log_normal_product_log_space_indices_are_variance_shares():
    """log E = log 2 + sum log X_i: S1_i = ST_i = sigma_i^2 / sum sigma^2, groups add their shares."""
    groups = {"a": ["x1", "x2"], "b": ["x3", "x4"]}
    result = analyse(list(SIGMAS), groups, lognormal_product, Options(base_samples=(2048,)), np.random.SeedSequence(4))
    found = by_factor(result.records, "log_energy_wh")
    total = sum(s**2 for s in SIGMAS.values())
    for name, sigma in SIGMAS.items():
        assert within(found[name], "S1", sigma**2 / total), found[name]
        assert within(found[name], "ST", sigma**2 / total), found[name]
    for group, members in groups.items():
        share = sum(SIGMAS[m] ** 2 for m in members) / total
        assert within(found[f"group:{group}"], "S1", share) and within(found[f"group:{group}"], "ST", share)


def test_log_normal_product_linear_space_indices():
    """E itself: S1_i = (e^{s_i^2} - 1) / (e^{S} - 1), ST_i = 1 - (e^{S - s_i^2} - 1) / (e^{S} - 1), S = sum s^2."""
    small = {"x1": 0.2, "x2": 0.3, "x3": 0.4, "x4": 0.1}
    laws = [distributions.from_spec({"dist": "lognormal", "mu": 0.0, "sigma": s}) for s in small.values()]

    def product(unit):
        return {"energy_wh": np.prod([law.ppf(unit[:, i]) for i, law in enumerate(laws)], axis=0)}

    result = analyse(list(small), {}, product, Options(base_samples=(4096,)), np.random.SeedSequence(6))
    found = by_factor(result.records, "energy_wh")
    total = sum(s**2 for s in small.values())
    for name, s in small.items():
        assert within(found[name], "S1", np.expm1(s**2) / np.expm1(total)), found[name]
        assert within(found[name], "ST", 1 - np.expm1(total - s**2) / np.expm1(total)), found[name]


def test_morris_elementary_effects_of_a_linear_model():
    """y = u . c: every elementary effect of factor i is c_i (in SALib's grid units), so mu* is
    proportional to |c_i| and sigma is 0. A group's members move together, each up or down, so
    its mu* lies between |c_a + c_b| and |c_a| + |c_b| (in the same units)."""
    c = np.array([1.0, -2.0, 0.5])
    options = Options(method="morris", base_samples=(20,))
    result = analyse(
        ["a", "b", "c"], {"ab": ["a", "b"], "rest": ["c"]}, lambda u: {"y": u @ c}, options, np.random.SeedSequence(0)
    )
    found = by_factor(result.records, "y")
    mu = np.array([found[f]["mu_star"] for f in "abc"])
    assert np.allclose(mu / mu[0], np.abs(c) / abs(c[0]))
    assert all(abs(found[f]["sigma"]) < 1e-9 for f in "abc")
    unit = mu[0] / abs(c[0])
    assert unit * abs(c[0] + c[1]) - 1e-9 <= found["group:ab"]["mu_star"] <= unit * (abs(c[0]) + abs(c[1])) + 1e-9
    assert "sigma" not in found["group:ab"]  # undefined for a group of several factors


def test_pawn_finds_the_inert_factor():
    result = analyse(
        ["x1", "x2", "x3", "inert"],
        {},
        lambda u: ishigami(u[:, :3]),
        Options(method="pawn", base_samples=(2048,), resamples=30),
        np.random.SeedSequence(2),
    )
    found = by_factor(result.records, "y")
    assert found["inert"]["PAWN"] < min(found[f]["PAWN"] for f in ("x1", "x2", "x3"))


# --- convergence -----------------------------------------------------------------------------------


def test_stops_at_the_first_size_whose_cis_are_under_the_tolerance():
    def log_product(unit):
        return {"log_energy_wh": lognormal_product(unit)["log_energy_wh"]}

    loose = analyse(
        list(SIGMAS), {}, log_product, Options(base_samples=(256, 512), tolerance=0.5), np.random.SeedSequence(0)
    )
    assert {r["base_samples"] for r in loose.records} == {256} and all(r["converged"] for r in loose.records)
    strict = analyse(
        list(SIGMAS), {}, lognormal_product, Options(base_samples=(256, 512), tolerance=1e-6), np.random.SeedSequence(0)
    )
    assert {r["base_samples"] for r in strict.records} == {256, 512} and not any(r["converged"] for r in strict.records)


def test_a_longer_run_extends_a_shorter_one():
    short = analyse(list(SIGMAS), {}, lognormal_product, Options(base_samples=(512,)), np.random.SeedSequence(9))
    longer = analyse(
        list(SIGMAS), {}, lognormal_product, Options(base_samples=(256, 512), tolerance=1e-6), np.random.SeedSequence(9)
    )
    a, b = by_factor(short.records, "log_energy_wh"), by_factor(longer.records, "log_energy_wh", 512)
    assert all(a[f]["S1"] == pytest.approx(b[f]["S1"], abs=1e-12) for f in SIGMAS)


# --- the study glue --------------------------------------------------------------------------------

CLOSED_FORM_STUDY = f"""
[study]
name = "closed"
scenario = "closed-form"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
throughput = "{PRIORS_DIR / "throughput_h100.csv"}"
models = ["Llama 3.1 405B"]
seed = 3

[priors.output_tokens]
dist = "fixed"
value = 300

[priors.node_power_kw]
dist = "lognormal"
median = 10.2
gsd = 1.2

[pathways]
names = ["model", "serving"]

[sobol]
base_samples = [2048]
targets = ["log_energy_wh"]

[sobol.groups]
hardware = ["pue", "power_utilisation", "node_power_kw"]
efficiency = ["pathway_model", "pathway_serving"]
"""


def test_study_log_indices_match_the_closed_form(write):
    """Fixed token counts make log E a sum of independent log-normal terms through the real energy core."""
    result = run_sensitivity(write("closed.toml", CLOSED_FORM_STUDY))
    found = by_factor(result.records, "log_energy_wh")
    z = 2 * 1.6448536269514722
    sigma = {
        "pue": np.log(1.6 / 1.05) / z,
        "power_utilisation": np.log(0.9 / 0.4) / z,
        "node_power_kw": np.log(1.2),
        "pathway_model": np.log(10 / 1.5) / z,
        "pathway_serving": np.log(5 / 1.5) / z,
    }
    total = sum(s**2 for s in sigma.values())
    assert set(found) == {*sigma, "group:hardware", "group:efficiency"}  # fixed priors are not factors
    for name, s in sigma.items():
        assert within(found[name], "S1", s**2 / total) and within(found[name], "ST", s**2 / total), found[name]
    share = sum(sigma[f] ** 2 for f in ("pue", "power_utilisation", "node_power_kw")) / total
    assert within(found["group:hardware"], "ST", share)


SMALL_SOBOL_STUDY = (
    SMALL_STUDY
    + """
[sobol]
base_samples = [1024]
series = ["Llama 3.1 70B", "blend"]

[sobol.groups]
model = ["pathway_model", "model_choice"]
serving = ["pathway_serving"]
hardware = ["pue", "node_power_kw", "power_utilisation"]
workload = ["output_tokens", "input_tokens"]
"""
)


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    path = tmp_path_factory.mktemp("sobol") / "small.toml"
    path.write_text(SMALL_SOBOL_STUDY)
    return run_sensitivity(path)


def test_sum_of_first_order_indices_is_at_most_one(small_result):
    for series, target in {(r["series"], r["target"]) for r in small_result.records}:
        factors = [
            r
            for r in small_result.records
            if (r["series"], r["target"]) == (series, target) and not r["factor"].startswith("group:")
        ]
        assert sum(r["S1"] for r in factors) <= 1 + np.sqrt(sum(r["S1_conf"] ** 2 for r in factors)) * 2


def test_total_index_is_at_least_first_order_and_groups_contain_members(small_result):
    for r in small_result.records:
        assert r["ST"] >= r["S1"] - (r["ST_conf"] + r["S1_conf"]), r
    blend = by_factor([r for r in small_result.records if r["series"] == "blend"], "log_energy_wh")
    model = blend["group:model"]
    for member in ("pathway_model", MODEL_FACTOR):
        assert model["ST"] >= blend[member]["ST"] - (model["ST_conf"] + blend[member]["ST_conf"])


def test_blend_members_and_factors(small_result):
    assert {r["series"] for r in small_result.records} == {"Llama 3.1 70B", "blend"}
    per_model = {r["factor"] for r in small_result.records if r["series"] == "Llama 3.1 70B"}
    blend = {r["factor"] for r in small_result.records if r["series"] == "blend"}
    assert blend - per_model == {MODEL_FACTOR}
    assert "node_power_kw" not in blend | per_model  # fixed for every model: follows the model, not a factor
    assert any("trimmed blends" in w for w in small_result.warnings)


def test_per_model_priors_follow_the_chosen_model(write):
    """A blend draw served by model m gets m's priors (DeepSeek-R1 runs on a 12.8 kW node) and the
    same energy as that model's own series at the same unit coordinates."""
    study = load_study(write("small.toml", SMALL_SOBOL_STUDY))
    fits, members = study_fits(study), ["DeepSeek-R1", "Llama 3.1 405B"]
    factors = series_factors(study, members)
    unit = np.random.default_rng(0).random((400, len(factors)))
    blend = series_evaluator(study, fits, members, factors, ["energy_wh"])(unit)["energy_wh"]
    choice = distributions.from_spec({"dist": "categorical", "values": members}).ppf(unit[:, -1])
    columns = dict(zip(factors, unit.T))
    inputs = unit_inputs(study.priors, study.factors, members, choice, columns)
    assert set(np.unique(inputs["node_power_kw"].values[choice == 0])) == {12.8}
    assert set(np.unique(inputs["node_power_kw"].values[choice == 1])) == {10.2}
    for m, model in enumerate(members):
        alone = series_evaluator(study, fits, [model], factors[:-1], ["energy_wh"])(unit[:, :-1])["energy_wh"]
        assert np.allclose(blend[choice == m], alone[choice == m])


def test_zero_token_draws_have_zero_energy_and_a_finite_log(write):
    study = load_study(write("small.toml", SMALL_SOBOL_STUDY))
    factors = series_factors(study, ["Llama 3.1 70B"])
    unit = np.full((2, len(factors)), 0.5)
    unit[0, factors.index("output_tokens")] = 1e-4  # rounds to 0 output tokens
    unit[1, factors.index("output_tokens")] = 0.0023  # rounds to 1 output token
    out = series_evaluator(study, study_fits(study), ["Llama 3.1 70B"], factors, ["energy_wh", "log_energy_wh"])(unit)
    assert out["energy_wh"][0] == 0 and out["energy_wh"][1] > 0
    assert np.isfinite(out["log_energy_wh"]).all()
    assert out["log_energy_wh"][0] == pytest.approx(np.log(out["energy_wh"][1]))  # floored at one token


# --- the [sobol] section and the CLI ---------------------------------------------------------------


@pytest.mark.parametrize(
    "section, key",
    [
        ('method = "magic"', "sobol.method"),
        ("base_samples = [1000]", "sobol.base_samples"),
        ("base_samples = [2048, 1024]", "sobol.base_samples"),
        ("tolerance = 0", "sobol.tolerance"),
        ('method = "morris"\nsecond_order = true', "sobol.second_order"),
        ('method = "pawn"', "sobol.groups"),
        ('series = ["blend-paper"]', "sobol.series"),
        ('targets = ["energy_kwh"]', "sobol.targets"),
        ("colour = 1", "sobol.colour"),
    ],
)
def test_bad_sobol_section_is_a_one_line_error(write, cli, tmp_path, section, key):
    replaced = "base_samples = [1024]" if section.startswith("base_samples") else 'series = ["Llama 3.1 70B", "blend"]'
    code, out, err = cli(
        "sobol", write("bad.toml", SMALL_SOBOL_STUDY.replace(replaced, section)), "--out", tmp_path / "out"
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("uqenergy: error: ") and f": {key}" in err


@pytest.mark.parametrize(
    "groups, problem",
    [
        ('[sobol.groups]\nall = ["pue", "pue"]', "distinct"),
        ('[sobol.groups]\na = ["pue", "colour"]', "unknown name 'colour'"),
        ('[sobol.groups]\na = ["pue"]\nb = ["pue"]', "already in group"),
        ('[sobol.groups]\na = ["pue"]', "in no group"),
    ],
)
def test_bad_groups(write, groups, problem):
    text = SMALL_SOBOL_STUDY[: SMALL_SOBOL_STUDY.index("[sobol.groups]")] + groups + "\n"
    with pytest.raises(InputError, match=problem):
        load_study(write("bad.toml", text))


def test_sobol_cli_writes_flat_records_and_a_chart(write, cli, tmp_path):
    study = write("small.toml", SMALL_SOBOL_STUDY.replace('series = ["Llama 3.1 70B", "blend"]', 'series = ["blend"]'))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, out, err = cli("sobol", study, "--out", tmp_path / "out")
    assert code == 0, err
    records = json.loads((tmp_path / "out" / "sobol.json").read_text())
    assert records and all(list(r) == SOBOL_KEYS for r in records)
    assert (tmp_path / "out" / "figures" / "sobol-blend.png").read_bytes()[:4] == b"\x89PNG"
    assert "blend" in out and "dominant factor" in out and "pathway" in out


TOY_TWO_LEVEL = f"""
[study]
name = "toy"
scenario = "toy"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
models = ["toy"]
draws = 1000
seed = 5

[models."toy"]
source = "a toy with a constant throughput: energy is proportional to the output tokens"
throughput = 1000

[priors.pue]
dist = "fixed"
value = 1.2

[priors.power_utilisation]
dist = "fixed"
value = 0.6

[priors.node_power_kw]
dist = "lognormal"
mu = 2.3
sigma = 0.2
kind = "epistemic"

[priors.pathway_model]
dist = "lognormal"
mu = 1.0
sigma = 0.3
kind = "epistemic"

[priors.pathway_serving]
dist = "lognormal"
mu = 0.5
sigma = 0.4
kind = "epistemic"

[pathways]
names = ["model", "serving"]

[intervals]
design = "two-level"
outer_draws = 100

[sobol]
base_samples = [4096]
inner_draws = 40

[sobol.groups]
efficiency = ["pathway_model", "pathway_serving"]
hardware = ["node_power_kw", "pue", "power_utilisation"]
"""
TOY_SIGMAS = {"node_power_kw": 0.2, "pathway_model": 0.3, "pathway_serving": 0.4}


def lognormal_product_indices(sigmas: dict[str, float]) -> dict[str, tuple[float, float]]:
    """(S1, ST) of a product of independent log-normal factors with log SDs ``sigmas`` (or of groups of them)."""
    total = sum(s**2 for s in sigmas.values())
    return {
        n: (np.expm1(s**2) / np.expm1(total), 1 - np.expm1(total - s**2) / np.expm1(total)) for n, s in sigmas.items()
    }


def test_indices_of_the_mean_match_the_closed_form(write):
    """Mean energy per query of the toy = c x E[tokens] x node power / (pathway_model x pathway_serving): the
    aleatory tokens average out, and the indices of the mean are those of a product of log-normals."""
    result = run_sensitivity(write("toy.toml", TOY_TWO_LEVEL))
    found = by_factor(result.records, "mean_energy_wh")
    assert set(found) == {*TOY_SIGMAS, "group:efficiency", "group:hardware"}  # aleatory and fixed: no factor
    assert {r["inner_draws"] for r in result.records} == {40}
    expected = lognormal_product_indices(TOY_SIGMAS)
    expected["group:efficiency"] = lognormal_product_indices({"efficiency": np.hypot(0.3, 0.4), "node_power_kw": 0.2})[
        "efficiency"
    ]
    expected["group:hardware"] = expected["node_power_kw"]
    for name, (s1, st) in expected.items():
        assert within(found[name], "S1", s1) and within(found[name], "ST", st), (name, found[name], s1, st)


def test_fresh_inner_draws_per_row_inflate_the_total_indices(write):
    """Without common inner draws every row's mean carries its own Monte Carlo noise, of variance
    E[g^2] CV^2 / inner (g: the epistemic part, CV: the tokens' coefficient of variation). Jansen's total index
    then estimates (V_T + noise) / (V + noise) instead of V_T / V; with common draws it is exact."""
    study = load_study(write("toy.toml", TOY_TWO_LEVEL))
    factors = list(TOY_SIGMAS)
    with Backend("local") as backend:
        indices = {
            common: by_factor(
                analyse(
                    factors,
                    {},
                    mean_evaluator(study, "toy", ["toy"], factors, backend, common=common),
                    study.sobol.options,
                    np.random.SeedSequence(2),
                ).records,
                "mean_energy_wh",
            )
            for common in (True, False)
        }
    tokens = study.priors.get("output_tokens").ppf((np.arange(10**6) + 0.5) / 10**6)
    total = sum(s**2 for s in TOY_SIGMAS.values())
    variance = np.expm1(total)  # V / E[g]^2
    noise = np.exp(total) * tokens.var() / tokens.mean() ** 2 / study.sobol.inner_draws  # noise / E[g]^2
    for name, (_, st) in lognormal_product_indices(TOY_SIGMAS).items():
        assert within(indices[True][name], "ST", st)
        assert within(indices[False][name], "ST", (st * variance + noise) / (variance + noise))
    assert not within(indices[False]["node_power_kw"], "ST", lognormal_product_indices(TOY_SIGMAS)["node_power_kw"][1])


def test_sobol_cli_on_a_two_level_study_names_the_target_and_the_report_agrees(write, cli, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = cli("sobol", write("toy.toml", TOY_TWO_LEVEL), "--out", out)
    assert code == 0, err
    records = json.loads((out / "sobol.json").read_text())
    assert {r["target"] for r in records} == {"mean_energy_wh"} and {r["inner_draws"] for r in records} == {40}
    state = "converged" if records[0]["converged"] else "NOT converged"
    factor, group = dominant(records, "sobol")[0]
    assert f"dominant factor {factor['factor']} ST {factor['ST']:.2f}" in stdout and state in stdout
    headline = (out / "report.md").read_text()
    assert f"dominant factor {factor['factor']} (ST {factor['ST']:.2f}" in headline
    assert f"group {group['factor'].removeprefix('group:')} (ST {group['ST']:.2f}" in headline
    assert f"{state} at {factor['base_samples']:,} base samples, each mean over 40 common inner draws" in headline

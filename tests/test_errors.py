"""The input catalogue (docs/errors.md): one test per row.

Each row names an input a user controls, breaks it, and checks the one-line
error ``uqenergy: error: FILE: KEY: what is wrong (what is allowed)``, exit code
2, no traceback and no output folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import PRIORS_DIR, SMALL_STUDY
from uqenergy.config.errors import InputError
from uqenergy.config.files import MAX_INPUT_BYTES
from uqenergy.outputs.files import write_manifest

PRIOR = """[priors.pue]
dist = "lognormal"
p5 = 1.05
p95 = 1.6
unit = "1"
bounds = [1.0, inf]
kind = "epistemic"
source = "s"
"""
HEADER = "model,hardware,quantization,tokens_per_s,input_tokens,output_tokens,batch_size,node_power_kw,source"
TABLE = (
    HEADER
    + """
Llama 3.1 70B,8xH100,FP8,14686.01,128,128,dynamic,11,s
Llama 3.1 70B,8xH100,FP8,1840.12,2048,128,dynamic,11,s
Llama 3.1 70B,8xH100,FP8,14630.41,500,2000,dynamic,11,s
"""
)
TABLE_STUDY = f"""[study]
name = "t"
scenario = "traditional"
priors = ["{PRIORS_DIR / "joule2026.toml"}"]
throughput = "table.csv"
models = ["Llama 3.1 70B"]
draws = 100
"""
RESULT = '[{"scenario": "t", "series": "m", "pathway": "baseline", "p5": 0.1, "median": 0.3, "p95": 1.0, "draws": 10}]'
BASE = {
    "study": ("study.toml", SMALL_STUDY),
    "prior": ("prior.toml", PRIOR),
    "csv": ("table.csv", TABLE),
    "result": ("result/summary.json", RESULT),
}

CASES = [
    # study file
    ("study-missing-file", "cli", ["run", "{tmp}/absent.toml"], "absent.toml: no such file"),
    ("study-toml-syntax", "study", ("prepend", "[study\n"), "not valid TOML"),
    ("study-unknown-section", "study", ("append", "[fleeet]\nx = 1\n"), "fleeet: unknown key"),
    ("study-misspelt-study-table", "study", ("sub", "[study]", "[studyy]"), "studyy: unknown key"),
    ("study-unknown-key", "study", ("sub", "seed = 7", "seed = 7\nseeed = 8"), "study.seeed: unknown key"),
    ("study-name-type", "study", ("sub", 'name = "small"', "name = 5"), "study.name: expected text"),
    ("study-priors-type", "study", ("sub", 'priors = ["', 'priors = "x"\n#'), "study.priors: expected a list"),
    (
        "study-priors-missing-file",
        "study",
        ("sub", 'priors = ["', 'priors = ["nowhere.toml"]\n#'),
        "study.priors: 'nowhere.toml': no such file",
    ),
    ("study-models-unknown", "study", ("sub", '"Llama 3.1 70B"]', '"GPT-5"]'), "study.models: unknown model 'GPT-5'"),
    (
        "study-model-throughput-distribution",
        "study",
        ("append", '[models."mine"]\nsource = "s"\nthroughput = { dist = "normal", mean = 1, sd = 1 }\n'),
        """models."mine".throughput.dist: 'normal' is not supported for throughput (lognormal; see""",
    ),
    (
        "study-model-without-source",
        "study",
        ("append", '[models."mine"]\nthroughput = 1500\n'),
        'models."mine".source: missing',
    ),
    (
        "study-model-point-incomplete",
        "study",
        ("append", '[models."mine"]\nsource = "s"\nthroughput = [{ tokens_per_s = 100 }]\n'),
        'models."mine".throughput[0].input_tokens: missing',
    ),
    (
        "study-model-throughput-text",
        "study",
        ("append", '[models."mine"]\nsource = "s"\nthroughput = "fast"\n'),
        """models."mine".throughput: expected a number, a table or a list of tables, got 'fast'""",
    ),
    (
        "study-models-duplicate",
        "study",
        ("sub", '"Llama 3.1 70B"]', '"Llama 3.1 70B", "Llama 3.1 70B"]'),
        "study.models: has duplicate names",
    ),
    ("study-draws-zero", "study", ("sub", "draws = 20000", "draws = 0"), "study.draws: 0 is not a whole number"),
    (
        "study-draws-text",
        "study",
        ("sub", "draws = 20000", 'draws = "many"'),
        "study.draws: 'many' is not a whole number",
    ),
    (
        "study-draws-huge",
        "study",
        ("sub", "draws = 20000", "draws = 1e12"),
        "study.draws: 1000000000000.0 is not a whole number",
    ),
    ("study-seed-negative", "study", ("sub", "seed = 7", "seed = -1"), "study.seed: -1 is not a non-negative integer"),
    ("study-chunk-draws-zero", "study", ("sub", "seed = 7", "seed = 7\nchunk_draws = 0"), "study.chunk_draws"),
    (
        "study-effective-tokens",
        "study",
        ("sub", "seed = 7", 'seed = 7\neffective_tokens = "input"'),
        "study.effective_tokens: unknown mode",
    ),
    (
        "study-input-divisor-zero",
        "study",
        ("sub", "seed = 7", "seed = 7\ninput_token_divisor = 0"),
        "study.input_token_divisor: 0 is not positive",
    ),
    (
        "study-uncertainty-type",
        "study",
        ("sub", "seed = 7", 'seed = 7\nthroughput_uncertainty = "yes"'),
        "study.throughput_uncertainty: expected true or false",
    ),
    (
        "study-throughput-missing",
        "study",
        ("sub", 'throughput = "', 'throughput = "absent.csv"\n#'),
        "study.throughput: 'absent.csv': no such file",
    ),
    (
        "study-power-utilisation-mode",
        "study",
        ("sub", "seed = 7", 'seed = 7\npower_utilisation = "constant"'),
        "study.power_utilisation",
    ),
    (
        "study-scheduler-unknown",
        "study",
        ("sub", "seed = 7", 'seed = 7\nscheduler = "gpu"'),
        "study.scheduler: unknown scheduler 'gpu'",
    ),
    (
        "study-memory-budget-negative",
        "study",
        ("sub", "seed = 7", "seed = 7\nmemory_budget_mb = -5"),
        "study.memory_budget_mb: -5 is not a whole number",
    ),
    (
        "study-prior-undefined",
        "study",
        ("append", "[priors.puee]\nvalue = 1.2\n"),
        "priors.puee: overrides a prior the prior files do not define",
    ),
    (
        "study-prior-p5-above-p95",
        "study",
        ("append", "[priors.pue]\ndist = 'lognormal'\np5 = 1.6\np95 = 1.05\n"),
        "priors.pue.p5: p5 = 1.6 is not below p95 = 1.05",
    ),
    (
        "study-prior-negative-power",
        "study",
        ("append", "[priors.node_power_kw]\nvalue = -10.2\n"),
        "priors.node_power_kw.bounds: value -10.2 lies outside the physical bounds",
    ),
    (
        "study-prior-nan",
        "study",
        ("append", "[priors.pue]\ndist = 'lognormal'\np5 = nan\np95 = 1.6\n"),
        "priors.pue.p5: nan is not finite",
    ),
    (
        "study-prior-inf",
        "study",
        ("append", "[priors.pue]\ndist = 'lognormal'\np5 = 1.05\np95 = inf\n"),
        "priors.pue.p95: inf is not finite",
    ),
    (
        "study-blend-top-and-members",
        "study",
        ("sub", "top = 2\ntrim", 'top = 2\nmembers = ["DeepSeek-R1"]\ntrim'),
        "blends.blend-paper: needs exactly one of top and members",
    ),
    (
        "study-blend-top-too-many",
        "study",
        ("sub", "top = 2\ntrim", "top = 9\ntrim"),
        "blends.blend-paper.top: 9 is not a whole number in 1..3",
    ),
    (
        "study-blend-trim-range",
        "study",
        ("sub", "[10, 90]", "[10, 190]"),
        "blends.blend-paper.trim: [10, 190] is not a percentile window",
    ),
    (
        "study-blend-concentration",
        "study",
        ("sub", "top = 2\ntrim", "top = 2\nconcentration = 0\ntrim"),
        "blends.blend-paper.concentration: 0 is not positive",
    ),
    (
        "study-blend-concentration-trimmed",
        "study",
        ("sub", "top = 2\ntrim", "top = 2\nconcentration = 4\ntrim"),
        "blends.blend-paper.concentration: a trimmed blend has no shares to draw",
    ),
    (
        "study-blend-unknown-member",
        "study",
        ("sub", "top = 2\ntrim", 'members = ["Grok"]\ntrim'),
        "blends.blend-paper.members: unknown model 'Grok'",
    ),
    (
        "study-pathway-undefined",
        "study",
        ("sub", 'names = ["model", "serving"]', 'names = ["model", "magic"]'),
        "pathways.names: prior 'pathway_magic' is not defined",
    ),
    (
        "study-pathway-apply-unknown",
        "study",
        ("sub", 'names = ["model", "serving"]', 'names = ["model"]\napply_to = ["nope"]'),
        "pathways.apply_to: unknown series 'nope'",
    ),
    ("study-intervals-level", "study", ("append", "[intervals]\nhdi_level = 1.5\n"), "intervals.hdi_level"),
    ("study-intervals-design", "study", ("append", '[intervals]\ndesign = "three-level"\n'), "intervals.design"),
    (
        "study-rqmc-replicates",
        "study",
        ("append", '[intervals]\ndesign = "rqmc"\nreplicates = 1\n'),
        "intervals.replicates: 1 cannot give a spread",
    ),
    (
        "study-rqmc-draws",
        "study",
        ("append", '[intervals]\ndesign = "rqmc"\nreplicates = 3\n'),
        "study.draws: 20,000 draws do not split into 3 replicates",
    ),
    (
        "study-rqmc-memory",
        "study",
        ("sub", "seed = 7", 'seed = 7\nmemory_budget_mb = 1\n[intervals]\ndesign = "rqmc"'),
        "draws per model do not fit the memory budget",
    ),
    ("study-sobol-method", "study:sobol", ("append", '[sobol]\nmethod = "fast"\n'), "sobol.method"),
    ("study-sobol-inner-draws", "study", ("append", "[sobol]\ninner_draws = 0\n"), "sobol.inner_draws"),
    (
        "study-sobol-two-level-method",
        "study",
        ("sub", "trim = [[5, 95], [10, 90]]", '\n[intervals]\ndesign = "two-level"\n\n[sobol]\nmethod = "morris"\n'),
        "sobol.method",
    ),
    (
        "study-sobol-group-unknown-prior",
        "study:sobol",
        ("append", '[sobol.groups]\nhardware = ["puee"]\n'),
        "sobol.groups",
    ),
    ("study-settings-name", "study", ("append", '[[settings]]\nname = "bad name!"\n'), "settings[0].name"),
    (
        "study-settings-unknown-key",
        "study",
        ("append", '[[settings]]\nname = "a"\n[settings.study]\nmodels = []\n'),
        "settings.a.study.models: unknown key",
    ),
    # prior files
    ("prior-unknown-key", "prior", ("sub", "kind =", "knd ="), "priors.pue.knd: unknown key"),
    ("prior-missing-source", "prior", ("sub", 'source = "s"', ""), "priors.pue.source: missing"),
    (
        "prior-unknown-dist",
        "prior",
        ("sub", 'dist = "lognormal"', 'dist = "weibull"'),
        "priors.pue.dist: unknown distribution 'weibull'",
    ),
    (
        "prior-missing-parameters",
        "prior",
        ("sub", "p95 = 1.6", ""),
        "priors.pue: lognormal distribution is missing its parameters",
    ),
    (
        "prior-conflicting-parameters",
        "prior",
        ("sub", "p95 = 1.6", "p95 = 1.6\nmedian = 1.2"),
        "priors.pue.median: conflicts with p5+p95",
    ),
    (
        "prior-parameter-of-other-dist",
        "prior",
        ("sub", "p95 = 1.6", "p95 = 1.6\nmode = 1.2"),
        "priors.pue.mode: not a parameter of lognormal",
    ),
    (
        "prior-p5-equals-p95",
        "prior",
        ("sub", "p95 = 1.6", "p95 = 1.05"),
        "priors.pue.p5: p5 = 1.05 is not below p95 = 1.05",
    ),
    (
        "prior-gsd-below-one",
        "prior",
        ("sub", "p5 = 1.05\np95 = 1.6", "median = 1.2\ngsd = 0.9"),
        "priors.pue.gsd: 0.9 is not above 1",
    ),
    (
        "prior-kind-unknown",
        "prior",
        ("sub", 'kind = "epistemic"', 'kind = "random"'),
        "priors.pue.kind: unknown kind 'random'",
    ),
    (
        "prior-bounds-malformed",
        "prior",
        ("sub", "bounds = [1.0, inf]", "bounds = [1.0]"),
        "priors.pue.bounds: expected [low, high]",
    ),
    (
        "prior-bounds-exclude-all",
        "prior",
        ("sub", "bounds = [1.0, inf]", "bounds = [50.0, 60.0]"),
        "priors.pue.bounds: all of the prior's mass lies outside",
    ),
    ("prior-huge-value", "prior", ("sub", "p95 = 1.6", "p95 = 1e400"), "priors.pue.p95: inf is not finite"),
    (
        "prior-circular-extends",
        "prior",
        ("prepend", '[meta]\nextends = ["prior.toml"]\n'),
        "meta.extends: circular layering",
    ),
    (
        "prior-missing-extends",
        "prior",
        ("prepend", '[meta]\nextends = ["nowhere.toml"]\n'),
        "meta.extends: 'nowhere.toml': no such file",
    ),
    (
        "prior-model-override-type",
        "prior",
        ("append", '[priors.pue.models]\n"DeepSeek-R1" = 3\n'),
        "priors.pue.models: expected tables per model",
    ),
    (
        "prior-categorical-weights",
        "prior",
        ("sub", 'dist = "lognormal"\np5 = 1.05\np95 = 1.6', 'dist = "categorical"\nvalues = [1.1, 1.2]\nweights = [1]'),
        "priors.pue.weights: must have one weight per value",
    ),
    (
        "prior-categorical-text",
        "prior",
        ("sub", 'dist = "lognormal"\np5 = 1.05\np95 = 1.6', 'dist = "categorical"\nvalues = ["air", "liquid"]'),
        "priors.pue.values: 'air' is not a finite number",
    ),
    ("prior-meta-not-table", "prior", ("prepend", "meta = 3\n"), "meta: expected a table, got 3"),
    (
        "prior-flag-type",
        "prior",
        ("sub", "p95 = 1.6", 'p95 = 1.6\ntruncate = "yes"'),
        "priors.pue.truncate: expected true or false",
    ),
    # benchmark tables
    ("table-empty", "csv", ("replace", ""), "has no header and no rows"),
    ("table-header-only", "csv", ("replace", "{header}\n"), "has a header but no rows"),
    ("table-unknown-column", "csv", ("sub", "tokens_per_s", "tps"), "column tps: unknown, missing or repeated column"),
    ("table-cell-count", "csv", ("sub", ",s\n", ",s,extra\n"), "line 2: has 10 cells"),
    ("table-text-tps", "csv", ("sub", ",14686.01,", ",fast,"), "line 2: tokens_per_s: 'fast' is not a number"),
    ("table-zero-tps", "csv", ("sub", ",14686.01,", ",0,"), "line 2: tokens_per_s: 0 is not a positive finite number"),
    (
        "table-negative-tps",
        "csv",
        ("sub", ",14686.01,", ",-5,"),
        "line 2: tokens_per_s: -5 is not a positive finite number",
    ),
    ("table-text-length", "csv", ("sub", ",128,128,", ",long,128,"), "line 2: input_tokens: 'long' is not a number"),
    ("table-empty-model", "csv", ("sub", "Llama 3.1 70B,8x", ",8x"), "line 2: model: is empty"),
    (
        "table-model-without-rows",
        "csv",
        ("replace", "{header}\nLlama 3.1 70B,8xH100,FP16,100,500,500,8,10,s\n"),
        "has no FP8 rows with numeric lengths",
    ),
    # command line
    ("cli-draws-zero", "cli", ["run", "{study}", "--draws", "0"], "--draws: 0 is not a whole number"),
    ("cli-draws-text", "cli", ["run", "{study}", "--draws", "lots"], "argument --draws: invalid int value: 'lots'"),
    ("cli-seed-negative", "cli", ["run", "{study}", "--seed", "-3"], "--seed: -3 is not a non-negative integer"),
    ("cli-scheduler-unknown", "cli", ["run", "{study}", "--scheduler", "gpu"], "--scheduler: unknown scheduler 'gpu'"),
    (
        "cli-scheduler-bad-address",
        "cli",
        ["run", "{study}", "--scheduler", "foo://bar:1"],
        "--scheduler: unknown scheduler 'foo://bar:1'",
    ),
    (
        "cli-scheduler-bad-port",
        "cli",
        ["run", "{study}", "--scheduler", "tcp://localhost:notaport"],
        "--scheduler: unknown scheduler 'tcp://localhost:notaport'",
    ),
    (
        "result-text-in-number",
        "result",
        ("sub", '"median": 0.3', '"median": "x"'),
        "record 0: median: 'x' is not allowed (a finite number)",
    ),
    (
        "result-list-as-label",
        "result",
        ("sub", '"scenario": "t"', '"scenario": ["t"]'),
        "record 0: scenario: ['t'] is not allowed (text)",
    ),
    (
        "result-optional-key-edited",
        "result",
        ("sub", '"median": 0.3', '"median": 0.3, "p25": "x"'),
        "record 0: p25: 'x' is not allowed (a finite number)",
    ),
    ("cli-out-is-file", "cli", ["run", "{study}", "--out", "{tmp}/afile"], "--out: exists and is not a folder"),
    (
        "cli-out-foreign-folder",
        "cli",
        ["run", "{study}", "--out", "{tmp}/mine"],
        "--out: exists and is not a uqenergy output",
    ),
    ("cli-out-unwritable", "cli", ["run", "{study}", "--out", "{tmp}/afile/out"], "--out: cannot write here"),
    (
        "cli-out-foreign-folder-force",
        "cli",
        ["run", "{study}", "--out", "{tmp}/mine", "--force"],
        "--out: exists and is not a uqenergy output",
    ),
    ("cli-out-root", "cli", ["run", "{study}", "--out", "/"], "--out: is the root folder"),
    ("cli-out-too-long", "cli", ["run", "{study}", "--out", "{tmp}/" + "x" * 300], "--out: the name xxxxx"),
    (
        "cli-draws-one",
        "cli",
        ["run", "{study}", "--draws", "1"],
        "--draws: 1 is not a whole number in 2..1,000,000,000",
    ),
    (
        "cli-seed-huge",
        "cli",
        ["run", "{study}", "--seed", str(2**64)],
        "--seed: 18446744073709551616 is too large (an integer from 0 to 2**63 - 1",
    ),
    ("cli-unknown-command", "cli", ["runn"], "argument COMMAND: invalid choice: 'runn'"),
    ("cli-wrong-command", "cli", ["compare", "{study}"], "is a run study, not a compare study (uqenergy run"),
    (
        "cli-closed-models-set",
        "cli",
        ["run", "closed_models", "--set", "pue.p95=1.4"],
        "closed_models: --set: is not used by a closed-model study",
    ),
    ("cli-set-not-assignment", "cli", ["run", "{study}", "--set", "pue=1.4"], "--set: 'pue=1.4' is not NAME.KEY=VALUE"),
    (
        "cli-set-unknown-prior",
        "cli",
        ["run", "{study}", "--set", "peu.p95=1.4"],
        "overrides: priors.peu: overrides a prior the prior files do not define",
    ),
    ("cli-set-bad-value", "cli", ["run", "{study}", "--set", "pue.p95=0.5"], "overrides: priors.pue.p5: p5 = 1.05"),
    ("cli-report-foreign-folder", "cli", ["report", "{tmp}/mine"], "is not a uqenergy output folder"),
    (
        "cli-serve-study-not-served",
        "cli",
        ["serve", "paper_fleet"],
        "STUDY: 'paper_fleet' is not a study this page runs",
    ),
    ("cli-serve-bad-port", "cli", ["serve", "--port", "70000"], "--port: 70000 is not a port number (1..65535)"),
]


def _edit(text: str, edit: tuple) -> str:
    how, *args = edit
    if how == "prepend":
        return args[0] + text
    if how == "append":
        return text + "\n" + args[0]
    if how == "replace":
        return args[0].format(header=HEADER)
    old, new = args
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize("row", CASES, ids=[c[0] for c in CASES])
def test_catalogue_row(row, cli, tmp_path):
    _name, kind, edit, expected = row
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep")
    study = tmp_path / "study.toml"
    study.write_text(SMALL_STUDY)
    if kind == "cli":
        args = [a.format(tmp=tmp_path, study=study) for a in edit]
    else:
        kind, _, command = kind.partition(":")
        file_name, text = BASE[kind]
        (tmp_path / file_name).parent.mkdir(exist_ok=True)
        (tmp_path / file_name).write_text(_edit(text, edit))
        if kind == "csv":
            study.write_text(TABLE_STUDY)
        if kind == "result":  # a finished output folder whose JSON was edited by hand
            write_manifest(tmp_path / "result")
        args = {"prior": ["validate", tmp_path / file_name], "result": ["report", tmp_path / "result"]}.get(
            kind, [command or "run", study]
        )
        args += ["--out", tmp_path / "out"] if args[0] not in ("validate", "report") else []
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert err.startswith("uqenergy: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep"


def test_reasoning_share_alone_row(cli, tmp_path):
    """Row study-reasoning-share-alone: a reasoning share decides which queries take the token multiplier, by each
    query's reasoning draw; without them it would silently do nothing (or fail inside the engine)."""
    share = PRIOR.replace("pue", "reasoning_share").replace('dist = "lognormal"\np5 = 1.05\np95 = 1.6', 'dist = "beta"')
    share = share.replace('unit = "1"', 'alpha = 9.0\nbeta = 1.0\nunit = "1"').replace("[1.0, inf]", "[0.0, 1.0]")
    (tmp_path / "share.toml").write_text(share)
    joule = f'priors = ["{PRIORS_DIR / "joule2026.toml"}"]'
    study = tmp_path / "study.toml"
    study.write_text(SMALL_STUDY.replace(joule, joule[:-1] + ', "share.toml"]'))
    code, _, err = cli("run", study, "--out", tmp_path / "out")
    assert code == 2 and err.startswith("uqenergy: error: ") and err.count("\n") == 1, err
    assert (
        "study.priors: prior 'reasoning_share' needs 'output_token_multiplier' and 'reasoning_draw', not defined" in err
    )
    assert not (tmp_path / "out").exists()


def test_an_error_about_input_with_control_characters_stays_on_one_line():
    error = InputError("study\n.toml", "priors.\x1b[31mpue", "unknown key\r\n", "allowed: a\tb")
    assert error.message == "study\\n.toml: priors.\\x1b[31mpue: unknown key\\r\\n (allowed: a\\tb)"


@pytest.mark.parametrize("kind", ["fifo", "device", "oversized", "deep", "long-cell"])
def test_input_files_are_read_bounded(kind, cli, tmp_path):
    """A FIFO or device is never opened, a huge file never read whole, deep nesting and huge cells fail on one line."""
    study = tmp_path / "study.toml"
    if kind == "fifo":
        os.mkfifo(study)  # opening it would block until a writer comes
    elif kind == "device":
        study = Path("/dev/zero")  # reading it would never end
    elif kind == "oversized":
        study.write_text(SMALL_STUDY + "#" * (MAX_INPUT_BYTES + 10))
    elif kind == "deep":
        study.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    else:
        (tmp_path / "table.csv").write_text(TABLE.replace(",s\n", ",s" + "x" * 200_000 + "\n", 1))
        study.write_text(TABLE_STUDY)
    code, _, err = cli("run", study, "--out", tmp_path / "out")
    expected = {
        "fifo": "is not a regular file",
        "device": "is not a regular file",
        "oversized": "is larger than 16 MB",
        "deep": "nests arrays or tables too deeply",
        "long-cell": "not valid CSV: field larger than field limit",
    }[kind]
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()

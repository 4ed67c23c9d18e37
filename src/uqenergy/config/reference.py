"""The study-file reference (docs/study-files.md), generated from the key sets the parsers check.

Every table of a study file is listed with the keys its parser accepts, taken from
the parser's own key set, and a line per key written here. A key the parser accepts
without a line here, or a line for a key it does not accept, is an error, and
``tests/test_newuser.py`` regenerates the page and compares it with docs/study-files.md,
so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping

from uqenergy.config.blends import BLEND_KEYS
from uqenergy.config.fleet import FLEET_KEYS, GRID_KEYS, WORKLOAD_KEYS
from uqenergy.config.intervals import INTERVAL_KEYS
from uqenergy.config.measured_study import MEASURED_KEYS
from uqenergy.config.models import MODEL_KEYS, POINT_KEYS
from uqenergy.config.priors import METADATA_KEYS
from uqenergy.config.settings import SETTING_KEYS, SETTING_STUDY_KEYS
from uqenergy.config.sobol import SECTION_KEYS as SOBOL_KEYS
from uqenergy.config.study import PATHWAY_KEYS, SECTIONS, STUDY_KEYS

#: (table as written in a study file, the keys its parser accepts, a line per key)
TABLES: tuple[tuple[str, frozenset[str], Mapping[str, str]], ...] = (
    (
        "a study file",
        SECTIONS,
        {
            "study": "`[study]`: what runs (required)",
            "priors": "`[priors.NAME]`: overrides of priors of the prior files (docs/priors.md)",
            "blends": "`[blends.NAME]`: pools of models reported as one series",
            "pathways": "`[pathways]`: efficiency pathways applied to series",
            "intervals": "`[intervals]`: interval level and Monte Carlo design (docs/intervals.md)",
            "sobol": "`[sobol]`: sensitivity analysis options for `uqenergy sobol` (docs/sensitivity.md)",
            "settings": "`[[settings]]`: named variants run side by side",
            "models": '`[models."NAME"]`: models defined in the study (docs/custom-model.md)',
            "fleet": "`[fleet]`: fleet totals for `uqenergy fleet` (docs/fleet.md)",
            "measured": "`[measured]`: energy from a measured table instead of the throughput model (docs/measured.md)",
        },
    ),
    (
        "[study]",
        STUDY_KEYS,
        {
            "name": "text (required): the study's name, in reports and provenance",
            "scenario": "text (required): the label of its records, e.g. `traditional`",
            "description": "text: one line, shown by `uqenergy studies`",
            "priors": "list of prior files (required): bundled names or paths relative to the study, lowest first",
            "throughput": "benchmark table: bundled name or path (default `throughput_h100`)",
            "quantization": "which rows of the benchmark table are fitted (default `FP8`)",
            "models": "list of model names (required): rows of the benchmark table or `[models]` tables",
            "draws": "draws per model (default 100,000)",
            "seed": "random seed, an integer >= 0 (default 0)",
            "chunk_draws": "draws per chunk (default: automatic)",
            "save_draws": "draws per model kept in samples.nc (default 100,000)",
            "effective_tokens": "`output` (default) or `output+input`: the tokens charged to a query",
            "input_token_divisor": "k in L_out + L_in / k with `output+input` (default 30)",
            "throughput_uncertainty": "true: propagate the throughput fit's uncertainty (default false)",
            "power_utilisation": "`prior` (default) or `proportional`: PU = 0.24 + 0.56 TPS / TPS_max",
            "scheduler": "where chunks run: local (default), threads, processes, synchronous or tcp://HOST:PORT",
            "memory_budget_mb": "above it a run streams its draws (default `auto`)",
        },
    ),
    (
        "[priors.NAME] (in a study: an override)",
        METADATA_KEYS | {"dist", "models"},
        {
            "dist": "a new distribution, with its parameters (docs/priors.md); without it, single parameters change",
            "unit": "unit text",
            "bounds": "[low, high] physical bounds",
            "kind": "`epistemic` or `aleatory`",
            "source": "where the figure comes from",
            "note": "explanation; an override that changes the numbers drops the inherited note",
            "integer": "true: round draws to whole numbers",
            "truncate": "true: restrict the law to its bounds",
            "models": '`[priors.NAME.models."MODEL"]`: the prior for one model; without it, an override that '
            "changes the numbers applies to every model",
        },
    ),
    (
        "[measured]",
        MEASURED_KEYS,
        {
            "table": "measured table: bundled name or path (default `mlenergy_v3`)",
            "task": "text (required): the task measured, e.g. `lm-arena-chat` or `gpqa`",
            "models": "list of model_id or nickname (default: every model measured on the task)",
            "gpus": "list of GPUs, `H100` and/or `B200` (default both)",
            "output_tokens": "`measured` (the task's measured mean length, default) or `prior` (the output_tokens prior)",
            "boundary": "`accelerator`, `server`, `provisioned` or `facility` (default `facility`; docs/measured.md)",
        },
    ),
    (
        "[blends.NAME]",
        BLEND_KEYS,
        {
            "top": "pool the N models of highest median baseline energy",
            "members": "or pool these models",
            "trim": "successive [low, high] percentile windows kept of each member (default none)",
            "concentration": "two-level designs: Dirichlet concentration of the members' shares per state of knowledge "
            "(default: equal shares)",
        },
    ),
    (
        "[pathways]",
        PATHWAY_KEYS,
        {
            "names": "pathways to apply: each needs a `pathway_NAME` prior",
            "combined": "also report all pathways together (default true when there are pathways)",
            "apply_to": "series the pathways apply to (default: the blends)",
        },
    ),
    (
        "[intervals]",
        INTERVAL_KEYS,
        {
            "hdi_level": "level of the highest-density interval (default 0.9)",
            "design": "`one-level` (default), `two-level` (states of knowledge apart from query variation) or `rqmc`"
            " (randomised quasi-Monte Carlo)",
            "replicates": "rqmc: independent scrambled Sobol' sequences the draws are split among (default 16)",
            "outer_draws": "two-level: states of knowledge (default 1,000)",
            "pooled_draws": "two-level: per-query draws kept per model for the pooled quantiles",
            "batch_draws": "adaptive: draws per batch",
            "relative_tolerance": "adaptive: stop when 2 MCSE is below this fraction of each figure",
            "absolute_tolerance_wh": "adaptive: stop when 2 MCSE is below this many Wh",
        },
    ),
    (
        "[sobol]",
        SOBOL_KEYS,
        {
            "method": "`sobol` (default), `morris` or `pawn`",
            "base_samples": "base sample sizes tried in turn",
            "tolerance": "confidence half-width at which the ladder stops",
            "second_order": "true: second-order Sobol indices",
            "resamples": "bootstrap resamples for confidence intervals",
            "conf_level": "confidence level of the intervals",
            "targets": "`energy_wh`, `log_energy_wh`; two-level studies `mean_energy_wh`; fleet studies "
            "`mean_energy_wh`, `fleet_gwh_per_day`",
            "inner_draws": "two-level and fleet studies: aleatory draws behind each design row's mean, the same "
            "for every row (default 1000)",
            "series": "series analysed (default: the blends)",
            "groups": "named groups of factors",
        },
    ),
    (
        "[[settings]]",
        SETTING_KEYS,
        {
            "name": "the setting's name: rows of the report and records are named by it",
            "description": "one line",
            "study": "keys of [study] that change: " + ", ".join(sorted(SETTING_STUDY_KEYS)),
            "priors": "prior overrides under this setting",
        },
    ),
    (
        '[models."NAME"]',
        MODEL_KEYS,
        {
            "throughput": 'tokens/s: a number, `{ dist = "lognormal", ... }`, or a list of benchmark points',
            "hardware": "text: what it ran on",
            "source": "text (required): where the throughput figures come from",
            "node_power_kw": "fixed node power of this model (default: the node_power_kw prior)",
        },
    ),
    (
        '[[models."NAME".throughput]] (a benchmark point)',
        POINT_KEYS,
        {
            "tokens_per_s": "node throughput measured (required)",
            "input_tokens": "input length of the measurement (required)",
            "output_tokens": "output length of the measurement (required)",
            "batch_size": "batch size, for the record",
            "source": "this point's source (default: the model's)",
        },
    ),
    (
        "[fleet]",
        FLEET_KEYS,
        {
            "queries_per_day": "queries served per day",
            "series": "the per-query series used (default `blend`)",
            "outer_draws": "honest method: states of knowledge",
            "grids": "grids to report water and carbon for",
            "workloads": "`[fleet.workloads.NAME]` tables",
            "mixes": "`[fleet.mixes.NAME]`: share of each workload",
        },
    ),
    (
        "[fleet.workloads.NAME]",
        WORKLOAD_KEYS,
        {
            "description": "one line",
            "pathways": "pathways applied to this workload",
            "priors": "prior overrides of this workload",
        },
    ),
    ("[grids.NAME] (in a prior file)", GRID_KEYS, {"description": "one line", "priors": "environment prior overrides"}),
)


def study_file_reference() -> str:
    """docs/study-files.md: every table of a study file and the keys it accepts."""
    lines = [
        "# Study files: every table and key",
        "",
        "<!-- Generated by uqenergy.config.reference.study_file_reference(); do not edit by hand: "
        "tests/test_newuser.py checks this page against the code. -->",
        "",
        "A study is a TOML file run by `uqenergy run` (or `sobol`, `fleet`); `uqenergy studies` lists the bundled "
        "ones and `uqenergy validate FILE` checks one. An unknown key is an error that names the allowed keys.",
    ]
    for table, keys, described in TABLES:
        missing = sorted(set(keys) - set(described))
        stale = sorted(set(described) - set(keys))
        if missing or stale:
            raise ValueError(f"{table}: keys without a description {missing}, descriptions without a key {stale}")
        lines += ["", f"## {table}", "", "| key | what it is |", "|---|---|"]
        lines += [f"| `{key}` | {described[key]} |" for key in described]
    return "\n".join(lines) + "\n"

"""Models defined inside a study: ``[models."NAME"]`` tables, for a model the benchmark table does not hold.

A model's node throughput (tokens/s) is given in one of three ways
(docs/custom-model.md walks through each):

- a number: ``throughput = 1500``, a constant throughput;
- a distribution: ``throughput = { dist = "lognormal", p5 = 900, p95 = 2000 }`` (or
  ``median`` + ``gsd``), a throughput drawn per query; log-normal so that the energy core
  shifts ln TPS by a standard normal draw, as it does for a fit's uncertainty;
- benchmark points: ``[[models."NAME".throughput]]`` tables with ``tokens_per_s``,
  ``input_tokens``, ``output_tokens`` (optional ``batch_size``, ``source``), fitted like the
  rows of a benchmark table (:mod:`uqenergy.engine.throughput`).

``hardware`` and ``source`` say where the figures come from; ``node_power_kw`` (optional)
sets the node power prior of this model to a fixed value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from uqenergy.config import distributions
from uqenergy.config.benchmarks import BenchmarkRow
from uqenergy.config.errors import InputError, check_keys, require_number, require_text

MODEL_KEYS = frozenset({"throughput", "hardware", "source", "node_power_kw"})
POINT_KEYS = frozenset({"tokens_per_s", "input_tokens", "output_tokens", "batch_size", "source"})
GUIDE = "see docs/custom-model.md"


@dataclass(frozen=True)
class GivenThroughput:
    """A throughput given as a number (``log_sd`` 0) or as a log-normal law: ln TPS ~ N(ln median, log_sd)."""

    median_tokens_per_s: float
    log_sd: float = 0.0
    description: str = ""


@dataclass(frozen=True)
class InlineModel:
    """One ``[models."NAME"]`` table: a given throughput, or benchmark rows to fit."""

    name: str
    hardware: str
    source: str
    given: GivenThroughput | None
    rows: tuple[BenchmarkRow, ...]
    node_power_kw: float | None


def parse_models(table, path: Path, quantization: str) -> list[InlineModel]:
    """Validate the ``[models]`` section of a study; benchmark points get the study's ``quantization``."""
    if not isinstance(table, dict) or not all(isinstance(t, dict) for t in table.values()):
        raise InputError(path, "models", 'expected [models."NAME"] tables', GUIDE)
    return [_model(name, spec, path, quantization) for name, spec in table.items()]


def _model(name: str, spec: dict, path: Path, quantization: str) -> InlineModel:
    key = f'models."{name}"'
    check_keys(spec, MODEL_KEYS, path, f"{key}.")
    if "throughput" not in spec:
        raise InputError(path, f"{key}.throughput", "missing", f"a number, a distribution or benchmark points; {GUIDE}")
    hardware = require_text(spec.get("hardware", "unspecified"), path, f"{key}.hardware")
    source = require_text(spec.get("source"), path, f"{key}.source") if "source" in spec else ""
    if not source:
        raise InputError(path, f"{key}.source", "missing", "where the throughput figures come from")
    power = spec.get("node_power_kw")
    power_kw = require_number(power, path, f"{key}.node_power_kw", positive=True) if power is not None else None
    value = spec["throughput"]
    given: GivenThroughput | None = None
    rows: tuple[BenchmarkRow, ...] = ()
    where = f"{key}.throughput"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        tps = require_number(value, path, where, positive=True)
        given = GivenThroughput(tps, 0.0, f"{tps:g} tokens/s (given)")
    elif isinstance(value, dict):
        given = _distribution(value, path, where)
    elif isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
        rows = tuple(
            _point(name, hardware, source, quantization, p, path, f"{where}[{i}]") for i, p in enumerate(value)
        )
    else:
        raise InputError(
            path,
            where,
            f"expected a number, a table or a list of tables, got {value!r}",
            f'tokens/s, {{ dist = "lognormal", p5 = ..., p95 = ... }} or [[{where}]] points; {GUIDE}',
        )
    return InlineModel(name, hardware, source, given, rows, power_kw)


def _distribution(spec: dict, path: Path, key: str) -> GivenThroughput:
    if spec.get("dist") != "lognormal":
        raise InputError(
            path, f"{key}.dist", f"{spec.get('dist')!r} is not supported for throughput", f"lognormal; {GUIDE}"
        )
    check_keys(spec, distributions.parameters_of("lognormal") | {"dist"}, path, f"{key}.")
    law = distributions.from_spec(spec, path, key)
    sigma, median = law.kwds["s"], law.kwds["scale"]
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "dist")
    return GivenThroughput(median, sigma, f"lognormal({params}) tokens/s (given)")


def _point(model: str, hardware: str, source: str, quantization: str, spec, path: Path, key: str) -> BenchmarkRow:
    check_keys(spec, POINT_KEYS, path, f"{key}.")
    for required in ("tokens_per_s", "input_tokens", "output_tokens"):
        if required not in spec:
            raise InputError(path, f"{key}.{required}", "missing", "a positive number")
    batch = spec.get("batch_size")
    return BenchmarkRow(
        model=model,
        hardware=hardware,
        quantization=quantization,
        tokens_per_s=require_number(spec["tokens_per_s"], path, f"{key}.tokens_per_s", positive=True),
        input_tokens=require_number(spec["input_tokens"], path, f"{key}.input_tokens", positive=True),
        output_tokens=require_number(spec["output_tokens"], path, f"{key}.output_tokens", positive=True),
        batch_size=require_number(batch, path, f"{key}.batch_size", positive=True) if batch is not None else None,
        node_power_kw=math.nan,  # not used: node power is the node_power_kw prior
        source=require_text(spec.get("source", source), path, f"{key}.source"),
        line=0,
    )

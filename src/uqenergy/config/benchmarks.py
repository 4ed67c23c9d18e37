"""Benchmark tables: one row per measured throughput (model, hardware, quantisation, lengths, batch, node power).

A CSV with the columns of :data:`COLUMNS` (``#`` lines are comments); lengths may
be ``variable`` and the batch size ``dynamic``. ``node_power_kw`` records the node the
benchmark ran on; the energy uses the ``node_power_kw`` prior (per model where the prior
file says so), not this column. The per-model throughput fits
built from these rows are in :mod:`uqenergy.engine.throughput`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from uqenergy.config.errors import InputError
from uqenergy.config.files import read_input_text

COLUMNS = (
    "model",
    "hardware",
    "quantization",
    "tokens_per_s",
    "input_tokens",
    "output_tokens",
    "batch_size",
    "node_power_kw",
    "source",
)
VARIABLE_LENGTH = "variable"
DYNAMIC_BATCH = "dynamic"


@dataclass(frozen=True)
class BenchmarkRow:
    model: str
    hardware: str
    quantization: str
    tokens_per_s: float
    input_tokens: float | None  # None: not fixed in the benchmark
    output_tokens: float | None
    batch_size: float | None  # None: dynamic batching
    node_power_kw: float
    source: str
    line: int


def _optional(text: str, file, key: str, sentinel: str) -> float | None:
    """A positive number, or None for the word ``sentinel`` (a length that varies, a dynamic batch)."""
    return None if text.strip().lower() == sentinel else _number(text, file, key, f"a positive number or '{sentinel}'")


def _number(text: str, file, key: str, allowed: str = "a positive number") -> float:
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        raise InputError(file, key, f"{value!r} is not a number", allowed) from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(file, key, f"{value} is not a positive finite number", allowed)
    return number


def read_benchmarks(path: Path) -> list[BenchmarkRow]:
    """Read and validate a benchmark CSV (``#`` lines are comments)."""
    text = read_input_text(Path(path), "an existing UTF-8 CSV benchmark table", encoding="utf-8-sig")
    lines = [
        (i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InputError(path, None, "has no header and no rows", "a CSV with columns " + ", ".join(COLUMNS))
    try:
        parsed = list(csv.reader([line for _, line in lines]))
    except csv.Error as exc:  # e.g. a cell over the csv module's field limit
        raise InputError(path, None, f"not valid CSV: {exc}", "a CSV with short cells") from None
    header = [h.strip() for h in parsed[0]]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or len(set(header)) != len(header) or set(header) != set(COLUMNS):
        bad = unknown[0] if unknown else next((c for c in COLUMNS if c not in header), "header")
        raise InputError(path, f"column {bad}", "unknown, missing or repeated column", "columns " + ", ".join(COLUMNS))
    rows = []
    for (line_no, _), cells in zip(lines[1:], parsed[1:]):
        if len(cells) != len(header):
            raise InputError(path, f"line {line_no}", f"has {len(cells)} cells", f"{len(header)} cells, one per column")
        cell = dict(zip(header, (c.strip() for c in cells)))
        where = f"line {line_no}: "
        for text_col in ("model", "source"):
            if not cell[text_col]:
                raise InputError(
                    path, f"{where}{text_col}", "is empty", "a model name" if text_col == "model" else "a citation"
                )
        rows.append(
            BenchmarkRow(
                model=cell["model"],
                hardware=cell["hardware"],
                quantization=cell["quantization"],
                tokens_per_s=_number(cell["tokens_per_s"], path, f"{where}tokens_per_s"),
                input_tokens=_optional(cell["input_tokens"], path, f"{where}input_tokens", VARIABLE_LENGTH),
                output_tokens=_optional(cell["output_tokens"], path, f"{where}output_tokens", VARIABLE_LENGTH),
                batch_size=_optional(cell["batch_size"], path, f"{where}batch_size", DYNAMIC_BATCH),
                node_power_kw=_number(cell["node_power_kw"], path, f"{where}node_power_kw"),
                source=cell["source"],
                line=line_no,
            )
        )
    if not rows:
        raise InputError(path, None, "has a header but no rows", "at least one benchmark row")
    return rows


def usable_rows(rows: list[BenchmarkRow], model: str, quantization: str, file=None) -> list[BenchmarkRow]:
    """A model's rows of one quantisation with numeric lengths (what its throughput fit uses); at least one."""

    def usable(r: BenchmarkRow) -> bool:
        return r.quantization == quantization and r.input_tokens is not None and r.output_tokens is not None

    found = [r for r in rows if r.model == model and usable(r)]
    if not found:
        others = sorted({r.quantization for r in rows if r.model == model and r.quantization != quantization})
        hint = (
            f"its rows are {', '.join(others)}: set study.quantization = {others[0]!r} to use them"
            if others
            else "models that have: " + (", ".join(sorted({r.model for r in rows if usable(r)})) or "none")
        )
        raise InputError(
            file,
            f"model {model!r}",
            f"has no {quantization} rows with numeric lengths",
            f"{hint}; see docs/custom-model.md",
        )
    return found

"""Measured inference energy: the ML.ENERGY Benchmark v3 table, and the importer that builds it.

One row per configuration: a model served by vLLM on ``gpu_count`` GPUs of one
kind, at one batch-size cap, over one task's request set, with its measured mean
batch, mean output length, output throughput and GPU power (summed over the
configuration's GPUs). Energy per output token is GPU power / throughput (J per
token); it covers the accelerators only (the ``accelerator`` rung of the boundary
ladder, :mod:`uqenergy.config.boundaries`).

The bundled table ``priors/mlenergy_v3.csv`` is derived from the ML.ENERGY
Leaderboard's compiled task files (build of 2026-02-16) by :func:`import_mlenergy`;
``uqenergy data import-mlenergy FILE.json ...`` refreshes it from a newer build.
Source: Chung et al., "The ML.ENERGY Benchmark: Toward Automated Inference Energy
Measurement and Optimization", NeurIPS Datasets and Benchmarks 2025; data licence
Apache-2.0 (the notice travels in the table's comment lines).

Rules the importer applies, and the reader checks:

- a configuration is (task, model_id, gpu, gpu_count, precision, batch_cap); a
  configuration measured more than once (repeat runs that both passed the
  benchmark's stability checks) is averaged: mean batch, output length,
  throughput and power are the means of the runs, ``runs`` counts them, and energy
  per token is recomputed as power / throughput;
- a group (task, model_id, gpu, gpu_count, precision) needs at least two batch
  points for its energy-versus-batch curve; the importer leaves out a group with
  one and names it in a warning; the reader refuses one;
- the GPU is one of :data:`GPUS`; numbers are finite and positive.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from uqenergy.config.errors import InputError
from uqenergy.config.files import read_text

GPUS = ("H100", "B200")
#: the key that makes a configuration; a group is the same without the batch cap
CONFIGURATION_KEY = ("task", "model_id", "gpu", "gpu_count", "precision", "batch_cap")
GROUP_KEY = CONFIGURATION_KEY[:-1]
#: relative tolerance of energy per token against power / throughput
ENERGY_RTOL = 1e-9
#: source JSON field -> table column (the numbers averaged over repeat runs are MEASURED)
SOURCE_FIELDS = {
    "model_id": "model_id",
    "nickname": "nickname",
    "gpu_model": "gpu",
    "num_gpus": "gpu_count",
    "weight_precision": "precision",
    "total_params_billions": "total_params_b",
    "activated_params_billions": "active_params_b",
    "architecture": "architecture",
    "max_num_seqs": "batch_cap",
    "avg_batch_size": "mean_batch",
    "avg_output_len": "mean_output_tokens",
    "output_throughput_tokens_per_sec": "tokens_per_s",
    "avg_power_watts": "gpu_power_w",
}
MEASURED = ("mean_batch", "mean_output_tokens", "tokens_per_s", "gpu_power_w")
NOTICE = (
    "Derived from The ML.ENERGY Benchmark v3 dataset as compiled by the ML.ENERGY Leaderboard "
    "(public/data/tasks/*.json of the ml-energy/leaderboard repository). Licensed under the Apache License, "
    "Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0). Cite: Chung, Ma, Wu, Liu, Kweon, Xia, Wu, "
    "Chowdhury, 'The ML.ENERGY Benchmark: Toward Automated Inference Energy Measurement and Optimization', "
    "NeurIPS Datasets and Benchmarks, 2025. Changes: one row per configuration (repeat runs averaged), fields "
    "renamed, energy per output token recomputed as gpu_power_w / tokens_per_s. Boundary: GPU power only."
)


@dataclass(frozen=True)
class MeasuredConfiguration:
    """One measured configuration (a row of the table); energies are GPU-only."""

    task: str
    model_id: str
    nickname: str
    gpu: str
    gpu_count: int
    precision: str
    total_params_b: float
    active_params_b: float
    architecture: str
    batch_cap: int
    mean_batch: float
    mean_output_tokens: float
    tokens_per_s: float
    gpu_power_w: float
    energy_per_output_token_j: float
    runs: int

    @property
    def group(self) -> tuple:
        """(task, model_id, gpu, gpu_count, precision): the configurations of one energy-versus-batch curve."""
        return tuple(getattr(self, k) for k in GROUP_KEY)

    @property
    def base_model_id(self) -> str:
        """The model without its quantised build's suffix (``-FP8``): FP8 and BF16 builds of one model share it."""
        return self.model_id.removesuffix("-FP8")


COLUMNS = tuple(f.name for f in fields(MeasuredConfiguration))
_INTEGER = {"gpu_count", "batch_cap", "runs"}
_TEXT = {"task", "model_id", "nickname", "gpu", "precision", "architecture"}


@dataclass(frozen=True)
class MeasuredTable:
    """A validated measured table: its file and its configurations in file order."""

    path: Path
    configurations: tuple[MeasuredConfiguration, ...]

    def groups(self) -> dict[tuple, tuple[MeasuredConfiguration, ...]]:
        """Group key -> its configurations ordered by mean batch."""
        grouped: dict[tuple, list[MeasuredConfiguration]] = defaultdict(list)
        for c in self.configurations:
            grouped[c.group].append(c)
        return {key: tuple(sorted(rows, key=lambda c: c.mean_batch)) for key, rows in grouped.items()}


def _value(column: str, text: str, file, key: str) -> str | int | float:
    if column in _TEXT:
        if not text:
            raise InputError(file, key, "is empty", "a non-empty name")
        return text
    try:
        number = float(text)
    except ValueError:
        raise InputError(file, key, f"{text!r} is not a number", "a positive finite number") from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(file, key, f"{text} is not a positive finite number", "a positive finite number")
    if column in _INTEGER:
        if number != int(number):
            raise InputError(file, key, f"{text} is not a whole number", "a whole number >= 1")
        return int(number)
    return number


def check_configurations(rows: Sequence[MeasuredConfiguration], file) -> None:
    """Known GPUs, consistent energy per token, no repeated configuration, two batch points per group."""
    seen: dict[tuple, int] = {}
    per_group: dict[tuple, int] = defaultdict(int)
    for line, row in enumerate(rows, 1):
        where = f"row {line} ({row.model_id}, {row.gpu} x{row.gpu_count}, {row.task}, batch cap {row.batch_cap})"
        if row.gpu not in GPUS:
            raise InputError(file, f"{where}: gpu", f"unknown GPU {row.gpu!r}", ", ".join(GPUS))
        expected = row.gpu_power_w / row.tokens_per_s
        if not math.isclose(row.energy_per_output_token_j, expected, rel_tol=ENERGY_RTOL):
            raise InputError(
                file,
                f"{where}: energy_per_output_token_j",
                f"{row.energy_per_output_token_j:g} J is not gpu_power_w / tokens_per_s = {expected:g} J",
                "GPU power divided by output throughput",
            )
        key = tuple(getattr(row, k) for k in CONFIGURATION_KEY)
        if key in seen:
            raise InputError(
                file,
                where,
                f"repeats the configuration of row {seen[key]}",
                "one row per configuration (the importer averages repeat runs)",
            )
        seen[key] = line
        per_group[row.group] += 1
    for group, count in per_group.items():
        if count < 2:
            task, model, gpu, gpus, precision = group
            raise InputError(
                file,
                f"{model}, {gpu} x{gpus}, {precision}, {task}",
                "has a single batch point",
                "at least two batch points per group, for its energy-versus-batch curve",
            )


def read_measured(path: str | Path) -> MeasuredTable:
    """Read and validate a measured table (CSV with the columns of :data:`COLUMNS`; ``#`` lines are comments).

    Parameters
    ----------
    path : str or pathlib.Path
        The table, e.g. the bundled ``priors/mlenergy_v3.csv``.

    Returns
    -------
    MeasuredTable
        Its configurations; bad data raises :class:`~uqenergy.config.errors.InputError`.
    """
    path = Path(path)
    lines = [line for line in read_text(path).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    if tuple(header) != COLUMNS:
        missing = next((c for c in COLUMNS if c not in header), None)
        problem = f"missing column {missing!r}" if missing else f"columns {', '.join(header) or 'none'}"
        raise InputError(path, "header", problem, "the columns " + ", ".join(COLUMNS) + " in that order")
    rows = []
    for number, cells in enumerate(reader, 1):
        if len(cells) != len(COLUMNS):
            raise InputError(path, f"row {number}", f"has {len(cells)} cells", f"{len(COLUMNS)}, one per column")
        values: dict[str, Any] = {
            c: _value(c, cell.strip(), path, f"row {number}: {c}") for c, cell in zip(COLUMNS, cells)
        }
        rows.append(MeasuredConfiguration(**values))
    if not rows:
        raise InputError(path, None, "has no rows", "at least one configuration")
    check_configurations(rows, path)
    return MeasuredTable(path, tuple(rows))


def _source_configurations(path: Path) -> Iterable[dict]:
    """The configurations of one leaderboard task file, with the task's name; missing fields are errors."""
    try:
        document = json.loads(read_text(path))
        task, configurations = document["task"], document["configurations"]
    except json.JSONDecodeError as exc:
        raise InputError(path, None, f"not valid JSON: {exc}", "a leaderboard task file") from None
    except (KeyError, TypeError):
        raise InputError(path, "task", "missing task or configurations", "a leaderboard task file") from None
    if not isinstance(task, str) or not isinstance(configurations, list):
        raise InputError(path, "configurations", "expected a task name and a list", "a leaderboard task file")
    for index, entry in enumerate(configurations):
        if not isinstance(entry, dict):
            raise InputError(path, f"configurations[{index}]", "expected an object", "a configuration object")
        for name in SOURCE_FIELDS:
            if name not in entry:
                raise InputError(
                    path, f"configurations[{index}].{name}", "is missing", "every field of a configuration"
                )
        yield {"task": task, "index": index, **entry}


def import_mlenergy(paths: Sequence[str | Path]) -> tuple[list[MeasuredConfiguration], list[str]]:
    """Build measured configurations from leaderboard task files (``public/data/tasks/*.json``).

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
        Task files of one leaderboard build.

    Returns
    -------
    configurations : list of MeasuredConfiguration
        One per configuration, repeat runs averaged (see the module docstring).
    warnings : list of str
        What was left out (groups with a single batch point), one line each.
    """
    runs: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for path in map(Path, paths):
        for entry in _source_configurations(path):
            where = f"configurations[{entry['index']}]"
            row = {"task": entry["task"]}
            for name, column in SOURCE_FIELDS.items():
                row[column] = _value(column, str(entry[name]).strip(), path, f"{where}.{name}")
            if row["gpu"] not in GPUS:
                raise InputError(path, f"{where}.gpu_model", f"unknown GPU {row['gpu']!r}", ", ".join(GPUS))
            runs[tuple(row[k] for k in CONFIGURATION_KEY)].append(row)
    configurations = []
    for repeats in runs.values():
        first = repeats[0]
        mean = {c: math.fsum(float(r[c]) for r in repeats) / len(repeats) for c in MEASURED}
        values: dict[str, Any] = {c: first[c] for c in COLUMNS if c in first and c not in MEASURED}
        values |= mean | {"energy_per_output_token_j": mean["gpu_power_w"] / mean["tokens_per_s"], "runs": len(repeats)}
        configurations.append(MeasuredConfiguration(**values))
    per_group: dict[tuple, int] = defaultdict(int)
    for c in configurations:
        per_group[c.group] += 1
    single = {g for g, n in per_group.items() if n < 2}
    warnings = [f"left out {m} on {g} x{n} ({p}, {t}): a single batch point" for t, m, g, n, p in sorted(single)]
    kept = sorted(
        (c for c in configurations if c.group not in single),
        key=lambda c: (c.task, c.model_id, c.gpu, c.gpu_count, c.precision, c.batch_cap),
    )
    return kept, warnings


def written_by_importer(path: Path) -> bool:
    """Whether ``path`` is a table :func:`measured_csv` wrote (its second line is the licence notice)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [handle.readline() for _ in range(2)][1] == f"# {NOTICE}\n"
    except (OSError, UnicodeDecodeError):
        return False


def measured_csv(configurations: Sequence[MeasuredConfiguration], source: str) -> str:
    """The table as CSV text: comment lines with ``source`` and the licence notice, a header, one row each."""
    out = io.StringIO()
    out.write(f"# {source}\n# {NOTICE}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in configurations:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in (getattr(c, k) for k in COLUMNS)])
    return out.getvalue()

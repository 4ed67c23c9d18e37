"""A measured study's ``[measured]`` section: which measured configurations it runs, and at which boundary.

A study with a ``[measured]`` table takes its energy from a measured table
(:mod:`uqenergy.config.measured`, by default the bundled ML.ENERGY v3 table)
instead of the paper's throughput model. Keys:

``table``
    The measured table: a bundled name (``mlenergy_v3``, the default) or a path to a CSV.
``task``
    The task whose request set the energies were measured on (``lm-arena-chat``, ``gpqa``,
    ``sourcegraph-fim``). Required.
``models``
    Models by ``model_id`` or ``nickname`` (default: every model measured on the task).
``gpus``
    ``H100``, ``B200`` or both (the default).
``output_tokens``
    ``measured`` (the default): each configuration's mean output length on the task, the mean of
    its batch points; ``prior``: the study's ``output_tokens`` prior.
``boundary``
    The rung of the boundary ladder the study reports (:mod:`uqenergy.config.boundaries`;
    default ``facility``).

Each (model, GPU, GPU count, precision) measured on the task is a *configuration*: a series of
the study, named ``NICKNAME (COUNTxGPU)``; blends pool them by that name. The sampled inputs are
``concurrency`` (the mean batch a deployment runs at), ``output_tokens`` when it is a prior, and
the rung multipliers up to the boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uqenergy.config.boundaries import parse_boundary, rung_priors
from uqenergy.config.errors import InputError, check_keys, require_names, require_text
from uqenergy.config.files import existing
from uqenergy.config.measured import GPUS, MeasuredConfiguration, MeasuredTable, read_measured

MEASURED_KEYS = frozenset({"table", "task", "models", "gpus", "output_tokens", "boundary"})
OUTPUT_TOKENS = ("measured", "prior")
DEFAULT_TABLE = "mlenergy_v3"
DEFAULT_BOUNDARY = "facility"
CONCURRENCY = "concurrency"  # the prior on the mean batch a deployment runs at
#: [study] keys of the paper's throughput model, which a measured study does not use
PAPER_KEYS = frozenset(
    {
        "throughput",
        "quantization",
        "models",
        "effective_tokens",
        "input_token_divisor",
        "throughput_uncertainty",
        "power_utilisation",
    }
)


@dataclass(frozen=True)
class Configuration:
    """One measured configuration group, a series of the study: its batch points ordered by mean batch."""

    label: str
    points: tuple[MeasuredConfiguration, ...]

    def describe(self, boundary: str) -> dict[str, Any]:
        """What every record of this series names: model, GPU, GPU count, precision, task and boundary."""
        first = self.points[0]
        return {
            "model": first.nickname,
            "model_id": first.model_id,
            "gpu": first.gpu,
            "gpu_count": first.gpu_count,
            "precision": first.precision,
            "task": first.task,
            "boundary": boundary,
        }


@dataclass(frozen=True)
class MeasuredSection:
    """The parsed ``[measured]`` section: the table, the chosen configurations, tokens and boundary."""

    table: MeasuredTable
    task: str
    boundary: str
    output_tokens: str
    configurations: tuple[Configuration, ...]

    @property
    def labels(self) -> list[str]:
        """The series names, one per configuration, in table order."""
        return [c.label for c in self.configurations]

    @property
    def priors(self) -> list[str]:
        """The sampled inputs, in the order that fixes their random streams."""
        tokens = ["output_tokens"] if self.output_tokens == "prior" else []
        return [CONCURRENCY, *tokens, *rung_priors(self.boundary)]

    def series_labels(self) -> Mapping[str, Mapping[str, Any]]:
        """Series name -> what its records name (:meth:`Configuration.describe`)."""
        return {c.label: c.describe(self.boundary) for c in self.configurations}


def _label(points: tuple[MeasuredConfiguration, ...], with_precision: bool) -> str:
    first = points[0]
    precision = f", {first.precision}" if with_precision else ""
    return f"{first.nickname} ({first.gpu_count}x{first.gpu}{precision})"


def parse_measured(table: Any, file: Path) -> MeasuredSection:
    """Validate a study's ``[measured]`` table and choose its configurations.

    Parameters
    ----------
    table : Any
        The section as read from TOML.
    file : Path
        The study file, for error messages and relative table paths.

    Returns
    -------
    MeasuredSection
        Bad keys or values raise :class:`~uqenergy.config.errors.InputError`.
    """
    if not isinstance(table, dict):
        raise InputError(file, "measured", "expected a table", "[measured] with task, models, gpus, boundary")
    check_keys(table, MEASURED_KEYS, file, "measured.")
    data = read_measured(existing(table.get("table", DEFAULT_TABLE), "priors", file, "measured.table", ".csv"))
    groups = data.groups()
    tasks = sorted({key[0] for key in groups})
    task = require_text(table.get("task"), file, "measured.task")
    if task not in tasks:
        raise InputError(file, "measured.task", f"unknown task {task!r}", "tasks in the table: " + ", ".join(tasks))
    on_task = {key: points for key, points in groups.items() if key[0] == task}
    names = {
        name: points[0].model_id for points in on_task.values() for name in (points[0].model_id, points[0].nickname)
    }
    wanted = require_names(
        table.get("models", sorted({p[0].nickname for p in on_task.values()})), file, "measured.models"
    )
    for name in wanted:
        if name not in names:
            raise InputError(
                file,
                "measured.models",
                f"{name!r} was not measured on {task}",
                "model_id or nickname of: " + ", ".join(sorted({p[0].nickname for p in on_task.values()})),
            )
    gpus = require_names(table.get("gpus", list(GPUS)), file, "measured.gpus", allowed=GPUS)
    model_ids = {names[name] for name in wanted}
    chosen = [points for key, points in on_task.items() if key[1] in model_ids and key[2] in gpus]
    for name in wanted:
        if not any(points[0].model_id == names[name] for points in chosen):
            measured_on = sorted({key[2] for key in on_task if key[1] == names[name]})
            raise InputError(
                file,
                "measured.models",
                f"{name!r} was not measured on {' or '.join(gpus)} for {task}",
                f"measured on {', '.join(measured_on)}: add it to measured.gpus or drop the model",
            )
    plain = [_label(points, False) for points in chosen]
    configurations = tuple(
        Configuration(_label(points, plain.count(_label(points, False)) > 1), points) for points in chosen
    )
    tokens = table.get("output_tokens", "measured")
    if tokens not in OUTPUT_TOKENS:
        raise InputError(file, "measured.output_tokens", f"unknown choice {tokens!r}", "measured or prior")
    boundary = parse_boundary(table.get("boundary", DEFAULT_BOUNDARY), file, "measured.boundary")
    return MeasuredSection(data, task, boundary, tokens, configurations)

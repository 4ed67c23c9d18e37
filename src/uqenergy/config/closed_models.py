"""Closed models: priors on their size and hardware, and the study that turns them into energy per query.

A closed-model prior file (``priors/closed_models.toml``) has a ``[meta]`` table and one
``[models."NAME"]`` table per model: ``vendor``, ``task`` (the measured task its queries
resemble: ``lm-arena-chat``, ``gpqa`` or ``sourcegraph-fim``), an optional ``note``, and one
sub-table per quantity of :data:`QUANTITIES`:

- ``active_params_b`` and ``total_params_b``: parameters per token and in memory [billions],
  any continuous distribution of :mod:`uqenergy.config.distributions`;
- ``gpu`` and ``precision``: ``categorical`` over :data:`~uqenergy.config.measured.GPUS` and the
  precisions the regression knows (or ``fixed``-like one-value categoricals).

Every quantity names its ``source`` and how firm it is (``firmness``, one of
:data:`FIRMNESS`); an ``estimated`` quantity names who estimated it (``estimated_by``).

A closed-model study is TOML with a ``[closed_models]`` table: ``name``, ``description``,
``models_file`` (the prior file above), ``models`` (names in it), ``measured`` (the table the
regression is fitted to), ``form`` (a regression form), ``boundary`` (a rung of the boundary
ladder), ``priors`` (prior files defining the ladder's rung priors, ``concurrency`` and
``output_tokens``, as the measured studies do: ``priors/measured.toml``), ``draws``, ``seed``,
``scenario``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from uqenergy.config.boundaries import parse_boundary, rung_priors
from uqenergy.config.errors import InputError, check_keys, positive_int, require_names, require_seed, require_text
from uqenergy.config.files import existing, read_toml, resolve
from uqenergy.config.measured import GPUS, MeasuredTable, read_measured
from uqenergy.config.measured_study import CONCURRENCY
from uqenergy.config.priors import DISTRIBUTION_KEYS, Prior, PriorSet, build_prior, load_prior_files
from uqenergy.config.regression import DEFAULT_FORM, FORMS, PRECISIONS, TASKS

FIRMNESS = ("published", "estimated", "rumoured", "our assumption")
#: quantity -> (unit, physical bounds, categories allowed or None for a continuous quantity)
QUANTITIES: dict[str, tuple[str, tuple[float, float], tuple[str, ...] | None]] = {
    "active_params_b": ("billion parameters", (0.0, float("inf")), None),
    "total_params_b": ("billion parameters", (0.0, float("inf")), None),
    "gpu": ("1", (0.0, float("inf")), GPUS),
    "precision": ("1", (0.0, float("inf")), PRECISIONS),
}
MODEL_KEYS = frozenset({"vendor", "task", "note", *QUANTITIES})
QUANTITY_KEYS = frozenset({"firmness", "estimated_by", "source", "note"}) | DISTRIBUTION_KEYS
STUDY_KEYS = frozenset(
    {
        "name",
        "description",
        "scenario",
        "models_file",
        "models",
        "measured",
        "form",
        "boundary",
        "priors",
        "draws",
        "seed",
    }
)
#: priors a closed-model study needs besides the ladder's rungs (those of the measured studies)
SERVING_PRIORS = (CONCURRENCY, "output_tokens")


@dataclass(frozen=True)
class ClosedQuantity:
    """One quantity's prior for one closed model, with how firm it is."""

    prior: Prior
    firmness: str
    estimated_by: str = ""
    categories: tuple = ()  # a categorical quantity's values; its prior draws their indices


@dataclass(frozen=True)
class ClosedModel:
    """A closed model's priors: size, GPU and precision, each with its source and firmness."""

    name: str
    vendor: str
    task: str
    quantities: dict[str, ClosedQuantity]
    note: str = ""

    def categories(self, quantity: str) -> tuple:
        """The values of a categorical quantity (``gpu``, ``precision``), in the order of its prior."""
        return self.quantities[quantity].categories


def _quantity(name: str, spec, file: Path, key: str) -> ClosedQuantity:
    if not isinstance(spec, dict):
        raise InputError(file, key, f"expected a table, got {spec!r}", "a table with dist, source and firmness")
    check_keys(spec, QUANTITY_KEYS, file, f"{key}.")
    firmness = spec.get("firmness")
    if firmness not in FIRMNESS:
        raise InputError(file, f"{key}.firmness", f"unknown firmness {firmness!r}", ", ".join(FIRMNESS))
    estimated_by = spec.get("estimated_by", "")
    if firmness == "estimated" and (not isinstance(estimated_by, str) or not estimated_by.strip()):
        raise InputError(file, f"{key}.estimated_by", "missing for an estimated quantity", "who estimated it")
    unit, bounds, categories = QUANTITIES[name]
    table = {k: v for k, v in spec.items() if k not in ("firmness", "estimated_by")}
    if "source" not in table:
        raise InputError(file, f"{key}.source", "missing", "a citation or URL, or why it is our assumption")
    if (categories is None) == (table.get("dist") == "categorical"):
        allowed = "a categorical over " + ", ".join(categories) if categories else "a continuous distribution"
        raise InputError(file, f"{key}.dist", f"{table.get('dist')!r} does not fit {name}", allowed)
    names: tuple = ()
    if categories is not None:  # a prior feeds a number: the categories are drawn as indices into their names
        values = table.get("values")
        if not isinstance(values, list) or not values:
            raise InputError(file, f"{key}.values", "expected a non-empty list", "a list of " + ", ".join(categories))
        unknown = [v for v in values if v not in categories]
        if unknown:
            raise InputError(file, f"{key}.values", f"unknown {name} {unknown[0]!r}", ", ".join(categories))
        if len(set(values)) != len(values):
            raise InputError(file, f"{key}.values", "has duplicate entries", "distinct values")
        names = tuple(values)
    indexed = table | {"values": list(range(len(names)))} if names else table
    prior = build_prior(name, indexed | {"unit": unit, "bounds": list(bounds), "kind": "epistemic"}, file, key)
    prior = replace(prior, spec=dict(table))  # described with its names
    if categories is None and prior.distribution.mass_outside(0.0, float("inf")) > 0:
        raise InputError(file, key, "puts mass at or below zero parameters", "a distribution on positive values")
    return ClosedQuantity(prior, firmness, estimated_by, names)


def _model(name: str, table, file: Path) -> ClosedModel:
    key = f'models."{name}"'
    if not isinstance(table, dict):
        raise InputError(file, key, f"expected a table, got {table!r}", "a table per model")
    check_keys(table, MODEL_KEYS, file, f"{key}.")
    for quantity in QUANTITIES:
        if quantity not in table:
            raise InputError(
                file, f"{key}.{quantity}", "missing", "a prior for every quantity: " + ", ".join(QUANTITIES)
            )
    task = table.get("task", TASKS[0])
    if task not in TASKS:
        raise InputError(file, f"{key}.task", f"unknown task {task!r}", ", ".join(TASKS))
    quantities = {q: _quantity(q, table[q], file, f"{key}.{q}") for q in QUANTITIES}
    return ClosedModel(
        name=name,
        vendor=require_text(table.get("vendor"), file, f"{key}.vendor"),
        task=task,
        quantities=quantities,
        note=table.get("note", ""),
    )


def load_closed_models(path: str | Path) -> dict[str, ClosedModel]:
    """Read and validate a closed-model prior file (a path or a bundled name such as ``"closed_models"``).

    Parameters
    ----------
    path : str or pathlib.Path
        The prior file.

    Returns
    -------
    dict of str to ClosedModel
        Models by name, in file order; bad input raises :class:`~uqenergy.config.errors.InputError`.
    """
    path = resolve(path, "priors")
    doc = read_toml(path)
    check_keys(doc, {"meta", "models"}, path)
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        raise InputError(path, "models", "missing or empty", '[models."NAME"] tables')
    return {name: _model(name, table, path) for name, table in models.items()}


@dataclass(frozen=True)
class ClosedModelStudy:
    """A parsed closed-model study (see the module docstring)."""

    path: Path
    name: str
    description: str
    scenario: str
    models_file: Path
    models: tuple[ClosedModel, ...]
    measured: MeasuredTable
    form: str
    boundary: str
    priors: PriorSet
    draws: int
    seed: int

    @property
    def rung_priors(self) -> list[str]:
        """The ladder's multipliers from the accelerators (as measured) up to the study's boundary."""
        return rung_priors(self.boundary)

    @property
    def input_files(self) -> list[Path]:
        return [self.path, self.models_file, self.measured.path, *self.priors.files]


def is_closed_model_study(path: str | Path) -> bool:
    """Whether ``path`` (a file or bundled study name) is a closed-model study (has a ``[closed_models]`` table)."""
    resolved = resolve(path, "studies")
    return resolved.is_file() and "closed_models" in read_toml(resolved)


def load_closed_model_study(path: str | Path, *, draws: int | None = None, seed: int | None = None) -> ClosedModelStudy:
    """Parse and validate a closed-model study.

    Parameters
    ----------
    path : str or pathlib.Path
        A study file or bundled name (``"closed_models"``).
    draws, seed : int, optional
        Override the file's draws per model and seed.

    Returns
    -------
    ClosedModelStudy
        The validated study; bad input raises :class:`~uqenergy.config.errors.InputError`.
    """
    path = resolve(path, "studies")
    doc = read_toml(path)
    check_keys(doc, {"closed_models"}, path)
    table = doc.get("closed_models")
    if not isinstance(table, dict):
        raise InputError(path, "closed_models", "expected a table", "a [closed_models] table")
    check_keys(table, STUDY_KEYS, path, "closed_models.")
    models_file = existing(table.get("models_file", "closed_models"), "priors", path, "closed_models.models_file")
    known = load_closed_models(models_file)
    names = require_names(table.get("models", list(known)), path, "closed_models.models", allowed=list(known))
    measured_file = existing(table.get("measured", "mlenergy_v3"), "priors", path, "closed_models.measured", ".csv")
    form = table.get("form", DEFAULT_FORM)
    if form not in FORMS:
        raise InputError(path, "closed_models.form", f"unknown form {form!r}", ", ".join(FORMS))
    boundary = parse_boundary(table.get("boundary", "facility"), path, "closed_models.boundary")
    prior_names = require_names(table.get("priors"), path, "closed_models.priors")
    priors = load_prior_files([existing(n, "priors", path, "closed_models.priors") for n in prior_names])
    priors.require([*rung_priors(boundary), *SERVING_PRIORS], path, "closed_models.priors")
    draws_value, draws_key = (
        (draws, "--draws") if draws is not None else (table.get("draws", 100_000), "closed_models.draws")
    )
    seed_value, seed_key = (seed, "--seed") if seed is not None else (table.get("seed", 0), "closed_models.seed")
    return ClosedModelStudy(
        path=path,
        name=require_text(table.get("name", path.stem), path, "closed_models.name"),
        description=table.get("description", ""),
        scenario=require_text(table.get("scenario", "traditional"), path, "closed_models.scenario"),
        models_file=models_file,
        models=tuple(known[n] for n in names),
        measured=read_measured(measured_file),
        form=form,
        boundary=boundary,
        priors=priors,
        draws=positive_int(draws_value, path, draws_key),
        seed=require_seed(seed_value, path, seed_key),
    )

"""``uqenergy validate``: check study, fleet, compare, estimates, prior and benchmark files without running anything."""

from __future__ import annotations

from pathlib import Path

from uqenergy.config.benchmarks import read_benchmarks
from uqenergy.config.closed_models import load_closed_model_study, load_closed_models
from uqenergy.config.compare import compare_from_document
from uqenergy.config.estimates import estimates_from_document
from uqenergy.config.files import read_toml, resolve
from uqenergy.config.fleet import fleet_from_document, grid_priors, read_grids
from uqenergy.config.priors import load_prior_files
from uqenergy.config.study import study_from_document


def validate_file(name: str) -> tuple[str, list[str]]:
    """Validate one file, of the kind its content shows.

    Parameters
    ----------
    name : str
        A file path, or the name of a bundled study or prior file.

    Returns
    -------
    tuple of (str, list of str)
        What the file is (e.g. ``"study 'x', 5 models"``) and its warnings. Bad input raises
        :class:`~uqenergy.config.errors.InputError`.
    """
    path = Path(name)
    if path.suffix == ".csv":
        rows = read_benchmarks(path)
        return f"benchmark table, {_count(rows, 'row')}", []
    if not path.exists():
        path = resolve(name, "studies")
        if not path.exists():
            path = resolve(name, "priors")
    doc = read_toml(path)
    if "closed_models" in doc:
        closed = load_closed_model_study(path)
        return f"closed-model study {closed.name!r}, {len(closed.models)} models", closed.priors.warnings
    if "models" in doc and "priors" not in doc:
        return f"closed-model prior file, {len(load_closed_models(path))} models", []
    if "compare" in doc:
        compare = compare_from_document(path, doc)
        ratio = ", non-production ratio" if compare.overstatement else ""
        return f"compare study {compare.name!r}, {_count(compare.estimates, 'estimate')}{ratio}", []
    if "estimates" in doc:
        return f"estimates file, {_count(estimates_from_document(path, doc), 'estimate')}", []
    if "fleet" in doc:
        fleet = fleet_from_document(path, doc)
        return (
            f"fleet study {fleet.study.name!r}, {_count(fleet.runs, 'workload run')}, "
            f"{_count(fleet.mixes, 'mix', 'mixes')}, {_count(fleet.grids, 'grid')}"
        ), fleet.study.priors.warnings
    if "study" in doc:
        study = study_from_document(path, doc)
        settings = f", {_count(study.settings, 'setting')}" if study.settings else ""
        return f"study {study.name!r}, {_count(study.models, 'model')}{settings}", study.priors.warnings
    priors = load_prior_files([path])
    grids = grid_priors(priors, defined, list(defined), path, "grids") if (defined := read_grids([path])) else {}
    return f"prior file, {_count(priors.base, 'prior')}" + (
        f", {_count(grids, 'grid')}" if grids else ""
    ), priors.warnings


def _count(items, word: str, plural: str | None = None) -> str:
    """``1 model``, ``5 models``."""
    return f"{len(items)} {word if len(items) == 1 else plural or word + 's'}"

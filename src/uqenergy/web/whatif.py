"""What-if requests of the ``uqenergy serve`` page: a request -> a study document -> a Study -> the page's numbers.

A request is a JSON object::

    {"study": "paper_traditional", "series": "blend", "draws": 100000, "seed": 42,
     "priors": {"output_tokens": {"median": 400}}}

``priors`` holds ``[priors.NAME]`` tables layered over the study's own, exactly
as in a study file. The request becomes a study document (the study's, with
those tables, the draws and seed, and the page's ``[sobol]`` section) and that
document is validated by :func:`uqenergy.config.study.study_from_document` like
any study file: the page has no validator of its own. The same document, written
as TOML (:func:`study_toml`), is what the page downloads, and ``uqenergy run`` on
it gives the records the page shows.

The page runs one-level per-query studies (no ``[[settings]]``, two-level,
adaptive or fleet design): :func:`served_studies` finds them among the bundled
studies, so a new bundled study appears on the page without a change here.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from uqenergy._version import __version__
from uqenergy.analyses.results import records_frame
from uqenergy.analyses.run import design_of, run_study
from uqenergy.analyses.sensitivity_study import run_sensitivity
from uqenergy.analyses.series import series_draws
from uqenergy.config.blends import untrimmed_series
from uqenergy.config.distributions import parameters_of
from uqenergy.config.errors import InputError, check_keys
from uqenergy.config.estimates import load_estimates
from uqenergy.config.files import bundled, read_toml, resolve
from uqenergy.config.priors import Prior, merge_spec
from uqenergy.config.sobol import parse_sobol
from uqenergy.config.study import Study, study_from_document
from uqenergy.outputs.plots import log_density

REQUEST = "request"  # the "file" an error about the request itself names
REQUEST_KEYS = frozenset({"study", "series", "draws", "seed", "priors"})
PAGE_DRAWS = 100_000  # draws per model when a request does not say
MAX_PAGE_DRAWS = 2_000_000  # draws per request, over all models: about a second of work
SERVED_DESIGNS = ("in-memory", "streamed")  # one-level Monte Carlo (the page's limit keeps it in memory)
#: The page's sensitivity analysis: Sobol total indices of log energy, one base sample size.
PAGE_SOBOL = {"method": "sobol", "base_samples": [4096], "resamples": 100, "targets": ["log_energy_wh"]}
ESTIMATES = "public_estimates"
DENSITY_POINTS = 160


@dataclass(frozen=True)
class Served:
    """A study the page runs: its file, its document as read, and the study it validates to."""

    path: Path
    document: dict
    study: Study


Catalogue = Mapping[str, Served]


def served(path: Path) -> Served | None:
    """The study file at ``path`` as the page runs it, or None when it is not a one-level per-query study."""
    document = read_toml(path)
    if "fleet" in document:
        return None
    try:
        study = study_from_document(path, document)
    except InputError:  # a compare study, or another kind of document
        return None
    return Served(path, document, study) if design_of(study) in SERVED_DESIGNS else None


def served_studies() -> dict[str, Served]:
    """The bundled studies the page runs, by name (see the module docstring)."""
    found = {name: served(resolve(name, "studies")) for name in bundled("studies")}
    return {name: s for name, s in found.items() if s is not None}


def catalogue_with(catalogue: Catalogue, study: str) -> tuple[str, dict[str, Served]]:
    """``catalogue`` and the study named ``study`` (a bundled name or a study file), and that study's name."""
    studies = dict(catalogue)
    if study in studies:
        return study, studies
    path = resolve(study, "studies")
    one = served(path) if path.is_file() else None
    if one is None:
        allowed = "a study file of a one-level per-query study, or one of " + ", ".join(studies)
        if path.is_file():
            study_from_document(path, read_toml(path))  # a bad file says what is wrong with it
        raise InputError(None, "STUDY", f"{study!r} is not a study this page runs", allowed)
    studies[path.stem] = one
    return path.stem, studies


@dataclass(frozen=True)
class PageStudy:
    """A validated request: the study document it describes, the study, the series shown and the one analysed."""

    name: str
    document: dict
    study: Study
    series: str
    sobol_series: str | None


def series_names(study: Study) -> list[str]:
    """The series a page can show: the models, then the blends."""
    return [*study.models, *(b.name for b in study.blends)]


def default_series(study: Study) -> str:
    """The first untrimmed blend, else the first blend, else the first model."""
    blends = [b for b in study.blends if not b.trim] or list(study.blends)
    return blends[0].name if blends else study.models[0]


def page_study(catalogue: Catalogue, request: Any) -> PageStudy:
    """Validate a request (a decoded JSON value) into the study it describes.

    Parameters
    ----------
    catalogue : mapping of str to Served
        The studies the page runs.
    request : Any
        The request's JSON (see the module docstring).

    Returns
    -------
    PageStudy
        Bad input raises :class:`~uqenergy.config.errors.InputError` naming the
        request key, or the study document's key (``STUDY.toml: priors.pue.p5: ...``).
    """
    if not isinstance(request, dict):
        raise InputError(REQUEST, None, f"expected a JSON object, got {_json_type(request)}", '{"study": NAME, ...}')
    check_keys(request, REQUEST_KEYS, REQUEST)
    name = request.get("study")
    if not isinstance(name, str) or name not in catalogue:
        raise InputError(REQUEST, "study", f"{name!r} is not a study this page runs", "one of " + ", ".join(catalogue))
    base = catalogue[name]
    document = copy.deepcopy(base.document)
    document.pop("sobol", None)  # the page's own [sobol] section is added below
    document["study"].update(draws=request.get("draws", PAGE_DRAWS), seed=request.get("seed", base.study.seed))
    changes = request.get("priors", {})
    if isinstance(changes, dict):
        own = document.setdefault("priors", {})
        for prior, table in changes.items():
            known = base.study.priors.base.get(prior) if isinstance(prior, str) else None
            own[prior] = _layered(own.get(prior), _what_if(table, known))
    else:
        document["priors"] = changes  # the study parser says what is wrong with it
    try:
        study = study_from_document(base.path, document)
    except InputError as exc:  # name the document by its name, not the server's path to it
        file = f"{name}.toml" if exc.file == str(base.path) else exc.file
        raise InputError(file, exc.key, exc.problem, exc.allowed) from None
    series = request.get("series", default_series(study))
    if series not in series_names(study):
        raise InputError(REQUEST, "series", f"{series!r} is not a model or blend of {name}", _names(study))
    total = study.draws * len(study.models)
    if total > MAX_PAGE_DRAWS:
        raise InputError(
            REQUEST,
            "draws",
            f"{study.draws:,} draws per model x {len(study.models)} models is over the page's limit of "
            f"{MAX_PAGE_DRAWS:,} draws",
            f"at most {MAX_PAGE_DRAWS // len(study.models):,} per model here; run larger studies with uqenergy run",
        )
    sobol = sobol_series(study, series)
    if sobol is not None:
        document["sobol"] = PAGE_SOBOL | {"series": [sobol]}
        section = parse_sobol(document["sobol"], base.path, study.models, study.blends, study.factors, study.priors)
        study = replace(study, sobol=section)
    return PageStudy(name, document, study, series, sobol)


def _json_type(value: Any) -> str:
    return {list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _names(study: Study) -> str:
    return "one of " + ", ".join(series_names(study))


def _what_if(table: Any, prior: Prior | None) -> Any:
    """A request's prior table; one that changes the study's prior says so in its ``source``."""
    if not isinstance(table, dict) or prior is None or "source" in table:
        return table
    if all(prior.spec.get(key) == value for key, value in table.items()):
        return table
    return table | {"source": f"what-if set on the uqenergy serve page; the study's prior: {prior.describe()}"}


def _layered(own: Any, table: Any) -> Any:
    """``table`` layered over the study's own ``[priors.NAME]`` override (kept with its per-model tables)."""
    if not isinstance(own, dict) or not isinstance(table, dict):
        return table
    models = {"models": table.get("models", own.get("models"))} if "models" in own or "models" in table else {}
    return merge_spec(own, table) | models


def sobol_series(study: Study, series: str) -> str | None:
    """The series whose Sobol indices the page shows: ``series`` if untrimmed, else the untrimmed blend of the
    same models (trimming depends on the whole sample, so a trimmed blend has no indices), else None."""
    if series in untrimmed_series(study.models, study.blends):
        return series
    blend = next(b for b in study.blends if b.name == series)
    same = (b for b in study.blends if not b.trim and (b.top, b.members) == (blend.top, blend.members))
    return next((b.name for b in same), None)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no inf


def controls(study: Study) -> list[dict]:
    """Every prior the study samples, as the page shows it: parameters, unit, bounds, kind, source, per-model values."""
    found = []
    for name in study.factors:
        prior = study.priors.get(name)
        dist = prior.spec["dist"]
        per_model = {
            m: study.priors.get(name, m).describe() for m in study.models if m in study.priors.by_model.get(name, {})
        }
        found.append(
            {
                "name": name,
                "dist": dist,
                "parameters": {k: v for k, v in prior.spec.items() if k in parameters_of(dist)},
                "unit": prior.unit,
                "bounds": [_finite(b) for b in prior.bounds],
                "kind": prior.kind,
                "source": prior.source,
                "note": prior.note,
                "file": Path(prior.file).name,
                "per_model": per_model,
                "adjustable": not prior.is_categorical,
            }
        )
    return found


def study_info(name: str, study: Study) -> dict:
    """What the page shows of a study before it runs: description, series, hardware, controls and limits."""
    return {
        "study": name,
        "description": study.description,
        "scenario": study.scenario,
        "models": study.models,
        "blends": {b.name: {"top": b.top, "members": b.members, "trim": b.trim} for b in study.blends},
        "series": series_names(study),
        "default_series": default_series(study),
        "pathways": study.pathways,
        "pathway_targets": study.pathway_targets,
        "hardware": f"{study.throughput_file.name} ({study.quantization})",
        "seed": study.seed,
        "draws": PAGE_DRAWS,
        "max_draws": MAX_PAGE_DRAWS // len(study.models),
        "priors": controls(study),
    }


def estimates_for(scenario: str) -> list[dict]:
    """The bundled published estimates of ``scenario``'s query type, with their sources."""
    return [
        {
            "id": e.id,
            "value_wh": e.value_wh,
            "value_low_wh": e.value_low_wh,
            "value_high_wh": e.value_high_wh,
            "subject": e.subject,
            "boundary": e.boundary,
            "kind": e.kind,
            "date": e.date,
            "citation": e.citation,
            "url": e.url,
            "verified": e.verified,
        }
        for e in load_estimates(ESTIMATES)
        if e.query_type == scenario
    ]


def distribution(values: np.ndarray, record: Mapping) -> dict:
    """The shape of a series' draws on a log axis (density of log10 energy, peak 1) around its record's interval."""
    positive = values[values > 0]
    low = min(record["p5"], np.quantile(positive, 0.001)) / 1.3 if positive.size else record["p5"] / 2
    high = max(record["p95"], np.quantile(positive, 0.999)) * 1.3 if positive.size else record["p95"] * 2
    grid = np.linspace(np.log10(max(low, 1e-12)), np.log10(max(high, 2e-12)), DENSITY_POINTS)
    density = log_density(values, grid)
    peak = density.max()
    return {
        "energy_wh": (10**grid).tolist(),
        "density": (density / peak if peak > 0 else density).tolist(),
        "draws": int(values.size),
        "zero_fraction": float(np.mean(values <= 0)) if values.size else 0.0,
    }


def run_page(page: PageStudy) -> dict:
    """Run a validated request: every record, and the shown series' distribution, pathways and Sobol indices."""
    result = run_study(page.study)
    records = result.records
    shown = [r for r in records if r["series"] == page.series and r["quantity"] == "energy_wh"]
    baseline = next(r for r in shown if r["pathway"] == "baseline")
    values = series_draws(result.samples["energy_wh"], result.samples.attrs)[page.series]
    sobol = None
    if page.sobol_series is not None:
        indices = run_sensitivity(page.study)
        sobol = {
            "series": page.sobol_series,
            "target": "log_energy_wh",
            "records": sorted(indices.records, key=lambda r: -r["ST"]),
        }
    return {
        "study": page.name,
        "series": page.series,
        "draws": page.study.draws,
        "seed": page.study.seed,
        "baseline": baseline,
        "distribution": distribution(values, baseline),
        "pathways": shown,
        "sobol": sobol,
        "estimates": estimates_for(page.study.scenario),
        "warnings": list(result.warnings),
        "records": records,
    }


def study_toml(page: PageStudy) -> str:
    """The request's study document as a study file that ``uqenergy run`` reproduces."""
    header = (
        f"# Written by uqenergy {__version__} serve from the study {page.name}, with the page's assumptions.\n"
        f"# Reproduce the page's numbers: uqenergy run {page.name}_whatif.toml\n"
        "# (uqenergy sobol on this file reproduces its Sobol indices.)\n\n"
    )
    return header + tomli_w.dumps(page.document)


def records_json(records: list[dict]) -> str:
    return json.dumps(records, indent=1) + "\n"


def records_csv(records: list[dict]) -> str:
    return records_frame(records).to_csv(index=False)

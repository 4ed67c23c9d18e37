"""What-if requests of the ``uqenergy serve`` page: a request -> a study -> the page's numbers.

A request is a JSON object::

    {"study": "measured_chat", "series": "all-h100", "draws": 50000, "seed": 42,
     "measured": {"models": ["Llama 3.1 8B Instruct"], "gpus": ["H100"], "boundary": "server"},
     "priors": {"concurrency": {"p5": 32, "p95": 256}}}

``priors`` are prior overrides, the same mechanism as ``uqenergy run --set`` and
``run_study(..., overrides=...)`` (:func:`uqenergy.config.study.study_from_document`):
``[priors.NAME]`` tables layered over the study's own, where one that changes a prior's
numbers replaces it for every model unless it names models itself. ``measured``
(a measured study only) chooses its models, GPUs, boundary and answer length
(``output_tokens``: each configuration's measured mean, or the study's prior): those keys of its
``[measured]`` section, with the blends (and pathway targets) that pool configurations
outside the choice left out. The study the request describes is validated like any
study file: the page has no validator of its own. :func:`study_toml` writes it as a
study file, the overrides folded into its ``[priors]`` tables
(:func:`uqenergy.config.priors.fold_layer`), and ``uqenergy run`` on that file gives
the records the page shows.

The page runs one-level per-query studies (no ``[[settings]]``, two-level,
adaptive or fleet design): :func:`served_studies` finds them among the bundled
studies, so a new bundled study appears on the page without a change here. A request
is bounded by draws (:data:`MAX_PAGE_DRAWS`) and by wall-clock time (:class:`Deadline`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from uqenergy._version import __version__
from uqenergy.analyses.measured import CHAT_TASK
from uqenergy.analyses.results import records_frame
from uqenergy.analyses.run import design_of, run_study
from uqenergy.analyses.sensitivity_study import run_sensitivity
from uqenergy.analyses.series import series_draws
from uqenergy.config.blends import untrimmed_series
from uqenergy.config.boundaries import BOUNDARIES, RUNG_PRIORS
from uqenergy.config.distributions import parameters_of
from uqenergy.config.errors import InputError, check_keys
from uqenergy.config.estimates import load_estimates
from uqenergy.config.files import bundled, read_toml, resolve
from uqenergy.config.measured_study import parse_measured
from uqenergy.config.priors import Prior, PriorSet, fold_layer
from uqenergy.config.sobol import parse_sobol
from uqenergy.config.study import OVERRIDES_FILE, Study, study_from_document
from uqenergy.outputs.plots import log_density

REQUEST = "request"  # the "file" an error about the request itself (and its prior overrides) names
REQUEST_KEYS = frozenset({"study", "series", "draws", "seed", "priors", "measured"})
MEASURED_CHOICES = frozenset({"models", "gpus", "boundary", "output_tokens"})  # the [measured] keys a request chooses
PAGE_DRAWS = 100_000  # draws per model when a request does not say (fewer when that would pass the limit)
MAX_PAGE_DRAWS = 2_000_000  # draws per request, over all models: about a second of work
PAGE_SECONDS = 20.0  # wall-clock limit of a request: waiting for the run before it, its run and its Sobol indices
SERVED_DESIGNS = ("in-memory", "streamed")  # one-level Monte Carlo (the page's limit keeps it in memory)
#: The page's sensitivity analysis: Sobol total indices of log energy, one base sample size.
PAGE_SOBOL = {"method": "sobol", "base_samples": [4096], "resamples": 100, "targets": ["log_energy_wh"]}
ESTIMATES = "public_estimates"
#: the published estimates a study's scenario is shown with: a measured chat query is what they call a
#: traditional query, a measured reasoning query a test-time one
ESTIMATE_QUERY_TYPES = {"chat": "traditional", "reasoning": "test-time"}
DENSITY_POINTS = 160


class TooLong(Exception):
    """A request that waited or ran past the page's wall-clock limit (HTTP 503 with this one line)."""

    def __init__(self, problem: str, seconds: float):
        self.message = (
            f"{REQUEST}: {problem} the page's limit of {seconds:g} s per request (fewer draws or models; "
            "run larger studies with uqenergy run)"
        )
        super().__init__(self.message)


@dataclass
class Deadline:
    """A request's wall-clock limit: :meth:`check` (also a run's progress callback) raises :class:`TooLong` past it.

    A run checks it after every chunk of draws and between its stages, so a request over the limit stops
    at the next check: its worker thread does not run on.
    """

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def check(self, *_done: object) -> None:
        if self.remaining() < 0:
            raise TooLong("the run took longer than", self.seconds)


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
    """A validated request: the study document and prior overrides it describes, the study, and its series."""

    name: str
    document: dict
    overrides: dict
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


def max_draws(study: Study) -> int:
    """The most draws per model a request of ``study`` may ask for."""
    return MAX_PAGE_DRAWS // len(study.models)


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
        Bad input raises :class:`~uqenergy.config.errors.InputError` naming the request key
        (``request: priors.pue.p5: ...``) or the study document's (``STUDY.toml: measured.gpus: ...``).
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
    if not isinstance(changes, dict) or not all(isinstance(t, dict) for t in changes.values()):
        raise InputError(REQUEST, "priors", "expected an object of prior tables", '{"NAME": {"p5": ..., ...}, ...}')
    overrides = {prior: _what_if(table, base.study.priors, prior) for prior, table in changes.items()}
    try:
        if "measured" in request:
            _choose_measured(document, base.path, request["measured"], name)
        study = study_from_document(base.path, document, overrides=overrides)
    except InputError as exc:  # name the document by its name, not the server's path to it
        file = {str(base.path): f"{name}.toml", OVERRIDES_FILE: REQUEST}.get(str(exc.file), exc.file)
        raise InputError(file, exc.key, exc.problem, exc.allowed) from None
    if "draws" not in request:  # the page's default, within its limit
        study = replace(study, draws=min(PAGE_DRAWS, max_draws(study)))
        document["study"]["draws"] = study.draws
    series = request.get("series", default_series(study))
    if series not in series_names(study):
        raise InputError(REQUEST, "series", f"{series!r} is not a model or blend of {name}", _names(study))
    if study.draws > max_draws(study):
        raise InputError(
            REQUEST,
            "draws",
            f"{study.draws:,} draws per model x {len(study.models)} models is over the page's limit of "
            f"{MAX_PAGE_DRAWS:,} draws",
            f"at most {max_draws(study):,} per model here; run larger studies with uqenergy run",
        )
    sobol = sobol_series(study, series)
    if sobol is not None:
        document["sobol"] = PAGE_SOBOL | {"series": [sobol]}
        section = parse_sobol(document["sobol"], base.path, study.models, study.blends, study.factors, study.priors)
        study = replace(study, sobol=section)
    return PageStudy(name, document, overrides, study, series, sobol)


def _json_type(value: Any) -> str:
    return {list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _names(study: Study) -> str:
    return "one of " + ", ".join(series_names(study))


def _choose_measured(document: dict, path: Path, choice: Any, name: str) -> None:
    """Layer a request's ``measured`` choice over the document's ``[measured]`` section, and leave out the blends
    (and pathway targets) that pool configurations outside the choice."""
    if "measured" not in document:
        raise InputError(REQUEST, "measured", f"{name} is not a measured study", "only for a study with [measured]")
    if not isinstance(choice, dict):
        raise InputError(
            REQUEST,
            "measured",
            "expected a JSON object",
            '{"models": [...], "gpus": [...], "boundary": ..., "output_tokens": "measured" or "prior"}',
        )
    check_keys(choice, MEASURED_CHOICES, REQUEST, "measured.")
    try:
        gpus = choice.get("gpus")
        if isinstance(gpus, list) and "models" not in choice:  # the study's models measured on those GPUs
            measured = parse_measured(document["measured"], path).configurations
            models = sorted({c.points[0].nickname for c in measured if c.points[0].gpu in gpus})
            document["measured"] |= {"models": models} if models else {}
        document["measured"] |= choice
        labels = parse_measured(document["measured"], path).labels
    except InputError as exc:  # a choice of the request's is named as the request's
        chosen = exc.key in {f"measured.{key}" for key in choice}
        raise InputError(REQUEST if chosen else exc.file, exc.key, exc.problem, exc.allowed) from None
    blends = {  # the document is a served study's: its blends are valid
        blend: table
        for blend, table in document.get("blends", {}).items()
        if set(table.get("members", [])) <= set(labels) and table.get("top", 0) <= len(labels)
    }
    if "blends" in document:
        document["blends"] = blends
    targets = document.get("pathways", {}).get("apply_to")
    if isinstance(targets, list):
        document["pathways"]["apply_to"] = [t for t in targets if t in labels or t in blends]


def _what_if(table: dict, priors: PriorSet, name: str) -> dict:
    """A request's override of the prior ``name``; one that changes the study's prior says so in its ``source``
    (and so does each per-model table that changes that model's)."""
    if name not in priors.base:
        return table  # the study parser names the unknown prior
    models = table.get("models")
    if isinstance(models, dict):
        table = table | {"models": {m: _sourced(spec, priors.get(name, m)) for m, spec in models.items()}}
    return _sourced(table, priors.base[name])


def _sourced(table: Any, prior: Prior | None) -> Any:
    if not isinstance(table, dict) or prior is None or "source" in table:
        return table
    if all(key == "models" or prior.spec.get(key) == value for key, value in table.items()):
        return table
    return table | {"source": f"what-if set on the uqenergy serve page; the study's prior: {prior.describe()}"}


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


def _control(prior: Prior) -> dict:
    """A prior as the page shows it: its parameters, unit, bounds, kind and source."""
    dist = prior.spec["dist"]
    return {
        "dist": dist,
        "parameters": {k: v for k, v in prior.spec.items() if k in parameters_of(dist)},
        "unit": prior.unit,
        "bounds": [_finite(b) for b in prior.bounds],
        "kind": prior.kind,
        "source": prior.source,
        "note": prior.note,
        "file": Path(prior.file).name,
        "adjustable": not prior.is_categorical,
    }


def controls(study: Study) -> list[dict]:
    """Every prior the study samples, as the page shows it, with its per-model values (each a control too)."""
    found = []
    for name in study.factors:
        own = study.priors.by_model.get(name, {})
        per_model = {m: _control(own[m]) for m in study.models if m in own}
        found.append({"name": name, **_control(study.priors.get(name)), "per_model": per_model})
    return found


def measured_info(base: Study, study: Study) -> dict | None:
    """A measured study's choices: the models of ``base`` with the GPUs each was measured on, the boundary ladder,
    the answer lengths (``output_tokens``), and what ``study`` (the request) chose."""
    if base.measured is None or study.measured is None:
        return None
    models: dict[str, list[str]] = {}
    for c in base.measured.configurations:
        gpus = models.setdefault(c.points[0].nickname, [])
        gpus += [c.points[0].gpu] if c.points[0].gpu not in gpus else []
    chosen = {c.points[0].nickname for c in study.measured.configurations}
    return {
        "task": study.measured.task,
        "table": study.measured.table.path.name,
        "models": dict(sorted(models.items())),
        "gpus": sorted({g for gpus in models.values() for g in gpus}),
        "boundaries": [{"name": b, "prior": RUNG_PRIORS.get(b)} for b in BOUNDARIES],
        # the bundled output_tokens prior is a chat answer's length: offered for the chat task only
        "output_tokens": ["measured", "prior"] if study.measured.task == CHAT_TASK else ["measured"],
        "chosen": {
            "models": sorted(chosen),
            "gpus": sorted({c.points[0].gpu for c in study.measured.configurations}),
            "boundary": study.measured.boundary,
            "output_tokens": study.measured.output_tokens,
        },
    }


def described(base: Study, study: Study) -> str:
    """``study``'s description, naming the boundary chosen on the page where it differs from ``base``'s."""
    if base.measured is None or study.measured is None or study.measured.boundary == base.measured.boundary:
        return study.description
    stated, chosen = f"{base.measured.boundary} boundary", f"{study.measured.boundary} boundary"
    if stated in study.description:
        return study.description.replace(stated, chosen)
    return f"{study.description} (at the {chosen})"


def study_info(base: Served, page: PageStudy) -> dict:
    """What the page shows of a request before it runs: description, series, hardware, controls and limits."""
    study = page.study
    measured = study.measured
    hardware = (
        f"{study.throughput_file.name} ({study.quantization})"
        if measured is None
        else f"measured: {measured.table.path.name}, task {measured.task}, {len(study.models)} "
        f"configuration{'s' if len(study.models) > 1 else ''} on "
        f"{' and '.join(sorted({c.points[0].gpu for c in measured.configurations}))}, boundary {measured.boundary}"
    )
    return {
        "study": page.name,
        "description": described(base.study, study),
        "scenario": study.scenario,
        "models": study.models,
        "blends": {b.name: {"top": b.top, "members": b.members, "trim": b.trim} for b in study.blends},
        "series": series_names(study),
        "default_series": default_series(study),
        "pathways": study.pathways,
        "pathway_targets": study.pathway_targets,
        "hardware": hardware,
        "measured": measured_info(base.study, study),
        "seed": study.seed,
        "draws": study.draws,
        "max_draws": max_draws(study),
        "seconds": PAGE_SECONDS,
        "priors": controls(study),
    }


def estimates_for(scenario: str) -> list[dict]:
    """The bundled published estimates of ``scenario``'s query type (:data:`ESTIMATE_QUERY_TYPES`), with sources."""
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
        if e.query_type == ESTIMATE_QUERY_TYPES.get(scenario, scenario)
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


def run_records(page: PageStudy, deadline: Deadline) -> list[dict]:
    """The records of a validated request, the run stopped at ``deadline``."""
    return run_study(page.study, progress=deadline.check).records


def run_page(page: PageStudy, deadline: Deadline) -> dict:
    """Run a validated request: every record, and the shown series' distribution, pathways and Sobol indices."""
    result = run_study(page.study, progress=deadline.check)
    records = result.records
    shown = [r for r in records if r["series"] == page.series and r["quantity"] == "energy_wh"]
    baseline = next(r for r in shown if r["pathway"] == "baseline")
    values = series_draws(result.samples["energy_wh"], result.samples.attrs)[page.series]
    sobol = None
    if page.sobol_series is not None:
        deadline.check()
        indices = run_sensitivity(page.study)
        deadline.check()
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
    """The request as a study file that ``uqenergy run`` reproduces: its document, the overrides folded in."""
    document = copy.deepcopy(page.document)
    own = document.setdefault("priors", {})
    for name, table in page.overrides.items():
        own[name] = fold_layer(own.get(name), table)
    if not own:
        del document["priors"]
    header = (
        f"# Written by uqenergy {__version__} serve from the study {page.name}, with the page's assumptions.\n"
        f"# Reproduce the page's numbers: uqenergy run {page.name}_whatif.toml\n"
        "# (uqenergy sobol on this file reproduces its Sobol indices.)\n\n"
    )
    return header + tomli_w.dumps(document)


def records_json(records: list[dict]) -> str:
    return json.dumps(records, indent=1) + "\n"


def records_csv(records: list[dict]) -> str:
    return records_frame(records).to_csv(index=False)

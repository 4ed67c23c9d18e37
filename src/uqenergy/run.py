"""Study -> Monte Carlo pipeline -> results (input/output Dataset and summary records)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import __version__
from .backend import Backend, parse_scheduler
from .catalogue import prior_records
from .resources import file_sha256
from .series import InMemory, pathway_divisors, series_records
from .settings import expand_settings
from .streaming import simulate_in_memory, streamed_summary, streams
from .study import Study, load_study


@dataclass
class StudyResult:
    """What a run produced: the saved draws with provenance, and one record per distribution."""

    study: Study
    samples: xr.Dataset
    records: list[dict]
    warnings: list[str] = field(default_factory=list)


def simulate(study: Study, progress=None, first: int = 0) -> tuple[xr.DataArray, dict[str, xr.DataArray], xr.Dataset | None]:
    """Run the Monte Carlo over chunks of draws [first, study.draws); return energy (model, draw), divisors and the
    saved draws (those among the study's first ``save_draws``; None if the range holds none of them)."""
    # one shared coordinate, a range: a draw index per array would cost more memory than the draws
    coords = xr.Coordinates({"model": study.models, "draw": pd.RangeIndex(first, study.draws)})
    shape = (len(study.models), study.draws - first)
    energy_wh = xr.DataArray(np.empty(shape), coords=coords, dims=("model", "draw"))
    divisors = {p: xr.DataArray(np.empty(shape), coords=coords, dims=("model", "draw")) for p in study.pathway_priors}
    saved = []
    with Backend(study.scheduler) as backend:
        for chunk in simulate_in_memory(study, backend, progress, first):
            where = slice(chunk.start - first, chunk.start - first + chunk.energy_wh.shape[-1])
            energy_wh.values[:, where] = chunk.energy_wh
            for p, d in divisors.items():
                d.values[:, where] = chunk.drawn[p]
            if chunk.saved is not None:
                saved.append(chunk.saved)
    return energy_wh, divisors, xr.concat(saved, dim="draw", data_vars="minimal") if saved else None


def summary_records(study: Study, energy_wh: xr.DataArray, divisors: dict[str, xr.DataArray]) -> tuple[list[dict], dict]:
    """Records for every model, every blend, and every pathway applied to its targets; plus blend members."""
    drawn = {name: d.values for name, d in divisors.items()}
    return series_records(study, InMemory(energy_wh.values, pathway_divisors(study, drawn)))


def provenance(study: Study) -> dict:
    """Attributes that trace a result to its seed, files and software."""
    attrs = {
        "study": study.name, "scenario": study.scenario, "study_file": str(study.path), "seed": study.seed,
        "draws_per_model": study.draws, "uqenergy_version": __version__,
        "numpy_version": np.__version__, "xarray_version": xr.__version__,
        "priors": json.dumps(prior_records(study.priors, study.factors, study.models)),
    }
    for i, path in enumerate(study.input_files):
        attrs[f"input_file_{i}"] = str(path)
        attrs[f"input_file_{i}_sha256"] = file_sha256(path)
    return attrs


def run_study(path_or_study: str | Path | Study, *, draws: int | None = None, seed: int | None = None,
              progress=None) -> StudyResult:
    """Run a study (a path, a bundled name or a loaded :class:`Study`) and summarise it."""
    study = path_or_study if isinstance(path_or_study, Study) else load_study(path_or_study, draws=draws, seed=seed)
    if variants := expand_settings(study):
        return _run_settings(study, variants, progress)
    if study.intervals.two_level:
        from .two_level import run_two_level  # these designs build on this module
        return run_two_level(study, progress)
    if study.intervals.adaptive:
        from .adaptive import run_adaptively
        return run_adaptively(study, progress)
    if streams(study):
        return _run_streamed(study, progress)
    return finish(study, *simulate(study, progress))


def with_scheduler(study: Study, scheduler: str | None) -> Study:
    """The study with its chunks run on ``scheduler`` (a command-line override), if given."""
    return replace(study, scheduler=parse_scheduler(scheduler, study.path, "--scheduler")) if scheduler else study


def _run_streamed(study: Study, progress=None) -> StudyResult:
    """A run whose draws do not fit in memory: summaries in passes over the chunks (see :mod:`uqenergy.streaming`)."""
    with Backend(study.scheduler) as backend:
        summary, saved, passes = streamed_summary(study, backend, progress)
    result = finish(study, None, {}, saved, summary)
    result.samples.attrs["streamed_passes"] = passes
    return result


def finish(study: Study, energy_wh: xr.DataArray, divisors: dict[str, xr.DataArray], saved: xr.Dataset,
           summary: tuple[list[dict], dict] | None = None) -> StudyResult:
    """Summarise simulated draws (unless ``summary`` already holds records and blend members) into a result."""
    records, members = summary or summary_records(study, energy_wh, divisors)
    saved.attrs = provenance(study) | {
        "saved_draws": saved.sizes["draw"],
        "note": "samples.nc keeps the first saved_draws draws per model; summaries use all draws_per_model",
        "prior_warnings": "\n".join(study.priors.warnings),
        **{f"blend_members_{name}": ", ".join(m) for name, m in members.items()},
        **{f"blend_trim_{b.name}": json.dumps(b.trim) for b in study.blends},
    }
    return StudyResult(study, saved, records, list(study.priors.warnings))


def _run_settings(study: Study, variants: list[tuple[str, Study]], progress=None) -> StudyResult:
    """Run each setting; records gain ``setting`` and the saved draws a ``setting`` dimension."""
    where = {"scheduler": study.scheduler, "memory_budget_mb": study.memory_budget_mb}  # may come from the command line
    parts = [(name, run_study(replace(variant, **where), progress=progress)) for name, variant in variants]
    records = [{"scenario": r["scenario"], "setting": name, **r} for name, part in parts for r in part.records]
    samples = xr.concat([part.samples.expand_dims(setting=[name]) for name, part in parts], dim="setting",
                        combine_attrs="drop")
    warnings = list(dict.fromkeys(w for _, part in parts for w in part.warnings))
    first = {k: v for k, v in parts[0][1].samples.attrs.items() if not k.startswith("blend_members_")}
    samples.attrs = first | provenance(study) | {
        "settings": ", ".join(name for name, _ in parts), "prior_warnings": "\n".join(warnings),
        **{f"setting_{name}_{key}": value for name, part in parts for key, value in part.samples.attrs.items()
           if key.startswith("blend_members_")},
    }
    return StudyResult(study, samples, records, warnings)

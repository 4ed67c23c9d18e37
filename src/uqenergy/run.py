"""Study -> Monte Carlo pipeline -> results (input/output Dataset and summary records)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__, energy
from .blends import pool, rank_by_median, trim_masks
from .catalogue import prior_records
from .intervals import summarize
from .resources import file_sha256
from .sampling import monte_carlo_inputs
from .settings import expand_settings
from .study import Study, load_study


@dataclass
class StudyResult:
    """What a run produced: the saved draws with provenance, and one record per distribution."""

    study: Study
    samples: xr.Dataset
    records: list[dict]
    warnings: list[str] = field(default_factory=list)


def simulate(study: Study, progress=None, first: int = 0) -> tuple[xr.DataArray, dict[str, xr.DataArray], xr.Dataset]:
    """Run the Monte Carlo over chunks of draws [first, study.draws); return energy (model, draw), divisors, saved draws."""
    fits = study.fits()
    energy_parts, divisor_parts, saved = [], {p: [] for p in study.pathway_priors}, []
    kept = 0
    for inputs in monte_carlo_inputs(study.priors, study.factors, study.models, study.draws, study.seed, study.chunk_draws, first):
        outputs = energy.evaluate(inputs, fits, study.input_token_divisor, study.power_utilisation)
        energy_parts.append(outputs["energy_wh"].values)
        for p in study.pathway_priors:
            divisor_parts[p].append(inputs[p].values)
        if kept < study.save_draws:
            take = min(study.save_draws - kept, inputs.sizes["draw"])
            saved.append(xr.merge([inputs, outputs]).isel(draw=slice(0, take)))
            kept += take
        if progress is not None:
            progress(inputs.sizes["draw"] * len(study.models))
    coords = {"model": study.models, "draw": np.arange(first, study.draws)}
    energy_wh = xr.DataArray(np.concatenate(energy_parts, axis=-1), coords=coords, dims=("model", "draw"))
    divisors = {p: xr.DataArray(np.concatenate(v, axis=-1), coords=coords, dims=("model", "draw"))
                for p, v in divisor_parts.items()}
    return energy_wh, divisors, xr.concat(saved, dim="draw", data_vars="minimal")


def _record(study: Study, series: str, pathway: str, values: np.ndarray, quantity: str = "energy_wh") -> dict:
    record = {"scenario": study.scenario, "series": series, "pathway": pathway, "quantity": quantity,
              **summarize(values, study.intervals.hdi_level)}
    return study.intervals.mark_tolerance(record)


def _pathway_divisors(study: Study, divisors: dict[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    chosen = {p: divisors[f"pathway_{p}"] for p in study.pathways}
    if study.combined:
        combined = 1.0
        for d in chosen.values():
            combined = combined * d
        chosen["combined"] = combined
    return chosen


def summary_records(study: Study, energy_wh: xr.DataArray, divisors: dict[str, xr.DataArray]) -> tuple[list[dict], dict]:
    """Records for every model, every blend, and every pathway applied to its targets; plus blend members."""
    pathways = _pathway_divisors(study, divisors)
    records, members = [], {}
    ranking = rank_by_median(energy_wh)
    for model in study.models:
        values = energy_wh.sel(model=model).values
        records.append(_record(study, model, "baseline", values))
        if model in study.pathway_targets:
            records += [_record(study, model, p, values / d.sel(model=model).values) for p, d in pathways.items()]
    for blend in study.blends:
        members[blend.name] = blend.members or ranking[: blend.top]
        masks = trim_masks(energy_wh, members[blend.name], blend.trim)
        records.append(_record(study, blend.name, "baseline", pool(energy_wh, masks)))
        if blend.name in study.pathway_targets:
            records += [_record(study, blend.name, p, pool(energy_wh, masks, d)) for p, d in pathways.items()]
    return records, members


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
    return finish(study, *simulate(study, progress))


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
    parts = [(name, run_study(variant, progress=progress)) for name, variant in variants]
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

"""Records of a one-level run: every model, blend and pathway summarised from its draws, with provenance."""

from __future__ import annotations

import json

import xarray as xr

from uqenergy.analyses.measured import length_ratios
from uqenergy.analyses.results import StudyResult, provenance
from uqenergy.analyses.series import InMemory, pathway_divisors, series_records
from uqenergy.config.study import Study
from uqenergy.engine.backend import local_workers
from uqenergy.engine.measured import measured_curves
from uqenergy.engine.simulate import SUMMARY_THREADS


def summary_records(
    study: Study, energy_wh: xr.DataArray, divisors: dict[str, xr.DataArray]
) -> tuple[list[dict], dict]:
    """Records for every model, every blend, and every pathway applied to its targets; plus blend members.

    The series are summarised on up to :data:`~uqenergy.engine.simulate.SUMMARY_THREADS` threads (one with the
    ``synchronous`` scheduler); the records do not depend on how many."""
    drawn = {name: d.values for name, d in divisors.items()}
    draws_of = InMemory(energy_wh.values, pathway_divisors(study, drawn))
    workers = 1 if study.scheduler == "synchronous" else min(local_workers(), SUMMARY_THREADS)
    return series_records(study, draws_of, energy_wh.attrs.get("clamped_draws"), workers)


def measured_attrs(study: Study) -> dict:
    """A measured study's task, boundary and output-token rule, and the table's reasoning/chat length ratios (JSON)."""
    if study.measured is None:
        return {}
    section = study.measured
    return {
        "measured_task": section.task,
        "boundary": section.boundary,
        "output_tokens": section.output_tokens,
        "length_ratios": json.dumps(length_ratios(section.table)),
    }


def finish(study: Study, summary: tuple[list[dict], dict], saved: xr.Dataset | None) -> StudyResult:
    """A result from a run's records and blend members, and its saved draws (None: the run saved none)."""
    records, members = summary
    saved = xr.Dataset() if saved is None else saved
    if study.measured is not None:  # the measured points the run interpolated, for the report's figures
        saved = saved.merge(measured_curves(study.measured))
    saved.attrs = (
        provenance(study)
        | measured_attrs(study)
        | {
            "saved_draws": saved.sizes.get("draw", 0),
            "note": "samples.nc keeps the first saved_draws draws per model; summaries use all draws_per_model",
            "prior_warnings": "\n".join(study.priors.warnings),
            **{f"blend_members_{name}": ", ".join(m) for name, m in members.items()},
            **{f"blend_trim_{b.name}": json.dumps(b.trim) for b in study.blends},
        }
    )
    return StudyResult(study, saved, records, list(study.priors.warnings))

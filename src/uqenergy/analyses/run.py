"""Study -> Monte Carlo design -> result: the one entry point of every per-query study.

A study's design is chosen from its file: named ``[[settings]]`` run the study
once per setting; ``[intervals] design = "two-level"`` separates states of
knowledge from query-to-query variation; a tolerance makes the sample size
adaptive; ``design = "rqmc"`` draws replicated scrambled Sobol' points
(:mod:`uqenergy.analyses.rqmc`); otherwise plain Monte Carlo, held in memory or streamed in passes when
the draws exceed the memory budget. :data:`DESIGNS` maps each name to its runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import xarray as xr

from uqenergy.analyses.adaptive import HELD_COPIES, run_adaptively
from uqenergy.analyses.results import StudyResult, provenance
from uqenergy.analyses.rqmc import run_rqmc
from uqenergy.analyses.streaming import streamed_bytes, streamed_summary
from uqenergy.analyses.summaries import finish, summary_records
from uqenergy.analyses.two_level import run_two_level
from uqenergy.config.errors import InputError
from uqenergy.config.scheduler import parse_scheduler
from uqenergy.config.study import Study, load_study
from uqenergy.engine.backend import Backend, available_memory_bytes, chunks_in_flight, memory_budget_bytes
from uqenergy.engine.sampling import chunk_ranges
from uqenergy.engine.simulate import chunk_bytes, in_memory_bytes, simulate, streams

Runner = Callable[..., StudyResult]


def design_of(study: Study) -> str:
    """The name of the design that runs ``study`` (a key of :data:`DESIGNS`)."""
    if study.settings:
        return "settings"
    if study.intervals.two_level:
        return "two-level"
    if study.intervals.quasi_random:
        return "rqmc"
    if study.intervals.adaptive:
        return "adaptive"
    return "streamed" if streams(study) else "in-memory"


def run_study(
    path_or_study: str | Path | Study,
    *,
    draws: int | None = None,
    seed: int | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress=None,
) -> StudyResult:
    """Run a study and summarise it: the Monte Carlo design its file asks for, then a record per distribution.

    Parameters
    ----------
    path_or_study : str, pathlib.Path or Study
        A study file, the name of a bundled study, or a loaded :class:`Study`.
    draws : int, optional
        Draws per model, instead of the file's (ignored for a loaded study).
    seed : int, optional
        Seed, instead of the file's (ignored for a loaded study).
    overrides : mapping, optional
        Prior overrides for a quick what-if, ``{"pue": {"p95": 1.4}}``: each replaces that key of the
        prior for every model (see :func:`~uqenergy.config.study.load_study`); recorded in the result's
        provenance (``samples.attrs["overrides"]``). Ignored for a loaded study.
    progress : callable, optional
        Called with the draws done, for a progress bar.

    Returns
    -------
    StudyResult
        The saved draws (``samples``), one record per (setting, series, pathway,
        quantity) (``records``, as a table with ``to_dataframe()``, as a dataset in
        ``summary``), and warnings about the priors.

    Examples
    --------
    >>> import uqenergy
    >>> result = uqenergy.run_study("paper_traditional", draws=2000, seed=1)
    >>> dict(result.samples["energy_wh"].sizes)
    {'model': 5, 'draw': 2000}
    >>> result.summary["energy_wh"].sel(pathway="baseline", statistic="median").round(2).to_series().tail(2)
    series
    blend-paper    0.31
    blend          0.31
    Name: energy_wh, dtype: float64
    """
    study = (
        path_or_study
        if isinstance(path_or_study, Study)
        else load_study(path_or_study, draws=draws, seed=seed, overrides=overrides)
    )
    check_memory(study)
    return DESIGNS[design_of(study)](study, progress)


def held_bytes(study: Study) -> int:
    """Rough peak memory of the draws a run of ``study`` holds, by design (the chunks in flight come on top).

    An adaptive run is counted at its maximum draws: in memory while twice its draws fit in the budget,
    streamed beyond (:func:`~uqenergy.analyses.adaptive.run_adaptively`)."""
    design = design_of(study)
    if design == "settings":
        return max(held_bytes(s.study) for s in study.settings)
    if design == "two-level":
        outer, pooled = study.intervals.outer_draws, study.intervals.pooled_draws
        kept = min(study.draws, -(-pooled // outer)) * outer
        return 8 * len(study.models) * (kept + outer * (len(study.factors) + len(study.blends) + 3))
    if design == "adaptive":
        budget = memory_budget_bytes(study.memory_budget_mb)
        in_memory = HELD_COPIES * in_memory_bytes(study)
        return in_memory if in_memory <= budget else max(budget, streamed_bytes(study))
    return streamed_bytes(study) if design == "streamed" else in_memory_bytes(study)


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MB"


def check_memory(study: Study) -> None:
    """Refuse, before any work, a run whose estimated memory exceeds what the machine has available.

    The budget chooses the design (a run holds its draws within it, or streams); this checks that the design's
    estimate (:func:`held_bytes`, plus the chunks in flight, :func:`~uqenergy.engine.simulate.chunk_bytes`)
    fits in the memory available now. The estimate is rough: a run that passes may still use somewhat more."""
    available = available_memory_bytes()
    chunks = len(chunk_ranges(study.draws, study.chunk_draws))
    needed = held_bytes(study) + chunk_bytes(study) * chunks_in_flight(study.scheduler, chunks)
    if available is not None and needed > available:
        raise InputError(
            study.path,
            "study.memory_budget_mb",
            f"the run would hold about {_mb(needed)}, more than the {_mb(available)} of memory available",
            'a smaller memory_budget_mb (or "auto"), so that the run streams its draws; or fewer draws',
        )


def _run_in_memory(study: Study, progress=None) -> StudyResult:
    energy_wh, divisors, saved = simulate(study, progress)
    return finish(study, summary_records(study, energy_wh, divisors), saved)


def with_scheduler(study: Study, scheduler: str | None) -> Study:
    """The study with its chunks run on ``scheduler`` (a command-line override), if given."""
    return replace(study, scheduler=parse_scheduler(scheduler, study.path, "--scheduler")) if scheduler else study


def _run_streamed(study: Study, progress=None) -> StudyResult:
    """A run whose draws do not fit in memory: summaries in passes over the chunks (see :mod:`uqenergy.analyses.streaming`)."""
    with Backend(study.scheduler) as backend:
        summary, saved, passes = streamed_summary(study, backend, progress)
    result = finish(study, summary, saved)
    result.samples.attrs["streamed_passes"] = passes
    return result


def _run_settings(study: Study, progress=None) -> StudyResult:
    """Run each setting; records gain ``setting`` and the saved draws a ``setting`` dimension."""
    parts = [
        (
            s.name,
            run_study(
                replace(s.study, scheduler=study.scheduler, memory_budget_mb=study.memory_budget_mb), progress=progress
            ),
        )
        for s in study.settings
    ]  # where to run may come from the command line
    records = [{"scenario": r["scenario"], "setting": name, **r} for name, part in parts for r in part.records]
    samples = xr.concat(
        [part.samples.expand_dims(setting=[name]) for name, part in parts], dim="setting", combine_attrs="drop"
    )
    warnings = list(dict.fromkeys(w for _, part in parts for w in part.warnings))
    first = {k: v for k, v in parts[0][1].samples.attrs.items() if not k.startswith("blend_members_")}
    samples.attrs = (
        first
        | provenance(study)
        | {
            "settings": ", ".join(name for name, _ in parts),
            "prior_warnings": "\n".join(warnings),
            **{
                f"setting_{name}_{key}": value
                for name, part in parts
                for key, value in part.samples.attrs.items()
                if key.startswith("blend_members_")
            },
        }
    )
    return StudyResult(study, samples, records, warnings)


DESIGNS: dict[str, Runner] = {
    "settings": _run_settings,
    "two-level": run_two_level,
    "rqmc": run_rqmc,
    "adaptive": run_adaptively,
    "streamed": _run_streamed,
    "in-memory": _run_in_memory,
}

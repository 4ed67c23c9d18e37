"""Two-level Monte Carlo: outer draws of what we do not know, inner draws of what varies query to query.

Each prior's ``kind`` puts it on a level (a study moves a prior with
``[priors.NAME] kind = "..."``). An outer draw is one state of knowledge: PUE,
power utilisation, node power, the throughput fit's shift, the pathway
multipliers (epistemic). Under it, inner draws are queries: token counts
(aleatory). Which model of a blend serves a query is aleatory too; it is summed
over exactly (each member with equal weight) instead of being sampled.

Two results come out:

- the per-query energy pooled over both levels, the distribution the paper reports;
- the mean energy per query of each outer draw, whose spread is the epistemic
  credible interval that a fleet total needs (law of total expectation: its
  mean is the pooled mean).

A state of knowledge is shared by all models: an epistemic prior maps the same
uniform number through each model's prior, so a draw with a high PUE is high for
every model (a blend's mean is not made to look surer by averaging independent
PUEs).

Streams: outer draw o takes the o-th uniform of each epistemic prior's stream;
its inner draws are draws [o * inner, (o + 1) * inner) of the inner seed's
block-seeded streams (:func:`uqenergy.engine.sampling.monte_carlo_draws`). Chunks are
runs of outer draws, so results do not depend on the chunk size or the worker
count, and a longer run extends a shorter one.

Speed without approximation: when the one drawn aleatory input is a whole number
with fewer possible values than the inner draws (output tokens, exponential with
median 300: about 16,000 values), the energy core runs once per (model, outer
draw, token count) and each outer draw's sum weighs the counts by how often
they were drawn. Otherwise every draw is evaluated. Both ways give the same
numbers up to floating-point rounding.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from uqenergy.analyses.intervals import mean_mcse, summarize
from uqenergy.analyses.results import StudyResult, provenance
from uqenergy.analyses.series import InMemory, pathway_divisors, pathway_names, series_members
from uqenergy.config.errors import InputError
from uqenergy.config.intervals import require_untrimmed
from uqenergy.config.study import Study
from uqenergy.engine.backend import Backend
from uqenergy.engine.per_query import evaluate_study, study_data
from uqenergy.engine.sampling import constant_inputs, inputs_from_uniforms, monte_carlo_draws

OUTER, INNER = 0, 1  # levels, also an entropy word of each level's streams
CHUNK_EVALUATIONS = 2**22  # energy evaluations (or looked-up draws) per chunk unless the study sets chunk_draws
LARGEST_UNIFORM = 1 - 2**-53  # the largest uniform numpy's Generator.random() returns


def split_levels(study: Study) -> tuple[list[str], list[str]]:
    """The study's sampled factors by level, (epistemic, aleatory), from each prior's kind."""
    kinds = {name: study.priors.get(name).kind for name in study.factors}
    return [f for f in study.factors if kinds[f] == "epistemic"], [f for f in study.factors if kinds[f] == "aleatory"]


def level_seed(seed: int, level: int) -> int:
    """The integer seed of one level's block-seeded streams, derived from the study seed."""
    return int(np.random.SeedSequence([seed, level]).generate_state(1, np.uint64)[0])


def outer_uniforms(name: str, outer: int, seed: int) -> np.ndarray:
    """The uniforms of prior ``name``'s first ``outer`` states of knowledge: a stream keyed by the seed and the name."""
    return np.random.default_rng([seed, OUTER, zlib.crc32(name.encode())]).random(outer)


def outer_inputs(study: Study, epistemic: list[str], outer: int, seed: int) -> xr.Dataset:
    """Epistemic inputs, dims (model, outer): one uniform per factor and outer draw, shared by every model.

    A prior's uniforms depend only on the seed and the prior's name: a longer
    outer run extends a shorter one, and two studies run with one seed share the
    states of knowledge of the priors they have in common (a fleet mixing two
    workloads needs that).
    """
    uniforms = np.array([outer_uniforms(name, outer, seed) for name in epistemic]).reshape(len(epistemic), 1, outer)
    uniforms = np.broadcast_to(uniforms, (len(epistemic), len(study.models), outer))
    return inputs_from_uniforms(study.priors, epistemic, study.models, uniforms).rename(draw="outer")


def lookup_low(study: Study, drawn: list[str], inner: int) -> float | None:
    """Lowest value of the one drawn aleatory input, when looking energies up by its value beats evaluating
    every draw: a whole-number prior shared by all models, bounded below, with fewer values than ``inner``
    between its inverse CDF at 0 and at the largest uniform. Else None."""
    if len(drawn) != 1:
        return None
    laws = {id(law): law for law in (study.priors.get(drawn[0], m) for m in study.models)}
    law = next(iter(laws.values()))
    low, high = law.ppf(np.array([0.0, LARGEST_UNIFORM]))
    return float(low) if len(laws) == 1 and law.integer and np.isfinite(low) and high - low < inner else None


@dataclass(frozen=True)
class _Inner:
    """What every chunk needs to draw and evaluate its inner draws."""

    study: Study
    fits: xr.Dataset
    theta: xr.Dataset  # outer_inputs
    constants: dict  # fixed aleatory inputs, (model,) variables
    drawn: list[str]  # aleatory inputs drawn per query
    draw_models: list[str]  # every model when drawn priors differ between models, else the first only
    seed: int
    inner: int
    keep: int
    low: float | None  # see lookup_low
    common: bool = False  # every outer draw takes the same inner draws (common random numbers)

    def values(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Drawn inputs of outer draws [start, stop): (outer, inner), or (model, outer, inner) if models differ.

        With ``common``, every outer draw takes inner draws [0, inner): the mean of an outer draw is then one
        fixed function of its epistemic inputs, which a Sobol design of the mean needs (see
        :mod:`uqenergy.analyses.sensitivity_study`)."""
        first, last = (0, self.inner) if self.common else (start * self.inner, stop * self.inner)
        draws = monte_carlo_draws(self.study.priors, self.drawn, self.draw_models, self.seed, first, last)
        models, outer = len(self.draw_models), stop - start
        shape = (outer, self.inner) if models == 1 else (models, outer, self.inner)
        return {
            name: np.broadcast_to(d.reshape((*shape[:-2], -1, self.inner)), shape) for name, d in zip(self.drawn, draws)
        }

    def energy(self, theta: xr.Dataset, values: dict, sizes: dict) -> np.ndarray:
        """Energy per query (model, outer, value) from outer inputs and aleatory inputs along ``value``."""
        dims = {1: ("value",), 2: ("outer", "value"), 3: ("model", "outer", "value")}
        inputs = theta.assign(self.constants).assign({k: (dims[np.ndim(v)], v) for k, v in values.items()})
        study = self.study
        energy_wh = evaluate_study(study, inputs, self.fits)["energy_wh"]
        missing = {d: n for d, n in sizes.items() if d not in energy_wh.dims}
        return energy_wh.expand_dims(missing).transpose(*sizes).values

    def chunk(self, bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Sum of energy over each outer draw's inner draws (model, outer) and its first ``keep`` draws.

        With a whole-number input the core runs once per (model, outer draw,
        value up to the highest drawn), and each outer draw's sum weighs the
        values by how often they were drawn, summed left to right so that values
        only another chunking would reach (never drawn here) change nothing.
        """
        start, stop = bounds
        values = self.values(start, stop)
        theta = self.theta.isel(outer=slice(start, stop))
        sizes = {"model": len(self.study.models), "outer": stop - start, "value": self.inner}
        if self.low is None:
            energy_wh = self.energy(theta, values, sizes)
            return energy_wh.sum(axis=-1), energy_wh[..., : self.keep].copy()
        ((name, drawn),) = values.items()
        code = (drawn - self.low).astype(np.int64)
        cells = int(code.max()) + 1
        counts = np.bincount((np.arange(stop - start)[:, None] * cells + code).ravel(), minlength=code.shape[0] * cells)
        on_grid = self.energy(theta, {name: self.low + np.arange(cells, dtype=float)}, sizes | {"value": cells})
        total_wh = np.cumsum(on_grid * counts.reshape(-1, cells), axis=-1)[..., -1]
        first = np.broadcast_to(code[:, : self.keep], (*on_grid.shape[:2], self.keep))
        return total_wh, np.take_along_axis(on_grid, first, axis=2)


def inner_job(study: Study, theta: xr.Dataset, seed: int, inner: int, keep: int = 1, common: bool = False) -> _Inner:
    """What every chunk needs to evaluate ``inner`` queries under each state of knowledge of ``theta`` (model, outer).

    ``common``: the same inner draws under every state of knowledge (see :meth:`_Inner.values`).
    """
    aleatory = split_levels(study)[1]
    drawn = [name for name in aleatory if not study.priors.is_fixed(name)]
    shared = all(study.priors.get(n, m) is study.priors.get(n) for n in drawn for m in study.models)
    return _Inner(
        study=study,
        fits=study_data(study),
        theta=theta,
        drawn=drawn,
        constants=constant_inputs(study.priors, [n for n in aleatory if n not in drawn], study.models),
        draw_models=study.models[:1] if shared else study.models,
        seed=level_seed(seed, INNER),
        inner=inner,
        keep=keep,
        low=lookup_low(study, drawn, inner),
        common=common,
    )


def inner_means(
    job: _Inner, backend: Backend, outer_chunk: int | None = None, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean energy per query of each model under each state of knowledge (model, outer), in Wh, and the first
    ``job.keep`` per-query energies of each (model, outer, keep): runs of outer draws as chunks on ``backend``."""
    study, inner, outer = job.study, job.inner, job.theta.sizes["outer"]
    chunk_draws = study.chunk_draws or CHUNK_EVALUATIONS // (1 if job.low is not None else len(study.models))
    per_chunk = outer_chunk or max(1, chunk_draws // inner)
    chunks = [(start, min(start + per_chunk, outer)) for start in range(0, outer, per_chunk)]
    sums, kept = [], []
    for (start, stop), (total_wh, first_wh) in zip(chunks, backend.map(_Inner.chunk, job, chunks)):
        sums.append(total_wh)
        kept.append(first_wh)
        if progress is not None:
            progress((stop - start) * inner * len(study.models))
    return np.concatenate(sums, axis=1) / inner, np.concatenate(kept, axis=1)


def series_weights(study: Study, in_series: np.ndarray, outer: int, seed: int) -> np.ndarray:
    """Share of each series' queries served by each model, (series, model, outer).

    A model serves all of its own queries. A blend's members share its queries
    equally, unless the blend sets a Dirichlet ``concentration`` a: then each
    state of knowledge draws the shares from Dirichlet(a, ..., a) (normalised
    gamma variates of a stream keyed by the seed and the blend's name, so a
    longer run extends a shorter one). Their mean is the equal share, so the
    pooled per-query distribution is the same either way; the mean energy per
    query of one state of knowledge is the weighted mean of its members'.
    """
    weights = in_series / in_series.sum(axis=1, keepdims=True)
    weights = np.repeat(weights[..., None], outer, axis=2)
    for row, blend in enumerate(study.blends, start=len(study.models)):
        if blend.concentration is not None:
            rows = np.flatnonzero(in_series[row])
            rng = np.random.default_rng([seed, OUTER, zlib.crc32(f"blend:{blend.name}".encode())])
            shares = rng.standard_gamma(blend.concentration, size=(outer, rows.size))
            weights[row, rows] = (shares / shares.sum(axis=1, keepdims=True)).T
    return weights


def weighted_median(kept_wh: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per series and state of knowledge, the median per-query energy of the kept draws (series, outer).

    ``kept_wh`` (model, outer, kept) are each model's kept queries; a series'
    median is that of its members' kept draws, each member weighted by its share
    (``weights``, (series, model, outer)) spread evenly over its kept draws: the
    lowest value at which the cumulative weight reaches one half.
    """
    models, outer, kept = kept_wh.shape
    values = kept_wh.transpose(1, 0, 2).reshape(outer, models * kept)
    order = np.argsort(values, axis=1)
    ranked = np.take_along_axis(values, order, axis=1)
    medians = np.empty((weights.shape[0], outer))
    for s, w in enumerate(weights):
        per_draw = np.repeat(w.T / kept, kept, axis=1)  # (outer, model * kept)
        cumulative = np.cumsum(np.take_along_axis(per_draw, order, axis=1), axis=1)
        first = np.argmax(cumulative >= 0.5 * cumulative[:, -1:], axis=1)
        medians[s] = ranked[np.arange(outer), first]
    return medians


def without_trimmed_blends(study: Study) -> Study:
    """The study with its trimmed blends left out: what a two-level design of it can run (see require_untrimmed)."""
    return replace(study, blends=[b for b in study.blends if not b.trim])


def _pathways(study: Study) -> list[str]:
    return ["baseline", *pathway_names(study)]


def state_divisors(study: Study, theta: xr.Dataset) -> dict[str, np.ndarray]:
    """Each pathway's divisor (model, outer), as in one-level runs; ``baseline`` divides by one."""
    for name in study.pathway_priors:
        if name not in theta:
            raise InputError(
                study.path,
                f"priors.{name}.kind",
                "is aleatory; a two-level design applies pathways to each state of knowledge",
                "epistemic",
            )
    drawn = {name: theta[name].values for name in study.pathway_priors}
    return {"baseline": np.ones((len(study.models), theta.sizes["outer"]))} | pathway_divisors(study, drawn)


def two_level(
    study: Study,
    outer: int | None = None,
    inner: int | None = None,
    seed: int | None = None,
    *,
    outer_chunk: int | None = None,
    keep_inner: int | None = None,
    workers: int | None = None,
    progress=None,
) -> xr.Dataset:
    """Run the two-level design of ``study``: ``outer`` states of knowledge, ``inner`` queries under each.

    Defaults: ``outer`` = the study's ``[intervals] outer_draws``, ``inner`` =
    its ``draws``, ``seed`` = its seed, ``keep_inner`` = enough inner draws per
    outer draw for ``pooled_draws`` per-query draws per model. ``outer_chunk``
    (outer draws per chunk) and ``workers`` (threads of the local scheduler;
    ``study.scheduler`` may put the chunks on Dask instead) change speed and
    memory, never the numbers.

    Returns a Dataset with dims ``series`` (models, then blends), ``pathway``
    (``baseline``, the study's pathways, ``combined``), ``outer``, ``model``, ``kept``:

    - ``mean_energy_wh`` (series, pathway, outer): mean facility energy per query
      under each state of knowledge, in Wh; a blend's is its members' average,
      weighted by ``weights``;
    - ``median_energy_wh`` (series, outer): the median facility energy per query
      under each state of knowledge, from the kept draws (baseline);
    - ``weights`` (series, model, outer): the share of each series' queries each
      model serves (:func:`series_weights`);
    - ``energy_wh`` (model, outer, kept): per-query energy of the first
      ``keep_inner`` queries of each outer draw (the pooled per-query sample);
    - ``serves`` (series, model): which models serve each series' queries, with equal weights;
    - every epistemic input (model, outer), e.g. ``pue``, ``pathway_model``.
    """
    outer = outer or study.intervals.outer_draws
    inner = inner or study.draws
    seed = study.seed if seed is None else seed
    keep = min(inner, keep_inner or math.ceil(study.intervals.pooled_draws / outer))
    require_untrimmed(study.blends, study.path)
    epistemic, aleatory = split_levels(study)
    theta = outer_inputs(study, epistemic, outer, seed)
    divisors = state_divisors(study, theta)
    job = inner_job(study, theta, seed, inner, keep)
    with Backend(study.scheduler, workers) as backend:
        model_mean_wh, kept_wh = inner_means(job, backend, outer_chunk, progress)
    pooled = InMemory(kept_wh.reshape(len(study.models), -1))  # a top blend ranks models by pooled per-query median
    members = {b.name: series_members(study, b.name, pooled) for b in study.blends}
    in_series = np.vstack(
        [np.eye(len(study.models), dtype=bool)] + [np.isin(study.models, ms)[None] for ms in members.values()]
    )
    weights = series_weights(study, in_series, outer, seed)
    mean_wh = np.einsum("smo,pmo->spo", weights, np.stack([model_mean_wh / divisors[p] for p in divisors]))
    return (
        theta.assign(
            mean_energy_wh=(
                ("series", "pathway", "outer"),
                mean_wh,
                {"units": "Wh", "long_name": "mean facility energy per query under one state of knowledge"},
            ),
            median_energy_wh=(
                ("series", "outer"),
                weighted_median(kept_wh, weights),
                {"units": "Wh", "long_name": "median facility energy per query under one state of knowledge"},
            ),
            weights=(
                ("series", "model", "outer"),
                weights,
                {"long_name": "share of each series' queries each model serves, per state of knowledge"},
            ),
            energy_wh=(("model", "outer", "kept"), kept_wh, {"units": "Wh", "long_name": "facility energy per query"}),
            serves=(
                ("series", "model"),
                in_series,
                {"long_name": "models serving the queries of each series, equally"},
            ),
        )
        .assign_coords(
            series=[*study.models, *members], pathway=list(divisors), outer=np.arange(outer), kept=np.arange(keep)
        )
        .assign_attrs(
            design="two-level",
            outer_draws=outer,
            inner_draws=inner,
            seed=seed,
            epistemic_factors=", ".join(epistemic),
            aleatory_factors=", ".join(aleatory),
            **{f"blend_members_{b}": ", ".join(m) for b, m in members.items()},
        )
    )


def two_level_records(study: Study, result: xr.Dataset) -> list[dict]:
    """Per series and pathway: the pooled per-query ``energy_wh`` and the epistemic ``mean_energy_wh`` records."""
    divisors = state_divisors(study, result)
    outer, inner = result.attrs["outer_draws"], result.attrs["inner_draws"]
    kept_wh = result["energy_wh"].values
    records = []
    for series in result["series"].values.tolist():
        rows = np.flatnonzero(result["serves"].sel(series=series).values)
        for pathway in _pathways(study) if series in study.pathway_targets else ["baseline"]:
            means = result["mean_energy_wh"].sel(series=series, pathway=pathway).values
            pooled = np.concatenate([kept_wh[r] / divisors[pathway][r][:, None] for r in rows], axis=1)
            head = {"scenario": study.scenario, "series": series, "pathway": pathway}
            level = study.intervals.hdi_level
            mean_record = {**head, "quantity": "mean_energy_wh", **summarize(means, level)}
            records.append(
                {
                    **head,
                    "quantity": "energy_wh",
                    **summarize(pooled, level),
                    "mean": mean_record["mean"],
                    "mcse_mean": mean_mcse(means),
                    "draws": outer * inner * len(rows),
                    "outer_draws": outer,
                    "inner_draws": inner,
                }
            )
            records.append(mean_record | {"outer_draws": outer, "inner_draws": inner})
    return records


def run_two_level(study: Study, progress=None) -> StudyResult:
    """Run a two-level study: records for both quantities, and the outer draws plus some per-query draws to save."""
    result = two_level(study, progress=progress)
    records = two_level_records(study, result)
    saved_kept = max(1, min(result.sizes["kept"], study.save_draws // result.sizes["outer"]))
    saved = result.isel(kept=slice(0, saved_kept))
    saved.attrs = (
        provenance(study)
        | result.attrs
        | {
            "draws_per_model": result.attrs["outer_draws"] * result.attrs["inner_draws"],
            "note": "samples.nc keeps every outer draw and the first kept inner draws of each; summaries use all draws",
            "prior_warnings": "\n".join(study.priors.warnings),
        }
    )
    return StudyResult(study, saved, records, list(study.priors.warnings))

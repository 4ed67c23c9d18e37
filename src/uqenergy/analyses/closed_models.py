"""Per-query energy of closed models: their size priors through the size regression, then tokens and the ladder.

For each closed model and each Monte Carlo draw (all numpy, no loop over draws):

1. a state of the model: active and total parameters, GPU and precision from its priors
   (``priors/closed_models.toml``; a draw with more active than total parameters is dense, total =
   active), the GPU count that holds its weights
   (:func:`~uqenergy.engine.predictive.gpu_count_for_weights`) and the concurrency (the measured
   studies' ``concurrency`` prior, held inside the measured batches 8-4,096 and the held draws
   counted: the regression is never used beyond them);
2. GPU energy per output token [J] from the posterior predictive of the size regression for an
   unseen model (:func:`~uqenergy.engine.predictive.predict_new_model`: a posterior sample, a fresh
   per-model effect and a configuration residual): the accelerator rung;
3. then exactly as for a measured model (:func:`uqenergy.engine.measured.energy_per_query_wh`): times
   the answer length (the ``output_tokens`` prior, aleatory) and the boundary ladder's multipliers up
   to the study's boundary (``priors/boundaries.toml``).

Three quantities are reported, each at the study's boundary:

- ``energy_wh``: energy of one query (everything drawn, what varies between queries included);
- ``mean_energy_wh``: the mean energy per query of the deployment, for each state of knowledge
  (energy is linear in the answer length, so the mean over queries is exact: the answer length's
  mean) - the credible interval to hold a published *average* against (OpenAI's 0.34 Wh);
- ``median_energy_wh``: the energy of the median query (the answer length's median), for a published
  *median* (Google's 0.24 Wh).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from uqenergy._version import __version__
from uqenergy.analyses.intervals import summarize
from uqenergy.analyses.results import RecordsResult
from uqenergy.config.catalogue import prior_records
from uqenergy.config.closed_models import SERVING_PRIORS, ClosedModel, ClosedModelStudy, load_closed_model_study
from uqenergy.config.files import file_sha256
from uqenergy.config.measured_study import CONCURRENCY
from uqenergy.engine.measured import energy_per_query_wh
from uqenergy.engine.predictive import (
    Posterior,
    covariates,
    fit_posterior,
    gpu_count_for_weights,
    predict_new_model,
    regression_data,
)

#: the mean batches the regression was fitted on (ML.ENERGY v3): concurrency is held inside them
MEASURED_BATCH = (8.0, 4096.0)
QUANTITIES = ("energy_wh", "mean_energy_wh", "median_energy_wh")


@dataclass
class ClosedModelResult(RecordsResult):
    """What a closed-model run produced.

    Attributes
    ----------
    study : ClosedModelStudy
        The study that ran.
    samples : xarray.Dataset
        Every draw (``model``, ``draw``): the model's state, GPU energy per output token, the ladder
        multiplier and the three energies, with the run's provenance in its attributes.
    records : list of dict
        One record per (model, quantity), what ``summary.json`` holds.
    warnings : list of str
        Draws outside the measured data (weights that need more than one node).
    """

    study: ClosedModelStudy
    samples: xr.Dataset
    records: list[dict]
    warnings: list[str] = field(default_factory=list)


def model_draws(
    study: ClosedModelStudy, model: ClosedModel, posterior: Posterior, rng: np.random.Generator, draws: int
) -> dict[str, np.ndarray]:
    """Every drawn and derived quantity of one closed model (see the module docstring), ``draws`` of each."""

    def sample(quantity: str) -> np.ndarray:
        return model.quantities[quantity].prior.sample(rng, draws)

    def category(quantity: str) -> np.ndarray:
        return np.asarray(model.categories(quantity))[sample(quantity).astype(int)]

    active = sample("active_params_b")
    total = np.maximum(sample("total_params_b"), active)
    gpu, precision = category("gpu"), category("precision")
    gpu_count, multi_node = gpu_count_for_weights(total, precision, gpu)
    drawn_batch = study.priors.get(CONCURRENCY).sample(rng, draws)
    mean_batch = np.clip(drawn_batch, *MEASURED_BATCH)
    x = covariates(active, total, mean_batch, gpu_count, gpu, precision, model.task)
    energy_per_token_j = np.exp(predict_new_model(posterior, x, rng))
    multipliers = [study.priors.get(rung).sample(rng, draws) for rung in study.rung_priors]
    tokens_prior = study.priors.get("output_tokens")
    tokens = tokens_prior.sample(rng, draws)
    mean_tokens, median_tokens = tokens_prior.mean(), float(tokens_prior.ppf(np.array(0.5)))
    return {
        "active_params_b": active,
        "total_params_b": total,
        "gpu": gpu,
        "precision": precision,
        "gpu_count": gpu_count,
        "multi_node": multi_node,
        "mean_batch": mean_batch,
        "batch_held": drawn_batch != mean_batch,
        "gpu_energy_per_output_token_j": energy_per_token_j,
        "ladder_multiplier": np.prod(multipliers, axis=0) if multipliers else np.ones(draws),
        **dict(zip(study.rung_priors, multipliers)),  # each rung's own draws, to move a draw along the ladder
        "output_tokens": tokens,
        "energy_wh": energy_per_query_wh(energy_per_token_j, tokens, multipliers),
        "mean_energy_wh": energy_per_query_wh(energy_per_token_j, mean_tokens, multipliers),
        "median_energy_wh": energy_per_query_wh(energy_per_token_j, median_tokens, multipliers),
    }


UNITS = {
    "active_params_b": "billion parameters",
    "total_params_b": "billion parameters",
    "gpu_count": "GPUs",
    "mean_batch": "sequences",
    "gpu_energy_per_output_token_j": "J/token",
    "ladder_multiplier": "1",
    "server_overhead": "1",
    "provisioning_overhead": "1",
    "pue": "1",
    "output_tokens": "tokens",
    "energy_wh": "Wh",
    "mean_energy_wh": "Wh",
    "median_energy_wh": "Wh",
}


def closed_model_prior_records(study: ClosedModelStudy) -> list[dict]:
    """The priors of the run as flat records (the report's "Priors used" table), with each quantity's firmness."""
    records = [
        {
            "prior": quantity,
            "model": model.name,
            "distribution": q.prior.describe(),
            "unit": q.prior.unit,
            "bounds": str(list(q.prior.bounds)),
            "kind": f"{q.prior.kind}, {q.firmness}" + (f" ({q.estimated_by})" if q.estimated_by else ""),
            "mass_outside_bounds": q.prior.mass_outside_bounds(),
            "source": q.prior.source,
            "file": study.models_file.name,
        }
        for model in study.models
        for quantity, q in model.quantities.items()
    ]
    return records + prior_records(study.priors, [*SERVING_PRIORS, *study.rung_priors], [])


def run_closed_models(path_or_study, *, draws: int | None = None, seed: int | None = None) -> ClosedModelResult:
    """Per-query energy of closed models at the study's boundary (see the module docstring).

    Parameters
    ----------
    path_or_study : str, pathlib.Path or ClosedModelStudy
        A closed-model study file, a bundled name (``"closed_models"``) or a loaded study.
    draws, seed : int, optional
        Draws per model and seed instead of the file's (ignored for a loaded study).

    Returns
    -------
    ClosedModelResult
        The draws, one record per (model, quantity), warnings.

    Examples
    --------
    >>> import uqenergy
    >>> result = uqenergy.run_closed_models("closed_models", draws=2000, seed=1)
    >>> sorted({r["quantity"] for r in result.records})
    ['energy_wh', 'mean_energy_wh', 'median_energy_wh']
    >>> {r["boundary"] for r in result.records}
    {'facility'}
    """
    study = (
        path_or_study
        if isinstance(path_or_study, ClosedModelStudy)
        else load_closed_model_study(path_or_study, draws=draws, seed=seed)
    )
    data = regression_data(study.measured.configurations)
    fit_stream, *model_streams = np.random.SeedSequence(study.seed).spawn(1 + len(study.models))
    posterior = fit_posterior(data, study.form, seed=int(fit_stream.generate_state(1)[0]))
    drawn = [
        model_draws(study, m, posterior, np.random.default_rng(s), study.draws)
        for m, s in zip(study.models, model_streams)
    ]
    names = [m.name for m in study.models]
    samples = xr.Dataset(
        {
            name: (
                ("model", "draw"),
                np.stack([d[name] for d in drawn]),
                {"units": UNITS[name]} if name in UNITS else {},
            )
            for name in drawn[0]
        },
        coords={"model": names, "draw": np.arange(study.draws)},
    )
    records = [
        {
            "scenario": study.scenario,
            "series": model,
            "pathway": "baseline",
            "quantity": quantity,
            "boundary": study.boundary,
            "statistic": {"energy_wh": "per query", "mean_energy_wh": "mean", "median_energy_wh": "median"}[quantity],
            **summarize(samples[quantity].sel(model=model).values),
        }
        for quantity in QUANTITIES
        for model in names
    ]
    warnings = [
        f"{model}: {100 * share:.2g}% of draws need more than 8 GPUs for their weights (multi-node serving, outside "
        "the measured data); they are computed at 8 GPUs"
        for model, share in zip(names, samples["multi_node"].mean("draw").values)
        if share > 0
    ] + [
        f"{model}: {100 * share:.2g}% of concurrency draws lay outside the measured batches 8-4,096 and were held "
        "at the nearest end"
        for model, share in zip(names, samples["batch_held"].mean("draw").values)
        if share > 0
    ]
    samples.attrs = {
        "study": study.name,
        "scenario": study.scenario,
        "study_file": str(study.path),
        "seed": study.seed,
        "draws_per_model": study.draws,
        "saved_draws": study.draws,
        "boundary": study.boundary,
        "regression_form": study.form,
        "uqenergy_version": __version__,
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "priors": json.dumps(closed_model_prior_records(study)),
        "prior_warnings": "\n".join(warnings),
        "note": "GPU energy per output token from the size regression's posterior predictive for an unseen model "
        "(docs/predictive.md), times the boundary ladder and the answer length",
        **{f"input_file_{i}": str(p) for i, p in enumerate(study.input_files)},
        **{f"input_file_{i}_sha256": file_sha256(p) for i, p in enumerate(study.input_files)},
    }
    return ClosedModelResult(study, samples, records, warnings)

"""How good is the size regression: ArviZ InferenceData, PSIS-LOO between forms, leave-one-model-out coverage.

The regression itself is :mod:`uqenergy.engine.predictive`. Here it is judged:

- :func:`inference_data` holds one fitted form as an :class:`arviz.InferenceData` with the
  posterior, posterior predictive, observed data and pointwise log likelihood groups;
- :func:`compare_forms` compares forms by PSIS-LOO (``arviz.loo`` and ``arviz.compare``),
  with the Pareto-k diagnostics of every form. PSIS-LOO leaves out one *configuration*: it
  asks how well a form predicts another batch size of a model it has seen;
- :func:`leave_one_model_out` asks the question the closed models need: hold out every
  configuration of one base model (FP8 and BF16 builds together), fit on the rest, and find
  where each held-out measurement falls in the posterior predictive distribution of an
  unseen model (its PIT, the predictive probability below the measurement). A measurement lies
  inside the central interval at level L when ``|PIT - 0.5| <= L / 2``;
- :func:`coverage_records` turns the PITs into observed coverage against nominal, overall
  and per GPU. The held-out points of one model share its effect, so they are not
  independent: each record counts models as well as points, and gives the coverage averaged
  over models (each model weighted equally) beside the pooled share of points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uqenergy._version import __version__
from uqenergy.analyses.results import RecordsResult
from uqenergy.config.files import file_sha256
from uqenergy.config.measured import MeasuredTable
from uqenergy.config.regression import FORMS, Form
from uqenergy.engine.predictive import (
    COEFFICIENTS,
    Posterior,
    RegressionData,
    fit_posterior,
    log_likelihood,
    predict_new_model,
    regression_data,
    replicate_observed,
)

with warnings.catch_warnings():  # arviz 0.23 announces its 1.0 rewrite on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

#: central interval levels at which coverage is recorded; the goal is stated at 50% and 90%
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
GOAL_LEVELS = (0.5, 0.9)
GOAL_POINTS = 0.10  # observed coverage within 10 percentage points of nominal
#: Pareto-k bands of PSIS (Vehtari et al. 2024, JMLR 25(72)): reliable, reliable with more draws, unreliable
PARETO_K_BANDS = (0.5, 0.7, 1.0)


def inference_data(posterior: Posterior, data: RegressionData, seed: int = 0) -> az.InferenceData:
    """One fitted form as ArviZ InferenceData.

    Parameters
    ----------
    posterior : Posterior
        Draws of one form (:func:`uqenergy.engine.predictive.fit_posterior`).
    data : RegressionData
        The configurations it was fitted to.
    seed : int
        Seed of the posterior predictive replicates.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior`` (``beta`` by coefficient, ``sigma`` and, for a form with the per-model
        effect, ``tau`` and ``model_effect`` by model), ``posterior_predictive`` and ``log_likelihood`` (``log_energy_per_token`` by
        configuration), ``observed_data`` and ``constant_data`` (covariates, GPU, model).
    """
    coords = {
        "coefficient": list(COEFFICIENTS),
        "model": list(data.models),
        "configuration": np.arange(data.log_energy.size),
    }
    dims = {
        "beta": ["coefficient"],
        "model_effect": ["model"],
        "log_energy_per_token": ["configuration"],
        "covariates": ["configuration", "coefficient"],
        "gpu": ["configuration"],
        "base_model": ["configuration"],
    }
    rng = np.random.default_rng(seed)
    idata = az.from_dict(
        posterior={"beta": posterior.beta, "sigma": posterior.sigma}
        | ({"tau": posterior.tau, "model_effect": posterior.model_effect} if posterior.form.model_effect else {}),
        posterior_predictive={"log_energy_per_token": replicate_observed(posterior, data, rng)},
        log_likelihood={"log_energy_per_token": log_likelihood(posterior, data)},
        observed_data={"log_energy_per_token": data.log_energy},
        constant_data={
            "covariates": data.covariates,
            "gpu": data.gpus.astype(str),
            "base_model": np.array(data.models)[data.model_index].astype(str),
        },
        coords=coords,
        dims=dims,
        attrs={
            "form": posterior.form.name,
            "form_description": posterior.form.description,
            "tail_dof": posterior.form.tail_dof,
            "quantity": "ln GPU energy per output token [ln J/token], accelerator boundary",
        },
    )
    return idata


def compare_forms(idatas: dict[str, az.InferenceData]) -> list[dict]:
    """PSIS-LOO of each form, ranked by ``arviz.compare``, with Pareto-k diagnostics.

    Parameters
    ----------
    idatas : dict of str to arviz.InferenceData
        Form name -> its InferenceData (with a ``log_likelihood`` group).

    Returns
    -------
    list of dict
        One record per form: ``rank``, ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff`` and ``dse``
        (against the best form), ``weight``, and the number of configurations with Pareto k in
        each band (``k_good`` <= 0.5 < ``k_ok`` <= 0.7 < ``k_bad`` <= 1 < ``k_very_bad``) and ``k_max``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Pareto-k warning is reported in the records instead
        loos = {name: az.loo(idata, pointwise=True) for name, idata in idatas.items()}
        table = az.compare(idatas, ic="loo")
    records = []
    for name, loo in loos.items():
        k = np.asarray(loo.pareto_k)
        good, ok, bad = PARETO_K_BANDS
        row = table.loc[name]
        records.append(
            {
                "form": name,
                "rank": int(row["rank"]),
                "elpd_loo": float(loo.elpd_loo),
                "se": float(loo.se),
                "p_loo": float(loo.p_loo),
                "elpd_diff": float(row["elpd_diff"]),
                "dse": float(row["dse"]),
                "weight": float(row["weight"]),
                "n_points": int(k.size),
                "k_good": int(np.sum(k <= good)),
                "k_ok": int(np.sum((k > good) & (k <= ok))),
                "k_bad": int(np.sum((k > ok) & (k <= bad))),
                "k_very_bad": int(np.sum(k > bad)),
                "k_max": float(k.max()),
            }
        )
    return sorted(records, key=lambda r: r["rank"])


@dataclass(frozen=True)
class HeldOut:
    """Where each measured configuration falls when its whole model is held out (one form)."""

    form: str
    points: pd.DataFrame  # one row per configuration: model, gpu, log_energy, pit, predictive median


def leave_one_model_out(
    data: RegressionData,
    form: Form | str,
    *,
    seed: int = 0,
    chains: int = 2,
    draws: int = 1000,
    warmup: int = 300,
    predictive_draws: int = 4000,
) -> HeldOut:
    """Hold out each base model in turn, fit on the rest, and place its measurements in the predictive.

    Parameters
    ----------
    data : RegressionData
        All measured configurations.
    form : Form or str
        The form to judge.
    seed : int
        Seed; fold ``k`` (the ``k``-th model in ``data.models``) takes the ``k``-th spawned stream.
    chains, draws, warmup : int
        Posterior sampling per fold (see :func:`~uqenergy.engine.predictive.fit_posterior`).
    predictive_draws : int
        Posterior predictive draws per held-out configuration, from which its PIT is taken.

    Returns
    -------
    HeldOut
        A PIT per configuration (the predictive probability below the measured value).
    """
    form = FORMS[form] if isinstance(form, str) else form
    rows = []
    for k, (model, stream) in enumerate(zip(data.models, np.random.SeedSequence(seed).spawn(len(data.models)))):
        held = data.model_index == k
        fit_stream, draw_stream = stream.spawn(2)
        posterior = fit_posterior(
            data.subset(~held),
            form,
            chains=chains,
            draws=draws,
            warmup=warmup,
            seed=int(fit_stream.generate_state(1)[0]),
        )
        rng = np.random.default_rng(draw_stream)
        x = data.covariates[held]
        predicted = predict_new_model(posterior, np.tile(x, (predictive_draws, 1)), rng).reshape(predictive_draws, -1)
        observed = data.log_energy[held]
        rows.append(
            pd.DataFrame(
                {
                    "model": model,
                    "gpu": data.gpus[held],
                    "log_energy": observed,
                    "pit": np.mean(predicted < observed, axis=0),
                    "predicted_median": np.median(predicted, axis=0),
                }
            )
        )
    return HeldOut(form.name, pd.concat(rows, ignore_index=True))


def inside(pit: np.ndarray, level: float) -> np.ndarray:
    """Whether a measurement with predictive PIT ``pit`` lies in the central interval at ``level``."""
    return np.abs(np.asarray(pit) - 0.5) <= level / 2


def coverage_records(held_out: HeldOut, levels=LEVELS) -> list[dict]:
    """Observed coverage of the central predictive intervals, overall (``gpu = "all"``) and per GPU.

    Parameters
    ----------
    held_out : HeldOut
        PITs from :func:`leave_one_model_out`.
    levels : sequence of float
        Nominal levels.

    Returns
    -------
    list of dict
        ``{form, level, nominal, observed, observed_per_model, n_points, n_models, gpu}``: ``observed``
        is the share of held-out points inside, ``observed_per_model`` the mean over models of each
        model's share (every model counts once, however many configurations it has).
    """
    points = held_out.points
    subsets = [("all", points)] + [(gpu, part) for gpu, part in points.groupby("gpu", sort=True)]
    records = []
    for gpu, part in subsets:
        for level in levels:
            hit = pd.Series(inside(part["pit"].to_numpy(), level), index=part.index)
            records.append(
                {
                    "form": held_out.form,
                    "level": f"{round(100 * level)}%",
                    "nominal": float(level),
                    "observed": float(hit.mean()),
                    "observed_per_model": float(hit.groupby(part["model"]).mean().mean()),
                    "n_points": len(part),
                    "n_models": int(part["model"].nunique()),
                    "gpu": gpu,
                }
            )
    return records


def meets_goal(records: list[dict]) -> bool:
    """Whether the overall coverage at :data:`GOAL_LEVELS` is within :data:`GOAL_POINTS` of nominal."""
    return all(
        abs(r["observed"] - r["nominal"]) <= GOAL_POINTS
        for r in records
        if r["gpu"] == "all" and any(np.isclose(r["nominal"], GOAL_LEVELS))
    )


def coefficient_records(form: str, idata: az.InferenceData) -> list[dict]:
    """ArviZ's summary (mean, SD, 90% HDI, MCSE, ESS, R-hat) of the coefficients, sigma and tau, as records."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = [name for name in ("beta", "sigma", "tau") if name in idata["posterior"]]
        table = az.summary(idata, var_names=names, hdi_prob=0.9)
    assert isinstance(table, pd.DataFrame)  # az.summary gives a Dataset only with fmt="xarray"
    table = table.rename(columns={"hdi_5%": "hdi_low", "hdi_95%": "hdi_high"})
    return [
        {"form": form, "parameter": str(name).replace("beta[", "").rstrip("]"), **{k: float(v) for k, v in row.items()}}
        for name, row in table.iterrows()
    ]


@dataclass
class FitResult(RecordsResult):
    """What ``uqenergy fit`` produced: every form fitted to the measured table and judged.

    Attributes
    ----------
    idatas : dict of str to arviz.InferenceData
        Each form fitted to every configuration.
    records : list of dict
        Coverage records (what ``coverage.json`` holds), every form, level and GPU.
    loo : list of dict
        PSIS-LOO comparison of the forms with Pareto-k counts (:func:`compare_forms`).
    held_out : list of dict
        One record per (form, configuration): its PIT when its model was held out.
    coefficients : list of dict
        Posterior summaries of each form's coefficients, sigma and tau.
    attrs : dict
        Provenance: data file and its hash, seed, draws, forms.
    """

    idatas: dict[str, az.InferenceData]
    records: list[dict]
    loo: list[dict]
    held_out: list[dict]
    coefficients: list[dict]
    attrs: dict = field(default_factory=dict)


def fit_measured(
    table: MeasuredTable, *, seed: int = 0, chains: int = 4, draws: int = 1000, forms=tuple(FORMS)
) -> FitResult:
    """Fit every form of the size regression to a measured table, compare them by PSIS-LOO and
    check each by leave-one-model-out coverage.

    Parameters
    ----------
    table : MeasuredTable
        The measured configurations (:func:`uqenergy.config.measured.read_measured`).
    seed : int
        Seed of every fit and predictive draw (each form and fold gets its own spawned stream).
    chains, draws : int
        Chains and draws per chain of the full fits.
    forms : sequence of str
        Names of the forms (:data:`~uqenergy.config.regression.FORMS`).

    Returns
    -------
    FitResult
        InferenceData per form, coverage records, the LOO comparison, PITs and coefficient summaries.

    Examples
    --------
    >>> import uqenergy
    >>> from uqenergy.config.measured import read_measured
    >>> from uqenergy.config.files import resolve
    >>> table = read_measured(resolve("mlenergy_v3", "priors", suffix=".csv"))
    >>> fit = uqenergy.fit_measured(table, draws=200, forms=("pooled",))
    >>> sorted(fit.idatas["pooled"].groups())
    ['constant_data', 'log_likelihood', 'observed_data', 'posterior', 'posterior_predictive']
    >>> [(r["level"], r["n_models"]) for r in fit.records if r["gpu"] == "all" and r["nominal"] in (0.5, 0.9)]
    [('50%', 23), ('90%', 23)]
    """
    data = regression_data(table.configurations)
    idatas, held, coverage, coefficients = {}, [], [], []
    for name, stream in zip(forms, np.random.SeedSequence(seed).spawn(len(forms))):
        fit_seed, ppc_seed, lomo_seed = (int(s.generate_state(1)[0]) for s in stream.spawn(3))
        posterior = fit_posterior(data, name, chains=chains, draws=draws, seed=fit_seed)
        idatas[name] = inference_data(posterior, data, seed=ppc_seed)
        coefficients += coefficient_records(name, idatas[name])
        held_out = leave_one_model_out(data, name, seed=lomo_seed)
        coverage += coverage_records(held_out)
        held += [{"form": name, **row} for row in held_out.points.to_dict(orient="records")]
    attrs = {
        "measured_file": str(table.path),
        "measured_sha256": file_sha256(table.path),
        "seed": seed,
        "chains": chains,
        "draws_per_chain": draws,
        "forms": ", ".join(forms),
        "configurations": int(data.log_energy.size),
        "models": len(data.models),
        "uqenergy_version": __version__,
        "arviz_version": az.__version__,
    }
    return FitResult(idatas, coverage, compare_forms(idatas), held, coefficients, attrs)

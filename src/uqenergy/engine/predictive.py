"""GPU energy per output token of any model from its size: a Bayesian log-linear regression on measured data.

The regression (fitted to the ML.ENERGY v3 configurations, :mod:`uqenergy.config.measured`):

    ln e_i = x_i' beta + u_m(i) + eps_i

- ``e_i``: GPU energy per output token of configuration ``i`` [J/token] (the accelerator rung);
- ``x_i``: the covariates of :data:`COEFFICIENTS`: an intercept, ln active parameters [B],
  ln total parameters [B], ln mean batch (concurrency), ln GPU count, and indicators of the
  GPU generation (B200 against H100), the precision (fp8, mxfp4 against bfloat16) and the
  task (GPQA, fill-in-the-middle against chat);
- ``u_m ~ N(0, tau^2)``: a per-model effect shared by every configuration of one base model
  (its FP8 and BF16 builds together); what the covariates do not explain about a model
  (its architecture, attention, serving code). A model no benchmark measured gets a fresh
  draw of it;
- ``eps_i``: the configuration's residual, ``N(0, sigma^2)``, or ``sigma`` times a Student-t
  with :attr:`Form.tail_dof` degrees of freedom (a scale mixture of normals).

Priors (weakly informative on the log scale): ``beta_j ~ N(0, PRIOR_BETA_SD^2)``;
``sigma^2 ~ InvGamma(PRIOR_SIGMA2_SHAPE, PRIOR_SIGMA2_SCALE)``; ``tau`` uniform on
``(0, inf)`` (Gelman 2006, Bayesian Analysis 1(3), the recommended noninformative prior for a
group-level scale with more than a few groups). The form without a per-model effect uses
the conjugate normal-inverse-gamma prior ``beta | sigma^2 ~ N(0, sigma^2 PRIOR_BETA_SD^2 I)``
and has an exact posterior, drawn independently; the forms with the effect are drawn by a
blocked Gibbs sampler: ``(beta, u)`` jointly from their normal conditional, then
``sigma^2``, ``tau^2`` and, for Student-t residuals, the per-configuration precision weights
from their conjugate conditionals. Everything is numpy; there is no MCMC dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from uqenergy.config.measured import GPUS, MeasuredConfiguration
from uqenergy.config.regression import DEFAULT_FORM, FORMS, PRECISIONS, TASKS, Form

COEFFICIENTS = (
    "intercept",
    "log_active_params",
    "log_total_params",
    "log_mean_batch",
    "log_gpu_count",
    "gpu_B200",
    "precision_fp8",
    "precision_mxfp4",
    "task_gpqa",
    "task_sourcegraph-fim",
)
PRIOR_BETA_SD = 10.0
PRIOR_SIGMA2_SHAPE = 1.0
PRIOR_SIGMA2_SCALE = 0.1

#: memory per GPU [GB]: NVIDIA H100 SXM 80 GB HBM3; HGX B200 1.44 TB HBM3e over 8 GPUs (180 GB each)
GPU_MEMORY_GB = {"H100": 80.0, "B200": 180.0}
#: bytes per weight: bfloat16 2, fp8 1, MXFP4 4 bits plus one 8-bit scale per 32 weights (4.25 bits)
BYTES_PER_PARAMETER = {"bfloat16": 2.0, "fp8": 1.0, "mxfp4": 4.25 / 8}
#: share of GPU memory the weights may take (the rest holds the KV cache); every measured configuration
#: of ML.ENERGY v3 keeps its weights under 0.8 of its GPUs' memory
WEIGHT_MEMORY_SHARE = 0.8
MAX_GPU_COUNT = 8  # the largest count measured (one node)


def _levels(values, levels: Sequence[str], what: str) -> np.ndarray:
    values = np.asarray(values)
    unknown = set(np.unique(values).tolist()) - set(levels)
    if unknown:
        raise ValueError(f"unknown {what} {sorted(unknown)}: expected one of {', '.join(levels)}")
    return values


def covariates(active_params_b, total_params_b, mean_batch, gpu_count, gpu, precision, task) -> np.ndarray:
    """The regression's covariate vectors (one row per configuration, columns :data:`COEFFICIENTS`).

    Parameters
    ----------
    active_params_b, total_params_b : array_like
        Parameters used per token and held in memory, in billions.
    mean_batch : array_like
        Mean number of sequences served at once (concurrency).
    gpu_count : array_like
        GPUs serving one instance of the model.
    gpu, precision, task : array_like of str
        One of :data:`~uqenergy.config.measured.GPUS`, :data:`PRECISIONS` and :data:`TASKS`.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, len(COEFFICIENTS))`` for inputs that broadcast to ``(n,)``.
    """
    gpu = _levels(gpu, GPUS, "GPU")
    precision = _levels(precision, PRECISIONS, "precision")
    task = _levels(task, TASKS, "task")
    columns = np.broadcast_arrays(
        np.ones(1),
        np.log(np.asarray(active_params_b, dtype=float)),
        np.log(np.asarray(total_params_b, dtype=float)),
        np.log(np.asarray(mean_batch, dtype=float)),
        np.log(np.asarray(gpu_count, dtype=float)),
        (gpu == GPUS[1]).astype(float),
        (precision == PRECISIONS[1]).astype(float),
        (precision == PRECISIONS[2]).astype(float),
        (task == TASKS[1]).astype(float),
        (task == TASKS[2]).astype(float),
    )
    return np.stack([np.atleast_1d(c) for c in columns], axis=-1)


def gpu_count_for_weights(total_params_b, precision, gpu) -> tuple[np.ndarray, np.ndarray]:
    """The fewest GPUs (1, 2, 4 or 8) whose memory holds the weights within :data:`WEIGHT_MEMORY_SHARE`.

    Parameters
    ----------
    total_params_b : array_like
        Total parameters in billions.
    precision, gpu : array_like of str
        Weight precision (:data:`BYTES_PER_PARAMETER`) and GPU (:data:`GPU_MEMORY_GB`).

    Returns
    -------
    count : numpy.ndarray of int
        GPUs per model instance, at most :data:`MAX_GPU_COUNT`.
    capped : numpy.ndarray of bool
        Where the weights would need more than :data:`MAX_GPU_COUNT` GPUs (a multi-node deployment,
        outside the measured data); the count is held at the cap there.
    """
    bytes_per = np.vectorize(BYTES_PER_PARAMETER.__getitem__, otypes=[float])(_levels(precision, PRECISIONS, "prec"))
    memory = np.vectorize(GPU_MEMORY_GB.__getitem__, otypes=[float])(_levels(gpu, GPUS, "GPU"))
    needed = np.asarray(total_params_b, dtype=float) * bytes_per / (WEIGHT_MEMORY_SHARE * memory)
    count = 2.0 ** np.ceil(np.log2(np.maximum(needed, 1.0)))
    return np.minimum(count, MAX_GPU_COUNT).astype(int), count > MAX_GPU_COUNT


@dataclass(frozen=True)
class RegressionData:
    """The measured configurations as the regression sees them."""

    covariates: np.ndarray  # (configuration, coefficient)
    log_energy: np.ndarray  # ln J per output token, (configuration,)
    model_index: np.ndarray  # index into ``models`` per configuration
    models: tuple[str, ...]  # base model ids
    gpus: np.ndarray  # GPU per configuration

    def subset(self, keep: np.ndarray) -> RegressionData:
        """The configurations where ``keep`` is true, models renumbered to those left."""
        models = tuple(m for i, m in enumerate(self.models) if np.any(keep & (self.model_index == i)))
        renumber = {self.models.index(m): j for j, m in enumerate(models)}
        index = np.array([renumber[i] for i in self.model_index[keep]], dtype=int)
        return RegressionData(self.covariates[keep], self.log_energy[keep], index, models, self.gpus[keep])


def regression_data(configurations: Sequence[MeasuredConfiguration]) -> RegressionData:
    """Covariates, log energy per output token and base-model index of measured configurations.

    Parameters
    ----------
    configurations : sequence of MeasuredConfiguration
        Rows of a measured table (:func:`uqenergy.config.measured.read_measured`).

    Returns
    -------
    RegressionData
        Models are the configurations' base model ids (FP8 and BF16 builds share one), sorted.
    """
    rows = list(configurations)
    models = tuple(sorted({c.base_model_id for c in rows}))
    x = covariates(
        [c.active_params_b for c in rows],
        [c.total_params_b for c in rows],
        [c.mean_batch for c in rows],
        [c.gpu_count for c in rows],
        [c.gpu for c in rows],
        [c.precision for c in rows],
        [c.task for c in rows],
    )
    y = np.log([c.energy_per_output_token_j for c in rows])
    index = np.array([models.index(c.base_model_id) for c in rows], dtype=int)
    return RegressionData(x, y, index, models, np.array([c.gpu for c in rows]))


@dataclass(frozen=True)
class Posterior:
    """Posterior draws of one form: arrays with leading dimensions (chain, draw)."""

    form: Form
    beta: np.ndarray  # (chain, draw, coefficient)
    sigma: np.ndarray  # (chain, draw): residual scale on the log scale
    tau: np.ndarray  # (chain, draw): SD of the per-model effect (zero without it)
    model_effect: np.ndarray  # (chain, draw, model) (zeros without it)
    models: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return self.sigma.size

    def flat(self, name: str) -> np.ndarray:
        """The draws of ``name`` with chains stacked: (sample, ...)."""
        values = getattr(self, name)
        return values.reshape(-1, *values.shape[2:])


def conjugate_posterior(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Normal-inverse-gamma posterior of ``y = x beta + eps``, ``eps ~ N(0, sigma^2)``.

    Prior ``beta | sigma^2 ~ N(0, sigma^2 V0)`` with ``V0 = PRIOR_BETA_SD^2 I`` and
    ``sigma^2 ~ InvGamma(PRIOR_SIGMA2_SHAPE, PRIOR_SIGMA2_SCALE)``.

    Returns
    -------
    mean, cov_unscaled, shape, scale
        ``beta | sigma^2, y ~ N(mean, sigma^2 cov_unscaled)``, ``sigma^2 | y ~ InvGamma(shape, scale)``.
    """
    precision0 = np.eye(x.shape[1]) / PRIOR_BETA_SD**2
    precision = precision0 + x.T @ x
    cov = np.linalg.inv(precision)
    mean = cov @ (x.T @ y)
    shape = PRIOR_SIGMA2_SHAPE + y.size / 2
    scale = PRIOR_SIGMA2_SCALE + 0.5 * float(y @ y - mean @ precision @ mean)
    return mean, cov, shape, scale


def _pooled(data: RegressionData, chains: int, draws: int, seed: int, form: Form) -> Posterior:
    mean, cov, shape, scale = conjugate_posterior(data.covariates, data.log_energy)
    rng = np.random.default_rng(seed)
    sigma2 = scale / rng.gamma(shape, 1.0, size=(chains, draws))
    z = rng.standard_normal((chains, draws, mean.size))
    beta = mean + np.sqrt(sigma2)[..., None] * (z @ np.linalg.cholesky(cov).T)
    zeros = np.zeros((chains, draws))
    return Posterior(form, beta, np.sqrt(sigma2), zeros, np.zeros((chains, draws, len(data.models))), data.models)


def _gibbs_chain(data: RegressionData, form: Form, draws: int, warmup: int, rng: np.random.Generator):
    x, y = data.covariates, data.log_energy
    n, p = x.shape
    j = len(data.models)
    w = np.hstack([x, np.eye(j)[data.model_index]])  # (n, p + j): covariates and model indicators
    weights = np.ones(n)  # precision weights of the residuals (all one for normal residuals)
    sigma2, tau2 = float(np.var(y)), 0.1
    heavy = math.isfinite(form.tail_dof)
    out_theta = np.empty((draws, p + j))
    out_sigma, out_tau = np.empty(draws), np.empty(draws)
    wtw = w.T @ w
    for step in range(warmup + draws):
        prior_precision = np.concatenate([np.full(p, PRIOR_BETA_SD**-2), np.full(j, 1.0 / tau2)])
        gram = (w.T * weights) @ w if heavy else wtw
        precision = gram / sigma2 + np.diag(prior_precision)
        chol = np.linalg.cholesky(precision)
        mean = np.linalg.solve(precision, w.T @ (weights * y) / sigma2)
        theta = mean + np.linalg.solve(chol.T, rng.standard_normal(p + j))
        resid = y - w @ theta
        sigma2 = (PRIOR_SIGMA2_SCALE + 0.5 * np.sum(weights * resid**2)) / rng.gamma(PRIOR_SIGMA2_SHAPE + n / 2)
        effects = theta[p:]
        tau2 = 0.5 * float(effects @ effects) / rng.gamma((j - 1) / 2)
        if heavy:
            nu = form.tail_dof
            weights = rng.gamma((nu + 1) / 2, 1.0, n) / ((nu + resid**2 / sigma2) / 2)
        if step >= warmup:
            out_theta[step - warmup], out_sigma[step - warmup], out_tau[step - warmup] = theta, sigma2, tau2
    return out_theta[:, :p], np.sqrt(out_sigma), np.sqrt(out_tau), out_theta[:, p:]


def fit_posterior(
    data: RegressionData,
    form: Form | str = DEFAULT_FORM,
    *,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 500,
    seed: int = 0,
) -> Posterior:
    """Posterior draws of the regression in one form.

    Parameters
    ----------
    data : RegressionData
        The measured configurations (:func:`regression_data`).
    form : Form or str
        A form or its name in :data:`FORMS`.
    chains, draws : int
        Chains and kept draws per chain (the exact form draws them independently).
    warmup : int
        Gibbs iterations dropped at the start of each chain.
    seed : int
        Seed of the chains' independent streams.

    Returns
    -------
    Posterior
        Draws with dimensions (chain, draw, ...).
    """
    form = FORMS[form] if isinstance(form, str) else form
    if not form.model_effect:
        if math.isfinite(form.tail_dof):
            raise ValueError("the form without a per-model effect has normal residuals (its posterior is exact)")
        return _pooled(data, chains, draws, seed, form)
    streams = np.random.SeedSequence(seed).spawn(chains)
    parts = [_gibbs_chain(data, form, draws, warmup, np.random.default_rng(s)) for s in streams]
    beta, sigma, tau, effects = (np.stack([part[k] for part in parts]) for k in range(4))
    return Posterior(form, beta, sigma, tau, effects, data.models)


def residual_draws(form: Form, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One residual per entry of ``sigma``: normal, or ``sigma`` times a Student-t of the form's dof."""
    z = rng.standard_normal(sigma.shape)
    if math.isfinite(form.tail_dof):
        z = z / np.sqrt(rng.gamma(form.tail_dof / 2, 2 / form.tail_dof, sigma.shape))
    return sigma * z


def log_likelihood(posterior: Posterior, data: RegressionData) -> np.ndarray:
    """Pointwise log density of each measured ln energy per token: (chain, draw, configuration)."""
    mu = posterior.beta @ data.covariates.T + posterior.model_effect[..., data.model_index]
    z = (data.log_energy - mu) / posterior.sigma[..., None]
    log_sigma = np.log(posterior.sigma)[..., None]
    nu = posterior.form.tail_dof
    if math.isinf(nu):
        return -0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)
    norm = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    return norm - log_sigma - (nu + 1) / 2 * np.log1p(z**2 / nu)


def replicate_observed(posterior: Posterior, data: RegressionData, rng: np.random.Generator) -> np.ndarray:
    """Posterior predictive ln energy per token of the measured configurations: (chain, draw, configuration)."""
    mu = posterior.beta @ data.covariates.T + posterior.model_effect[..., data.model_index]
    sigma = np.broadcast_to(posterior.sigma[..., None], mu.shape)
    return mu + residual_draws(posterior.form, sigma, rng)


def predict_new_model(posterior: Posterior, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ln energy per output token of configurations of models no benchmark measured, one per row of ``x``.

    Each row takes a posterior sample at random, a fresh per-model effect ``N(0, tau^2)`` and a
    residual: a draw from the posterior predictive distribution of an unseen model.

    Parameters
    ----------
    posterior : Posterior
        A fitted form.
    x : numpy.ndarray
        Covariates (row, coefficient) from :func:`covariates`.
    rng : numpy.random.Generator
        Random numbers for the sample index, the effect and the residual.

    Returns
    -------
    numpy.ndarray
        ln J per output token at the accelerator rung, shape (row,).
    """
    sample = rng.integers(posterior.n_samples, size=x.shape[0])
    beta, sigma, tau = posterior.flat("beta")[sample], posterior.flat("sigma")[sample], posterior.flat("tau")[sample]
    effect = tau * rng.standard_normal(x.shape[0])
    return np.einsum("ij,ij->i", x, beta) + effect + residual_draws(posterior.form, sigma, rng)

"""Benchmark table -> per-model node throughput model (tokens/s).

Oviedo et al. (arXiv:2509.20241, methods) fit, per model, on the benchmark rows
of one quantisation with numeric lengths,

    ln TPS = b0 + b1 ln L_in + b2 ln L_out        (ordinary least squares)

and cap the prediction at the model's largest observed TPS; a model with fewer
than 3 such rows uses its largest observed TPS as a constant. The fit's
uncertainty (residual SD and coefficient covariance) is kept so that studies
can propagate it; the paper-compatible studies leave it off.

A model defined in a study may give its throughput instead
(:class:`~uqenergy.config.models.GivenThroughput`): a number is a constant; a
log-normal law is a constant at its median whose ln TPS moves by ``log_sd`` per
unit of ``throughput_z``, capped at its P99.9.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from uqenergy.config.benchmarks import BenchmarkRow, usable_rows
from uqenergy.config.models import GivenThroughput
from uqenergy.config.study import Study

COEFFICIENTS = ("intercept", "log_input_tokens", "log_output_tokens")
Z999 = 3.090232306167813  # the standard normal's 99.9th percentile: where a given log-normal throughput is capped


MAX_CONDITION = 1e8  # beyond it (X'X)^-1 loses half the float digits: (nearly) collinear lengths, fitted as a constant


def _design(input_tokens, output_tokens) -> np.ndarray:
    return np.column_stack([np.ones(len(input_tokens)), np.log(input_tokens), np.log(output_tokens)])


def _fit_one(rows: list[BenchmarkRow]) -> dict:
    tps = np.array([r.tokens_per_s for r in rows])
    x = _design([r.input_tokens for r in rows], [r.output_tokens for r in rows])
    if len(rows) < 3 or np.linalg.cond(x) > MAX_CONDITION:  # lengths (nearly) collinear: no plane to fit
        return dict(
            method="constant",
            coefficients=np.array([np.log(tps.max()), 0.0, 0.0]),
            tps_max=tps.max(),
            dof=0,
            rss=0.0,
            xtx_inv=np.zeros((3, 3)),
            n_points=len(rows),
        )
    coefficients, *_ = np.linalg.lstsq(x, np.log(tps), rcond=None)
    residuals = np.log(tps) - x @ coefficients
    return dict(
        method="loglinear",
        coefficients=coefficients,
        tps_max=tps.max(),
        dof=len(rows) - 3,
        rss=float(residuals @ residuals),
        xtx_inv=np.linalg.inv(x.T @ x),
        n_points=len(rows),
    )


def _given(given: GivenThroughput) -> dict:
    log_median = math.log(given.median_tokens_per_s)
    return dict(
        method="given" if given.log_sd == 0 else "given lognormal",
        coefficients=np.array([log_median, 0.0, 0.0]),
        tps_max=math.exp(log_median + Z999 * given.log_sd),
        dof=0,
        rss=0.0,
        xtx_inv=np.zeros((3, 3)),
        n_points=0,
    )


def fit_throughput(
    rows: list[BenchmarkRow],
    models: list[str],
    quantization: str = "FP8",
    file=None,
    given: dict[str, GivenThroughput] | None = None,
    uncertainty: bool = True,
) -> xr.Dataset:
    """Per-model log-linear throughput fits as a Dataset with dims ``model`` and ``coef``.

    Residual SD is per model where it has degrees of freedom, else pooled over
    the models that have them (a model with exactly 3 points, or a constant);
    such models get no coefficient covariance, only the pooled residual SD.
    Models in ``given`` take their throughput from it, with its ``log_sd`` as residual
    SD; without ``uncertainty`` the fitted models' residual SD and covariance are 0.
    """
    given = given or {}
    fits = [_given(given[m]) if m in given else _fit_one(usable_rows(rows, m, quantization, file)) for m in models]
    dof = np.array([f["dof"] for f in fits])
    rss = np.array([f["rss"] for f in fits])
    pooled_sd = math.sqrt(rss.sum() / dof.sum()) if dof.sum() > 0 else 0.0
    residual_sd = np.where(dof > 0, np.sqrt(rss / np.maximum(dof, 1)), pooled_sd) * float(uncertainty)
    residual_sd = np.array([given[m].log_sd if m in given else sd for m, sd in zip(models, residual_sd)])
    # An exactly determined fit (3 rows, 3 coefficients) cannot estimate its own coefficient
    # covariance: pooled s^2 (X'X)^-1 there extrapolates to SDs of 3.5 in ln TPS at 300 tokens.
    # Such models (and constants) carry the pooled residual SD alone.
    covariance = np.stack(
        [
            residual_sd[i] ** 2 * f["xtx_inv"] if f["dof"] > 0 and uncertainty else np.zeros((3, 3))
            for i, f in enumerate(fits)
        ]
    )
    return xr.Dataset(
        {
            "coefficients": (("model", "coef"), np.stack([f["coefficients"] for f in fits])),
            "tps_max": ("model", np.array([f["tps_max"] for f in fits]), {"units": "tokens/s"}),
            "residual_sd": ("model", residual_sd, {"units": "ln(tokens/s)"}),
            "covariance": (("model", "coef", "coef2"), covariance),
            "n_points": ("model", np.array([f["n_points"] for f in fits])),
            "method": ("model", np.array([f["method"] for f in fits])),
        },
        coords={"model": list(models), "coef": list(COEFFICIENTS), "coef2": list(COEFFICIENTS)},
        attrs={"quantization": quantization, "equation": "ln TPS = b0 + b1 ln L_in + b2 ln L_out, capped at max TPS"},
    )


def tokens_per_s(
    fits: xr.Dataset, input_tokens: xr.DataArray, output_tokens: xr.DataArray, z: xr.DataArray | None = None
) -> xr.DataArray:
    """Node throughput (tokens/s) at the given lengths, capped at the model's largest observed TPS.

    Lengths below one token are evaluated at one token (a zero-token query has
    zero energy whatever its throughput). ``z`` (standard normal draws) shifts
    ln TPS by ``z`` predictive standard deviations of the fit, *after* the cap:
    the cap bounds the fit's extrapolation beyond the benchmarks, and the cap is
    itself a benchmark figure, so the uncertainty of production throughput
    against the benchmarks moves the capped prediction up and down alike.
    (Shifting before the cap would clip every upward shift of a model at its cap
    and leave only the downward ones: a one-sided bias towards slower serving.)
    """
    design: list[Any] = [1.0, np.log(np.maximum(input_tokens, 1.0)), np.log(np.maximum(output_tokens, 1.0))]
    b = fits["coefficients"]
    log_tps = b.isel(coef=0) + b.isel(coef=1) * design[1] + b.isel(coef=2) * design[2]
    tps = xr.apply_ufunc(np.minimum, np.exp(log_tps), fits["tps_max"])
    if z is not None:
        tps = tps * np.exp(z * _predictive_sd(fits, design))
    return tps.drop_vars("coef", errors="ignore")


def _predictive_sd(fits: xr.Dataset, design) -> xr.DataArray:
    """sqrt(x' Cov x + s^2): the SD of a new ln TPS observation at design point x."""
    cov = fits["covariance"]
    quad = sum(cov.isel(coef=i, coef2=j) * design[i] * design[j] for i in range(3) for j in range(3))
    return np.sqrt(quad + fits["residual_sd"] ** 2).drop_vars(["coef", "coef2"], errors="ignore")


def study_fits(study: Study) -> xr.Dataset:
    """The throughput fits of a study's models, on its benchmark rows of its quantisation (or as the study gives)."""
    return fit_throughput(
        study.benchmarks,
        study.models,
        study.quantization,
        study.throughput_file,
        study.given_throughput,
        study.throughput_uncertainty,
    )


def _length(value: float | None) -> str:
    return "variable" if value is None else f"{value:g}"


def throughput_records(study: Study) -> list[dict]:
    """What each model's throughput is, for the report: per model, the curve or value used, then each benchmark
    row behind it (hardware, quantisation, tokens/s at its lengths, source)."""
    fits = study_fits(study)
    records = []
    for model in study.models:
        fit = fits.sel(model=model)
        method, cap = str(fit["method"].values), float(fit["tps_max"])
        if model in study.given_throughput:
            inline = next(m for m in study.inline_models if m.name == model)
            curve, hardware, source = study.given_throughput[model].description, inline.hardware, inline.source
            rows: list[BenchmarkRow] = []
        else:
            rows = usable_rows(study.benchmarks, model, study.quantization, study.throughput_file)
            b0, b1, b2 = (float(v) for v in fit["coefficients"].values)
            curve = (
                f"ln TPS = {b0:.3g} {b1:+.3g} ln L_in {b2:+.3g} ln L_out, capped at {cap:,.0f} tokens/s"
                if method == "loglinear"
                else f"{cap:,.0f} tokens/s, the largest of its rows (fewer than 3 to fit)"
            )
            hardware = ", ".join(dict.fromkeys(r.hardware for r in rows))
            source = "; ".join(dict.fromkeys(r.source for r in rows))
        records.append(
            {
                "model": model,
                "what": f"{method}, {len(rows)} rows {study.quantization}" if rows else method,
                "throughput": curve,
                "hardware": hardware,
                "source": source,
            }
        )
        records += [
            {
                "model": model,
                "what": f"row {r.line}" if r.line else "point",
                "throughput": f"{r.tokens_per_s:,.0f} tokens/s at L_in {_length(r.input_tokens)}, "
                f"L_out {_length(r.output_tokens)}, batch {_length(r.batch_size)}",
                "hardware": f"{r.hardware} {r.quantization}",
                "source": r.source,
            }
            for r in rows
        ]
    return records

"""Benchmark table -> per-model node throughput model (tokens/s).

Oviedo et al. (arXiv:2509.20241, methods) fit, per model, on the benchmark rows
of one quantisation with numeric lengths,

    ln TPS = b0 + b1 ln L_in + b2 ln L_out        (ordinary least squares)

and cap the prediction at the model's largest observed TPS; a model with fewer
than 3 such rows uses its largest observed TPS as a constant. The fit's
uncertainty (residual SD and coefficient covariance) is kept so that studies
can propagate it; the paper-compatible studies leave it off.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError

COLUMNS = ("model", "hardware", "quantization", "tokens_per_s", "input_tokens", "output_tokens",
           "batch_size", "node_power_kw", "source")
COEFFICIENTS = ("intercept", "log_input_tokens", "log_output_tokens")
VARIABLE_LENGTH = "variable"
DYNAMIC_BATCH = "dynamic"


@dataclass(frozen=True)
class BenchmarkRow:
    model: str
    hardware: str
    quantization: str
    tokens_per_s: float
    input_tokens: float | None  # None: not fixed in the benchmark
    output_tokens: float | None
    batch_size: float | None  # None: dynamic batching
    node_power_kw: float
    source: str
    line: int


def _number(text: str, file, key: str, *, sentinel: str | None = None) -> float | None:
    value = text.strip()
    if sentinel is not None and value.lower() == sentinel:
        return None
    allowed = "a positive number" + (f" or '{sentinel}'" if sentinel else "")
    try:
        number = float(value)
    except ValueError:
        raise InputError(file, key, f"{value!r} is not a number", allowed) from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(file, key, f"{value} is not a positive finite number", allowed)
    return number


def read_benchmarks(path: Path) -> list[BenchmarkRow]:
    """Read and validate a benchmark CSV (``#`` lines are comments)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, None, "no such file", "an existing CSV benchmark table") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot be read as text: {exc}", "a UTF-8 CSV file") from None
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(path, None, "has no header and no rows", "a CSV with columns " + ", ".join(COLUMNS))
    reader = csv.reader([line for _, line in lines])
    header = [h.strip() for h in next(reader)]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or len(set(header)) != len(header) or set(header) != set(COLUMNS):
        bad = unknown[0] if unknown else next((c for c in COLUMNS if c not in header), "header")
        raise InputError(path, f"column {bad}", "unknown, missing or repeated column", "columns " + ", ".join(COLUMNS))
    rows = []
    for (line_no, _), cells in zip(lines[1:], reader):
        if len(cells) != len(header):
            raise InputError(path, f"line {line_no}", f"has {len(cells)} cells", f"{len(header)} cells, one per column")
        cell = dict(zip(header, (c.strip() for c in cells)))
        where = f"line {line_no}: "
        for text_col in ("model", "source"):
            if not cell[text_col]:
                raise InputError(path, f"{where}{text_col}", "is empty", "a model name" if text_col == "model" else "a citation")
        rows.append(BenchmarkRow(
            model=cell["model"], hardware=cell["hardware"], quantization=cell["quantization"],
            tokens_per_s=_number(cell["tokens_per_s"], path, f"{where}tokens_per_s"),
            input_tokens=_number(cell["input_tokens"], path, f"{where}input_tokens", sentinel=VARIABLE_LENGTH),
            output_tokens=_number(cell["output_tokens"], path, f"{where}output_tokens", sentinel=VARIABLE_LENGTH),
            batch_size=_number(cell["batch_size"], path, f"{where}batch_size", sentinel=DYNAMIC_BATCH),
            node_power_kw=_number(cell["node_power_kw"], path, f"{where}node_power_kw"),
            source=cell["source"], line=line_no,
        ))
    if not rows:
        raise InputError(path, None, "has a header but no rows", "at least one benchmark row")
    return rows


def _design(input_tokens, output_tokens) -> np.ndarray:
    return np.column_stack([np.ones(len(input_tokens)), np.log(input_tokens), np.log(output_tokens)])


def _fit_one(rows: list[BenchmarkRow]) -> dict:
    tps = np.array([r.tokens_per_s for r in rows])
    x = _design([r.input_tokens for r in rows], [r.output_tokens for r in rows])
    if len(rows) < 3 or np.linalg.matrix_rank(x) < 3:
        return dict(method="constant", coefficients=np.array([np.log(tps.max()), 0.0, 0.0]), tps_max=tps.max(),
                    dof=0, rss=0.0, xtx_inv=np.zeros((3, 3)), n_points=len(rows))
    coefficients, *_ = np.linalg.lstsq(x, np.log(tps), rcond=None)
    residuals = np.log(tps) - x @ coefficients
    return dict(method="loglinear", coefficients=coefficients, tps_max=tps.max(), dof=len(rows) - 3,
                rss=float(residuals @ residuals), xtx_inv=np.linalg.inv(x.T @ x), n_points=len(rows))


def fit_throughput(rows: list[BenchmarkRow], models: list[str], quantization: str = "FP8", file=None) -> xr.Dataset:
    """Per-model log-linear throughput fits as a Dataset with dims ``model`` and ``coef``.

    Residual SD is per model where it has degrees of freedom, else pooled over
    the models that have them (a model with exactly 3 points, or a constant);
    such models get no coefficient covariance, only the pooled residual SD.
    """
    fits = []
    for model in models:
        usable = [r for r in rows if r.model == model and r.quantization == quantization
                  and r.input_tokens is not None and r.output_tokens is not None]
        if not usable:
            known = sorted({r.model for r in rows if r.quantization == quantization
                            and r.input_tokens is not None and r.output_tokens is not None})
            raise InputError(file, f"model {model!r}", f"has no {quantization} rows with numeric lengths",
                             "models that have: " + (", ".join(known) or "none"))
        fits.append(_fit_one(usable))
    dof = np.array([f["dof"] for f in fits])
    rss = np.array([f["rss"] for f in fits])
    pooled_sd = math.sqrt(rss.sum() / dof.sum()) if dof.sum() > 0 else 0.0
    residual_sd = np.where(dof > 0, np.sqrt(rss / np.maximum(dof, 1)), pooled_sd)
    # An exactly determined fit (3 rows, 3 coefficients) cannot estimate its own coefficient
    # covariance: pooled s^2 (X'X)^-1 there extrapolates to SDs of 3.5 in ln TPS at 300 tokens.
    # Such models (and constants) carry the pooled residual SD alone.
    covariance = np.stack([residual_sd[i] ** 2 * f["xtx_inv"] if f["dof"] > 0 else np.zeros((3, 3))
                           for i, f in enumerate(fits)])
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


def tokens_per_s(fits: xr.Dataset, input_tokens: xr.DataArray, output_tokens: xr.DataArray,
                 z: xr.DataArray | None = None) -> xr.DataArray:
    """Node throughput (tokens/s) at the given lengths, capped at the model's largest observed TPS.

    Lengths below one token are evaluated at one token (a zero-token query has
    zero energy whatever its throughput). ``z`` (standard normal draws) shifts
    ln TPS by ``z`` predictive standard deviations of the fit.
    """
    design = [1.0, np.log(np.maximum(input_tokens, 1.0)), np.log(np.maximum(output_tokens, 1.0))]
    b = fits["coefficients"]
    log_tps = sum(b.isel(coef=i) * term for i, term in enumerate(design))
    if z is not None:
        log_tps = log_tps + z * _predictive_sd(fits, design)
    return np.minimum(np.exp(log_tps), fits["tps_max"]).drop_vars("coef", errors="ignore")


def _predictive_sd(fits: xr.Dataset, design) -> xr.DataArray:
    """sqrt(x' Cov x + s^2): the SD of a new ln TPS observation at design point x."""
    cov = fits["covariance"]
    quad = sum(cov.isel(coef=i, coef2=j) * design[i] * design[j] for i in range(3) for j in range(3))
    return np.sqrt(quad + fits["residual_sd"] ** 2).drop_vars(["coef", "coef2"], errors="ignore")

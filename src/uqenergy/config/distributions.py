"""Prior specifications -> distributions that sample and invert their CDF.

Every distribution maps uniform numbers through its inverse CDF (``ppf``), so
plain Monte Carlo, Latin hypercube and SALib's Saltelli designs all share one
code path. Parameterisations follow how the literature states a figure: a
log-normal "fitted to P5/P95" uses

    sigma = (ln P95 - ln P5) / (2 z_0.95),   mu = ln P5 + z_0.95 sigma

(Oviedo et al., arXiv:2509.20241, methods).

The laws are closed forms in numpy and :mod:`math` (the normal CDF through
``math.erfc``, its inverse through ``scipy.special.ndtri``, imported when first
used), computed in the same order of operations as :mod:`scipy.stats`, so that
their numbers are scipy's to the last bit while reading and validating a file
imports no part of scipy. Only the beta law goes through ``scipy.stats`` (its
:attr:`Distribution.frozen`, built when first used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from uqenergy.config.errors import InputError, require_number

Z95 = 1.6448536269514722  # scipy.special.ndtri(0.95): the P5/P95 quantile of a standard normal (a test checks)

#: Accepted parameter sets per distribution, in the order they are tried.
PARAMETER_SETS: dict[str, tuple[tuple[str, ...], ...]] = {
    "lognormal": (("p5", "p95"), ("median", "gsd"), ("mu", "sigma")),
    "exponential": (("median",), ("mean",)),
    "uniform": (("low", "high"),),
    "triangular": (("low", "mode", "high"),),
    "normal": (("mean", "sd"),),
    "beta": (("alpha", "beta"),),
    "fixed": (("value",),),
    "categorical": (("values",),),
}
#: Optional parameters a distribution accepts on top of its parameter set.
OPTIONAL_PARAMETERS: dict[str, tuple[str, ...]] = {"beta": ("loc", "scale"), "categorical": ("weights",)}


def parameters_of(dist: str) -> frozenset[str]:
    """Every parameter a distribution accepts: its parameter sets and its optional parameters."""
    return frozenset({n for ns in PARAMETER_SETS.get(dist, ()) for n in ns} | set(OPTIONAL_PARAMETERS.get(dist, ())))


def lognormal_from_p5_p95(p5: float, p95: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal whose 5th and 95th percentiles are ``p5`` and ``p95``."""
    sigma = (np.log(p95) - np.log(p5)) / (2 * Z95)
    return float(np.log(p5) + Z95 * sigma), float(sigma)


#: The :mod:`scipy.stats` name of each continuous law; :attr:`Distribution.parameters` are its keyword parameters.
SCIPY_NAMES = {
    "lognormal": "lognorm",
    "exponential": "expon",
    "uniform": "uniform",
    "triangular": "triang",
    "normal": "norm",
    "beta": "beta",
}


def _ndtri(u: np.ndarray) -> np.ndarray:
    """The standard normal inverse CDF (``scipy.special.ndtri``, imported on first use)."""
    from scipy.special import ndtri

    return ndtri(u)


def _ndtr_array(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF (``scipy.special.ndtr``, imported on first use)."""
    from scipy.special import ndtr

    return ndtr(z)


def _ndtr_number(z: float) -> float:
    """The standard normal CDF of a number in pure Python (cephes' ``ndtr`` with :func:`math.erf`): within 1e-13
    of scipy's (relative), and no import of scipy."""
    x = float(z) * math.sqrt(0.5)
    if abs(x) < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(x)
    tail = 0.5 * math.erfc(abs(x))
    return 1.0 - tail if x > 0 else tail


@dataclass(frozen=True)
class Distribution:
    """A univariate distribution usable by every design: ``ppf`` maps U(0, 1) onto it.

    The continuous laws hold scipy's keyword parameters (:data:`SCIPY_NAMES`): ``s`` and
    ``scale`` (log-normal), ``scale`` (exponential), ``loc`` and ``scale`` (uniform, normal),
    ``c``, ``loc`` and ``scale`` (triangular), ``a``, ``b``, ``loc`` and ``scale`` (beta).
    """

    name: str
    parameters: tuple[tuple[str, float], ...] = ()  # (name, value) pairs, see above
    value: float | None = None  # fixed
    categories: tuple = ()  # categorical values
    cumulative_weights: np.ndarray | None = None  # categorical

    @property
    def is_categorical(self) -> bool:
        return self.name == "categorical"

    @property
    def kwds(self) -> dict[str, float]:
        """The parameters by name."""
        return dict(self.parameters)

    @cached_property
    def frozen(self) -> Any:
        """The same law as a frozen :mod:`scipy.stats` distribution (None for fixed and categorical ones).

        Built when first asked for: only the beta law uses it; reading and sampling the others imports no scipy.stats.
        """
        if self.name not in SCIPY_NAMES:
            return None
        from scipy import stats

        return getattr(stats, SCIPY_NAMES[self.name])(**self.kwds)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF, in scipy's order of operations (the same numbers). Categorical ones return category *indices*."""
        u = np.asarray(u, dtype=float)
        k = self.kwds
        if self.name == "fixed":
            return np.full(u.shape, self.value)
        if self.cumulative_weights is not None:  # categorical
            return np.searchsorted(self.cumulative_weights, u, side="right").clip(max=len(self.categories) - 1)
        if self.name == "lognormal":
            return k["scale"] * np.exp(k["s"] * _ndtri(u))
        if self.name == "exponential":
            return -k["scale"] * np.log1p(-u)
        if self.name == "uniform":
            return u * k["scale"] + k["loc"]
        if self.name == "normal":
            return _ndtri(u) * k["scale"] + k["loc"]
        if self.name == "triangular":
            c = k["c"]
            return np.where(u < c, np.sqrt(c * u), 1 - np.sqrt((1 - c) * (1 - u))) * k["scale"] + k["loc"]
        return self.frozen.ppf(u)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws; the common laws use numpy's direct samplers, the rest the inverse CDF."""
        if self.name == "lognormal":
            return self.kwds["scale"] * np.exp(self.kwds["s"] * rng.standard_normal(size))
        if self.name == "exponential":
            return rng.exponential(self.kwds["scale"], size)
        return self.ppf(rng.random(size))

    def cdf(self, x):
        """The CDF at ``x`` (scipy's numbers)."""
        return self._cdf(np.asarray(x, dtype=float), _ndtr_array)

    def _cdf(self, x, ndtr):
        """The CDF at ``x``, with ``ndtr`` the standard normal CDF to use."""
        if self.name == "fixed":
            return np.where(x >= self.value, 1.0, 0.0)
        if self.is_categorical:
            raise TypeError("a categorical distribution has no numeric CDF")
        k = self.kwds
        z = (x - k.get("loc", 0.0)) / k["scale"]  # the standardised law's argument
        if self.name == "lognormal":
            with np.errstate(divide="ignore"):
                return ndtr(np.log(np.maximum(z, 0.0)) / k["s"])
        if self.name == "normal":
            return ndtr(z)
        if self.name == "exponential":
            return -np.expm1(-np.maximum(z, 0.0))
        t = np.clip(z, 0.0, 1.0)
        if self.name == "uniform":
            return t
        if self.name == "triangular":  # scipy's three cases
            c = k["c"]
            return (
                2 * t - t * t
                if c == 0
                else t * t
                if c == 1
                else np.where(t < c, t * t / c, (t * t - 2 * t + c) / (c - 1))
            )
        from scipy.special import betainc  # beta: no closed form

        return betainc(k["a"], k["b"], t)

    def median(self) -> float:
        if self.is_categorical:
            raise TypeError("a categorical distribution has no median")
        return float(self.ppf(np.array(0.5)))

    def mean(self) -> float:
        if self.value is not None:  # fixed
            return self.value
        k = self.kwds
        if self.name == "lognormal":
            return k["scale"] * math.exp(k["s"] ** 2 / 2)
        if self.name == "exponential":
            return k["scale"]
        if self.name in ("uniform", "normal"):
            return k["loc"] + (k["scale"] / 2 if self.name == "uniform" else 0.0)
        if self.name == "triangular":
            return k["loc"] + k["scale"] * (1 + k["c"]) / 3
        return float(self.frozen.mean())

    def mass_outside(self, low: float, high: float) -> float:
        """Probability mass below ``low`` or above ``high``, computed without scipy (but for the beta law)."""
        if self.cumulative_weights is not None:  # categorical: the weight of its numeric values outside
            weights = np.diff(self.cumulative_weights, prepend=0.0)
            numbers = [
                v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in self.categories
            ]
            values = np.array(numbers, dtype=float)
            return float(weights[(values < low) | (values > high)].sum())
        if self.value is not None:  # fixed
            return float(not low <= self.value <= high)
        below = float(self._cdf(low, _ndtr_number)) if math.isfinite(low) else 0.0
        above = 1.0 - float(self._cdf(high, _ndtr_number)) if math.isfinite(high) else 0.0
        return below + above

    def truncated(self, low: float, high: float) -> Distribution | Truncated:
        """The same law restricted to [low, high] and renormalised."""
        if self.name in ("fixed", "categorical"):
            return self
        return Truncated(self, low, high)


@dataclass(frozen=True)
class Truncated:
    """A continuous law restricted to [low, high] by inverse-CDF rescaling."""

    base: Distribution
    low: float
    high: float

    is_categorical = False

    @property
    def name(self) -> str:
        return f"truncated {self.base.name}"

    @cached_property
    def _cdf_range(self) -> tuple[float, float]:
        """The base law's CDF at the bounds."""
        low, high = self.low, self.high
        c_low = float(self.base.cdf(low)) if math.isfinite(low) else 0.0
        return c_low, float(self.base.cdf(high)) if math.isfinite(high) else 1.0

    def ppf(self, u):
        c_low, c_high = self._cdf_range
        return np.clip(self.base.ppf(c_low + u * (c_high - c_low)), self.low, self.high)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.ppf(rng.random(size))

    def cdf(self, x):
        c_low, c_high = self._cdf_range
        return np.clip((self.base.cdf(x) - c_low) / (c_high - c_low), 0.0, 1.0)

    def median(self) -> float:
        return float(self.ppf(np.array(0.5)))

    def mean(self):
        u = (np.arange(20_000) + 0.5) / 20_000
        return float(np.mean(self.ppf(u)))


def _numbers(spec: dict, names: tuple[str, ...], file, key: str) -> list[float]:
    return [require_number(spec[n], file, f"{key}.{n}") for n in names]


def _positive(values: dict[str, float], file, key: str) -> None:
    for name, value in values.items():
        if value <= 0:
            raise InputError(file, f"{key}.{name}", f"{value:g} is not positive", "a positive number")


def _ordered(lower: tuple[str, float], upper: tuple[str, float], file, key: str, strict: bool = True) -> None:
    (ln_, lv), (un, uv) = lower, upper
    if lv > uv or (strict and lv == uv):
        raise InputError(file, f"{key}.{ln_}", f"{ln_} = {lv:g} is not below {un} = {uv:g}", f"{ln_} < {un}")


def _parameter_set(spec: dict, dist: str, file, key: str) -> tuple[str, ...]:
    for names in PARAMETER_SETS[dist]:
        if all(n in spec for n in names):
            return names
    options = " or ".join("+".join(ns) for ns in PARAMETER_SETS[dist])
    raise InputError(file, key, f"{dist} distribution is missing its parameters", f"give {options}")


def from_spec(spec: dict, file=None, key: str = "prior") -> Distribution:
    """Build a :class:`Distribution` from the distribution keys of a prior table.

    ``spec`` holds ``dist`` and its parameters (see :data:`PARAMETER_SETS`);
    other keys (unit, bounds, ...) are ignored here and checked by ``priors``.
    """
    dist = spec.get("dist")
    if not isinstance(dist, str) or dist not in PARAMETER_SETS:
        raise InputError(file, f"{key}.dist", f"unknown distribution {dist!r}", "one of " + ", ".join(PARAMETER_SETS))
    names = _parameter_set(spec, dist, file, key)
    extra = [n for ns in PARAMETER_SETS[dist] for n in ns if n in spec and n not in names]
    if extra:
        raise InputError(file, f"{key}.{extra[0]}", f"conflicts with {'+'.join(names)}", "give one parameter set")
    if dist == "categorical":
        return _categorical(spec, file, key)
    values = dict(zip(names, _numbers(spec, names, file, key)))
    if dist == "lognormal":
        if "p5" in values:
            _positive(values, file, key)
            _ordered(("p5", values["p5"]), ("p95", values["p95"]), file, key)
            mu, sigma = lognormal_from_p5_p95(values["p5"], values["p95"])
        elif "median" in values:
            _positive(values, file, key)
            if values["gsd"] <= 1:
                raise InputError(file, f"{key}.gsd", f"{values['gsd']:g} is not above 1", "a geometric SD > 1")
            mu, sigma = np.log(values["median"]), np.log(values["gsd"])
        else:
            _positive({"sigma": values["sigma"]}, file, key)
            mu, sigma = values["mu"], values["sigma"]
        return Distribution(dist, (("s", float(sigma)), ("scale", float(np.exp(mu)))))
    if dist == "exponential":
        _positive(values, file, key)
        mean = values["mean"] if "mean" in values else values["median"] / np.log(2)
        return Distribution(dist, (("scale", float(mean)),))
    if dist == "uniform":
        _ordered(("low", values["low"]), ("high", values["high"]), file, key)
        return Distribution(dist, (("loc", values["low"]), ("scale", values["high"] - values["low"])))
    if dist == "triangular":
        low, mode, high = values["low"], values["mode"], values["high"]
        _ordered(("low", low), ("high", high), file, key)
        if not low <= mode <= high:
            raise InputError(file, f"{key}.mode", f"{mode:g} is outside [{low:g}, {high:g}]", "low <= mode <= high")
        return Distribution(dist, (("c", (mode - low) / (high - low)), ("loc", low), ("scale", high - low)))
    if dist == "normal":
        _positive({"sd": values["sd"]}, file, key)
        return Distribution(dist, (("loc", values["mean"]), ("scale", values["sd"])))
    if dist == "beta":
        _positive(values, file, key)
        loc = require_number(spec.get("loc", 0.0), file, f"{key}.loc")
        scale = require_number(spec.get("scale", 1.0), file, f"{key}.scale", positive=True)
        return Distribution(dist, (("a", values["alpha"]), ("b", values["beta"]), ("loc", loc), ("scale", scale)))
    return Distribution(dist, value=values["value"])


def _categorical(spec: dict, file, key: str) -> Distribution:
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise InputError(file, f"{key}.values", "expected a non-empty list", "a list of numbers or names")
    if len(set(map(repr, values))) != len(values):
        raise InputError(file, f"{key}.values", "has duplicate entries", "distinct values")
    weights = spec.get("weights", [1.0] * len(values))
    if not isinstance(weights, list) or len(weights) != len(values):
        raise InputError(file, f"{key}.weights", "must have one weight per value", f"a list of {len(values)} numbers")
    w = np.array([require_number(x, file, f"{key}.weights", nonnegative=True) for x in weights])
    if w.sum() <= 0:
        raise InputError(file, f"{key}.weights", "all weights are zero", "non-negative weights with a positive sum")
    return Distribution("categorical", categories=tuple(values), cumulative_weights=np.cumsum(w) / w.sum())

"""Read, layer and validate prior files; keep the provenance of every figure.

A prior file is TOML with an optional ``[meta]`` table (``name``,
``description``, ``extends``: prior files layered beneath this one) and one
``[priors.NAME]`` table per parameter: a distribution (see
:mod:`uqenergy.config.distributions`) plus ``unit``, physical ``bounds``, ``kind``
(epistemic or aleatory) and ``source``. ``[priors.NAME.models."MODEL"]``
overrides the prior for one model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from uqenergy.config import distributions
from uqenergy.config.distributions import Distribution, Truncated
from uqenergy.config.errors import InputError, check_keys
from uqenergy.config.files import display_path, existing, read_toml

KINDS = ("epistemic", "aleatory")
METADATA_KEYS = frozenset({"unit", "bounds", "kind", "source", "note", "integer", "truncate"})
DISTRIBUTION_KEYS = frozenset({"dist"}).union(*map(distributions.parameters_of, distributions.PARAMETER_SETS))
PRIOR_KEYS = METADATA_KEYS | DISTRIBUTION_KEYS | {"models"}
META_KEYS = frozenset({"name", "description", "extends"})


@dataclass(frozen=True)
class Prior:
    """One parameter's prior with its unit, physical bounds, kind and source."""

    name: str
    distribution: Distribution
    unit: str
    bounds: tuple[float, float]
    kind: str
    source: str
    file: str
    spec: dict = field(repr=False, hash=False, compare=False)
    note: str = ""
    integer: bool = False
    truncate: bool = False

    @property
    def is_categorical(self) -> bool:
        return self.distribution.is_categorical

    @property
    def law(self) -> Distribution | Truncated:
        """The distribution as sampled: truncated to the bounds if asked."""
        return self.distribution.truncated(*self.bounds) if self.truncate else self.distribution

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF of the prior as sampled (truncated and rounded if asked; categories as their values)."""
        return self._as_sampled(self.law.ppf(u))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws with the same law as :meth:`ppf` of uniforms."""
        return self._as_sampled(self.law.sample(rng, size))

    def mean(self) -> float:
        """Mean of the prior as sampled: truncated if asked, a categorical's values by their weights. Rounding to
        whole numbers (``integer``) is left out: it moves the mean of a smooth law by a small fraction of a unit."""
        if self.distribution.cumulative_weights is not None:  # categorical
            weights = np.diff(self.distribution.cumulative_weights, prepend=0.0)
            return float(weights @ np.asarray(self.distribution.categories, dtype=float))
        return float(self.law.mean())

    def _as_sampled(self, values: np.ndarray) -> np.ndarray:
        if self.is_categorical:  # the distribution yields category indices; a prior feeds their values
            values = np.asarray(self.distribution.categories, dtype=float)[values]
        return np.round(values) if self.integer else values

    def mass_outside_bounds(self) -> float:
        return 0.0 if self.truncate else self.distribution.mass_outside(*self.bounds)

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.spec.items() if k in DISTRIBUTION_KEYS and k != "dist")
        return f"{self.spec.get('dist')}({params}) [{self.unit}]"


@dataclass
class PriorSet:
    """Priors by name, with per-model overrides, and the files they came from."""

    base: dict[str, Prior]
    by_model: dict[str, dict[str, Prior]]
    files: list[Path]
    warnings: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted(self.base)

    def get(self, name: str, model: str | None = None) -> Prior:
        return (self.by_model.get(name, {}).get(model) if model is not None else None) or self.base[name]

    def is_fixed(self, name: str, models: Sequence[str] | None = None) -> bool:
        """True when the prior is a fixed value (a constant, not a sampled factor) for every model of ``models``,
        or, without ``models``, for every model the prior files name."""
        priors = (
            [self.base[name], *self.by_model.get(name, {}).values()]
            if models is None
            else [self.get(name, m) for m in models]
        )
        return all(p.distribution.name == "fixed" for p in priors)

    def require(self, names, file, key: str) -> None:
        for name in names:
            if name not in self.base:
                raise InputError(file, key, f"prior {name!r} is not defined", "defined: " + ", ".join(self.names()))


def _bounds(value, file, key: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(file, key, f"expected [low, high], got {value!r}", "two numbers, inf allowed")
    low, high = (_bound(v, file, key) for v in value)
    if not low < high:
        raise InputError(file, key, f"low {low:g} is not below high {high:g}", "low < high")
    return low, high


def _bound(value, file, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or np.isnan(value):
        raise InputError(file, key, f"expected a number, got {value!r}", "a number or inf")
    return float(value)


def build_prior(name: str, spec: dict, file, key: str) -> Prior:
    """Validate a complete prior table and freeze it into a :class:`Prior`."""
    check_keys(spec, PRIOR_KEYS - {"models"}, file, f"{key}.")
    for required in ("dist", "unit", "bounds", "kind", "source"):
        if required not in spec:
            raise InputError(file, f"{key}.{required}", "missing", _REQUIRED_HELP[required])
    dist_name = spec["dist"]
    law = distributions.from_spec(spec, file, key)
    allowed = distributions.parameters_of(dist_name)
    for k in spec:
        if k in DISTRIBUTION_KEYS and k != "dist" and k not in allowed:
            raise InputError(
                file, f"{key}.{k}", f"not a parameter of {dist_name}", "allowed: " + ", ".join(sorted(allowed))
            )
    if spec["kind"] not in KINDS:
        raise InputError(file, f"{key}.kind", f"unknown kind {spec['kind']!r}", "epistemic or aleatory")
    for text_key in ("unit", "source", "note"):
        if text_key in spec and not isinstance(spec[text_key], str):
            raise InputError(file, f"{key}.{text_key}", "expected text", "a string")
    if not spec["source"].strip():
        raise InputError(file, f"{key}.source", "is empty", "a citation or URL")
    for flag in ("integer", "truncate"):
        if not isinstance(spec.get(flag, False), bool):
            raise InputError(file, f"{key}.{flag}", f"expected true or false, got {spec[flag]!r}", "a boolean")
    for value in law.categories:  # every prior feeds a numeric input of the energy core
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(
                file, f"{key}.values", f"{value!r} is not a finite number", "numbers: a prior is a numeric input"
            )
    bounds = _bounds(spec["bounds"], file, f"{key}.bounds")
    prior = Prior(
        name=name,
        distribution=law,
        unit=spec["unit"],
        bounds=bounds,
        kind=spec["kind"],
        source=spec["source"],
        file=str(file),
        spec=dict(spec),
        note=spec.get("note", ""),
        integer=spec.get("integer", False),
        truncate=spec.get("truncate", False),
    )
    if law.mass_outside(*bounds) >= 1.0 - 1e-12:
        what = f"value {law.value:g} lies outside" if law.name == "fixed" else "all of the prior's mass lies outside"
        raise InputError(
            file, f"{key}.bounds", f"{what} the physical bounds {list(bounds)}", "a prior inside its bounds"
        )
    return prior


_REQUIRED_HELP = {
    "dist": "one of " + ", ".join(distributions.PARAMETER_SETS),
    "unit": "a unit string such as 'kW' or '1'",
    "bounds": "[low, high] physical bounds, inf allowed",
    "kind": "epistemic or aleatory",
    "source": "a citation or URL",
}


def merge_spec(below: dict | None, above: dict) -> dict:
    """Layer ``above`` over ``below``: a new ``dist`` replaces the distribution keys."""
    merged = {k: v for k, v in (below or {}).items() if k != "models"}
    if "dist" in above:
        merged = {k: v for k, v in merged.items() if k not in DISTRIBUTION_KEYS}
    merged.update({k: v for k, v in above.items() if k != "models"})
    return merged


def fold_layer(below: dict | None, above: dict) -> dict:
    """One ``[priors.NAME]`` table that layers as ``below`` then ``above`` do (:func:`load_layers`): new numbers
    in ``above`` drop ``below``'s per-model tables and note; otherwise ``above``'s per-model tables replace
    ``below``'s model by model."""
    if below is None:
        return dict(above)
    folded = merge_spec(below, above)
    if DISTRIBUTION_KEYS & above.keys():
        models = dict(above.get("models", {}))
        if "note" not in above:
            folded.pop("note", None)
    else:
        models = below.get("models", {}) | above.get("models", {})
    return folded | ({"models": models} if models else {})


def _prior_tables(doc: dict, file) -> dict:
    tables = doc.get("priors", {})
    if not isinstance(tables, dict):
        raise InputError(file, "priors", "expected a table of priors", "[priors.NAME] tables")
    for name, spec in tables.items():
        if not isinstance(spec, dict):
            raise InputError(file, f"priors.{name}", f"expected a table, got {spec!r}", "a [priors.NAME] table")
        check_keys(spec, PRIOR_KEYS, file, f"priors.{name}.")
        models = spec.get("models", {})
        if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
            raise InputError(file, f"priors.{name}.models", "expected tables per model", '[priors.NAME.models."MODEL"]')
    return tables


def layer_files(files: list[Path]) -> list[tuple[Path, dict]]:
    """Expand ``meta.extends`` depth-first into an ordered list of (file, document)."""
    ordered: list[tuple[Path, dict]] = []
    seen: set[Path] = set()

    def visit(path: Path, stack: tuple[Path, ...]) -> None:
        key = path.resolve()
        if key in stack:
            chain = " -> ".join(p.name for p in (*stack, key))
            raise InputError(
                path, "meta.extends", f"circular layering {chain}", "prior files that do not extend themselves"
            )
        if key in seen:
            return
        doc = read_toml(path)
        check_keys(doc, {"meta", "priors", "grids"}, path)
        meta = doc.get("meta", {})
        if not isinstance(meta, dict):
            raise InputError(path, "meta", f"expected a table, got {meta!r}", "a [meta] table")
        check_keys(meta, META_KEYS, path, "meta.")
        extends = meta.get("extends", [])
        if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
            raise InputError(
                path,
                "meta.extends",
                f"expected a list of names, got {extends!r}",
                "a list of prior file names or paths",
            )
        for parent in extends:
            visit(existing(parent, "priors", path, "meta.extends"), (*stack, key))
        seen.add(key)
        ordered.append((path, doc))

    for f in files:
        visit(Path(f), ())
    return ordered


def load_layers(layers: list[tuple[Path, dict]]) -> PriorSet:
    """Merge prior tables bottom to top and validate every resulting prior."""
    specs: dict[str, tuple[dict, Path]] = {}
    model_specs: dict[str, dict[str, tuple[dict, Path]]] = {}
    for path, doc in layers:
        for name, spec in _prior_tables(doc, path).items():
            below = specs.get(name, (None, None))[0]
            merged = merge_spec(below, spec)
            if below is not None and DISTRIBUTION_KEYS & spec.keys():
                # new numbers: the per-model overrides beneath and the note that described the old ones no longer hold
                model_specs.pop(name, None)
                if "note" not in spec:
                    merged.pop("note", None)
            specs[name] = (merged, path)
            for model, override in spec.get("models", {}).items():
                model_specs.setdefault(name, {})[model] = (override, path)
    base = {name: build_prior(name, spec, path, f"priors.{name}") for name, (spec, path) in specs.items()}
    by_model = {
        name: {
            model: build_prior(name, merge_spec(specs[name][0], override), path, f'priors.{name}.models."{model}"')
            for model, (override, path) in overrides.items()
        }
        for name, overrides in model_specs.items()
    }
    priors = PriorSet(base, by_model, [p for p, _ in layers])
    priors.warnings = bounds_warnings(priors)
    return priors


def bounds_warnings(
    priors: PriorSet, names: Sequence[str] | None = None, models: Sequence[str] | None = None
) -> list[str]:
    """One warning per prior of ``names`` (default: all) that puts mass outside its physical bounds for any of
    ``models`` (default: every model the files name), naming the file as the user would type it."""
    lines = []
    for name in priors.names() if names is None else [n for n in names if n in priors.base]:
        overrides = priors.by_model.get(name, {})
        used: list[tuple[str | None, Prior]] = (
            [(None, priors.base[name])] if models is None or set(models) - set(overrides) else []
        )
        used += [(m, p) for m, p in overrides.items() if models is None or m in models]
        outside = [(m, p, w) for m, p in used if (w := p.mass_outside_bounds()) > 1e-9]
        if not outside:
            continue
        shares = ", ".join(f"{100 * w:.2g}%" + (f" for {m}" if m is not None else "") for m, _, w in outside)
        first = outside[0][1]
        lines.append(
            f"{display_path(first.file)}: priors.{name}: puts {shares} of its mass outside the physical bounds "
            f"{list(first.bounds)} (kept, not clipped; set truncate = true to restrict it)"
        )
    return lines


def load_prior_files(files: list[Path], extra_layers: Sequence[tuple[Path, dict]] = ()) -> PriorSet:
    """Load prior files (with their ``extends``) plus in-memory layers such as a study's overrides."""
    return load_layers(layer_files(files) + list(extra_layers))

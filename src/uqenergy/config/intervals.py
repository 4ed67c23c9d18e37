"""A study's ``[intervals]`` table: HDI level, design (one- or two-level) and adaptive tolerances.

What the settings do is in :mod:`uqenergy.analyses.intervals` and docs/intervals.md.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from uqenergy.config.errors import InputError, check_keys, positive_int, require_number

QUANTILES = {"p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
FIGURES = (*QUANTILES, "mean")  # the figures that carry an MCSE and that an adaptive run makes stable
DEFAULT_HDI_LEVEL = 0.9
DESIGNS = ("one-level", "two-level", "rqmc")
KEY_USES = {  # keys of [intervals] that only some studies use: what uses them
    "replicates": 'used only with design = "rqmc"',
    "outer_draws": 'used only with design = "two-level"',
    "pooled_draws": 'used only with design = "two-level"',
    "batch_draws": "used only with a relative_tolerance or absolute_tolerance_wh",
    "relative_tolerance": "adaptive sample size is for one-level studies",
    "absolute_tolerance_wh": "adaptive sample size is for one-level studies",
}
INTERVAL_KEYS = frozenset({"hdi_level", "design", *KEY_USES})


@dataclass(frozen=True)
class IntervalSettings:
    """A study's ``[intervals]`` table: HDI level, design, and the adaptive tolerance."""

    hdi_level: float = DEFAULT_HDI_LEVEL
    design: str = "one-level"
    outer_draws: int = 1_000  # two-level: states of knowledge; the study's `draws` are inner draws per outer draw
    pooled_draws: int = 1_000_000  # two-level: per-query draws kept per model for the pooled quantiles
    relative_tolerance: float | None = None  # adaptive: 2 MCSE <= this fraction of each figure
    absolute_tolerance_wh: float | None = None  # adaptive: 2 MCSE <= this many Wh
    batch_draws: int = 100_000  # adaptive: draws per batch; the study's `draws` are the maximum
    replicates: int = 16  # rqmc: independent scrambled Sobol' sequences; the study's `draws` are split among them

    @property
    def two_level(self) -> bool:
        return self.design == "two-level"

    @property
    def quasi_random(self) -> bool:
        """Randomised quasi-Monte Carlo: replicated scrambled Sobol' points instead of independent draws."""
        return self.design == "rqmc"

    @property
    def adaptive(self) -> bool:
        return self.relative_tolerance is not None or self.absolute_tolerance_wh is not None

    @property
    def tolerance_key(self) -> str:
        """The ``[intervals]`` key of the study's tolerance."""
        return "absolute_tolerance_wh" if self.absolute_tolerance_wh is not None else "relative_tolerance"

    @property
    def tolerance(self) -> float:
        """The tolerance: a fraction of each figure, or Wh (NaN for a study without one)."""
        given = self.absolute_tolerance_wh if self.absolute_tolerance_wh is not None else self.relative_tolerance
        return math.nan if given is None else given

    def reached_tolerance(self, record: dict) -> float:
        """The tightest tolerance the record's figures meet now: the largest 2 MCSE (relative: over the figure)."""
        reached = 0.0
        for name in FIGURES:
            mcse = record[f"mcse_{name}"]
            figure = 1.0 if self.absolute_tolerance_wh is not None else abs(record[name])
            if math.isnan(mcse) or (mcse and not figure):
                return math.inf  # no MCSE yet (one draw), or a figure of 0 Wh no relative tolerance can hold
            reached = max(reached, 2 * mcse / figure if mcse else 0.0)
        return reached

    def tolerance_ratio(self, record: dict) -> float:
        """(reached / wanted tolerance)^2: at most 1 when stable; else roughly the factor more draws needed."""
        ratio = self.reached_tolerance(record) / self.tolerance
        return ratio**2 if ratio < math.sqrt(sys.float_info.max) else math.inf  # 1e-300 must not overflow

    def mark_tolerance(self, record: dict) -> dict:
        """The record, with ``tolerance_met`` added when the study asks for a tolerance."""
        return record | {"tolerance_met": self.tolerance_ratio(record) <= 1.0} if self.adaptive else record


def require_untrimmed(blends, file) -> None:
    """A two-level design pools each blend's whole distribution: trimming has no meaning there."""
    for blend in blends:
        if blend.trim:
            raise InputError(
                file,
                f"blends.{blend.name}.trim",
                "a two-level design pools whole distributions",
                "no trim in a two-level study",
            )


def _positive_number(table: dict, key: str, file, below_one: bool = False) -> float:
    value = require_number(table[key], file, f"intervals.{key}", positive=True)
    if below_one and value >= 1:
        raise InputError(file, f"intervals.{key}", f"{value:g} is not below 1", "a number between 0 and 1")
    return value


def parse_intervals(table, file, blends=()) -> IntervalSettings:
    """Validate a study's ``[intervals]`` table (``blends``: the study's, which a two-level design cannot trim)."""
    if not isinstance(table, dict):
        raise InputError(file, "intervals", "expected a table", "an [intervals] table")
    check_keys(table, INTERVAL_KEYS, file, "intervals.")
    design = table.get("design", "one-level")
    if design not in DESIGNS:
        raise InputError(file, "intervals.design", f"unknown design {design!r}", " or ".join(DESIGNS))
    tolerances = [k for k in ("relative_tolerance", "absolute_tolerance_wh") if k in table]
    if len(tolerances) > 1:
        raise InputError(
            file, "intervals.absolute_tolerance_wh", "conflicts with relative_tolerance", "give one tolerance"
        )
    used = {"hdi_level", "design"} | (
        {"outer_draws", "pooled_draws"}
        if design == "two-level"
        else {"replicates"}
        if design == "rqmc"
        else {*tolerances, "batch_draws"}
        if tolerances
        else set()
    )
    for key in sorted(table.keys() - used):
        raise InputError(file, f"intervals.{key}", "has no effect in this study", KEY_USES[key])
    if design == "two-level":
        require_untrimmed(blends, file)
    settings: dict[str, Any] = {
        k: positive_int(table[k], file, f"intervals.{k}")
        for k in ("outer_draws", "pooled_draws", "batch_draws", "replicates")
        if k in table
    }
    if settings.get("replicates", 2) < 2:
        raise InputError(
            file, "intervals.replicates", f"{settings['replicates']} cannot give a spread", "at least 2; 16 or more"
        )
    settings |= {k: _positive_number(table, k, file, below_one=k != "absolute_tolerance_wh") for k in tolerances}
    if "hdi_level" in table:
        settings["hdi_level"] = _positive_number(table, "hdi_level", file, below_one=True)
    return IntervalSettings(design=design, **settings)

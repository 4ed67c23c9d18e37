"""The boundary ladder: which energy a figure counts, from the accelerators up to the facility.

Rungs in order, each multiplying the one below by its prior (``priors/boundaries.toml``):

====================  =========================  ==============================================
rung                  multiplier (prior)         what it adds
====================  =========================  ==============================================
``accelerator``       (as measured)              GPU power only (ML.ENERGY v3 measures this)
``server``            ``server_overhead``        host CPUs, DRAM, networking of the servers
``provisioned``       ``provisioning_overhead``  machines kept idle or part-loaded for peaks
``facility``          ``pue``                    cooling and power conversion of the data centre
====================  =========================  ==============================================

Every record names its boundary; a published figure is compared with ours at its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uqenergy.config.errors import InputError

BOUNDARIES = ("accelerator", "server", "provisioned", "facility")
#: the prior that takes a figure from the rung below to this rung
RUNG_PRIORS = {"server": "server_overhead", "provisioned": "provisioning_overhead", "facility": "pue"}


def parse_boundary(value, file, key: str) -> str:
    """A boundary name, or an :class:`InputError` listing the rungs."""
    if value not in BOUNDARIES:
        raise InputError(file, key, f"unknown boundary {value!r}", ", ".join(BOUNDARIES))
    return value


def rung_priors(boundary: str, start: str = "accelerator") -> list[str]:
    """The priors that multiply a figure at ``start`` up to ``boundary``, lowest rung first.

    Empty when ``boundary`` is ``start`` or below it (see :func:`ladder_factor` for the way down).
    """
    low, high = BOUNDARIES.index(start), BOUNDARIES.index(boundary)
    return [RUNG_PRIORS[rung] for rung in BOUNDARIES[low + 1 : high + 1]]


def ladder_factor(start: str, end: str, multipliers: Mapping[str, Any]) -> Any:
    """The factor that takes an energy counted at rung ``start`` to rung ``end``.

    Parameters
    ----------
    start, end : str
        Rungs of :data:`BOUNDARIES`, in either order.
    multipliers : mapping
        Each rung prior's value (:data:`RUNG_PRIORS`): a number or an array of draws
        (one per state of knowledge or per query); only those between the two rungs are read.

    Returns
    -------
    float or array
        The product of the rung priors from ``start`` up to ``end`` (1 when they are the same
        rung); going down, its inverse.

    Raises
    ------
    KeyError
        When a rung prior between the two rungs is missing from ``multipliers``: there is
        no silent factor of one (a caller that means "this rung adds nothing" says so by
        passing 1).
    """
    low, high = sorted((start, end), key=BOUNDARIES.index)
    names = rung_priors(high, start=low)
    missing = [n for n in names if n not in multipliers]
    if missing:
        raise KeyError(f"no {', '.join(missing)} to go from the {low} rung to the {high} rung")
    factor: Any = 1.0
    for name in names:
        factor = factor * multipliers[name]
    return factor if BOUNDARIES.index(end) >= BOUNDARIES.index(start) else 1.0 / factor

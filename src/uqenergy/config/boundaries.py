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
    """The priors that multiply a figure at ``start`` up to ``boundary``, lowest rung first."""
    low, high = BOUNDARIES.index(start), BOUNDARIES.index(boundary)
    return [RUNG_PRIORS[rung] for rung in BOUNDARIES[low + 1 : high + 1]]

"""``[study] scheduler`` and ``memory_budget_mb``: where a study's chunks run, and how much memory it may hold.

The names are checked here; :mod:`uqenergy.engine.backend` runs chunks on them.
"""

from __future__ import annotations

from uqenergy.config.errors import InputError

AUTO_BUDGET_MB = 1024
LOCAL = "local"
DASK_SCHEDULERS = ("threads", "processes", "synchronous")
ADDRESS_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")  # what dask.distributed can connect to


def _is_address(value: str) -> bool:
    """``scheme://...`` with a scheme dask.distributed knows; host:port schemes need a numeric port."""
    scheme, _, rest = value.partition("://")
    if scheme not in ADDRESS_SCHEMES or not rest:
        return False
    host, _, port = rest.rpartition(":")
    return scheme in ("inproc", "ucx") or (bool(host) and port.isdigit())


def parse_scheduler(value, file, key: str = "study.scheduler") -> str:
    """Validate a scheduler name or a ``dask.distributed`` scheduler address."""
    if isinstance(value, str) and (value in (LOCAL, *DASK_SCHEDULERS) or _is_address(value)):
        return value
    raise InputError(
        file,
        key,
        f"unknown scheduler {value!r}",
        f"{LOCAL}, {', '.join(DASK_SCHEDULERS)} or a dask.distributed address like tcp://host:8786",
    )


def parse_memory_budget(value, file) -> int | None:
    """``[study] memory_budget_mb``: a whole number of MB, or "auto"."""
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(
            file, "study.memory_budget_mb", f"{value!r} is not a whole number of MB >= 1", 'e.g. 1024, or "auto"'
        )
    return value

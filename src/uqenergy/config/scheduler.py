"""``[study] scheduler`` and ``memory_budget_mb``: where a study's chunks run, and how much memory it may hold.

The names are checked here; :mod:`uqenergy.engine.backend` runs chunks on them.
"""

from __future__ import annotations

from uqenergy.config.errors import InputError

AUTO_BUDGET_MB = 1024
LOCAL = "local"
DASK_SCHEDULERS = ("threads", "processes", "synchronous")
ADDRESS_SCHEME = "tcp"  # the dask.distributed transport uqenergy connects over (and checks before it trusts)
UNSUPPORTED_SCHEMES = ("tls", "inproc", "ucx", "ws", "wss")  # dask.distributed's others: security, extras, in-process


def _is_address(value: str) -> bool:
    """``tcp://HOST:PORT`` with a numeric port."""
    scheme, _, rest = value.partition("://")
    host, _, port = rest.rpartition(":")
    return scheme == ADDRESS_SCHEME and bool(host) and port.isdigit() and 0 < int(port) < 65536


def parse_scheduler(value, file, key: str = "study.scheduler") -> str:
    """Validate a scheduler name or a ``dask.distributed`` scheduler address (``tcp://HOST:PORT``)."""
    if isinstance(value, str) and (value in (LOCAL, *DASK_SCHEDULERS) or _is_address(value)):
        return value
    if isinstance(value, str) and (scheme := value.partition("://")[0]) in UNSUPPORTED_SCHEMES:
        raise InputError(
            file,
            key,
            f"{scheme}:// addresses are not supported ({value!r})",
            "a dask.distributed scheduler reached over tcp://HOST:PORT",
        )
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

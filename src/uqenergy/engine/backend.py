"""Where chunks run (in this process, or on Dask: its threads or processes, or a ``dask.distributed``
cluster), and how much memory a run may hold.

A chunked design hands :meth:`Backend.map` a pure, picklable function of a
shared job and one chunk (a range of draws); chunks are reproducible from their
block seeds, so a result does not depend on where or in which order they ran.
Results come back in chunk order, with only a few chunks in flight at a time,
so memory stays bounded by the chunk size.

Schedulers (``[study] scheduler`` or ``--scheduler``):

- ``local`` (default): this process, a pool of one thread per core
  (:func:`local_workers`; numpy's samplers and selections release the GIL);
- ``threads``, ``processes``, ``synchronous``: Dask's local schedulers, through ``dask.delayed``;
- an address such as ``tcp://10.0.0.5:8786``: a running ``dask.distributed``
  scheduler, through ``Client.submit``.
"""

from __future__ import annotations

import math
import os
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from uqenergy.config.errors import InputError
from uqenergy.config.scheduler import AUTO_BUDGET_MB, DASK_SCHEDULERS, LOCAL

IN_FLIGHT_PER_WORKER = 2
CONNECT_TIMEOUT_S = 10
HANDSHAKE_TIMEOUT_S = 3  # a dask scheduler greets a new connection at once; anything else gets this long
HANDSHAKE_MAX_BYTES = 2**16  # a dask handshake is a few hundred bytes
HANDSHAKE_KEYS = (b"compression", b"pickle-protocol")  # what a dask.distributed handshake names


def memory_budget_bytes(budget_mb: int | None) -> int:
    """A run's memory budget in bytes: ``budget_mb``, or by default a quarter of the machine's memory,
    at most :data:`AUTO_BUDGET_MB`."""
    if budget_mb is not None:
        return budget_mb * 2**20
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 4 * AUTO_BUDGET_MB * 2**20
    return min(AUTO_BUDGET_MB * 2**20, physical // 4)


def available_memory_bytes() -> int | None:
    """Memory the machine can give a new run now (``MemAvailable`` of /proc/meminfo, else the free physical pages),
    or None where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_dask_scheduler(address: str) -> None:
    """Connect to ``tcp://HOST:PORT`` and read its greeting: an OSError unless it is a dask.distributed handshake.

    A dask scheduler writes its handshake (an 8-byte length, then a short msgpack message) as soon as a
    connection opens. A silent listener, an HTTP or SSH server, or random bytes fail here within
    :data:`HANDSHAKE_TIMEOUT_S` (each step) instead of hanging the client or making it allocate a bogus length."""
    host, _, port = address.partition("://")[2].rpartition(":")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=HANDSHAKE_TIMEOUT_S) as connection:
        try:
            header = _read_exactly(connection, 8)
            (length,) = struct.unpack("<Q", header)
            if not 0 < length <= HANDSHAKE_MAX_BYTES:
                raise OSError(f"it answered {header!r}, not a dask handshake")
            message = _read_exactly(connection, length)
        except TimeoutError:
            raise OSError(f"no dask handshake within {HANDSHAKE_TIMEOUT_S} s") from None
    if not all(key in message for key in HANDSHAKE_KEYS):
        raise OSError(f"it answered {message[:24]!r}..., not a dask handshake")


def _read_exactly(connection: socket.socket, nbytes: int) -> bytes:
    data = b""
    while len(data) < nbytes:
        if not (piece := connection.recv(nbytes - len(data))):
            raise OSError(f"it closed the connection after {len(data)} bytes, before a dask handshake")
        data += piece
    return data


def local_workers() -> int:
    """Threads of the local scheduler: the cores this process may run on (``taskset -c 0 uqenergy ...`` gives
    one), within a container's CPU quota (:func:`cpu_quota`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, quota) if quota is not None else cores)


def cpu_quota(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """Whole CPUs the process's cgroup (v2) may use, rounded up; None without a quota or where unknown.

    A container limited to two CPUs still sees every core of its host in ``os.sched_getaffinity``."""
    try:
        with open(path, encoding="ascii") as limit:
            quota, period = limit.read().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def chunks_in_flight(scheduler: str, chunks: int) -> int:
    """Chunks held in this process at once on ``scheduler`` in a run of ``chunks`` chunks: a window per core
    locally and on Dask's local schedulers (at most the run's chunks), one result at a time from a cluster."""
    if scheduler not in (LOCAL, *DASK_SCHEDULERS):
        return 1
    return min(chunks, IN_FLIGHT_PER_WORKER * local_workers())


class Backend:
    """Runs ``function(job, chunk)`` over chunks on one scheduler; a context manager (it may hold a client).

    ``workers``: threads of the local scheduler (default :func:`local_workers`).
    """

    def __init__(self, scheduler: str = LOCAL, workers: int | None = None):
        self.scheduler, self.workers = scheduler, workers or local_workers()
        self.client: Any = None  # a dask.distributed Client while connected

    def __enter__(self) -> Backend:
        if "://" in self.scheduler:
            from distributed import Client

            try:
                check_dask_scheduler(self.scheduler)
                self.client = Client(self.scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT_S)
            except (OSError, ValueError) as exc:  # unreachable, or a malformed host or port
                raise InputError(
                    self.scheduler,
                    "scheduler",
                    f"cannot reach the dask scheduler: {exc}",
                    "the address of a running dask.distributed scheduler",
                ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    @property
    def in_flight(self) -> int:
        if self.client is not None:
            cores = sum(self.client.nthreads().values()) or 1
        else:
            cores = self.workers
        return IN_FLIGHT_PER_WORKER * cores

    def map(self, function: Callable, job, chunks: Iterable) -> Iterator:
        """``function(job, chunk)`` for every chunk, yielded in chunk order."""
        task = partial(function, job)
        if self.scheduler == LOCAL:
            if self.workers == 1:
                yield from map(task, chunks)
            else:
                with ThreadPoolExecutor(self.workers) as pool:
                    yield from _windowed(
                        lambda chunk: pool.submit(task, chunk), lambda f: f.result(), chunks, self.in_flight
                    )
        elif self.client is not None:
            shared = self.client.scatter(job, broadcast=True)
            yield from _windowed(
                lambda chunk: self.client.submit(function, shared, chunk, pure=False),
                lambda f: f.result(),
                chunks,
                self.in_flight,
            )
        else:
            yield from self._dask_local(task, list(chunks))

    def _dask_local(self, task: Callable, chunks: list) -> Iterator:
        import dask

        step = self.in_flight
        for start in range(0, len(chunks), step):
            batch = [dask.delayed(task, pure=False)(chunk) for chunk in chunks[start : start + step]]
            yield from dask.compute(*batch, scheduler=self.scheduler)


def _windowed(submit: Callable, result: Callable, chunks: Iterable, width: int) -> Iterator:
    """Submit chunks keeping at most ``width`` pending, and yield their results in order."""
    pending: deque[Any] = deque()
    for chunk in chunks:
        pending.append(submit(chunk))
        if len(pending) >= width:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())

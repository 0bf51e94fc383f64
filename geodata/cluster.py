"""Run the store's per-file work on threads or on a Dask cluster, with the same code.

The store's aggregations are additive over its data files: a count by beat x month x offense,
or the points binned onto a grid for a KDE or Gi* surface, is the sum of the same computation on
each file. A *mapper* runs one function over the files and returns the results in order; the
reduction stays where it was. :func:`thread_mapper` is the single-machine default;
:func:`dask_mapper` sends each file's work to the workers of a ``dask.distributed`` cluster,
which must reach the store's files at the same path (a shared file system or a mount of the
object store; ``docs/scale.md``).

Examples
--------
>>> from geodata.store import IncidentStore
>>> store = IncidentStore("data/store")  # doctest: +SKIP
>>> with connect("tcp://scheduler:8786") as client:  # doctest: +SKIP
...     counts = store.count_by(["beat", "offense"], mapper=dask_mapper(client))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["Mapper", "connect", "dask_mapper", "local_cluster", "thread_mapper"]

T = TypeVar("T")
R = TypeVar("R")
#: ``mapper(function, items) -> [function(item) for item in items]``, in any execution order.
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def thread_mapper(threads: int = 2) -> Mapper:
    """Return a mapper that runs the function on a pool of `threads` local threads."""

    def run(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if threads <= 1 or len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(function, items))

    return run


def dask_mapper(client: Client) -> Mapper:
    """Return a mapper that runs the function on the workers of a Dask `client`.

    One task per item; results are gathered back in the order of `items`. The function and its
    closure are sent to the workers (cloudpickle), so it must not hold open files or locks.
    """

    def run(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        futures = client.map(function, list(items), pure=False)
        return list(client.gather(futures))

    return run


@contextlib.contextmanager
def local_cluster(n_workers: int = 2, *, memory_limit: str | None = "auto") -> Iterator[Client]:
    """Start a ``LocalCluster`` on this machine and yield a client of it; close both on exit.

    Each worker is a process with one thread (the GIL-bound parts of the per-file work then
    run side by side), as the tests and benchmarks run it.

    Parameters
    ----------
    n_workers
        Worker processes.
    memory_limit
        Per worker (e.g. ``"4GB"``; ``"auto"``: this machine's memory shared out).
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        memory_limit=memory_limit,
        processes=True,
        # a free port: None means 8787, which a second cluster on the machine (another test
        # process, another user) finds taken, and warns
        dashboard_address=":0",
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@contextlib.contextmanager
def connect(address: str, *, timeout_s: float = 10.0) -> Iterator[Client]:
    """Connect to the ``dask.distributed`` scheduler at `address`; close on exit.

    Parameters
    ----------
    address
        The scheduler's address, e.g. ``"tcp://10.0.0.5:8786"``.
    timeout_s
        How long to wait for the scheduler.

    Raises
    ------
    ConnectionError
        If no scheduler answers at `address` within `timeout_s` (the message names it).
    """
    from distributed import Client

    try:
        client = Client(address, timeout=timeout_s)
    except OSError as err:
        why = " ".join(str(err).split())  # one line: distributed's messages span several
        msg = f"no Dask scheduler answered at {address} within {timeout_s:g} s ({why})"
        raise ConnectionError(msg) from err
    try:
        yield client
    finally:
        client.close()

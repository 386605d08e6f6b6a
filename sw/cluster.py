"""Dask distributed as the job runner of the sweeps: ``swattn build --seeds``, ``swattn explore``
and ``make regress`` (``python -m swattn.sim.regress``).

:func:`dask_client` gives a :class:`distributed.Client`:

* without a scheduler address, on a :class:`distributed.LocalCluster` of its own: ``workers``
  worker processes (the cores when None) of one thread each, every server of it listening on
  127.0.0.1 only, no dashboard, no memory limit (the jobs' memory is mostly in the tools they
  start), closed with the context;
* with one (``--scheduler tcp://host:8786``), on that existing cluster: a ``dask scheduler``
  started by hand with ``dask worker`` processes, or a dask-jobqueue cluster (SLURMCluster,
  PBSCluster, LSFCluster: its ``scheduler_address``). Its workers must see the same file system
  paths as this machine (the jobs read and write the build folders) and import the same swattn.
  An address where no scheduler answers within ``connect_timeout`` seconds is a
  :class:`~swattn.sw.spec.errors.UserError` naming the option and the address.

:func:`map_jobs` submits ``fn(item)`` for every item and yields ``(item, result)`` as each job
finishes; a job that raised stops the sweep with that error, naming the item. The function runs
in another process, on another machine with ``--scheduler``: it must be a module-level function
of swattn (importable there) and its items and results plain data (picklable).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from typing import Callable, Iterable, Iterator

from .spec.errors import UserError

#: seconds to wait for a scheduler given with --scheduler before giving up
CONNECT_TIMEOUT = 10.0

#: what --scheduler's help says (one text for the three sweeps)
SCHEDULER_HELP = ("run the jobs on an existing Dask cluster at this address (e.g. "
                  "tcp://host:8786: a `dask scheduler` with its workers, or a dask-jobqueue "
                  "SLURMCluster's scheduler_address) instead of local worker processes; its "
                  "workers must see this checkout's folders and have swattn installed")


class JobFailed(RuntimeError):
    """A job raised on its worker: the message names the item; ``__cause__`` is the worker's
    exception (with its remote traceback)."""

    def __init__(self, label: str, exc: BaseException):
        self.label = label
        super().__init__(f"{label}: {type(exc).__name__}: {exc}")


def _quiet_logs() -> None:
    """Dask's own log lines (connection retries, a worker's restart) stay off the terminal: the
    sweeps print their progress themselves."""
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _refused(flag: str, address: str, why: str) -> UserError:
    return UserError(f"{flag} = {address!r}: {why}; allowed the address of a running Dask "
                     "scheduler, such as tcp://host:8786")


def scheduler_address(address: str, flag: str = "--scheduler") -> str:
    """``address`` as Dask takes it (``host:port`` is ``tcp://host:port``), or a
    :class:`UserError` naming ``flag`` where it is not an address Dask can connect to."""
    from distributed.comm.addressing import get_address_host_port

    full = address if "://" in address else f"tcp://{address}"
    try:
        host, port = get_address_host_port(full)
        if not host or not 0 < int(port) < 65536:
            raise ValueError("no host or port")
    except (ValueError, TypeError) as exc:
        raise _refused(flag, address, f"not an address ({exc})") from None
    return full


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT,
                    flag: str = "--scheduler") -> str:
    """That a Dask scheduler answers at ``address`` within ``timeout`` seconds (its identity
    message, over a connection of its own that is closed again), else a :class:`UserError`
    naming ``flag`` and the address; returns the address as Dask takes it. Checked before the
    client connects: a failed :class:`distributed.Client` leaves a client behind that complains
    at exit."""
    import asyncio

    from distributed.comm import connect

    full = scheduler_address(address, flag)

    async def probe() -> dict:
        comm = await connect(full, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    _quiet_logs()
    try:
        info = asyncio.run(probe())
    except (OSError, asyncio.TimeoutError):
        raise _refused(flag, address, f"no Dask scheduler answered within {timeout:g} "
                                      "s") from None
    except Exception as exc:  # noqa: BLE001 - anything else there is not a scheduler either
        raise _refused(flag, address, f"what answered is not a Dask scheduler "
                                      f"({type(exc).__name__})") from None
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        raise _refused(flag, address, "what answered is not a Dask scheduler")
    return full


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *,
                connect_timeout: float = CONNECT_TIMEOUT, flag: str = "--scheduler"):
    """A :class:`distributed.Client` on the cluster at ``scheduler`` (checked first:
    :func:`check_scheduler`), or on a local cluster of ``workers`` single-threaded processes
    (None: the cores), closed again at the end."""
    from distributed import Client, LocalCluster

    _quiet_logs()
    if scheduler:
        full = check_scheduler(scheduler, connect_timeout, flag)
        try:
            client = Client(full, timeout=connect_timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - e.g. it went away since the check
            raise _refused(flag, scheduler, f"cannot connect ({type(exc).__name__}: "
                                            f"{exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = max(1, workers or os.cpu_count() or 1)
    # (the scheduler's HTTP server, which it starts even without its dashboard, on a free port
    # of 127.0.0.1 rather than on 8787, where another cluster's dashboard may be)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, memory_limit=0,
                           silence_logs=logging.CRITICAL,
                           scheduler_kwargs={"dashboard": False,
                                             "dashboard_address": "127.0.0.1:0"})
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_job(fn: Callable, item, env: dict | None = None):
    """What a worker runs for one item: ``fn(item)``, with ``env`` set in the worker's
    environment first (kept for the worker's later jobs: every job of a sweep sets the same)."""
    if env:
        os.environ.update(env)
    return fn(item)


def map_jobs(client, fn: Callable, items: Iterable, *, label: Callable = str,
             env: dict | None = None, name: str | None = None) -> Iterator[tuple]:
    """``(item, fn(item))`` for each of ``items``, each a job on ``client``'s workers, in the
    order they finish. A job that raised ends the iteration, the jobs not yet finished
    cancelled: a :class:`UserError` as one (``label(item): message``), anything else as
    :class:`JobFailed` from the worker's exception. Leaving the loop early cancels the rest too
    (jobs not yet started never start; a running one ends on its worker, or with the worker
    when a local cluster closes).

    env : environment variables the jobs run with (set on the worker).
    name : the jobs' name in Dask (default ``fn``'s).
    """
    from distributed import as_completed

    items = list(items)
    prefix = name or getattr(fn, "__name__", "job")
    futures = {}
    for i, item in enumerate(items):
        key = f"{prefix}-{i}-{uuid.uuid4().hex[:8]}"
        futures[client.submit(run_job, fn, item, env, key=key, pure=False)] = item
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            item = futures[fut]
            if fut.status == "error":
                exc = fut.exception()
                if isinstance(exc, UserError):
                    raise UserError(f"{label(item)}: {exc}") from exc
                raise JobFailed(label(item), exc) from exc
            if fut.status == "cancelled":
                raise JobFailed(label(item), RuntimeError("the job was cancelled (its worker "
                                                          "went away)"))
            yield item, fut.result()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)

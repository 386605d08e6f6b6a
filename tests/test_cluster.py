"""The sweeps' job runner (``swattn.sw.cluster``): jobs on a real Dask cluster given by its
address (``--scheduler``), errors named by their item, addresses refused in one line."""

import os
import socket
import sys
import threading
import time

import cloudpickle
import pytest

from swattn.sw import cluster
from swattn.sw.spec.errors import UserError

# (the jobs below are this module's functions: sent by value, the workers need not import it)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def square(x):
    return x * x, os.getpid()


def fails_at_three(x):
    if x == 3:
        raise UserError("three is refused")
    if x == 4:
        raise ZeroDivisionError("four")
    return x


def slow(x):
    time.sleep(x)
    return x


@pytest.fixture(scope="module")
def scheduler():
    """An existing cluster, as `dask scheduler` and `dask worker` would give: two worker
    processes behind a scheduler on localhost."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as lc:
        yield lc.scheduler_address


def test_jobs_run_on_the_cluster_at_an_address(scheduler):
    with cluster.dask_client(scheduler) as client:
        got = dict(cluster.map_jobs(client, square, range(6)))
    assert {k: v[0] for k, v in got.items()} == {x: x * x for x in range(6)}
    assert os.getpid() not in {v[1] for v in got.values()}
    # host:port without a scheme is tcp://host:port
    with cluster.dask_client(scheduler.removeprefix("tcp://")) as client:
        assert [r for _, r in cluster.map_jobs(client, slow, [0])] == [0]


def test_a_failed_job_is_named_by_its_item(scheduler):
    with cluster.dask_client(scheduler) as client:
        with pytest.raises(UserError, match=r"^job 3: three is refused$"):
            list(cluster.map_jobs(client, fails_at_three, [3], label=lambda x: f"job {x}"))
        with pytest.raises(cluster.JobFailed, match=r"^job 4: ZeroDivisionError: four$") as e:
            list(cluster.map_jobs(client, fails_at_three, [1, 4], label=lambda x: f"job {x}"))
        assert isinstance(e.value.__cause__, ZeroDivisionError)


def test_leaving_early_cancels_the_other_jobs(scheduler):
    """A loop left early does not wait for the jobs still running or queued, and the client
    lets go of them (a job not started never starts)."""
    with cluster.dask_client(scheduler) as client:
        t0 = time.monotonic()
        for _, r in cluster.map_jobs(client, slow, [0, 20, 20, 20]):
            break
        assert r == 0 and time.monotonic() - t0 < 10
        deadline = time.monotonic() + 10
        while client.futures and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.futures


def test_a_local_cluster_of_n_single_threaded_workers_on_localhost():
    """``--jobs 2``: two worker processes of one thread each; every server of the cluster (the
    scheduler, its HTTP server, the workers and their nannies) listens on 127.0.0.1 only."""
    import psutil

    with cluster.dask_client(None, 2) as client:
        info = client.scheduler_info()
        workers = info["workers"].values()
        assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers)
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        assert {p.pid for p in procs} >= set(client.run(os.getpid).values())
        listening = [c.laddr for p in procs for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert len(listening) >= 5 and {a.ip for a in listening} == {"127.0.0.1"}, listening
        assert 8787 not in {a.port for a in listening}


@pytest.mark.parametrize("address, words", [
    ("foo", ["'foo'", "not an address"]),
    ("tcp://host:port", ["'tcp://host:port'", "not an address"]),
    ("http://127.0.0.1:8786", ["not an address", "unknown address scheme 'http'"]),
])
def test_addresses_that_are_not_addresses(address, words):
    with pytest.raises(UserError) as e:
        cluster.check_scheduler(address, timeout=1)
    msg = str(e.value)
    assert msg.startswith(f"--scheduler = {address!r}: ") and "tcp://host:8786" in msg
    assert all(w in msg for w in words), msg


def test_something_else_at_the_address_is_not_a_scheduler():
    """A server that answers with bytes that are no Dask message, or closes at once."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 8)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    try:
        with pytest.raises(UserError) as e:
            cluster.check_scheduler(address, timeout=2)
    finally:
        srv.close()
    msg = str(e.value)
    assert msg.startswith(f"--scheduler = {address!r}: ")
    assert "not a Dask scheduler" in msg or "no Dask scheduler answered" in msg, msg

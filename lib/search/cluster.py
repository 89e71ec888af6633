"""The workers of lib.search: a dask cluster of local worker processes, or the cluster whose scheduler is at
an address given (probed first, so that a wrong address ends in one line within a bounded time)."""
import contextlib
import logging
import os

from lib.search.journal import SearchError


def probe(address, seconds=10.0):
    """SearchError unless a dask scheduler answers at address within `seconds`: first a plain TCP
    connection (nothing listening: it cannot be reached), then it is asked who it is, every step under
    one deadline (dask's own connect timeout does not cover its handshake, and an HTTP server or another
    service may answer with anything, or not at all)."""
    import asyncio
    import socket
    from distributed.comm import connect, get_address_host_port
    try:
        with socket.create_connection(get_address_host_port(address), timeout=seconds):
            pass
    except (OSError, ValueError) as err:
        raise SearchError(f"Cannot reach the dask scheduler at {address} ({err or type(err).__name__}); start one "
                          "with `dask scheduler` and workers with `dask worker ADDRESS`, or leave out --scheduler "
                          "to use this machine's cores.") from None

    async def ask():
        comm = await connect(address, timeout=seconds)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    not_dask = (f"--scheduler {address} is not a dask scheduler ({{}}); give the scheduler's address, "
                "tcp://HOST:PORT (8786 by default; the dashboard's port is another).")
    try:
        reply = asyncio.run(asyncio.wait_for(ask(), seconds))
    except (asyncio.TimeoutError, TimeoutError):
        raise SearchError(not_dask.format(f"it did not answer in {seconds:g} s")) from None
    except Exception:                      # noqa: BLE001 -- whatever another service's bytes decode to
        raise SearchError(not_dask.format("what it answered is not dask's protocol")) from None
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        kind = reply.get("type") if isinstance(reply, dict) else None
        raise SearchError(not_dask.format(f"it answered as a {kind or 'service'} of another kind"))


@contextlib.contextmanager
def workers_of(n_workers, scheduler, log):
    """A dask Client and its number of worker threads: a cluster of n_workers local processes, or the
    cluster whose scheduler is at `scheduler`."""
    import dask
    from distributed import Client, LocalCluster
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if scheduler:
        probe(scheduler)
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise SearchError(f"Cannot reach the dask scheduler at {scheduler} ({err or type(err).__name__}); "
                              "start one with `dask scheduler` and workers with `dask worker ADDRESS`, or leave "
                              "out --scheduler to use this machine's cores.") from None
        try:
            client.wait_for_workers(1, timeout=60)
        except (TimeoutError, OSError):
            client.close()
            raise SearchError(f"The dask scheduler at {scheduler} has no workers after 60 s; start some with "
                              f"`dask worker {scheduler}`.") from None
        try:
            yield client, max(1, sum(client.nthreads().values()))
        finally:
            client.close()
        return
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    environ = {k: threads for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL)
    client = Client(cluster)
    log(f"{n_workers} local worker process{'es' if n_workers > 1 else ''}, {threads} thread(s) each")
    try:
        yield client, n_workers
    finally:
        client.close()
        cluster.close()

"""A Dask client for fits spread over processes: a local cluster, or a running one.

Simulation studies (`mlm study`) and model variants fitted side by side (`mlm run
--workers/--scheduler`) both run on Dask; this is the one place that starts a local
cluster or reaches a running scheduler, says clearly when neither can be had, and shuts
down what it started. Dask is imported only here, and only when asked for.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlm.errors import MlmError


@contextmanager
def dask_client(
    workers: int | None,
    scheduler: str | None,
    what: str,
    instead: str,
    quiet: bool = False,
) -> Iterator[Any]:
    """A `distributed.Client`: on the cluster at `scheduler`, else on a LocalCluster of
    `workers` processes (default: one per core) with one thread each, closed afterwards.

    `what` names the work in the message shown when Dask is not installed, `instead` says
    how to do without it ("run in this process with --workers 0"). `quiet` keeps the local
    cluster's own log lines (a worker restarted after it died) off the terminal: the caller
    reports what matters in its own words.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MlmError(
            f"{what} on Dask: install it with `pip install 'mlm[dask]'` (or {instead})"
        ) from None
    cluster = None
    if scheduler is None:
        # Workers started while SIGINT is ignored keep ignoring it (Python installs its
        # KeyboardInterrupt handler only over the default), so Ctrl-C at a terminal stops
        # this process, which closes the cluster, and no worker prints a traceback.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR if quiet else logging.WARNING,
                preload=["mlm.cluster"],  # dask_setup, below
                preload_nanny=["mlm.cluster"],
            )
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError, TypeError) as exc:
            raise MlmError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({type(exc).__name__}: "
                f"{exc}); start one with `dask scheduler` and `dask worker ADDRESS`, or drop "
                "--scheduler to run on a local cluster"
            ) from None
    try:
        yield client
        if cluster is not None:
            # Our own workers are about to exit: with the GC frozen they skip the second
            # of final garbage collection that a process which imported PyMC pays.
            client.run(gc.freeze)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dask_setup(server: Any = None) -> None:
    """Run by Dask in each local worker and nanny process mlm starts (`preload`): a Dask
    Client that is garbage-collected after its event loop closed, as a worker torn down
    by Ctrl-C has it, no longer prints distributed's "Exception ignored in Client.__del__
    ... RuntimeError: IOLoop is closed" (there is nothing left to close)."""
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        closed = isinstance(unraisable.exc_value, RuntimeError) and "IOLoop is closed" in str(
            unraisable.exc_value
        )
        if closed and "Client.__del__" in repr(unraisable.object):
            return
        default(unraisable)

    sys.unraisablehook = hook


def describe(workers: int | None, scheduler: str | None) -> str:
    """Where the work runs, in words: "2 local worker processes", "the Dask cluster at X"."""
    if scheduler is not None:
        return f"the Dask cluster at {scheduler}"
    n = workers or os.cpu_count() or 1
    return f"{n} local worker process{'es' if n != 1 else ''}"

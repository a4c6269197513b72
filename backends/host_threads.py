"""Host jobs side by side on threads: how the JAX backend runs one-chain programs at once.

A call of a compiled JAX program runs on its caller's thread and lets go of Python's lock
while it computes, so on a CPU with several cores a thread per job runs the jobs at once,
sharing the caller's memory: nothing is copied, and the programs compiled by one thread
are found by the others.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

__all__ = ["run_on_threads", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the system says, else all)."""
    cores = getattr(os, "sched_getaffinity", None)
    return len(cores(0)) if cores is not None else os.cpu_count() or 1


class _AnotherJobFailedError(Exception):
    """Raised in a job's thread, at its next report, once another job has failed."""


def run_on_threads(
    jobs: Sequence[Callable[[Callable[[Any], None]], Any]],
    workers: int,
    report: Callable[[Any], None],
) -> list[Any]:
    """``job(report_rows)`` for every job, ``workers`` at a time on host threads; their
    results in order (``Backend.run_side_by_side``).

    ``report`` is called under a lock, so that the bars are drawn by one thread at a time.
    The first error is raised here as soon as it happens; the other jobs stop at their next
    report and those not started never start.
    """
    reporting = threading.Lock()
    stopping = threading.Event()

    def report_rows(rows: Any) -> None:
        if stopping.is_set():
            raise _AnotherJobFailedError
        with reporting:
            report(rows)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="minippl-chains")
    futures = [pool.submit(job, report_rows) for job in jobs]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            error = future.exception() if future in done else None
            if error is not None:
                raise error
        return [future.result() for future in futures]
    except BaseException:
        stopping.set()  # e.g. Ctrl-C: the other chains stop after their chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

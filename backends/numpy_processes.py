"""Host jobs side by side in forked processes: how the NumPy backend runs chains on several
cores.

Eager NumPy holds Python's lock for most of a step, so threads would take turns; a process
has an interpreter of its own. ``fork`` starts each child as a copy of the caller at that
moment, so a job (a closure over the model, the chain program and the chain's starting
state) is inherited, never pickled. What comes back is pickled through a pipe, one per
child: the rows for the progress bars as the job reports them, the warnings it raised, then
its result or its error.

Where the system cannot fork (Windows), :func:`can_fork` is false and the backend says that
it runs one chain at a time.

Example: two jobs, each in a child of its own, and their results in order::

    >>> from backends.numpy_processes import run_in_processes
    >>> run_in_processes([lambda report: 1 + 1, lambda report: 2 + 2], 2, print)
    [2, 4]
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from backends.host_threads import usable_cores

__all__ = ["can_fork", "run_in_processes", "usable_cores"]

Message = tuple[str, Any]
"""What a child sends: ``("rows", rows)``, ``("warnings", [(category, text, file, line)])``,
then ``("done", result)`` or ``("error", exception)``."""


def can_fork() -> bool:
    """Whether this system starts processes by ``fork`` (POSIX does; Windows does not)."""
    return "fork" in multiprocessing.get_all_start_methods()


def run_in_processes(
    jobs: Sequence[Callable[[Callable[[Any], None]], Any]],
    workers: int,
    report: Callable[[Any], None],
) -> list[Any]:
    """``job(report_rows)`` for every job, ``workers`` at a time, each in a forked child;
    their results in order (``Backend.run_side_by_side``).

    ``report`` is called here, in the caller's thread, with the rows each child sends. The
    first error of a child is raised here with its type and message (the child's traceback
    is added as a note); the other children are then ended, as they are on Ctrl-C, and
    waited for, so that none is left behind.
    """
    context = multiprocessing.get_context("fork")
    waiting = deque(enumerate(jobs))
    running: dict[Any, tuple[int, BaseProcess]] = {}  # reader of each child's pipe
    results: list[Any] = [None] * len(jobs)
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, job = waiting.popleft()
                reader, writer = context.Pipe(duplex=False)
                child = context.Process(target=_child, args=(job, writer), daemon=True)
                child.start()
                writer.close()  # the child holds the only writer: its end closes the pipe
                running[reader] = (index, child)
            ready: list[Any] = wait(list(running))
            for pipe in ready:
                index, process = running[pipe]
                kind, payload = _receive(pipe, process)
                if kind == "rows":
                    report(payload)
                elif kind == "warnings":
                    _warn_again(payload)
                elif kind == "error":
                    raise payload
                else:
                    results[index] = payload
                    del running[pipe]
                    process.join()
                    pipe.close()
        return results
    finally:
        _end(running)


def _child(job: Callable[[Callable[[Any], None]], Any], writer: Connection) -> None:
    """Run one job in the child, sending what it reports, warns and returns."""
    # Ctrl-C reaches every process of the terminal: the parent alone handles it, by
    # ending the children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome: Message
    with warnings.catch_warnings(record=True) as caught:
        try:
            outcome = ("done", job(lambda rows: writer.send(("rows", rows))))
        except BaseException as error:
            outcome = ("error", _sendable(error))
    warned = [(w.category, str(w.message), w.filename, w.lineno) for w in caught]
    writer.send(("warnings", warned))
    try:
        writer.send(outcome)
    except Exception as error:  # a result that cannot be pickled: nothing was sent
        writer.send(("error", _sendable(error)))
    writer.close()


def _warn_again(caught: list[tuple[type[Warning], str, str, int]]) -> None:
    """Raise again here the warnings a child caught, each from the line that raised it and
    under its module's registry: a warning already shown here, or by another child, is not
    shown twice, as when the chains run one after another."""
    for category, text, filename, lineno in caught:
        warnings.warn_explicit(text, category, filename, lineno, registry=_registry(filename))


def _registry(filename: str) -> dict[Any, Any]:
    """The ``__warningregistry__`` of the module loaded from ``filename`` (``warnings``
    keeps there what it has shown from that module)."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            registry: dict[Any, Any] = vars(module).setdefault("__warningregistry__", {})
            return registry
    return _OTHERS.setdefault(filename, {})


_OTHERS: dict[str, dict[Any, Any]] = {}
"""The registries of files that are no loaded module's."""


def _sendable(error: BaseException) -> BaseException:
    """``error`` with the child's traceback as a note, or, where it cannot be pickled, a
    ``RuntimeError`` that names its type and message."""
    where = f"raised in process {os.getpid()}, which ran one of the jobs:\n"
    error.add_note(where + "".join(traceback.format_tb(error.__traceback__)))
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _receive(pipe: Any, child: BaseProcess) -> Message:
    """The next message of ``child``; an error if it ended without sending its result."""
    try:
        message: Message = pipe.recv()
    except EOFError:
        child.join()
        raise RuntimeError(
            f"a process running a job ended before sending its result "
            f"(exit code {child.exitcode}; a negative code is the signal that ended it)"
        ) from None
    return message


def _end(running: dict[Any, tuple[int, BaseProcess]]) -> None:
    """End the children still running and wait for them (no process is left a zombie)."""
    for _, child in running.values():
        child.terminate()
    for reader, (_, child) in running.items():
        child.join()
        reader.close()

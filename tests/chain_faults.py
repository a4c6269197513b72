"""A fault injected into one chain of a run, for the tests of chains side by side (host
threads on JAX, forked processes on NumPy)."""

from __future__ import annotations

import threading
from typing import Any

import pytest


def fail_chain_one(
    monkeypatch: pytest.MonkeyPatch, mcmc: Any, error: Exception, calls: list[str] | None = None
) -> None:
    """Make chain 1 of ``mcmc``'s next runs raise ``error`` at its first chunk of iterations
    (not at the call with none that compiles the program). ``calls``, if given, gets the
    name of the thread that made each call of the chain program."""
    real = mcmc._programs._drive

    def drive(program: Any, *args: Any) -> Any:
        def failing(*call_args: Any) -> Any:
            if calls is not None:
                calls.append(threading.current_thread().name)
            ids, done = call_args[-1], call_args[5]
            if ids[0] == 1 and done > 0:  # chain 1, a real chunk
                raise error
            return program(*call_args)

        return real(failing, *args)

    monkeypatch.setattr(mcmc._programs, "_drive", drive)

"""Counts what JAX traces and compiles, for the tests that say a program is reused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class CompileCounter:
    """Counts JAX's tracing and compiling events (in-memory or persistent-cache compiles)."""

    events = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/backend_compile_duration",
        "/jax/compilation_cache/cache_retrieval_time_sec",
    )

    def __init__(self) -> None:
        import jax.monitoring

        self.count = 0
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self)

    def __call__(self, event: str, duration: float, **kwargs: Any) -> None:
        if self.active and event in self.events:
            self.count += 1

    @contextmanager
    def counting(self) -> Iterator[CompileCounter]:
        """Counts from zero inside the block, and stops counting when it ends."""
        self.active, self.count = True, 0
        try:
            yield self
        finally:
            self.active = False

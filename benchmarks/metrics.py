"""The measuring instruments: a compile clock, ESS, and the time of one compiled gradient.

Compile time is read from JAX's own monitoring: every trace, lowering and XLA compile is
reported as a time span, and the clock sums the *union* of the spans that fall inside a
call (nested traces are not counted twice).  A call's execution time is its wall time less
that.  This treats every library alike, including NumPyro, which traces and compiles its
sampling loop again on every ``MCMC.run``.

The subtraction is exact only if nothing executes while JAX compiles.  By default JAX
dispatches CPU computations to another thread and returns at once, so a library that
compiles during a call (NumPyro, for every chain's post-processing) has its earlier chains
running under that compile: the execution hidden there is then taken out with the compile
time.  Measured on the logistic regression, NumPyro sequential, 4 chains: the same ~25 s of
wall time split as 17 s compile + 8 s execution, against 12.5 s + 12.9 s with dispatch made
synchronous.  :func:`synchronous_dispatch` makes it so for the suite's process.

The physical floor of a model is the time of one gradient of its potential energy inside
compiled code: ``jax.grad(potential)`` is called ``n`` times in a ``lax.fori_loop`` at
points that depend on the loop index (so XLA cannot hoist it), and the loop's time over
``n`` is the figure; Python dispatch is not in it, as it is not in a compiled sampler.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Clock",
    "release_compiled",
    "synchronous_dispatch",
    "compile_clock",
    "median",
    "min_bulk_ess",
    "gradient_timer",
    "compiled_timer",
    "time_compiled_gradient",
    "time_eager_gradient",
]

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_spans: list[tuple[float, float]] = []
_lock = threading.Lock()
_installed = False
_active = 0  # clocks running now; spans are kept only while one is


def _listener(event: str, start: float, end: float, **_: Any) -> None:
    if _active and event in _COMPILE_EVENTS:
        with _lock:
            _spans.append((start, end))


def _install() -> None:
    global _installed
    if not _installed:
        from jax import monitoring

        monitoring.register_event_time_span_listener(_listener)
        _installed = True


def synchronous_dispatch() -> bool:
    """Have JAX run CPU computations on the calling thread, so that compile time and
    execution time never overlap (see the module docstring).  It must come before JAX
    starts its CPU client; returns whether it took effect."""
    import jax
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        return not jax.config.read("jax_cpu_enable_async_dispatch")
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True


def _union_length(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    total, reach = 0.0, lo
    for start, end in sorted(spans):
        start, end = max(start, reach), min(end, hi)
        if end > start:
            total += end - start
            reach = end
    return total


@dataclass
class Clock:
    """Wall time and JAX compile time (seconds) of the code run inside ``compile_clock``."""

    wall_s: float = 0.0
    compile_s: float = 0.0

    @property
    def execute_s(self) -> float:
        """Wall time less compile time: what the call costs once everything is compiled."""
        return max(self.wall_s - self.compile_s, 0.0)


@contextmanager
def compile_clock() -> Iterator[Clock]:
    """Time the block, and the part of it JAX spent tracing, lowering and compiling."""
    global _active
    _install()
    clock = Clock()
    # JAX stamps its spans with time.time(); the wall time uses the finer perf_counter.
    with _lock:
        first = len(_spans)
        _active += 1
    epoch, start = time.time(), time.perf_counter()
    try:
        yield clock
    finally:
        clock.wall_s = time.perf_counter() - start
        with _lock:
            spans = _spans[first:]
            _active -= 1
            if not _active:
                _spans.clear()
        union = _union_length(spans, epoch - 1e-3, time.time() + 1e-3)
        clock.compile_s = min(union, clock.wall_s)


def release_compiled() -> None:
    """Drop every compiled program JAX holds.  NumPyro compiles its loop anew on every run
    and each program keeps its machine code mapped; a long suite in one process would
    otherwise run out of memory mappings (LLVM fails with "Cannot allocate memory")."""
    import gc

    import jax

    gc.collect()
    jax.clear_caches()


def median(values: list[float]) -> float:
    """The median of a non-empty list (NaN for an empty one)."""
    return statistics.median(values) if values else float("nan")


def min_bulk_ess(samples: Mapping[str, Any]) -> float:
    """The smallest rank-normalised bulk ESS over every scalar of every latent site.

    ``samples`` maps site names to arrays laid out ``(chains, draws, *site_shape)``; the
    ESS is ``minippl.diagnostics.ess_bulk``, the same function for every sampler.
    Rank-normalised ESS does not change under a monotone map of each coordinate, so
    constrained and unconstrained draws give the same figure.
    """
    from minippl.diagnostics import ess_bulk

    worst = float("inf")
    for value in samples.values():
        ess = np.asarray(ess_bulk(np.asarray(value, dtype=np.float64)), dtype=np.float64)
        if ess.size:
            worst = min(worst, float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan"))
    return worst


def time_compiled_gradient(
    potential: Callable[[Any], Any], point: Any, budget_s: float = 0.15, rounds: int = 5
) -> float:
    """Seconds per gradient of ``potential`` at ``point`` (a pytree), inside compiled code:
    one reading of :func:`gradient_timer`."""
    return gradient_timer(potential, point, budget_s, rounds)()


def gradient_timer(
    potential: Callable[[Any], Any], point: Any, budget_s: float = 0.15, rounds: int = 5
) -> Callable[[], float]:
    """A function that times a gradient of ``potential`` at ``point`` (a pytree) inside
    compiled code, compiled and calibrated once, so that it can be read again cheaply."""
    import jax
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(point)
    return compiled_timer(jax.grad(lambda f: potential(unravel(f))), flat, budget_s, rounds)


def compiled_timer(
    fn: Callable[[Any], Any], flat: Any, budget_s: float = 0.15, rounds: int = 5
) -> Callable[[], float]:
    """A function that times ``fn`` (a flat vector to one of the same shape) inside compiled
    code: ``n`` calls in a ``lax.fori_loop``, the loop's time over ``n``.

    The loop count is calibrated so that one round takes about ``budget_s``; a reading is
    the median over ``rounds`` rounds.
    """
    import jax
    import jax.numpy as jnp

    @jax.jit
    def loop(n: Any, f0: Any) -> Any:
        def body(i: Any, acc: Any) -> Any:
            # The point moves with i, so the call cannot be hoisted out of the loop.
            return acc + fn(f0 + i.astype(f0.dtype) * 1e-7)

        return jax.lax.fori_loop(0, n, body, jnp.zeros_like(f0))

    def once(n: int) -> float:
        start = time.perf_counter()
        loop(n, flat).block_until_ready()
        return time.perf_counter() - start

    once(2)  # compile
    n = 4
    while True:
        elapsed = once(n)
        if elapsed > budget_s / 4 or n >= 1 << 24:
            break
        n *= 4
    n = max(2, int(n * budget_s / max(elapsed, 1e-9)))
    return lambda: median([once(n) / n for _ in range(rounds)])


def time_eager_gradient(
    grad_fn: Callable[[], Any], budget_s: float = 0.3, rounds: int = 5
) -> float:
    """Seconds per call of an eager (uncompiled) gradient ``grad_fn()``, median of rounds."""
    start = time.perf_counter()
    grad_fn()
    first = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(budget_s / rounds / first))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            grad_fn()
        times.append((time.perf_counter() - start) / n)
    return median(times)

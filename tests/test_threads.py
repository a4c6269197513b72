"""The stack is per thread and per asyncio task, and a seed handler never leaks a jit tracer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.runtime import Messenger, stack

N_THREADS = 8


def model(pause: Callable[[], object]) -> dict[str, Any]:
    """Two draws with a pause between them, where the other threads run their own models."""
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    pause()
    seen = tuple(type(h).__name__ for h in stack())
    with numpyro.plate("p", 2):
        b = numpyro.sample("b", dist.Normal(a, 1.0))
    return {"a": a, "b": b, "stack": seen}


def composition(i: int) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """A different handler stack for each thread, and the stack the model should see."""
    seeded = handlers.seed(model, rng_seed=i)
    if i % 4 == 0:
        return seeded, ("seed",)
    if i % 4 == 1:
        return handlers.condition(seeded, data={"a": float(i)}), ("condition", "seed")
    if i % 4 == 2:
        return handlers.scope(seeded, prefix=f"t{i}"), ("scope", "seed")
    return handlers.block(handlers.scale(seeded, scale=float(i)), hide=["a"]), (
        "block",
        "scale",
        "seed",
    )


def run(i: int, pause: Callable[[], object]) -> tuple[dict[str, Any], dict[str, Any]]:
    fn, _ = composition(i)
    tracer = handlers.trace(fn)
    out = tracer(pause)
    summary = {
        name: (
            site.type,
            np.asarray(site.value).tolist(),
            site.get("is_observed"),
            site.get("scale"),
        )
        for name, site in tracer.trace.items()
    }
    return out, summary


def test_eight_threads_with_different_stacks(backend: Backend) -> None:
    serial = [run(i, lambda: None) for i in range(N_THREADS)]
    barrier = threading.Barrier(N_THREADS, timeout=30)
    with ThreadPoolExecutor(N_THREADS) as pool:
        parallel = list(pool.map(lambda i: run(i, barrier.wait), range(N_THREADS)))
    for i, ((out, summary), (out_serial, summary_serial)) in enumerate(
        zip(parallel, serial, strict=True)
    ):
        assert out["stack"] == ("trace", *composition(i)[1])  # only this thread's handlers
        assert summary == summary_serial
        assert float(out["a"]) == float(out_serial["a"])
    assert stack() == ()


def test_one_wrapped_model_shared_by_eight_threads(backend: Backend) -> None:
    # The same handler objects, active in eight threads at once: each call of a wrapped
    # model gets its own key stream, its own lift cache and its own record of the sites
    # condition saw.
    def lifted(pause: Callable[[], object]) -> Any:
        s1 = numpyro.param("s", 1.0)
        pause()
        s2 = numpyro.param("s", 1.0)  # lift reuses this call's draw of "s"
        return s1, s2, model(pause)

    shared = handlers.lift(
        handlers.condition(lifted, data={"b": backend.xp.zeros(2)}), prior=dist.Normal(0.0, 1.0)
    )
    shared_seeded = handlers.seed(shared, rng_seed=0)

    def call(i: int, pause: Callable[[], object]) -> Any:
        fn = shared_seeded if i % 2 else handlers.seed(shared, rng_seed=i)
        with handlers.trace() as tr:
            s1, s2, out = fn(pause)
        return float(s1), float(s2), float(out["a"]), list(tr)

    expected = [call(i, lambda: None) for i in range(N_THREADS)]
    assert all(s1 == s2 for s1, s2, _, _ in expected)
    barrier = threading.Barrier(N_THREADS, timeout=30)
    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(lambda i: call(i, barrier.wait), range(N_THREADS)))
    assert results == expected


def test_asyncio_tasks_do_not_see_each_others_handlers(backend: Backend) -> None:
    async def async_model() -> tuple[Any, tuple[Messenger, ...]]:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        await asyncio.sleep(0.01)  # the other task runs here
        numpyro.sample("b", dist.Normal(a, 1.0))
        return a, stack()

    async def traced(i: int) -> tuple[Any, tuple[Messenger, ...], list[str], Messenger]:
        s = handlers.seed(rng_seed=i)
        with handlers.trace() as tr, handlers.scope(prefix=f"task{i}"), s:
            a, seen = await async_model()
        return a, seen, list(tr), s

    async def main() -> list[Any]:
        return list(await asyncio.gather(traced(1), traced(2)))

    (a1, seen1, names1, s1), (a2, seen2, names2, s2) = asyncio.run(main())
    assert names1 == ["task1/a", "task1/b"] and names2 == ["task2/a", "task2/b"]
    assert seen1[-1] is s1 and seen2[-1] is s2 and len(seen1) == len(seen2) == 3
    assert float(a1) == float(handlers.seed(one, rng_seed=1)())
    assert float(a2) == float(handlers.seed(one, rng_seed=2)())


def one() -> Any:
    return numpyro.sample("x", dist.Normal(0.0, 1.0))


def test_seed_reused_inside_and_outside_jit_leaks_no_tracer(jax_backend: Backend) -> None:
    import jax

    s = handlers.seed(rng_seed=0)

    @jax.jit
    def inside(shift: Any) -> Any:
        with s:
            return one() + shift

    first = float(inside(0.0))
    with s:  # NumPyro: UnexpectedTracerError, the handler kept the key split under jit
        outside = one()
    assert not jax_backend.is_tracer(s.rng_key)
    assert float(outside) == first  # the key was reset to the one it had on entry
    with s:  # outside jit the key advances from block to block, as in NumPyro
        assert float(one()) != first

    seeded = handlers.seed(one, rng_seed=0)
    assert float(jax.jit(seeded)()) == float(seeded()) == first


def test_seed_made_inside_jit_keeps_advancing(jax_backend: Backend) -> None:
    import jax

    def two_blocks() -> tuple[Any, Any]:
        s = handlers.seed(rng_seed=0)
        with s:
            a = one()
        with s:
            b = one()
        return a, b

    jitted, eager = jax.jit(two_blocks)(), two_blocks()
    assert float(jitted[0]) != float(jitted[1])
    assert [float(v) for v in jitted] == [float(v) for v in eager]

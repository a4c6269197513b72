"""Eager handler overhead: microseconds per site of ``trace(seed(model)).get_trace(...)``.

One call runs the model once under two handlers with no compilation, the path of every
``Predictive``, ``render_model`` and first trace a user makes.  Three libraries take turns
within each round: NumPyro, minippl on JAX (both given ``jax.numpy`` arrays, as in the
guide) and minippl on NumPy (NumPy arrays).  The figure is the median over rounds; the
number of sites is the length of the trace (plates and deterministic sites included).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.metrics import median
from benchmarks.models import get

__all__ = ["run_eager"]


def _caller(library: str, model_name: str) -> tuple[Callable[[int], Any], int]:
    spec = get(model_name)
    data = spec.data()
    if library == "numpyro":
        import jax.numpy as jnp
        import numpyro
        from numpyro import handlers

        model = spec.build(numpyro, numpyro.distributions)
        data = data.cast(np.float32)
        args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in data.args)
    else:
        import minippl
        from minippl import handlers

        backend = library.removeprefix("minippl-")
        model = spec.build(minippl, minippl.distributions)
        if backend == "jax":
            import jax.numpy as jnp

            data = data.cast(np.float32)
            args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in data.args)
        else:
            args = data.args

    def call(seed: int) -> Any:
        return handlers.trace(handlers.seed(model, rng_seed=seed)).get_trace(*args)

    return call, len(call(0))


def _select(library: str) -> None:
    """Put minippl on the backend a library name asks for (outside the timed loop)."""
    if library.startswith("minippl-"):
        import minippl

        minippl.set_backend(library.removeprefix("minippl-"))


def run_eager(
    models: Sequence[str] = ("linreg",),
    libraries: Sequence[str] = ("numpyro", "minippl-jax", "minippl-numpy"),
    rounds: int = 5,
    budget_s: float = 0.2,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Per (model, library): microseconds per call and per site, median of ``rounds``."""
    rows = []
    for model in models:
        callers = {}
        for lib in libraries:
            _select(lib)
            callers[lib] = _caller(lib, model)
        counts: dict[str, int] = {}
        for lib, (call, _) in callers.items():
            _select(lib)
            for i in range(3):  # warm the caches JAX keeps for eager operations
                call(i)
            start = time.perf_counter()
            call(0)
            counts[lib] = max(5, int(budget_s / max(time.perf_counter() - start, 1e-6)))
        times: dict[str, list[float]] = {lib: [] for lib in libraries}
        for _ in range(rounds):
            for lib, (call, _) in callers.items():
                _select(lib)
                n = counts[lib]
                start = time.perf_counter()
                for i in range(n):
                    call(i)
                times[lib].append((time.perf_counter() - start) / n)
        for lib, (_, sites) in callers.items():
            per_call = median(times[lib]) * 1e6
            rows.append(
                {
                    "model": model,
                    "library": lib,
                    "sites": sites,
                    "us_per_call": per_call,
                    "us_per_site": per_call / sites,
                    "rounds": rounds,
                }
            )
            log(f"  eager {model} / {lib}: {per_call:.0f} us a call, {per_call / sites:.0f} a site")
    import minippl

    minippl.set_backend("jax")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.eager [MODEL ...] [--rounds N] [--numpyro]``: the figures above,
    for minippl on both backends (and NumPyro with ``--numpyro``), one line per library."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eager", description=__doc__)
    parser.add_argument("models", nargs="*", default=["linreg", "eight_schools_nc"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--numpyro", action="store_true", help="time NumPyro too")
    args = parser.parse_args(argv)
    libraries = (["numpyro"] if args.numpyro else []) + ["minippl-jax", "minippl-numpy"]
    run_eager(args.models, libraries, rounds=args.rounds)


if __name__ == "__main__":
    main()

"""The NumPy backend's gradient: autograd against finite differences, and against JAX's.

For each model, the gradient of the potential energy at one unconstrained point, timed three
ways in one process, taking turns round by round:

* ``autograd``: the NumPy backend's ``value_and_grad`` (reverse mode, exact), called as the
  sampler calls it: on the flat vector of unconstrained values, which the potential's first
  step cuts back into sites (``ravel_pytree``'s unravel);
* ``finite differences``: fourth-order central differences in float64 (``4 * dim + 1``
  evaluations of the potential on the NumPy backend; ``tests/finite_differences.py``), the
  NumPy backend's method before autograd. They evaluate the plain potential: the handler
  stack with every formula written in ``xp``, without the backend's fused formulas
  (``backends/numpy_fused.py``, which only the gradient needs);
* ``JAX in loop``: ``jax.grad`` of the same potential on the JAX backend, compiled and called
  inside a compiled loop (``benchmarks.metrics.gradient_timer``): the floor a sampler step sees.

Each figure is the median over rounds of the mean time of a calibrated number of calls. Run
``python -m benchmarks.numpy_backend [--models email,eight_schools_c] [--out DIR]``; only with
``--out`` are the results written (``DIR/<host>-<date>-numpy-backend.{json,md}``).

``--nuts-steps WARMUP,SAMPLES`` times eager NUTS instead: one chain on the NumPy backend,
the CPU time (``time.process_time``) of warmup and sampling over the leapfrog steps taken.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import minippl
import minippl.distributions as dist
from benchmarks.metrics import gradient_timer, median
from benchmarks.models import get
from benchmarks.report import table
from minippl import handlers
from minippl.infer import potential_energy

__all__ = ["run_gradients", "run_nuts_steps"]

DEFAULT_MODELS = ("eight_schools_c", "eight_schools_nc", "linreg", "email")


def _point_and_potential(name: str) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """An unconstrained point (standard normal entries, fixed seed) and the potential."""
    spec = get(name)
    model, data = spec.build(minippl, dist), spec.data()
    sites = handlers.trace(handlers.seed(model, 0)).get_trace(*data.args, **data.kwargs)
    rng = np.random.default_rng(3)
    point = {
        k: rng.normal(size=np.shape(s.value))
        for k, s in sites.items()
        if s.type == "sample" and not s.is_observed
    }

    def potential(params: Any) -> Any:
        return potential_energy(model, data.args, data.kwargs, params)

    return point, potential


@contextlib.contextmanager
def _plain_formulas(plain: bool) -> Iterator[None]:
    """With ``plain``, the NumPy backend runs the core's formulas as written (no fused ones)."""
    backend = minippl.set_backend("numpy")
    if plain:
        backend.fused = {}  # type: ignore[attr-defined]
    try:
        yield
    finally:
        vars(backend).pop("fused", None)


def _calibrated(
    call: Callable[[], Any], budget_s: float, plain: bool = False
) -> Callable[[], float]:
    """A reading of ``call``'s time on the NumPy backend: the mean of ``n`` calls, ``n`` sized
    to ``budget_s``; with ``plain``, without the backend's fused formulas."""
    with _plain_formulas(plain):
        start = time.perf_counter()
        call()
        n = max(1, int(budget_s / max(time.perf_counter() - start, 1e-7)))

    def reading() -> float:
        with _plain_formulas(plain):
            start = time.perf_counter()
            for _ in range(n):
                call()
            return (time.perf_counter() - start) / n

    return reading


def _timers(name: str, with_jax: bool, budget_s: float) -> dict[str, Callable[[], float]]:
    import finite_differences  # tests/finite_differences.py, the reference it is timed against

    timers: dict[str, Callable[[], float]] = {}
    backend = minippl.set_backend("numpy")
    point, potential = _point_and_potential(name)
    flat, unravel = backend.ravel_pytree(point)
    exact = backend.value_and_grad(lambda x: potential(unravel(x)))
    numeric = finite_differences.value_and_grad(potential)
    timers["autograd"] = _calibrated(lambda: exact(flat), budget_s)
    timers["finite differences"] = _calibrated(lambda: numeric(point), budget_s, plain=True)
    if with_jax:
        import jax

        jax.config.update("jax_enable_x64", True)  # the same float64 arithmetic
        minippl.set_backend("jax")
        point_jax, potential_jax = _point_and_potential(name)
        timers["JAX in loop"] = gradient_timer(potential_jax, point_jax, budget_s, rounds=1)
    minippl.set_backend("jax")
    return timers


def run_gradients(
    models: Sequence[str] = DEFAULT_MODELS,
    rounds: int = 5,
    budget_s: float = 0.3,
    with_jax: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Per model: microseconds per gradient by each method, and the ratios."""
    rows = []
    for name in models:
        timers = _timers(name, with_jax, budget_s)
        readings: dict[str, list[float]] = {k: [] for k in timers}
        for _ in range(rounds):
            for method, read in timers.items():
                readings[method].append(read())
        us = {k: median(v) * 1e6 for k, v in readings.items()}
        row: dict[str, Any] = {"model": name, "rounds": rounds}
        row.update({f"us_{k.replace(' ', '_')}": v for k, v in us.items()})
        row["fd_over_autograd"] = us["finite differences"] / us["autograd"]
        if "JAX in loop" in us:
            row["autograd_over_jax"] = us["autograd"] / us["JAX in loop"]
        rows.append(row)
        log(f"  {name}: " + ", ".join(f"{k} {v:.0f} us" for k, v in us.items()))
    return rows


def run_nuts_steps(
    models: Sequence[str], warmup: int, samples: int, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Per model: one eager NUTS chain on NumPy, its leapfrog steps and CPU time per step."""
    from minippl.infer import MCMC, NUTS

    backend = minippl.set_backend("numpy")
    rows = []
    for name in models:
        spec = get(name)
        model, data = spec.build(minippl, dist), spec.data()
        mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, progress_bar=False)
        start = time.process_time()
        mcmc.warmup(
            backend.key(1),
            *data.args,
            extra_fields=("num_steps",),
            collect_warmup=True,
            **data.kwargs,
        )
        steps = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
        key = mcmc.post_warmup_state.rng_key
        mcmc.run(key, *data.args, extra_fields=("num_steps",), **data.kwargs)
        steps += int(np.sum(mcmc.get_extra_fields()["num_steps"]))
        cpu = time.process_time() - start
        rows.append(
            {
                "model": name,
                "steps": steps,
                "cpu_s": cpu,
                "us_per_step": cpu / steps * 1e6,
                "ms_per_iteration": cpu / (warmup + samples) * 1e3,
            }
        )
        log(f"  {name}: {warmup} + {samples}, {steps} leapfrog steps, {cpu:.2f} s CPU")
    minippl.set_backend("jax")
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`run_gradients`' rows."""
    with_jax = all("us_JAX_in_loop" in r for r in rows)
    header = ["model", "autograd (us)", "finite differences (us)", "FD / autograd"]
    if with_jax:
        header += ["JAX in loop (us)", "autograd / JAX"]
    body = []
    for r in rows:
        line = [r["model"], r["us_autograd"], r["us_finite_differences"], r["fd_over_autograd"]]
        if with_jax:
            line += [r["us_JAX_in_loop"], r["autograd_over_jax"]]
        body.append(line)
    return table(header, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per reading")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX's in-loop gradient")
    parser.add_argument("--out", type=Path, help="write <host>-<date>-numpy-backend.{json,md}")
    parser.add_argument("--nuts-steps", help="WARMUP,SAMPLES: time eager NUTS per leapfrog step")
    args = parser.parse_args(argv)
    if args.nuts_steps:
        warmup, samples = (int(n) for n in args.nuts_steps.split(","))
        steps = run_nuts_steps(args.models.split(","), warmup, samples)
        body = [
            [r["model"], r["steps"], r["cpu_s"], r["us_per_step"], r["ms_per_iteration"]]
            for r in steps
        ]
        header = ["model", "leapfrog steps", "CPU (s)", "per step (us)", "per iteration (ms)"]
        print(table(header, body))
        return 0
    # tests/ holds the finite-difference reference: importable when run from the repo root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    rows = run_gradients(args.models.split(","), args.rounds, args.budget, not args.no_jax)
    text = markdown(rows)
    print(text)
    if args.out is not None:
        stem = args.out / f"{socket.gethostname()}-{datetime.date.today()}-numpy-backend"
        args.out.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
        stem.with_suffix(".md").write_text(text + "\n")
        print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

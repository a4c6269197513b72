"""Where each missed target stands against what bounds it from below.

``python -m benchmarks.floors`` measures, for the kinds of target the suite reports as
missed, the part of the time that the sampler's own bookkeeping cannot remove:

- **Per step** (``step_floor``): the overhead ratio divides by one *gradient*, but a NUTS
  leaf also needs its potential energy (its multinomial weight, the divergence test), so
  the least a leaf costs is one value and gradient; with a dense mass matrix also one
  ``D x D`` product (``M^-1 r``, its velocity). Both timed inside compiled code, as the
  suite times the gradient; their ratio to the gradient is the lowest overhead ratio any
  NUTS can reach on that model.
- **Per iteration** (``iteration_split``): a transition costs a fixed part (momentum, keys,
  the adaptation, storing the draw) and a part per leapfrog step. Trees held to depth 1 and
  2 (one and three steps an iteration) give both, for minippl and NumPyro run the same way
  (one chain, ``sequential``); at the default depth the steps per iteration then say how
  much of a run is fixed cost. Not a floor: it says which part a ratio against NumPyro
  would have to come from (and that the ratio depends on how many steps an iteration took
  in that run, not only on the code).
- **Fresh process** (``fresh_floor``): in a new process with an empty cache, when each of
  JAX's traces, lowerings and compiles ran (``jax.monitoring`` spans, by thread). Start-up
  and imports, the chain program's XLA compile (the longest compile) and the sampling
  (a second run in the same process) bound the cold first posterior from below;
  ``import jax`` and the sampling bound the warm one. NumPyro's parallel chains, in
  processes of the same run, give the budgets (0.5x and 0.15x of it).

Results go to ``benchmarks/results/<host>-<date>-floors[-tag].{json,md}``, with the cold
processes' timelines drawn in ``...-timeline.png``. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.metrics import compiled_timer, gradient_timer, median
from benchmarks.models import get
from benchmarks.report import table
from benchmarks.samplers import NumPyroAPIRunner, RunConfig, run_interleaved

__all__ = ["fresh_floor", "iteration_split", "main", "markdown", "step_floor"]

COLD_BUDGET, WARM_BUDGET = 0.5, 0.15
"""The issue's fresh-process targets, as shares of NumPyro's best first posterior."""
SPLIT_RUN = RunConfig(chains=1, samples=5000)
"""One chain, long enough that a run's fixed cost (milliseconds) does not blur the fit."""


def step_floor(model: str, rounds: int = 5, readings_each: int = 7) -> dict[str, Any]:
    """Compiled time of minippl's gradient, of value and gradient, and (dense mass) of value,
    gradient and one ``D x D`` product; seconds per call, with the ratios to the gradient."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    spec = get(model)
    runner = NumPyroAPIRunner("minippl", "sequential")
    runner.setup(spec, RunConfig(1, 10, 10))
    potential, point = runner.potential()
    flat, unravel = ravel_pytree(point)

    def energy(f: Any) -> Any:
        return potential(unravel(f))

    def value_and_grad(f: Any) -> Any:
        value, g = jax.value_and_grad(energy)(f)
        return g + value  # the value must be computed, not pruned

    timers = {"value_and_grad_s": value_and_grad}
    if spec.dense_mass:
        d = flat.shape[0]
        a = np.random.default_rng(0).normal(size=(d, d)) / np.sqrt(d)
        inverse_mass = jnp.asarray(a @ a.T + np.eye(d), dtype=flat.dtype)

        def with_mass_product(f: Any) -> Any:
            return value_and_grad(f) + inverse_mass @ f

        timers["value_grad_and_mass_product_s"] = with_mass_product
    read = {"grad_s": gradient_timer(potential, point, rounds=rounds)}  # the suite's timer
    read.update({name: compiled_timer(fn, flat, rounds=rounds) for name, fn in timers.items()})
    readings: dict[str, list[float]] = {name: [] for name in read}
    for _ in range(readings_each):  # alternately, and the fastest reading (as the suite's)
        for name, timer in read.items():
            readings[name].append(timer())
    out: dict[str, Any] = {"model": model, "dim": int(flat.shape[0])}
    out.update({name: min(values) for name, values in readings.items()})
    for name in timers:
        out[name.removesuffix("_s") + "_over_grad"] = out[name] / out["grad_s"]
    return out


def iteration_split(
    model: str,
    library: str,
    depths: tuple[int, int] = (1, 2),
    cfg: RunConfig = SPLIT_RUN,
    repeats: int = 5,
    kernel_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fixed cost per iteration and cost per leapfrog step of ``library``'s NUTS on one chain
    (``sequential``), from trees held to ``depths``, and what they make of a run at the
    default depth (``kernel_kwargs``: more NUTS settings for all three). Repeats interleave
    the three settings; each figure is a median."""
    more = dict(kernel_kwargs or {})
    settings = {f"depth {d}": {**more, "max_tree_depth": d} for d in depths}
    settings["default"] = more
    runners = {}
    for name, kwargs in settings.items():
        runner = NumPyroAPIRunner(library, "sequential", kernel_kwargs=kwargs)
        runner.setup(get(model), cfg)
        runner.first_call(0)
        runner.run(0)  # the timed calls' own programs (warmup, then run) compile here
        runners[name] = runner
    times, steps = run_interleaved(runners, repeats)
    t = {name: median(v) for name, v in times.items()}
    s = {name: median(v) for name, v in steps.items()}
    low, high = (f"depth {d}" for d in depths)
    iterations = cfg.chains * (cfg.warmup + cfg.samples)
    per_step = (t[high] - t[low]) / (s[high] - s[low])
    fixed = (t[low] - per_step * s[low]) / iterations
    grad = runners["default"].gradient_time()
    return {
        "model": model,
        "library": library,
        "kernel_kwargs": more,
        "iterations": iterations,
        "fixed_per_iteration_s": fixed,
        "per_step_s": per_step,
        "grad_s": grad,
        "default_sampling_s": t["default"],
        "default_steps": s["default"],
        "steps_per_iteration": s["default"] / iterations,
        "fixed_share": fixed * iterations / t["default"],
        "overhead": t["default"] / (s["default"] * grad),
        "overhead_without_fixed": (t["default"] - fixed * iterations) / (s["default"] * grad),
        "times_s": times,
        "steps": steps,
    }


def _import_jax_s() -> float:
    """Seconds from launching ``python`` to ``import jax`` done and its CPU device up."""
    start = time.time()
    code = "import jax; jax.devices()"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.time() - start


def fresh_floor(
    model: str,
    cfg: RunConfig | None = None,
    repeats: int = 3,
    methods: Sequence[str] = ("sequential", "parallel"),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Cold and warm first posteriors of minippl's chain ``methods`` beside NumPyro's
    parallel chains and a bare ``import jax``, in fresh processes taking turns, and the
    floors of minippl's best method (medians over ``repeats``).

    A cold process can finish no sooner than its start-up and imports, the chain program's
    XLA compile (its longest) and the sampling itself (a second run in the same process); a
    warm one no sooner than ``import jax`` and the sampling.
    """
    from benchmarks.fresh_process import launch

    cfg = cfg or RunConfig()
    runs: dict[str, list[dict[str, Any]]] = {"numpyro": []}
    bare: list[float] = []
    for k in range(repeats):
        log(f"  floors: fresh processes of {model}, repeat {k + 1}")
        for method in methods:
            with tempfile.TemporaryDirectory(prefix="minippl-floors-") as tmp:
                env = {"MINIPPL_CACHE_DIR": tmp, "MINIPPL_COMPILE_CACHE": "1"}
                env["MINIPPL_BENCH_SPANS"] = "1"
                for variant in ("cold", "warm"):
                    record = launch(f"minippl-{method}", model, cfg, env, seed=k)
                    runs.setdefault(f"{method} {variant}", []).append(record)
        runs["numpyro"].append(launch("numpyro-parallel", model, cfg, {}, seed=k))
        bare.append(_import_jax_s())

    def first(name: str) -> float:
        return median([r["first_posterior_s"] for r in runs[name]])

    def sampling(method: str) -> float:  # both variants ran it a second time
        return median([r["rerun_s"] for v in ("cold", "warm") for r in runs[f"{method} {v}"]])

    best = min(methods, key=lambda m: first(f"{m} cold"))
    best_warm = min(methods, key=lambda m: first(f"{m} warm"))
    cold = runs[f"{best} cold"]
    compiles = [
        max(
            (b - a for name, a, b, _ in r["spans"] if name == "backend_compile_duration"),
            default=float("nan"),
        )
        for r in cold
    ]
    numpyro = first("numpyro")
    imports = median([r["startup_import_s"] for r in cold])
    chain_compile = median(compiles)
    cold_sampling, warm_sampling = sampling(best), sampling(best_warm)
    return {
        "model": model,
        "method": best,
        "warm_method": best_warm,
        "numpyro_parallel_s": numpyro,
        "cold_s": first(f"{best} cold"),
        "warm_s": first(f"{best_warm} warm"),
        "startup_import_s": imports,
        "chain_compile_s": chain_compile,
        "sampling_s": cold_sampling,
        "warm_sampling_s": warm_sampling,
        "import_jax_s": median(bare),
        "cold_budget_s": COLD_BUDGET * numpyro,
        "cold_floor_s": imports + chain_compile + cold_sampling,
        "warm_budget_s": WARM_BUDGET * numpyro,
        "warm_floor_s": median(bare) + warm_sampling,
        "timeline": _timeline(cold[len(cold) // 2]),
        "runs": runs,
    }


def _timeline(record: dict[str, Any], shortest_s: float = 0.02) -> list[list[Any]]:
    """One cold process's JAX spans of at least ``shortest_s``, in order: what ran when."""
    spans = sorted(record.get("spans", []), key=lambda s: s[1])
    return [[name, a, b - a, thread] for name, a, b, thread in spans if b - a >= shortest_s]


def markdown(results: dict[str, Any]) -> str:
    """The floors as tables, one section per kind (times in microseconds or seconds)."""
    us = 1e6
    lines = [f"# minippl floors: {results['host']}, {results['date']}", ""]
    lines += [f"Run: `{results['command']}`.", ""]
    if results.get("data"):
        lines += [*(f"- {note}" for note in results["data"]), ""]
    if results["steps"]:
        lines += ["## Per step: the least a leaf costs (compiled, us per call)", ""]
        header = ["model", "dim", "gradient", "value + gradient", "+ mass product", "floor"]
        rows = []
        for r in results["steps"]:
            mass = r.get("value_grad_and_mass_product_s", float("nan"))
            floor = r.get("value_grad_and_mass_product_over_grad", r["value_and_grad_over_grad"])
            rows.append(
                [
                    r["model"],
                    r["dim"],
                    r["grad_s"] * us,
                    r["value_and_grad_s"] * us,
                    mass * us,
                    floor,
                ]
            )
        lines += [table(header, rows), ""]
    if results["iterations"]:
        lines += ["## Per iteration: fixed cost and cost per step (one chain, sequential)", ""]
        header = [
            "model",
            "library",
            "fixed us / iteration",
            "us / step",
            "gradient us",
            "steps / iteration",
            "fixed share",
            "overhead",
            "overhead less fixed",
        ]
        rows = [
            [
                r["model"],
                r["library"],
                r["fixed_per_iteration_s"] * us,
                r["per_step_s"] * us,
                r["grad_s"] * us,
                r["steps_per_iteration"],
                r["fixed_share"],
                r["overhead"],
                r["overhead_without_fixed"],
            ]
            for r in results["iterations"]
        ]
        lines += [table(header, rows), ""]
    if results["fresh"]:
        lines += ["## Fresh process: first posterior against its floor (s)", ""]
        header = [
            "model",
            "NumPyro parallel",
            "minippl cold",
            "budget",
            "start-up + imports",
            "chain compile",
            "sampling",
            "floor",
            "minippl warm",
            "budget",
            "import jax",
            "sampling",
            "floor",
        ]
        rows = [
            [
                r["model"],
                r["numpyro_parallel_s"],
                f"{r['cold_s']:.3g} ({r['method']})",
                r["cold_budget_s"],
                r["startup_import_s"],
                r["chain_compile_s"],
                r["sampling_s"],
                r["cold_floor_s"],
                f"{r['warm_s']:.3g} ({r['warm_method']})",
                r["warm_budget_s"],
                r["import_jax_s"],
                r["warm_sampling_s"],
                r["warm_floor_s"],
            ]
            for r in results["fresh"]
        ]
        lines += [table(header, rows), ""]
        for r in results["fresh"]:
            lines += [
                f"Timeline of a cold process, {r['model']} (JAX spans of 20 ms or more, "
                "seconds from the launch):",
                "",
            ]
            lines += [table(["span", "starts", "lasts", "thread"], r["timeline"]), ""]
    return "\n".join(lines)


def plot_timelines(results: dict[str, Any], path: Path) -> bool:
    """Each cold process's spans as bars, one row per thread, with the start-up and the
    cold budget marked: where the seconds before a first posterior go. False without
    matplotlib."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fresh = results["fresh"]
    if not fresh:
        return False
    colours = {
        "jaxpr_trace_duration": "tab:blue",
        "jaxpr_to_mlir_module_duration": "tab:green",
        "backend_compile_duration": "tab:red",
    }
    fig, axes = plt.subplots(len(fresh), 1, figsize=(9, 1.6 + 1.2 * len(fresh)), squeeze=False)
    for ax, r in zip(axes[:, 0], fresh, strict=True):
        threads = list(dict.fromkeys(span[3] for span in r["timeline"]))
        for name, start, length, thread in r["timeline"]:
            ax.barh(threads.index(thread), length, left=start, color=colours.get(name, "grey"))
        ax.axvspan(0, r["startup_import_s"], color="lightgrey", label="start-up + imports")
        ax.axvline(r["cold_budget_s"], color="black", ls="--", label="cold budget")
        ax.axvline(r["cold_s"], color="tab:purple", label="first posterior")
        ax.set_yticks(range(len(threads)), threads)
        numpyro = r["numpyro_parallel_s"]
        ax.set_title(f"{r['model']}: a cold process (NumPyro parallel chains {numpyro:.2f} s)")
    for name, colour in colours.items():
        axes[0, 0].barh(0, 0, color=colour, label=name.removesuffix("_duration"))
    axes[0, 0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    axes[-1, 0].set_xlabel("seconds from the launch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.floors", description=__doc__)
    p.add_argument("--step-models", default="email,logistic,gauss100_dense")
    p.add_argument("--iteration-models", default="eight_schools_c")
    p.add_argument("--fresh-models", default="eight_schools_nc,linreg")
    p.add_argument("--libraries", default="minippl,numpyro", help="for the iteration split")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--samples", type=int, default=1000, help="fresh processes' draws")
    p.add_argument("--split-samples", type=int, default=5000, help="one chain's draws, split")
    p.add_argument("--tag", default="")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    from benchmarks.metrics import synchronous_dispatch
    from benchmarks.suite import data_notes, quiet_warnings

    os.environ.setdefault("MINIPPL_COMPILE_CACHE", "0")  # as in the suite's own process
    synchronous_dispatch()
    quiet_warnings()

    def names(text: str) -> list[str]:
        return [n for n in text.split(",") if n]

    cfg = RunConfig(chains=1, warmup=args.warmup, samples=args.split_samples)
    words = sys.argv[1:] if argv is None else list(argv)
    results: dict[str, Any] = {
        "host": socket.gethostname(),
        "date": date.today().isoformat(),
        "command": " ".join(["python -m benchmarks.floors", *words]),
        "steps": [step_floor(m) for m in names(args.step_models)],
        "iterations": [
            iteration_split(m, lib, cfg=cfg, repeats=args.repeats)
            for m in names(args.iteration_models)
            for lib in names(args.libraries)
        ],
        "fresh": [
            fresh_floor(m, RunConfig(4, args.warmup, args.samples), args.repeats)
            for m in names(args.fresh_models)
        ],
    }
    models = [r["model"] for section in ("steps", "iterations", "fresh") for r in results[section]]
    results["data"] = data_notes(models)
    text = markdown(results)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{results['host']}-{results['date']}-floors{'-' + args.tag if args.tag else ''}"
    Path(f"{stem}.md").write_text(text)
    Path(f"{stem}.json").write_text(json.dumps(results, indent=1, default=float))
    plot_timelines(results, Path(f"{stem}-timeline.png"))
    return results


if __name__ == "__main__":
    main()

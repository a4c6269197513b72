"""The interleaved runs: every sampler on one model, repeat by repeat, then the ratios.

For each model every runner is set up, called once (the first call: it compiles), then
called ``repeats`` more times with new seeds, the samplers taking turns within each repeat
(the order rotates), so that load from other processes falls on all of them alike.  Each
figure is the median over the repeats; every ratio against NumPyro compares figures from
the same run of the suite.

Figures per cell (model x sampler):

- ``first_call_s``: wall time of the first ``MCMC.run`` in this process (compile + sample).
- ``compile_s``: the part of it JAX spent tracing, lowering and compiling.
- ``sampling_s``: warmup + sampling, compiled (wall time less any compile in the call).
- ``grad_evals``: leapfrog steps, warmup + sampling, all chains.
- ``min_ess_bulk``: the smallest bulk ESS over every latent scalar.
- ``ess_per_s``, ``ess_per_1k_grad``: that ESS over ``sampling_s`` / per 1000 gradients.
- ``divergences``: after warmup, all chains (may be 0).
- ``grad_time_s``: one compiled gradient of the sampler's potential (the physical floor).
- ``overhead_ratio``: ``sampling_s / (grad_evals * grad_time_s)``; 1.0 is the floor.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from benchmarks.metrics import Clock, median, min_bulk_ess, release_compiled
from benchmarks.models import ModelSpec, get
from benchmarks.samplers import RunConfig, RunOutput, make_runner

__all__ = ["NUMPY_CONFIG", "ratios", "run_cells", "run_progress_bar", "targets"]

Log = Callable[[str], None]

NUMPY_CONFIG = RunConfig(chains=2, warmup=100, samples=100)
"""The NumPy backend runs NUTS eagerly in Python (milliseconds per leapfrog step, gradients
by autograd): a full run would take many minutes per model, so it runs at most this much, once."""


def _numpy_config(cfg: RunConfig) -> RunConfig:
    return RunConfig(
        chains=min(cfg.chains, NUMPY_CONFIG.chains),
        warmup=min(cfg.warmup, NUMPY_CONFIG.warmup),
        samples=min(cfg.samples, NUMPY_CONFIG.samples),
        progress_bar=cfg.progress_bar,
    )


def _repeat_record(seed: int, out: RunOutput) -> dict[str, Any]:
    ess = min_bulk_ess(out.samples)
    execute = out.clock.execute_s
    return {
        "seed": seed,
        "wall_s": out.clock.wall_s,
        "compile_s": out.clock.compile_s,
        "sampling_s": execute,
        "grad_evals": out.grad_evals,
        "min_ess_bulk": ess,
        "ess_per_s": ess / execute if execute > 0 else float("nan"),
        "ess_per_1k_grad": 1000.0 * ess / out.grad_evals if out.grad_evals else float("nan"),
        "divergences": out.divergences,
    }


def _dim(spec: ModelSpec) -> int:
    import jax
    import numpyro
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    data = spec.data().cast(np.float32)
    info = initialize_model(
        jax.random.PRNGKey(0),
        spec.build(numpyro, numpyro.distributions),
        model_args=data.args,
        model_kwargs=data.kwargs,
    )
    return int(ravel_pytree(info.param_info.z)[0].shape[0])


def run_cells(
    models: Sequence[str],
    samplers: Sequence[str],
    cfg: RunConfig,
    repeats: int,
    log: Log = print,
) -> list[dict[str, Any]]:
    """Every sampler on every model, interleaved; one record per (model, sampler)."""
    cells: list[dict[str, Any]] = []
    for model in models:
        spec = get(model)
        names = [s for s in samplers if spec.numpy_ok or s != "minippl-numpy"]
        runners = {}
        for name in names:
            runner = make_runner(name)
            numpy = runner.backend == "numpy"
            runner.setup(spec, _numpy_config(cfg) if numpy else cfg)
            runners[name] = runner
        first: dict[str, Clock] = {}
        history: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for name, runner in runners.items():
            log(f"  {model} / {name}: first call")
            if runner.backend == "numpy":
                # Nothing to compile: the first call is also the one repeat it gets.
                out = runner.run(0)
                first[name] = out.clock
                history[name].append(_repeat_record(0, out))
            else:
                first[name] = runner.first_call(0)
        for k in range(repeats):
            order = names[k % len(names) :] + names[: k % len(names)]
            for name in order:
                if runners[name].backend == "numpy":
                    continue
                log(f"  {model} / {name}: repeat {k + 1}/{repeats}")
                record = _repeat_record(k + 1, runners[name].run(k + 1))
                record["grad_time_s"] = runners[name].gradient_time()
                history[name].append(record)
        dim = _dim(spec)
        for name, runner in runners.items():
            reps = history[name]
            # The floor is the fastest reading: noise (a busy second core, a neighbour on
            # the host) only adds time, and with one reading per sampler the same logistic
            # potential can time 91 us for one sampler and 120 us for the next.
            timed = [r["grad_time_s"] for r in reps if "grad_time_s" in r]
            grad_time = min(timed) if timed else runner.gradient_time()
            sampling = median([r["sampling_s"] for r in reps])
            grads = median([float(r["grad_evals"]) for r in reps])
            rcfg = runner.cfg
            cells.append(
                {
                    "model": model,
                    "description": spec.description,
                    "dim": dim,
                    "sampler": name,
                    "config": {**asdict(rcfg), "repeats": len(reps)},
                    "first_call_s": first[name].wall_s,
                    "compile_s": first[name].compile_s,
                    "sampling_s": sampling,
                    "grad_evals": grads,
                    "min_ess_bulk": median([r["min_ess_bulk"] for r in reps]),
                    "ess_per_s": median([r["ess_per_s"] for r in reps]),
                    "ess_per_1k_grad": median([r["ess_per_1k_grad"] for r in reps]),
                    "divergences": median([float(r["divergences"]) for r in reps]),
                    "grad_time_s": grad_time,
                    "overhead_ratio": sampling / (grads * grad_time),
                    "repeats": reps,
                }
            )
            log(
                f"  {model} / {name}: ESS/s {cells[-1]['ess_per_s']:.1f}, "
                f"overhead {cells[-1]['overhead_ratio']:.1f}"
            )
        del runners
        release_compiled()
    return cells


def run_progress_bar(
    model: str, samplers: Sequence[str], cfg: RunConfig, repeats: int, log: Log = print
) -> list[dict[str, Any]]:
    """Sampling time with the progress bar on over off, interleaved (bars drawn to a
    stand-in terminal, so every library draws them)."""
    spec = get(model)
    runners = {}
    for name in samplers:
        for bar in (False, True):
            runner = make_runner(name)
            runner.setup(spec, RunConfig(cfg.chains, cfg.warmup, cfg.samples, progress_bar=bar))
            runner.first_call(0)
            runners[name, bar] = runner
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in runners}
    for k in range(repeats):
        for key, runner in runners.items():
            log(f"  progress bar {key[0]} {'on' if key[1] else 'off'}: repeat {k + 1}")
            times[key].append(runner.run(k + 1).clock.execute_s)
    del runners
    release_compiled()
    rows = []
    for name in samplers:
        off, on = median(times[name, False]), median(times[name, True])
        rows.append(
            {
                "model": model,
                "sampler": name,
                "off_s": off,
                "on_s": on,
                "cost_ratio": on / off,
                "repeats": repeats,
                "off_repeats": times[name, False],
                "on_repeats": times[name, True],
            }
        )
    return rows


# --------------------------------------------------------------------------- ratios and targets


CONCURRENT_SAMPLERS = ("minippl-parallel", "numpyro-parallel")
"""Chain methods that run several chains at once, one per core (threads or CPU devices): their
wall time is shared by chains running side by side, so their overhead ratio (wall time over
gradients x one gradient) can fall below 1 and says nothing of the distance to the floor.
They count for ESS per second (what a user waits for), not for the overhead targets."""


def _best(cells: list[dict[str, Any]], prefix: str, key: str, high: bool) -> dict[str, Any] | None:
    mine = [c for c in cells if c["sampler"].startswith(prefix) and c["sampler"] != "minippl-numpy"]
    if key == "overhead_ratio":
        mine = [c for c in mine if c["sampler"] not in CONCURRENT_SAMPLERS]
    mine = [c for c in mine if math.isfinite(c[key])]
    if not mine:
        return None
    return (max if high else min)(mine, key=lambda c: c[key])


def ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: minippl's best JAX chain method against NumPyro's best, same run (for the
    overhead ratio, the best of the methods that run one chain program at a time)."""
    out = []
    for model in dict.fromkeys(c["model"] for c in cells):
        here = [c for c in cells if c["model"] == model]
        row: dict[str, Any] = {"model": model}
        for key, high in (("ess_per_s", True), ("overhead_ratio", False)):
            ours, theirs = _best(here, "minippl", key, high), _best(here, "numpyro", key, high)
            if ours and theirs:
                row[key] = {
                    "minippl": ours[key],
                    "minippl_sampler": ours["sampler"],
                    "numpyro": theirs[key],
                    "numpyro_sampler": theirs["sampler"],
                    "ratio": ours[key] / theirs[key],
                }
        out.append(row)
    return out


def _target(name: str, value: float, bound: float, at_most: bool, note: str = "") -> dict[str, Any]:
    met = value <= bound if at_most else value >= bound
    return {
        "target": name,
        "value": value,
        "bound": bound,
        "kind": "at most" if at_most else "at least",
        "met": bool(met) if math.isfinite(value) else False,
        "note": note,
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    rows: list[dict[str, Any]] = []
    cells = results.get("cells", [])
    small = {c["model"] for c in cells if get(c["model"]).small}
    by_model = {r["model"]: r for r in ratios(cells)}
    ess = [r["ess_per_s"]["ratio"] for r in by_model.values() if "ess_per_s" in r]
    for model, row in by_model.items():
        if "ess_per_s" in row:
            rows.append(
                _target(f"ESS/s vs NumPyro best, {model}", row["ess_per_s"]["ratio"], 1.0, False)
            )
    if ess:
        geo = float(np.exp(np.mean(np.log(ess))))
        rows.append(_target("ESS/s vs NumPyro best, geometric mean", geo, 1.3, False))
    for model, row in by_model.items():
        if "overhead_ratio" not in row:
            continue
        o = row["overhead_ratio"]
        if model in small:
            rows.append(_target(f"overhead vs NumPyro, {model} (small)", o["ratio"], 0.5, True))
        else:
            rows.append(
                _target(f"overhead ratio, {model} (gradient-bound)", o["minippl"], 1.2, True)
            )
    if "gauss100_dense" in by_model and "ess_per_s" in by_model["gauss100_dense"]:
        r = by_model["gauss100_dense"]["ess_per_s"]["ratio"]
        rows.append(_target("dense mass ESS/s vs NumPyro dense, gauss100_dense", r, 2.0, False))
    for pb in results.get("progress_bar", []):
        if pb["sampler"].startswith("minippl"):
            rows.append(
                _target(f"progress bar cost, {pb['sampler']}", pb["cost_ratio"] - 1.0, 0.10, True)
            )
    eager = {e["library"]: e for e in results.get("eager", []) if e["model"] == "linreg"}
    if {"numpyro", "minippl-jax", "minippl-numpy"} <= set(eager):
        ref = eager["numpyro"]["us_per_call"]
        rows.append(
            _target(
                "eager trace(seed), JAX backend vs NumPyro",
                eager["minippl-jax"]["us_per_call"] / ref,
                1.0,
                True,
            )
        )
        rows.append(
            _target(
                "eager trace(seed), NumPy backend speed-up over NumPyro",
                ref / eager["minippl-numpy"]["us_per_call"],
                20.0,
                False,
            )
        )
    for row in results.get("svi", {}).get("ratios", []):
        model = row["model"]
        rows.append(
            _target(f"SVI steps/s vs NumPyro best, {model}", row["steps_per_s_ratio"], 1.0, False)
        )
        if math.isfinite(row["first_step_ratio"]):
            rows.append(
                _target(
                    f"SVI first step, warm cache, vs NumPyro as installed, {model}",
                    row["first_step_ratio"],
                    0.5,
                    True,
                )
            )
    for row in results.get("fresh_process_ratios", []):
        if row["model"] in small or get(row["model"]).small:
            rows.append(
                _target(
                    f"first posterior, cold cache, {row['model']}", row["cold_ratio"], 0.5, True
                )
            )
            rows.append(
                _target(
                    f"first posterior, warm cache, {row['model']}", row["warm_ratio"], 0.15, True
                )
            )
    return rows


def data_notes(names: Sequence[str]) -> list[str]:
    """Where each model's data came from, for the models that say (the email data: the
    CSV's folder, or that a synthetic stand-in took its place)."""
    return [f"{name}: {note}." for name in dict.fromkeys(names) if (note := get(name).data().note)]


def quiet_warnings() -> None:
    """The suite reports divergences itself; the libraries' warnings would only clutter."""
    warnings.simplefilter("ignore")

"""Wall time to a first posterior in a fresh Python process: what a user waits for.

Each measurement launches ``python -c SCRIPT`` from the repository root; the script imports
the library, builds the model, runs ``MCMC.run`` once (progress bar off) and fetches the
draws.  The figure is the time from launching the process to the draws being on the host:
interpreter start, imports, tracing, compiling and sampling.  Variants:

- ``minippl-*`` ``cold``: a new, empty ``MINIPPL_CACHE_DIR`` (the persistent cache on).
- ``minippl-*`` ``warm``: a second process on the same folder, so compiled programs load.
- ``numpyro-*`` ``default``: NumPyro as a user runs it, with its defaults: no persistent
  compilation cache (every JAX cache variable is removed from the environment), so every
  process compiles. ``numpyro-parallel`` first calls ``numpyro.set_host_device_count(chains)``,
  as NumPyro's documentation asks for chains in parallel on CPU (without it, NumPyro runs
  them one after another).
- ``numpyro-vectorized`` ``jax-cache cold`` / ``jax-cache warm`` (not with ``--quick``):
  NumPyro with JAX's own persistent cache switched on by hand (``JAX_COMPILATION_CACHE_DIR``,
  every entry kept), before and after one process filled it.  For information only.

The suite's targets compare with NumPyro without a persistent cache: ``cold_ratio`` and
``warm_ratio`` are minippl's best chain method, cold and warm, over NumPyro's best
``default`` chain method (0.5 and 0.15 at most), ``numpyro-parallel`` included when it was
measured; ``*_as_installed`` leave it out (NumPyro with nothing configured).
``warm_vs_numpyro_jax_cache`` sets minippl's warm time beside NumPyro with the cache a NumPyro
user would have to configure; no target applies to it.

The variants take turns within each repeat; each figure is the median over repeats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backends.jax.xla_flags import flags_before
from benchmarks.metrics import median
from benchmarks.samplers import RunConfig

__all__ = ["SCRIPT", "fresh_ratios", "launch", "run_fresh_processes"]

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, os, sys, time
t0 = time.time()
library, method, model_name, chains, warmup, samples, seed = sys.argv[1:8]
import numpy as np
if library == "numpyro":
    import numpyro as ppl
    if method == "parallel":  # NumPyro's way to run chains at once on CPU: one device each
        ppl.set_host_device_count(int(chains))
    import jax
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS
    key = jax.random.PRNGKey(int(seed))
else:
    import minippl as ppl
    import minippl.distributions as dist
    from minippl.backend import current
    from minippl.infer import MCMC, NUTS
    key = current().key(int(seed))
from benchmarks.models import get
t1 = time.time()
spans = []  # JAX's trace, lowering and compile spans, when asked for (benchmarks.floors)
record = os.environ.get("MINIPPL_BENCH_SPANS") == "1"
if record:
    import threading
    from jax import monitoring
    monitoring.register_event_time_span_listener(
        lambda event, start, end, **_: spans.append(
            [event.rsplit("/", 1)[-1], start, end, threading.current_thread().name]))
spec = get(model_name)
data = spec.data().cast(np.float32)
kernel = NUTS(spec.build(ppl, dist), target_accept_prob=spec.target_accept,
              dense_mass=spec.dense_mass)
mcmc = MCMC(kernel, num_warmup=int(warmup), num_samples=int(samples), num_chains=int(chains),
            chain_method=method, progress_bar=False)
mcmc.run(key, *data.args, **data.kwargs)
draws = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
t2 = time.time()
rerun_s = None  # with the spans, minippl's second run: sampling alone, nothing to compile
if record and library == "minippl":
    mcmc.run(key, *data.args, **data.kwargs)
    draws = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    rerun_s = time.time() - t2
print("RESULT " + json.dumps({"imported": t1, "posterior": t2, "run_s": t2 - t1, "spans": spans,
                              "rerun_s": rerun_s}))
"""

_CACHE_VARS = (
    "MINIPPL_CACHE_DIR",
    "MINIPPL_COMPILE_CACHE",
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)


def launch(
    sampler: str, model: str, cfg: RunConfig, env: dict[str, str], seed: int
) -> dict[str, Any]:
    """One fresh process of ``sampler`` on ``model`` with ``env`` added: its first-posterior
    and start-up times (seconds from the launch); if ``MINIPPL_BENCH_SPANS=1`` is in ``env``,
    also JAX's compile spans and (minippl) the time of a second run in the same process."""
    library, _, method = sampler.partition("-")
    argv = [sys.executable, "-c", SCRIPT, library, method, model]
    argv += [str(cfg.chains), str(cfg.warmup), str(cfg.samples), str(seed)]
    full_env = {k: v for k, v in os.environ.items() if k not in _CACHE_VARS}
    if library == "numpyro":  # as its users run it: without the XLA setting minippl adds
        full_env = flags_before(full_env)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    start = time.time()
    proc = subprocess.run(
        argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=3600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{sampler} on {model} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(lines[-1].removeprefix("RESULT "))
    result = {
        "first_posterior_s": out["posterior"] - start,
        "startup_import_s": out["imported"] - start,
        "run_s": out["run_s"],
    }
    if out["spans"]:  # (name, start, end, thread), times from the process's launch
        result["spans"] = [[n, a - start, b - start, t] for n, a, b, t in out["spans"]]
    if out["rerun_s"] is not None:
        result["rerun_s"] = out["rerun_s"]
    return result


def run_fresh_processes(
    models: Sequence[str],
    samplers: Sequence[str],
    cfg: RunConfig,
    repeats: int,
    log: Callable[[str], None] = print,
    jax_cache: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Median first-posterior times per (model, sampler, variant), and their ratios
    (:func:`fresh_ratios`).  ``jax_cache=True`` also times NumPyro with JAX's cache, for
    information."""
    jax_samplers = [s for s in samplers if s.split("-")[0] in ("minippl", "numpyro")]
    jax_samplers = [s for s in jax_samplers if s != "minippl-numpy"]
    rows: list[dict[str, Any]] = []
    for model in models:
        times: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for k in range(repeats):
            with tempfile.TemporaryDirectory(prefix="minippl-bench-cache-") as tmp:
                plan: list[tuple[str, str, dict[str, str]]] = []
                for sampler in jax_samplers:
                    if sampler.startswith("minippl"):
                        env = {"MINIPPL_CACHE_DIR": str(Path(tmp) / sampler)}
                        env["MINIPPL_COMPILE_CACHE"] = "1"
                        plan += [(sampler, "cold", env), (sampler, "warm", env)]
                    else:
                        plan.append((sampler, "default", {}))
                        if jax_cache and sampler == "numpyro-vectorized":
                            env = {
                                "JAX_COMPILATION_CACHE_DIR": str(Path(tmp) / "jax"),
                                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
                            }
                            plan += [(sampler, "jax-cache cold", env)]
                            plan += [(sampler, "jax-cache warm", env)]
                for sampler, variant, env in plan:
                    log(f"  fresh process {model} / {sampler} ({variant}): repeat {k + 1}")
                    result = launch(sampler, model, cfg, env, seed=k)
                    times.setdefault((sampler, variant), []).append(result)
        for (sampler, variant), reps in times.items():
            rows.append(
                {
                    "model": model,
                    "sampler": sampler,
                    "variant": variant,
                    "first_posterior_s": median([r["first_posterior_s"] for r in reps]),
                    "startup_import_s": median([r["startup_import_s"] for r in reps]),
                    "run_s": median([r["run_s"] for r in reps]),
                    "config": {"chains": cfg.chains, "warmup": cfg.warmup, "samples": cfg.samples},
                    "repeats": reps,
                }
            )
    return rows, fresh_ratios(rows)


def fresh_ratios(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, minippl's best first posterior (cold and warm) over NumPyro's best with no
    persistent cache: over every chain method measured (``cold_ratio``, ``warm_ratio``: the
    targets), and over NumPyro as installed, whose "parallel" would need devices it does not
    have (``*_as_installed``: vectorized and sequential only)."""
    out: list[dict[str, Any]] = []
    for model in dict.fromkeys(row["model"] for row in rows):
        times = {
            (r["sampler"], r["variant"]): r["first_posterior_s"]
            for r in rows
            if r["model"] == model
        }
        numpyro = {
            s: t for (s, var), t in times.items() if s.startswith("numpyro") and var == "default"
        }
        cold = [t for (s, var), t in times.items() if s.startswith("minippl") and var == "cold"]
        warm = [t for (s, var), t in times.items() if s.startswith("minippl") and var == "warm"]
        installed = [t for s, t in numpyro.items() if s != "numpyro-parallel"]
        if not (numpyro and cold and warm):
            continue
        best_sampler = min(numpyro, key=lambda s: numpyro[s])
        best = numpyro[best_sampler]
        jax_cache_warm = times.get(("numpyro-vectorized", "jax-cache warm"), float("nan"))
        row = {
            "model": model,
            "baseline": "numpyro without a persistent compilation cache, best chain method",
            "numpyro_best_s": best,
            "numpyro_best_sampler": best_sampler,
            "minippl_cold_s": min(cold),
            "minippl_warm_s": min(warm),
            "cold_ratio": min(cold) / best,
            "warm_ratio": min(warm) / best,
            "numpyro_jax_cache_warm_s": jax_cache_warm,
            "warm_vs_numpyro_jax_cache": min(warm) / jax_cache_warm,
        }
        if installed:
            row["numpyro_as_installed_s"] = min(installed)
            row["cold_ratio_as_installed"] = min(cold) / min(installed)
            row["warm_ratio_as_installed"] = min(warm) / min(installed)
        out.append(row)
    return out

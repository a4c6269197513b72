"""SVI, minippl against NumPyro side by side: steps per second, and time to a first step.

``python -m benchmarks.svi [--quick] [--repeats N] [--fresh-repeats M]
[--models eight_schools_nc,logistic] [--out FILE.json]``

Both libraries fit the same model (:mod:`benchmarks.models`, float32 data) with the same
guide (``AutoNormal``), optimizer (``Adam(0.01)``) and loss (``Trace_ELBO()``), progress bar
off. Two measurements:

- **steps/s after compile**, in this process: ``run(key, N, init_state=state)`` timed after
  a first run compiled it (minippl keeps its compiled chunk; the state excludes the
  set-up). NumPyro's own ``run`` compiles afresh on every call (its scan and its jitted
  step are new functions each time), so its best is also timed: ``jit`` of a ``lax.scan``
  over ``svi.update``, written by the user and called a second time (``numpyro-jit-scan``).
- **time to a first step in a fresh process**: from launching ``python -c`` to the loss of
  ``run(key, 1)`` on the host (imports, set-up, compile, one step). minippl with its
  persistent cache ``cold`` (an empty folder) and ``warm`` (a second process on it); NumPyro
  as installed (``default``, no persistent cache) and, for information, with JAX's cache
  switched on by hand and warm (``jax-cache warm``).

Medians over ``--repeats`` interleaved repeats (``--fresh-repeats`` for the fresh
processes, which take seconds each); on a shared machine only the ratios within one run mean
anything, and the steady ratio is the median of the per-repeat ratios (each repeat runs the
variants one after another, so they share the machine's load of the moment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.metrics import median

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("eight_schools_nc", "logistic")
STEPS = {"eight_schools_nc": 5000, "logistic": 500}

SCRIPT = r"""
import sys, time
library, model_name = sys.argv[1:3]
import numpy as np
if library == "numpyro":
    import jax, numpyro as ppl, numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.optim import Adam
    key = jax.random.key(0)
else:
    import minippl as ppl, minippl.distributions as dist
    from minippl.infer import SVI, Trace_ELBO
    from minippl.infer.autoguide import AutoNormal
    from minippl.optim import Adam
    key = 0
from benchmarks.models import get
spec = get(model_name)
data = spec.data().cast(np.float32)
model = spec.build(ppl, dist)
svi = SVI(model, AutoNormal(model), Adam(0.01), Trace_ELBO())
result = svi.run(key, 1, *data.args, progress_bar=False, **data.kwargs)
print("RESULT", float(np.asarray(result.losses)[0]), time.time())
"""

_CACHE_VARS = (
    "MINIPPL_CACHE_DIR",
    "MINIPPL_COMPILE_CACHE",
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)


def _fits(model_name: str) -> dict[str, Callable[[int], Any]]:
    """For each variant, a function ``steps -> None`` that runs that many SVI steps from a
    fixed state and waits for them (compiled once beforehand)."""
    import jax
    import numpyro
    import numpyro.distributions as ndist
    from numpyro.infer import SVI as NSVI
    from numpyro.infer import Trace_ELBO as NTrace_ELBO
    from numpyro.infer.autoguide import AutoNormal as NAutoNormal
    from numpyro.optim import Adam as NAdam

    import minippl
    import minippl.distributions as dist
    from benchmarks.models import get
    from minippl.infer import SVI, Trace_ELBO
    from minippl.infer.autoguide import AutoNormal
    from minippl.optim import Adam

    minippl.set_backend("jax")  # the backend is process-wide: the suite's cells may leave NumPy
    wait = minippl.backend.current().block_until_ready
    spec = get(model_name)
    data = spec.data().cast(np.float32)
    args, kwargs = data.args, data.kwargs
    ours_model = spec.build(minippl, dist)
    ours = SVI(ours_model, AutoNormal(ours_model), Adam(0.01), Trace_ELBO())
    ours_state = ours.init(0, *args, **kwargs)
    their_model = spec.build(numpyro, ndist)
    theirs = NSVI(their_model, NAutoNormal(their_model), NAdam(0.01), NTrace_ELBO())
    their_state = theirs.init(jax.random.key(0), *args, **kwargs)
    scans: dict[int, Any] = {}

    def minippl_run(steps: int) -> None:
        result = ours.run(None, steps, *args, progress_bar=False, init_state=ours_state, **kwargs)
        wait(result.losses)

    def numpyro_run(steps: int) -> None:
        result = theirs.run(
            None, steps, *args, progress_bar=False, init_state=their_state, **kwargs
        )
        wait(result.losses)

    def numpyro_jit_scan(steps: int) -> None:
        if steps not in scans:

            def many(state: Any) -> Any:
                return jax.lax.scan(
                    lambda s, _: theirs.update(s, *args, **kwargs), state, None, length=steps
                )

            scans[steps] = jax.jit(many)
        wait(scans[steps](their_state))

    return {
        "minippl-run": minippl_run,
        "numpyro-run": numpyro_run,
        "numpyro-jit-scan": numpyro_jit_scan,
    }


def steps_per_second(
    models: Sequence[str], repeats: int, quick: bool, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Steps per second of each variant, after a first (compiling) call, interleaved."""
    rows = []
    for model in models:
        steps = STEPS[model] // (10 if quick else 1)
        fits = _fits(model)
        backend = _backend_name()
        for fit in fits.values():
            fit(steps)  # compile (and, for NumPyro's run, show what a second call costs)
        times: dict[str, list[float]] = {name: [] for name in fits}
        for k in range(repeats):
            for name, fit in fits.items():
                start = time.perf_counter()
                fit(steps)
                times[name].append(time.perf_counter() - start)
            log(f"  {model}: repeat {k + 1}/{repeats}")
        for name, spans in times.items():
            rows.append(
                {"model": model, "variant": name, "steps": steps, "seconds": median(spans),
                 "steps_per_s": steps / median(spans), "repeats": spans,
                 "minippl_backend": backend}
            )  # fmt: skip
    return rows


def _backend_name() -> str:
    import minippl

    return str(minippl.backend.current().name)


def _flags_before(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without the XLA setting importing minippl adds, so NumPyro runs as its
    users run it (the helper lives beside the JAX backend, a package or one module)."""
    try:
        from backends.jax.xla_flags import flags_before
    except ImportError:
        from backends.xla_cpu import flags_before
    return flags_before(environ)


def _launch(library: str, model: str, env: dict[str, str]) -> float:
    full_env = {k: v for k, v in os.environ.items() if k not in _CACHE_VARS}
    if library == "numpyro":
        full_env = _flags_before(full_env)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, library, model],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{library} on {model} failed:\n{proc.stderr[-3000:]}")
    return float(lines[-1].split()[2]) - start


def first_step(
    models: Sequence[str], repeats: int, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Seconds from launching a process to its first SVI loss, per library and cache."""
    rows = []
    for model in models:
        times: dict[tuple[str, str], list[float]] = {}
        for k in range(repeats):
            with tempfile.TemporaryDirectory(prefix="minippl-svi-bench-") as tmp:
                ours = {
                    "MINIPPL_CACHE_DIR": str(Path(tmp) / "minippl"),
                    "MINIPPL_COMPILE_CACHE": "1",
                }
                jax_cache = {
                    "JAX_COMPILATION_CACHE_DIR": str(Path(tmp) / "jax"),
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
                }
                plan = [
                    ("minippl", "cold", ours),
                    ("minippl", "warm", ours),
                    ("numpyro", "default", {}),
                    ("numpyro", "jax-cache cold", jax_cache),
                    ("numpyro", "jax-cache warm", jax_cache),
                ]
                for library, variant, env in plan:
                    times.setdefault((library, variant), []).append(_launch(library, model, env))
            log(f"  fresh processes {model}: repeat {k + 1}/{repeats}")
        for (library, variant), spans in times.items():
            rows.append(
                {"model": model, "library": library, "variant": variant,
                 "first_step_s": median(spans), "repeats": spans}
            )  # fmt: skip
    return rows


def ratios(throughput: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: minippl's steps/s over NumPyro's best (ratio of medians, and median of the
    per-repeat ratios), and its first step with a warm cache over NumPyro as installed."""
    out = []
    for model in dict.fromkeys(r["model"] for r in throughput + fresh):
        rows = {r["variant"]: r for r in throughput if r["model"] == model}
        first = {
            (r["library"], r["variant"]): r["first_step_s"] for r in fresh if r["model"] == model
        }
        speed, paired = _speed_ratios(rows)
        start = first.get(("minippl", "warm"), np.nan) / first.get(("numpyro", "default"), np.nan)
        out.append(
            {"model": model, "steps_per_s_ratio": speed, "steps_per_s_paired_ratio": paired,
             "first_step_ratio": start}
        )  # fmt: skip
    return out


def markdown(throughput: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> str:
    """The two tables, with minippl's ratios to NumPyro's best and as-installed figures."""
    out = ["| model | variant | steps | steps/s |", "|---|---|---|---|"]
    for row in throughput:
        out.append(
            f"| {row['model']} | {row['variant']} | {row['steps']} | {row['steps_per_s']:.0f} |"
        )
    out += ["", "| model | library | cache | first step (s) |", "|---|---|---|---|"]
    for row in fresh:
        out.append(
            f"| {row['model']} | {row['library']} | {row['variant']} | {row['first_step_s']:.2f} |"
        )
    out += [
        "",
        "| model | steps/s, minippl / NumPyro best | the same, median of per-repeat ratios "
        "| first step, minippl warm / NumPyro default |",
        "|---|---|---|---|",
    ]
    for r in ratios(throughput, fresh):
        out.append(
            f"| {r['model']} | {r['steps_per_s_ratio']:.2f} | "
            f"{r['steps_per_s_paired_ratio']:.2f} | {r['first_step_ratio']:.2f} |"
        )
    return "\n".join(out)


def _speed_ratios(rows: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """minippl's steps/s over NumPyro's best variant: as a ratio of the medians, and as the
    median of the ratios within each repeat (NaN where a variant was not measured)."""
    if "minippl-run" not in rows or not {"numpyro-run", "numpyro-jit-scan"} & set(rows):
        return np.nan, np.nan
    theirs = [rows[v] for v in ("numpyro-run", "numpyro-jit-scan") if v in rows]
    best = max(theirs, key=lambda row: row["steps_per_s"])
    ours = rows["minippl-run"]
    paired = np.asarray(best["repeats"]) / np.asarray(ours["repeats"])  # time ratio = rate ratio
    return ours["steps_per_s"] / best["steps_per_s"], float(np.median(paired))


def section(
    models: Sequence[str],
    repeats: int,
    fresh_repeats: int,
    quick: bool,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both measurements and their ratios, as ``python -m benchmarks`` reports them (no
    fresh processes where ``fresh_repeats`` is 0)."""
    throughput = steps_per_second(models, repeats, quick, log)
    fresh = first_step(models, fresh_repeats, log) if fresh_repeats > 0 else []
    return {"throughput": throughput, "fresh": fresh, "ratios": ratios(throughput, fresh)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.svi", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--fresh-repeats", type=int, help="repeats of the fresh processes (default: --repeats)"
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps, 1 repeat")
    parser.add_argument("--skip-fresh", action="store_true", help="no fresh processes")
    parser.add_argument("--skip-throughput", action="store_true", help="fresh processes only")
    parser.add_argument("--out", help="write the results as JSON here (and .md beside it)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    repeats = 1 if args.quick else args.repeats
    throughput = [] if args.skip_throughput else steps_per_second(models, repeats, args.quick)
    fresh_repeats = 1 if args.quick else args.fresh_repeats or args.repeats
    fresh = [] if args.skip_fresh else first_step(models, fresh_repeats)
    table = markdown(throughput, fresh)
    print(table)
    if args.out:
        path = Path(args.out)
        load = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
        payload = {"throughput": throughput, "fresh": fresh, "load_average_at_end": load}
        path.write_text(json.dumps(payload, indent=1))
        path.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

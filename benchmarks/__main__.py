"""``python -m benchmarks``: run the suite and write JSON, Markdown and PNG results.

Examples::

    python -m benchmarks                       # the whole suite (long: see README.md)
    python -m benchmarks --quick               # a small version for CI (a few minutes)
    python -m benchmarks --models eight_schools_nc,linreg --samplers minippl-vectorized,blackjax
    python -m benchmarks --skip fresh,scaling --repeats 5

Runs unchanged on a GPU when JAX sees one (the JSON records the devices).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

SECTIONS = ("cells", "svi", "fresh", "eager", "progress", "scaling")


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in _list(text)]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from benchmarks.models import MODELS, SMALL
    from benchmarks.samplers import SAMPLERS

    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small version for CI")
    p.add_argument("--models", type=_list, default=None, help=f"comma list of {', '.join(MODELS)}")
    p.add_argument(
        "--samplers", type=_list, default=None, help=f"comma list of {', '.join(SAMPLERS)}"
    )
    p.add_argument("--chains", type=int, default=None, help="chains (default 4; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="warmup iterations (default 1000)")
    p.add_argument("--samples", type=int, default=None, help="kept iterations (default 1000)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3)")
    p.add_argument("--fresh-models", type=_list, default=None, help=f"default: {', '.join(SMALL)}")
    p.add_argument(
        "--fresh-samplers", type=_list, default=None, help="default: --samplers (JAX, MCMC)"
    )
    p.add_argument("--fresh-repeats", type=int, default=None, help="default: --repeats")
    p.add_argument("--scaling-rows", type=_ints, default=None, help="default 1e3,1e4,1e5,1e6")
    p.add_argument("--scaling-dims", type=_ints, default=None, help="default 10,100,1000")
    p.add_argument(
        "--progress-samplers", type=_list, default=None, help="default: the JAX MCMC samplers"
    )
    p.add_argument(
        "--skip", type=_list, default=[], help=f"sections to skip: {', '.join(SECTIONS)}"
    )
    p.add_argument(
        "--host-devices",
        type=int,
        default=1,
        help="CPU devices JAX makes of the host (NumPyro's set_host_device_count): "
        "numpyro-parallel needs one per chain",
    )
    p.add_argument("--tag", default="", help="appended to the file names: <host>-<date>-TAG")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    q = args.quick
    args.models = args.models or (["linreg"] if q else list(MODELS))
    default_samplers = ["minippl-vectorized", "minippl-numpy", "numpyro-vectorized", "blackjax"]
    args.chains = args.chains or (2 if q else 4)
    chosen = args.samplers or (default_samplers if q else list(SAMPLERS))
    args.fresh_samplers = args.fresh_samplers or [s for s in chosen if s != "blackjax"]
    if args.samplers is None and args.host_devices < args.chains:
        # numpyro-parallel needs a device per chain: then it runs in its fresh processes only
        chosen = [s for s in chosen if s != "numpyro-parallel"]
    args.samplers = chosen
    args.warmup = args.warmup or (100 if q else 1000)
    args.samples = args.samples or (100 if q else 1000)
    args.repeats = args.repeats or (1 if q else 3)
    if args.fresh_models is None:
        args.fresh_models = ["linreg"] if q else [m for m in args.models if m in SMALL]
    args.fresh_repeats = args.fresh_repeats or args.repeats
    args.scaling_rows = args.scaling_rows or ([1000, 10_000] if q else [10**k for k in range(3, 7)])
    args.scaling_dims = args.scaling_dims or ([10] if q else [10, 100, 1000])
    for name in args.models:
        if name not in MODELS:
            p.error(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    for name in args.samplers + args.fresh_samplers:
        if name not in SAMPLERS:
            p.error(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    for name in args.skip:
        if name not in SECTIONS:
            p.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
    if "numpyro-parallel" in args.samplers and "cells" not in args.skip:
        if args.host_devices < args.chains:
            p.error(
                f"numpyro-parallel runs one chain per device: add --host-devices {args.chains} "
                "(or leave it out of --samplers; the fresh-process section gives it its own "
                "devices)"
            )
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the suite as the command line says; returns the results written."""
    args = parse(argv)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    # In this process every library compiles under the same conditions: minippl's persistent
    # cache is off (the fresh-process section measures it, cold and warm, in new processes).
    os.environ["MINIPPL_COMPILE_CACHE"] = "0"
    os.environ["MINIPPL_CACHE_DIR"] = tempfile.mkdtemp(prefix="minippl-bench-unused-")

    from benchmarks import report, suite
    from benchmarks.child import run_in_child
    from benchmarks.fresh_process import run_fresh_processes
    from benchmarks.metrics import synchronous_dispatch
    from benchmarks.samplers import RunConfig, minippl_available
    from benchmarks.scaling import run_scaling

    suite.quiet_warnings()
    # Execution must not hide under compilation, or "sampling s" (wall less compile) is short
    # by whatever ran meanwhile (metrics.py). The sections about what a user waits for (the
    # fresh processes, eager handlers, the progress bar) run in child processes, where JAX
    # dispatches as it does by default.
    synchronous = synchronous_dispatch()
    if args.host_devices > 1:
        import jax

        jax.config.update("jax_num_cpu_devices", args.host_devices)  # before JAX starts
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f}s]{msg}", flush=True)

    notes: list[str] = []
    if not synchronous:
        notes.append(
            "JAX had started before the suite, so its CPU dispatch stayed asynchronous: a "
            "library that compiles during a run has execution hidden in its compile time."
        )
    samplers = list(args.samplers)
    missing = minippl_available()
    if missing:
        samplers = [s for s in samplers if not s.startswith("minippl")]
        notes.append(
            f"minippl's MCMC could not be imported ({missing}); its samplers were skipped."
        )
    cfg = RunConfig(args.chains, args.warmup, args.samples)
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "tag": args.tag,
        "command": command,
        "machine": report.machine(),
        "synchronous_dispatch": synchronous,
        "config": {
            "quick": args.quick,
            "models": args.models,
            "samplers": samplers,
            "chains": args.chains,
            "warmup": args.warmup,
            "samples": args.samples,
            "repeats": args.repeats,
            "fresh_models": args.fresh_models,
            "fresh_samplers": args.fresh_samplers,
            "fresh_repeats": args.fresh_repeats,
            "scaling_rows": args.scaling_rows,
            "scaling_dims": args.scaling_dims,
            "skipped": args.skip,
            "host_devices": args.host_devices,
        },
    }
    if "cells" not in args.skip:
        log(" NUTS side by side")
        results["cells"] = suite.run_cells(args.models, samplers, cfg, args.repeats, log)
        results["ratios"] = suite.ratios(results["cells"])
        concurrent = sorted(
            {c["sampler"] for c in results["cells"]} & set(suite.CONCURRENT_SAMPLERS)
        )
        if concurrent:
            notes.append(
                f"Chain methods that run chains at once on the CPU's cores "
                f"({', '.join(concurrent)}): their wall time is shared by chains side by side, "
                "so their overhead ratio can fall below 1; they count for ESS/s, and are left "
                "out of the overhead comparisons."
            )
        if any(c["sampler"] == "minippl-numpy" for c in results["cells"]):
            n = suite.NUMPY_CONFIG
            notes.append(
                f"minippl-numpy runs at most {n.chains} chains x ({n.warmup} + {n.samples}), "
                "once: it runs NUTS eagerly in Python."
            )
    if "svi" not in args.skip:
        log(" SVI side by side")
        results["svi"] = _svi_section(args, log)
    if "fresh" not in args.skip and args.fresh_models:
        log(" fresh processes")
        fresh = args.fresh_samplers  # run_fresh_processes keeps the MCMC samplers on JAX
        if missing:
            fresh = [s for s in fresh if not s.startswith("minippl")]
        rows, ratio_rows = run_fresh_processes(
            args.fresh_models, fresh, cfg, args.fresh_repeats, log, jax_cache=not args.quick
        )
        results["fresh_process"], results["fresh_process_ratios"] = rows, ratio_rows
    if "eager" not in args.skip:
        log(" eager handlers")
        libraries = ["numpyro", "minippl-jax", "minippl-numpy"] if not missing else ["numpyro"]
        models = ["linreg"] if args.quick else ["linreg", "eight_schools_nc"]
        eager = {"models": models, "libraries": libraries, "rounds": 3 if args.quick else 7}
        results["eager"] = run_in_child("eager", eager, log)
    if "progress" not in args.skip:
        log(" progress bar")
        bar_model = "linreg" if args.quick else "eight_schools_nc"
        bar_samplers = args.progress_samplers or samplers
        # MCMC objects on JAX; the child process has one device, too few for NumPyro's parallel.
        bar_samplers = [
            s for s in bar_samplers if s not in ("blackjax", "minippl-numpy", "numpyro-parallel")
        ]
        if args.quick:
            bar_samplers = bar_samplers[:1]
        # A bar costs milliseconds on a run of a tenth of a second: more repeats than the
        # cells, so that the median is not one noisy run. Chains on two threads of a
        # 2-core VM take 40 to 56 ms for the same work, and 46 to 93 ms over the suite's
        # seeds: with 9 repeats the medians of bar on and off can sit 15% apart on noise
        # alone (benchmarks/README.md, "Progress bar").
        bar_repeats = args.repeats if args.quick else max(args.repeats, 25)
        bar = {"model": bar_model, "samplers": bar_samplers, "cfg": asdict(cfg)}
        results["progress_bar"] = run_in_child("progress", {**bar, "repeats": bar_repeats}, log)
    if "scaling" not in args.skip:
        log(" scaling")
        scale_samplers = [
            s for s in ("minippl-vectorized", "numpyro-vectorized", "blackjax") if s in samplers
        ]
        if args.quick:
            scale_samplers = scale_samplers[:1]
        scale_cfg = RunConfig(1, 50, 50) if args.quick else RunConfig(1, 200, 200)
        results["scaling"] = run_scaling(
            args.scaling_rows, args.scaling_dims, scale_samplers, scale_cfg, log
        )
        results["scaling_config"] = {
            "chains": 1,
            "warmup": scale_cfg.warmup,
            "samples": scale_cfg.samples,
        }
    results["elapsed_s"] = time.perf_counter() - start
    cell_models = list(args.models) if "cells" not in args.skip else []
    fresh_models = list(args.fresh_models) if "fresh" not in args.skip else []
    notes += suite.data_notes(cell_models + fresh_models)
    results["notes"] = notes
    results["targets"] = suite.targets(results)
    files = report.write(results, args.out)
    log(f" wrote {files['json']}")
    print(report.markdown(results))
    return results


def _svi_section(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """SVI's steps per second after compile (21 interleaved repeats at least: a run takes
    milliseconds) and its first step in fresh processes; quick: eight schools, a tenth of
    the steps, no fresh processes."""
    from benchmarks import svi

    if args.quick:
        return svi.section(["eight_schools_nc"], 1, 0, True, log)
    return svi.section(svi.MODELS, max(args.repeats, 21), args.fresh_repeats, False, log)


if __name__ == "__main__":
    main()

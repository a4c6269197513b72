"""Where a sampler's time goes: fixed cost per run, cost per leapfrog step, and a profile.

``python -m benchmarks.profiling --model linreg --sampler minippl-vectorized`` compiles the
sampler, then (interleaving the two lengths, ``--repeats`` times) runs it with ``S`` and
with ``2 S`` kept draws.  The extra draws' time over their extra gradient evaluations is the
cost of one leapfrog step inside the compiled loop; what is left of a run at length ``S``
is its fixed cost (eager initialisation, host transfers, post-processing of the draws).
Last, ``cProfile`` shows the Python side of one compiled run (the compiled loop appears as
the one call that executes it).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
from collections.abc import Sequence
from typing import Any

from benchmarks.metrics import median

__all__ = ["decompose", "main"]


def decompose(
    model: str, sampler: str, chains: int, warmup: int, samples: int, repeats: int
) -> dict[str, Any]:
    """Fixed cost and per-step cost of ``sampler`` on ``model`` (seconds), with the floor."""
    from benchmarks.models import get
    from benchmarks.samplers import RunConfig, make_runner, run_interleaved

    spec = get(model)
    runners = {}
    for n in (samples, 2 * samples):
        runner = make_runner(sampler)
        runner.setup(spec, RunConfig(chains, warmup, n))
        runner.first_call(0)
        runners[n] = runner
    times, grads = run_interleaved(runners, repeats)
    t1, t2 = median(times[samples]), median(times[2 * samples])
    g1, g2 = median(grads[samples]), median(grads[2 * samples])
    per_step = (t2 - t1) / (g2 - g1)
    grad_time = runners[samples].gradient_time()
    return {
        "model": model,
        "sampler": sampler,
        "sampling_s": t1,
        "grad_evals": g1,
        "per_step_s": per_step,
        "fixed_s": t1 - per_step * g1,
        "grad_time_s": grad_time,
        "per_step_beyond_gradient_s": per_step - grad_time,
        "_runner": runners[samples],
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    p.add_argument("--model", default="linreg")
    p.add_argument("--sampler", default="minippl-vectorized")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    os.environ.setdefault("MINIPPL_COMPILE_CACHE", "0")
    import warnings

    warnings.simplefilter("ignore")
    d = decompose(args.model, args.sampler, args.chains, args.warmup, args.samples, args.repeats)
    runner = d.pop("_runner")
    us = 1e6
    print(
        f"{d['model']} / {d['sampler']}: sampling {d['sampling_s']:.3f} s for "
        f"{d['grad_evals']:.0f} leapfrog steps\n"
        f"  per step {d['per_step_s'] * us:.2f} us (gradient {d['grad_time_s'] * us:.3f} us, "
        f"beyond it {d['per_step_beyond_gradient_s'] * us:.2f} us)\n"
        f"  fixed cost per run {d['fixed_s'] * 1e3:.1f} ms"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    runner.run(99)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(args.top)
    print(text.getvalue())


if __name__ == "__main__":
    main()

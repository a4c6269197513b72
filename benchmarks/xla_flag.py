"""What the JAX backend's one XLA flag buys (``backends/jax/__init__.py``): time per leapfrog
step of NUTS with the flag (default) and without it (``MINIPPL_XLA_FLAGS=0``).

XLA reads its flags when JAX starts, so each reading is a fresh process; the two settings take
turns, and each figure is the median of its readings. A reading: 4 chains one after another
on one CPU, a first run (warmup and sampling) that compiles, then 500 more draws from where it
stopped, timed and divided by the leapfrog steps they took (``num_steps`` summed)::

    python -m benchmarks.xla_flag --models eight_schools_nc linreg --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

_CHILD = """
import json, sys, time
import numpy as np
import jax
import minippl, minippl.distributions as dist
from minippl.infer import MCMC, NUTS
from benchmarks.models import get
spec = get(sys.argv[1])
data = spec.data()
mcmc = MCMC(NUTS(spec.build(minippl, dist)), num_warmup=500, num_samples=500, num_chains=4,
            chain_method="sequential", progress_bar=False)
mcmc.run(jax.random.key(0), *data.args, extra_fields=("num_steps",), **data.kwargs)
mcmc.post_warmup_state = mcmc.last_state  # the same program again, sampling only
start = time.perf_counter()
mcmc.run(jax.random.key(2), *data.args, extra_fields=("num_steps",), **data.kwargs)
seconds = time.perf_counter() - start
steps = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
assert mcmc.num_traces == 1  # nothing was compiled in the timed run
print(json.dumps({"seconds": seconds, "steps": steps}))
"""


def reading(model: str, flag: bool) -> float:
    """Seconds per leapfrog step in a fresh process, with or without the flag."""
    env = {**os.environ, "MINIPPL_XLA_FLAGS": "1" if flag else "0", "MINIPPL_COMPILE_CACHE": "0"}
    env.pop("XLA_FLAGS", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, model], env=env, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return float(result["seconds"]) / int(result["steps"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["eight_schools_nc", "linreg"])
    parser.add_argument("--repeats", type=int, default=5)
    ns = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for model in ns.models:
        times: dict[str, list[float]] = {"flag": [], "no flag": []}
        for _ in range(ns.repeats):
            times["flag"].append(reading(model, True))
            times["no flag"].append(reading(model, False))
        on, off = (statistics.median(times[k]) for k in ("flag", "no flag"))
        results[model] = {"flag_us": on * 1e6, "no_flag_us": off * 1e6, "ratio": off / on}
        print(f"{model}: {on * 1e6:.2f} us a leapfrog step with the flag, "
              f"{off * 1e6:.2f} us without ({off / on:.2f}x)", flush=True)  # fmt: skip
    return results


if __name__ == "__main__":
    main()

"""A fingerprint of minippl's draws: a fixed set of runs, each reduced to a hash of its bytes.

A refactor that must not change what the sampler computes is checked by running this before
and after it and comparing the two files: every hash equal means every draw is equal, bit for
bit. Run it as ``python -m benchmarks.fingerprint OUT.json [--backends jax,numpy]`` and compare
two outputs with ``python -m benchmarks.fingerprint --compare A.json B.json``.

The runs cover what a refactor of the driver or the kernels could disturb: NUTS and HMC, diagonal
and dense mass, each chain method, thinning, a resumed run, extra fields, and ``Predictive``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import minippl
import minippl.distributions as dist
from benchmarks import models
from minippl.backend import current
from minippl.infer import HMC, MCMC, NUTS, Predictive

Run = Callable[[], dict[str, Any]]


def _digest(tree: dict[str, Any]) -> str:
    """One hash of every array in ``tree`` (sorted by name), bytes and shapes included."""
    h = hashlib.sha256()
    for name in sorted(tree):
        value = np.asarray(current().to_numpy(tree[name]))
        h.update(name.encode())
        h.update(str(value.shape).encode())
        h.update(str(value.dtype).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:24]


def _mcmc(name: str, kernel: str = "nuts", small: bool = False, **options: Any) -> Run:
    spec = models.get(name)

    def run() -> dict[str, Any]:
        model = spec.build(minippl, dist)
        data = spec.data()
        kernel_options = {"dense_mass": spec.dense_mass}
        sampler = (NUTS if kernel == "nuts" else HMC)(model, **kernel_options)
        warmup, samples = (30, 20) if small else (200, 100)
        settings = {"num_warmup": warmup, "num_samples": samples, "progress_bar": False}
        settings.update(options)
        mcmc = MCMC(sampler, **settings)
        key = current().key(3)
        mcmc.run(key, *data.args, extra_fields=("num_steps", "accept_prob"), **data.kwargs)
        out = dict(mcmc.get_samples())
        out.update({f"extra.{k}": v for k, v in mcmc.get_extra_fields().items()})
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(current().key(4), *data.args, **data.kwargs)
        out.update({f"resumed.{k}": v for k, v in mcmc.get_samples().items()})
        return out

    return run


def _predictive() -> dict[str, Any]:
    spec = models.get("linreg")
    model = spec.build(minippl, dist)
    data = spec.data()
    prior = Predictive(model, num_samples=50)(current().key(5), *data.args)
    return dict(prior)


def runs(backend: str) -> dict[str, Run]:
    """The fixed set of runs for ``backend`` (NumPy's are smaller: it is slower)."""
    small = backend == "numpy"
    table: dict[str, Run] = {
        "nuts.eight_schools_c.1": _mcmc("eight_schools_c", small=small),
        "nuts.eight_schools_nc.seq2": _mcmc(
            "eight_schools_nc", small=small, num_chains=2, chain_method="sequential"
        ),
        "nuts.linreg.vec2.thin2": _mcmc(
            "linreg", small=small, num_chains=2, chain_method="vectorized", thinning=2
        ),
        "nuts.linreg.par2": _mcmc("linreg", small=small, num_chains=2, chain_method="parallel"),
        "hmc.eight_schools_nc.1": _mcmc("eight_schools_nc", kernel="hmc", small=small),
        "predictive.linreg": _predictive,
    }
    if not small:
        table["nuts.gauss100_dense.1"] = _mcmc("gauss100_dense", num_warmup=150, num_samples=50)
    return table


def fingerprint(backends: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in backends:
        minippl.set_backend(name)
        for run_name, run in runs(name).items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[f"{name}.{run_name}"] = _digest(run())
            print(f"{name}.{run_name}: {out[f'{name}.{run_name}']}", flush=True)
    return out


def compare(a: dict[str, str], b: dict[str, str]) -> int:
    """Print the runs whose hashes differ; the number of them."""
    common = sorted(set(a) & set(b))
    differ = [k for k in common if a[k] != b[k]]
    for k in differ:
        print(f"differs: {k}: {a[k]} != {b[k]}")
    missing = sorted(set(a) ^ set(b))
    if missing:
        print(f"in one file only: {', '.join(missing)}")
    print(f"{len(common) - len(differ)} equal, {len(differ)} differ")
    return len(differ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="where to write the hashes (JSON)")
    parser.add_argument("--backends", default="jax,numpy")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    ns = parser.parse_args(argv)
    if ns.compare:
        with open(ns.compare[0]) as fa, open(ns.compare[1]) as fb:
            return 1 if compare(json.load(fa), json.load(fb)) else 0
    result = fingerprint(ns.backends.split(","))
    if ns.out:
        with open(ns.out, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A fresh process for ``test_recovery.py``: ``python -m tests.resume_worker BACKEND STATE``
loads a pickled ``last_state``, sets it as ``post_warmup_state`` on a new MCMC and prints
the draws of the run as JSON on the last line."""

from __future__ import annotations

import json
import pickle
import sys
import warnings
from typing import Any

import numpy as np

import minippl
import minippl.distributions as dist
from minippl.infer import MCMC, NUTS, MCMCWarning

NUM_CHAINS = 2


def model(y: Any) -> None:
    mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
    sigma = minippl.sample("sigma", dist.HalfNormal(1.0))
    with minippl.plate("data", y.shape[0]):
        minippl.sample("y", dist.Normal(mu, sigma), obs=y)


DATA = np.array([0.3, -0.2, 1.1, 0.7])


def new_mcmc() -> MCMC:
    return MCMC(
        NUTS(model), num_warmup=20, num_samples=10, num_chains=NUM_CHAINS,
        chain_method="vectorized", progress_bar=False,
    )  # fmt: skip


def continue_from(state: Any, backend: Any) -> dict[str, list[float]]:
    mcmc = new_mcmc()
    mcmc.post_warmup_state = state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        mcmc.run(backend.key(7), DATA)
    return {k: np.asarray(v).ravel().tolist() for k, v in mcmc.get_samples().items()}


def main() -> None:
    backend = minippl.set_backend(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        state = pickle.load(f)
    print(json.dumps(continue_from(state, backend)))


if __name__ == "__main__":
    main()

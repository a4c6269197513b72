"""Simulation-based calibration of NUTS (Talts et al. 2018) on two small models.

For each replication: draw parameters from the prior, data from the likelihood, run NUTS on
that data, and record the rank of the true parameter among ``L`` thinned posterior draws.
If the sampler draws from the right posterior, every rank in ``0..L`` is equally likely;
rank histograms (10 bins) are checked with a chi-square test per parameter.

The replications are vectorised on JAX: each replication is a chain with its own data, and
one compiled ``vmap`` over (state, data) runs all of them, warmup included.

References
----------
1. S. Talts, M. Betancourt, D. Simpson, A. Vehtari, A. Gelman, "Validating Bayesian
   Inference Algorithms with Simulation-Based Calibration", arXiv:1804.06788 (2018),
   algorithm 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import NUTS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("x64")]

REPLICATIONS = 200
WARMUP = 300
DRAWS = 495
THIN = 5  # 99 kept draws: ranks 0..99, 100 values, 10 per histogram bin
BINS = 10



def normal_scale(y: Any = None) -> None:
    """Unknown mean and scale of 8 normal observations."""
    mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
    sigma = minippl.sample("sigma", dist.HalfNormal(1.0))
    with minippl.plate("n", 8):
        minippl.sample("y", dist.Normal(mu, sigma), obs=y)


X = np.linspace(-2.0, 2.0, 20)


def logistic(y: Any = None) -> None:
    """Logistic regression with an intercept and one slope, 20 binary observations."""
    a = minippl.sample("a", dist.Normal(0.0, 1.0))
    b = minippl.sample("b", dist.Normal(0.0, 1.0))
    with minippl.plate("n", X.shape[0]):
        minippl.sample("y", dist.Bernoulli(logits=a + b * X), obs=y)


def simulate(model: Callable[..., Any], key: Any, names: list[str]) -> tuple[dict[str, Any], Any]:
    """Parameters from the prior and data from the likelihood, one replication per key."""
    import jax

    def one(k: Any) -> tuple[dict[str, Any], Any]:
        model_trace = handlers.trace(handlers.seed(model, k)).get_trace()
        return {n: model_trace[n].value for n in names}, model_trace["y"].value

    return jax.vmap(one)(jax.random.split(key, REPLICATIONS))  # type: ignore[no-any-return]


def run_replications(model: Callable[..., Any], key: Any, data: Any) -> dict[str, Any]:
    """NUTS on every replication's data at once: ``(replications, kept draws)`` per site."""
    import jax

    bk = minippl.backend.current()
    kernel = NUTS(model)
    keys = jax.random.split(key, REPLICATIONS)
    states = [kernel.init(keys[r], WARMUP, None, (data[r],), {}) for r in range(REPLICATIONS)]
    state = bk.tree_map(lambda *xs: bk.xp.stack(xs), *states)

    def one(s: Any, y: Any) -> Any:
        def body(s: Any, _: Any) -> tuple[Any, Any]:
            s = kernel.sample(s, (y,), {})
            return s, kernel.postprocess_fn((y,), {})(s.z)

        s, _ = bk.scan(body, s, None, length=WARMUP)
        _, draws = bk.scan(body, s, None, length=DRAWS)
        return bk.tree_map(lambda x: x[THIN - 1 :: THIN], draws)

    return jax.jit(jax.vmap(one))(state, data)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "model,names",
    [(normal_scale, ["mu", "sigma"]), (logistic, ["a", "b"])],
    ids=["normal", "logistic"],
)
def test_rank_histograms_are_uniform(
    jax_backend: Backend, model: Callable[..., Any], names: list[str]
) -> None:
    import jax

    truth, data = simulate(model, jax.random.key(2024), names)
    draws = run_replications(model, jax.random.key(7), data)
    for name in names:
        ranks = (np.asarray(draws[name]) < np.asarray(truth[name])[:, None]).sum(axis=1)
        assert ranks.min() >= 0 and ranks.max() <= DRAWS // THIN
        counts = np.bincount(ranks * BINS // (DRAWS // THIN + 1), minlength=BINS)
        p_value = stats.chisquare(counts).pvalue
        # Four tests in all: a 0.001 threshold keeps the chance of a false alarm below 0.5%.
        assert p_value > 1e-3, f"{name}: rank counts {counts.tolist()} (p = {p_value:.2g})"

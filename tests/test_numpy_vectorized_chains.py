"""``chain_method="vectorized"`` on the NumPy backend: chains in lockstep, one batched model
run for all their potentials (``minippl/infer/chain_lockstep.py``).

How close the draws are: row ``i`` of a batched run is computed with the same elementwise
operations and per-row sums as chain ``i`` alone, and on the models here the vectorized
draws come out equal, bit for bit, to the sequential ones. The tests hold them to that, and
the batched potential and gradient to a relative 1e-12 of each chain's own (equal on these
models too), so that a model whose batched sums round differently has a stated margin.

JAX's "vectorized" is ``vmap`` and stays so: the plan test runs on both backends.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl.backend import current
from minippl.infer import MCMC, NUTS
from minippl.infer.chain_lockstep import Lockstep, batched_potential, one_potential
from minippl.infer.chains import plan_chains
from minippl.infer.potential import potential_energy

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(sigma: Any, y: Any = None) -> None:
    mu = minippl.sample("mu", dist.Normal(0.0, 5.0))
    tau = minippl.sample("tau", dist.HalfCauchy(5.0))
    with minippl.plate("J", 8):
        theta = minippl.sample("theta_decentered", dist.Normal(0.0, 1.0))
        minippl.sample("obs", dist.Normal(mu + tau * theta, sigma), obs=y)


def expanded(y: Any = None) -> None:
    """A latent scalar's distribution expanded to the data's explicit shape, as the email
    model writes it: with the chains as an extra batch dim, ``expand([n])`` cannot hold."""
    p = minippl.sample("p", dist.Beta(1.0, 1.0))
    minippl.sample("y", dist.Bernoulli(p).expand([len(y)]).to_event(1), obs=y)


def mean_over_all_axes(y: Any = None) -> None:
    """``xp.mean`` over every axis mixes the chains' rows: it runs batched, but wrong."""
    x = minippl.sample("x", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
    minippl.factor("spread", -current().xp.mean(x**2))
    minippl.sample("y", dist.Normal(x.sum(), 1.0), obs=y)


@pytest.fixture
def numpy_backend() -> Iterator[Backend]:
    previous = current().name
    try:
        yield minippl.set_backend("numpy")
    finally:
        minippl.set_backend(previous)


def draws(model: Any, method: str, *args: Any, seed: int = 3, **sizes: Any) -> dict[str, Any]:
    sizes = {"num_warmup": 20, "num_samples": 20, "num_chains": 4, **sizes}
    mcmc = MCMC(NUTS(model), chain_method=method, progress_bar=False, **sizes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", minippl.infer.mcmc.MCMCWarning)
        mcmc.run(current().key(seed), *args)
    return {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}


def test_vectorized_is_lockstep_on_numpy_and_vmap_on_jax(backend: Backend) -> None:
    plan = plan_chains(4, "vectorized")
    if getattr(backend, "batches_by_loop", False):
        assert plan.method == "lockstep" and plan.workers == 4
        assert plan.blocks(4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
        assert plan.one_chain_blocks(4)
    else:
        assert plan.method == "vectorized" and plan.blocks(4) == [(0, 4)]
    assert plan_chains(4, "sequential").method == "sequential"


def test_batched_potential_is_each_chains_own(numpy_backend: Backend) -> None:
    rng = np.random.default_rng(0)
    points = [
        {"mu": rng.normal(), "tau": rng.normal(), "theta_decentered": rng.normal(size=8)}
        for _ in range(4)
    ]
    batched = batched_potential(eight_schools, (SIGMA, Y), {}, points)
    for point, (value, grad) in zip(points, batched, strict=True):
        own_value, own_grad = one_potential(eight_schools, (SIGMA, Y), {}, point)
        np.testing.assert_allclose(value, own_value, rtol=1e-12)
        assert set(grad) == set(own_grad)
        for name in own_grad:
            np.testing.assert_allclose(grad[name], own_grad[name], rtol=1e-12, atol=1e-15)


def test_chains_that_finish_early_stop_asking(numpy_backend: Backend) -> None:
    """Three chains ask for 5, 2 and 7 potentials: 7 batches in all, each chain answered
    with its own potential, the gradient reaching its parameters."""
    lockstep = Lockstep([0, 1, 2], warn=lambda reason: pytest.fail(reason))
    asks = {0: 5, 1: 2, 2: 7}
    got: dict[int, list[Any]] = {c: [] for c in asks}
    backend = current()

    def chain(c: int) -> None:
        with lockstep.chain(np.array([c])):
            for k in range(asks[c]):
                point = {"mu": np.float64(c + 0.1 * k), "tau": np.float64(-0.5),
                         "theta_decentered": np.full(8, 0.2 * k)}  # fmt: skip
                grad_of = backend.value_and_grad(
                    lambda p: potential_energy(eight_schools, (SIGMA, Y), {}, p)
                )
                got[c].append((point, grad_of(point)))

    threads = [threading.Thread(target=chain, args=(c,)) for c in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lockstep.batches == max(asks.values())
    for c, answers in got.items():
        assert len(answers) == asks[c]
        for point, (value, grad) in answers:
            own_value, own_grad = one_potential(eight_schools, (SIGMA, Y), {}, point)
            assert value == own_value
            for name in own_grad:
                np.testing.assert_array_equal(grad[name], own_grad[name])


def test_a_batch_that_disagrees_is_said_once_and_answered_one_by_one(
    numpy_backend: Backend,
) -> None:
    """Where the kernel does not say what its potential is, the first batch is the check."""
    reasons: list[str] = []
    lockstep = Lockstep([0, 1], warn=reasons.append)
    y = np.array([1.0, 0.0, 1.0])
    got: dict[int, list[Any]] = {0: [], 1: []}

    def chain(c: int) -> None:
        with lockstep.chain(np.array([c])):
            for k in range(3):
                got[c].append(potential_energy(expanded, (y,), {}, {"p": np.float64(c - k)}))

    threads = [threading.Thread(target=chain, args=(c,)) for c in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reasons) == 1 and "cannot expand" in reasons[0]
    for c, values in got.items():
        for k, value in enumerate(values):
            own, _ = one_potential(expanded, (y,), {}, {"p": np.float64(c - k)})
            assert value == own


def test_vectorized_draws_are_the_sequential_draws(numpy_backend: Backend) -> None:
    """Chain ``i`` of four gets key ``split(key, 4)[i]`` under either method, and the same
    draws: those of a one-chain run from that key."""
    vectorized = draws(eight_schools, "vectorized", SIGMA, Y, seed=5)
    sequential = draws(eight_schools, "sequential", SIGMA, Y, seed=5)
    assert set(vectorized) == set(sequential)
    for name in sequential:
        np.testing.assert_array_equal(vectorized[name], sequential[name])
    mcmc = MCMC(NUTS(eight_schools), num_warmup=20, num_samples=20, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", minippl.infer.mcmc.MCMCWarning)
        mcmc.run(current().split(current().key(5), 4)[2], SIGMA, Y)
    np.testing.assert_array_equal(np.asarray(mcmc.get_samples()["mu"]), vectorized["mu"][2])


def test_vectorized_draws_are_the_same_from_one_run_to_the_next(numpy_backend: Backend) -> None:
    first = draws(eight_schools, "vectorized", SIGMA, Y, seed=11, num_chains=3)
    again = draws(eight_schools, "vectorized", SIGMA, Y, seed=11, num_chains=3)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


@pytest.mark.parametrize("model", [expanded, mean_over_all_axes], ids=["expand", "mean"])
def test_a_model_that_cannot_be_batched_warns_once_and_draws_sequentially(
    numpy_backend: Backend, model: Any
) -> None:
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0]) if model is expanded else np.array(0.5)
    sizes = {"num_warmup": 15, "num_samples": 15, "num_chains": 3}
    mcmc = MCMC(NUTS(model), chain_method="vectorized", progress_bar=False, **sizes)
    with pytest.warns(UserWarning, match="cannot be evaluated for all chains in one batched"):
        mcmc.run(current().key(2), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # said once per MCMC
        mcmc.run(current().key(2), y)
    vectorized = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    sequential = draws(model, "sequential", y, seed=2, **sizes)
    for name in sequential:
        np.testing.assert_array_equal(vectorized[name], sequential[name])


def test_the_chains_benchmark_times_the_same_work() -> None:
    """``python -m benchmarks.numpy_backend --chains`` in small: both methods take the same
    leapfrog steps, and the vectorized one batches eight schools."""
    from benchmarks.numpy_backend import chains_markdown, run_chains

    rows = run_chains(["eight_schools_nc"], rounds=1, iterations=4, log=lambda _: None)
    (row,) = rows
    assert row["same_steps"] and row["batched"]
    assert row["ms_sequential"] > 0 and row["cpu_ms_vectorized"] > 0
    assert "eight_schools_nc" in chains_markdown(rows)

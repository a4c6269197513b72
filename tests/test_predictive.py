"""Predictive: prior and posterior predictive draws, vectorised, on both backends; NumPyro as
the oracle for the draws on JAX."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl.infer import Predictive

pytestmark = pytest.mark.usefixtures("x64")  # float64 on JAX (NumPy always is)



CALLS = {"n": 0}


def regression(x: Any, y: Any = None) -> None:
    CALLS["n"] += 1
    a = minippl.sample("a", dist.Normal(0.0, 1.0))
    s = minippl.sample("s", dist.HalfNormal(1.0))
    m = minippl.deterministic("m", a * x)
    with minippl.plate("n", x.shape[0]):
        minippl.sample("y", dist.Normal(m, s), obs=y)
    minippl.factor("penalty", -0.0 * a)


def test_prior_predictive(backend: Backend) -> None:
    x = backend.xp.asarray([0.0, 1.0, 2.0])
    draws = Predictive(regression, num_samples=50)(backend.key(0), x)
    assert set(draws) == {"a", "s", "m", "y"}  # the factor site is not a prediction
    assert tuple(draws["y"].shape) == (50, 3)
    np.testing.assert_allclose(np.asarray(draws["m"]), np.asarray(draws["a"])[:, None] * [0, 1, 2])
    assert np.all(np.asarray(draws["s"]) > 0)


def test_posterior_predictive_predicts_and_recomputes(backend: Backend) -> None:
    xp = backend.xp
    samples = {
        "a": xp.asarray([1.0, 2.0, 3.0, 4.0]),
        "s": xp.asarray([0.1, 0.1, 0.1, 0.1]),
        "m": xp.zeros((4, 2)),  # stale values from another x: must not come back
    }
    x_new = xp.asarray([10.0, 20.0])
    observed = xp.asarray([-100.0, -100.0])
    draws = Predictive(regression, samples)(backend.key(1), x_new, y=observed)
    assert set(draws) == {"m", "y"}
    np.testing.assert_allclose(np.asarray(draws["m"]), np.outer([1, 2, 3, 4], [10, 20]))
    # y is predicted around m, not the data passed in.
    np.testing.assert_allclose(np.asarray(draws["y"]), np.asarray(draws["m"]), atol=1.0)
    kept = Predictive(regression, samples, exclude_deterministic=False)(backend.key(1), x_new)
    np.testing.assert_array_equal(np.asarray(kept["m"]), np.zeros((4, 2)))
    only = Predictive(regression, samples, return_sites=["y"])(backend.key(1), x_new)
    assert set(only) == {"y"}


def test_batch_ndims_two_keeps_the_chain_axis(backend: Backend) -> None:
    xp = backend.xp
    samples = {"a": xp.ones((2, 5)), "s": xp.ones((2, 5))}
    draws = Predictive(regression, samples, batch_ndims=2)(backend.key(2), xp.ones(3))
    assert tuple(draws["y"].shape) == (2, 5, 3)


def test_draws_are_vectorised_on_jax(jax_backend: Backend) -> None:
    """One batched run of the model for all draws (vmap), not one run per draw."""
    import jax

    CALLS["n"] = 0
    Predictive(regression, num_samples=200)(jax.random.key(0), jax.numpy.ones(3))
    assert CALLS["n"] == 1


@pytest.mark.reference
def test_matches_numpyro(jax_backend: Backend) -> None:
    numpyro = pytest.importorskip("numpyro")
    import jax
    import numpyro.distributions as ndist
    from numpyro.infer import Predictive as NumPyroPredictive

    def theirs(x: Any, y: Any = None) -> None:
        a = numpyro.sample("a", ndist.Normal(0.0, 1.0))
        s = numpyro.sample("s", ndist.HalfNormal(1.0))
        m = numpyro.deterministic("m", a * x)
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("y", ndist.Normal(m, s), obs=y)

    x = np.array([0.0, 1.0, 2.0])
    ours = Predictive(regression, num_samples=20)(jax.random.key(3), x)
    ref = NumPyroPredictive(theirs, num_samples=20)(jax.random.key(3), x)
    for name in ("a", "s", "m", "y"):
        np.testing.assert_allclose(np.asarray(ours[name]), ref[name], rtol=1e-12, atol=1e-12)
    post = {"a": ref["a"], "s": ref["s"]}
    ours = Predictive(regression, post)(jax.random.key(4), x)
    ref = NumPyroPredictive(theirs, post)(jax.random.key(4), x)
    np.testing.assert_allclose(np.asarray(ours["y"]), ref["y"], rtol=1e-12, atol=1e-12)

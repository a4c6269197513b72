"""Distributions as pytrees against NumPyro's: the same leaves, the same values through
``jit``, and the same draws when ``vmap`` maps over a batch of distributions (JAX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402

import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402

pytestmark = pytest.mark.reference

A = np.array([0.3, -1.2, 2.0], dtype=np.float32)
CASES: dict[str, Callable[[Any], Any]] = {
    "Normal": lambda D: D.Normal(A, 2.0),
    "Expanded": lambda D: D.Normal(0.5, 2.0).expand((2, 3)),
    "Independent": lambda D: D.Normal(A, 1.0).to_event(1),
    "Masked": lambda D: D.Normal(A, 1.0).mask(np.array([True, False, True])),
    "Gamma": lambda D: D.Gamma(np.float32(2.0), A**2 + 0.5),
}


def _values(d: Any) -> list[tuple[float, ...]]:
    return [tuple(np.ravel(np.asarray(x, dtype=float))) for x in jax.tree_util.tree_leaves(d)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_leaves_and_jitted_log_density_match_numpyro(jax_backend: Backend, name: str) -> None:
    ours, theirs = CASES[name](dist), CASES[name](ndist)
    # The same parameters as leaves (either may hold a number as an array of shape (1,)).
    assert sorted(_values(ours)) == sorted(_values(theirs))
    value = jnp.abs(jnp.asarray(A)) + 0.1
    np.testing.assert_allclose(
        jax.jit(lambda d: d.log_prob(value))(ours),
        jax.jit(lambda d: d.log_prob(value))(theirs),
        rtol=1e-6,
    )


def test_vmap_over_a_batch_of_distributions_draws_as_numpyro(jax_backend: Backend) -> None:
    keys = jax.random.split(jax.random.key(3), 3)

    def draws(d: Any) -> Any:
        return jax.vmap(lambda d, k: d.sample(k))(d, keys)

    ours = draws(dist.Normal(jnp.asarray(A), jnp.ones(3)))
    theirs = draws(ndist.Normal(jnp.asarray(A), jnp.ones(3)))
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_a_distribution_returned_from_jit_matches_numpyro(jax_backend: Backend) -> None:
    def build(D: Any) -> Any:
        return jax.jit(lambda loc: D.Normal(loc, 2.0).expand((4, 3)))(jnp.asarray(A))

    ours, theirs = build(dist), build(ndist)
    assert (ours.batch_shape, ours.event_shape) == (theirs.batch_shape, theirs.event_shape)
    np.testing.assert_array_equal(ours.base_dist.loc, theirs.base_dist.loc)
    np.testing.assert_array_equal(ours.sample(jax.random.key(1)), theirs.sample(jax.random.key(1)))

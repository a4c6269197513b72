"""VonMises, Multinomial, ZeroSumNormal and MixtureSameFamily against NumPyro on the same
inputs: log densities, shapes, support membership, mean and variance (JAX backend)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax.numpy as jnp  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402

import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402

pytestmark = pytest.mark.reference

W = np.array([0.3, 0.7])
CASES: dict[str, tuple[Callable[[Any], Any], np.ndarray]] = {
    "VonMises": (
        lambda D: D.VonMises(np.array([0.5, -1.0]), np.array([2.0, 0.3])),
        np.array([[0.3, -2.0], [3.0, 0.1]]),
    ),
    "Multinomial": (
        lambda D: D.Multinomial(6, probs=np.array([0.2, 0.3, 0.5])),
        np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0], [1.0, 1.0, 1.0]]),
    ),
    "MultinomialLogits": (
        lambda D: D.Multinomial(4, logits=np.array([[0.1, -1.0], [2.0, 0.0]])),
        np.array([[1.0, 3.0], [4.0, 0.0]]),
    ),
    "ZeroSumNormal": (
        lambda D: D.ZeroSumNormal(2.0, (3, 2)),
        np.array([[[0.5, -0.5], [-1.0, 1.0], [0.5, -0.5]], [[1.0, -1.0], [0.0, 0.0], [-1.0, 1.0]]]),
    ),
    "MixtureSameFamily": (
        lambda D: D.MixtureSameFamily(
            D.Categorical(probs=W), D.Normal(np.array([-1.0, 1.0]), np.array([0.5, 0.8]))
        ),
        np.array([-1.2, 0.0, 2.5]),
    ),
    "MixtureSameFamilyMVN": (
        lambda D: D.MixtureSameFamily(
            D.Categorical(probs=W),
            D.MultivariateNormal(np.array([[0.0, 0.0], [3.0, 3.0]]), np.eye(2)),
        ),
        np.array([[0.0, 0.0], [1.0, 2.0]]),
    ),
    "Wishart": (
        lambda D: D.Wishart(np.array([6.0, 4.0]), scale_matrix=np.array([[2.0, 0.3], [0.3, 1.0]])),
        np.array([[[3.0, 0.5], [0.5, 2.0]], [[1.0, 0.2], [0.2, 0.5]]]),
    ),
}


@pytest.mark.filterwarnings("ignore:Out-of-support values")
@pytest.mark.parametrize("case", list(CASES))
def test_new_families_match_numpyro(jax_backend: Backend, case: str) -> None:
    build, values = CASES[case]
    ours, theirs = build(dist), build(ndist)
    assert ours.batch_shape == theirs.batch_shape
    assert ours.event_shape == theirs.event_shape
    np.testing.assert_allclose(
        np.asarray(ours.log_prob(values)),
        np.asarray(theirs.log_prob(jnp.asarray(values))),
        rtol=1e-5,
    )
    np.testing.assert_array_equal(
        np.asarray(ours.support(values)), np.asarray(theirs.support(jnp.asarray(values)))
    )
    for moment in ("mean", "variance"):
        np.testing.assert_allclose(
            np.asarray(getattr(ours, moment)),
            np.asarray(getattr(theirs, moment)),
            rtol=1e-5,
            atol=1e-6,
        )
    draw = ours.sample(jax_backend.key(0), (4,))
    assert tuple(np.shape(draw)) == theirs.shape((4,))


def test_wishart_cholesky_matches_numpyro(jax_backend: Backend) -> None:
    rate = np.array([[1.0, -0.4], [-0.4, 2.0]])
    ours = dist.WishartCholesky(5.0, rate_matrix=rate)
    theirs = ndist.WishartCholesky(5.0, rate_matrix=jnp.asarray(rate))
    factors = np.linalg.cholesky(np.array([[[3.0, 0.5], [0.5, 2.0]], [[1.0, 0.2], [0.2, 0.5]]]))
    assert ours.event_shape == theirs.event_shape and ours.batch_shape == theirs.batch_shape
    np.testing.assert_allclose(
        np.asarray(ours.log_prob(factors)),
        np.asarray(theirs.log_prob(jnp.asarray(factors))),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        np.asarray(ours.scale_tril), np.asarray(theirs.scale_tril), rtol=1e-5
    )

"""``has_rsample``, ``entropy()`` and ``infer_shapes`` against NumPyro's on the same inputs
(JAX backend)."""

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

A = np.array([0.5, 2.0, 3.5], dtype=np.float32)
P = np.array([0.2, 0.5, 0.3], dtype=np.float32)
L = np.log(P / (1 - P))
COV = np.array([[2.0, 0.3], [0.3, 1.0]], dtype=np.float32)

CASES: dict[str, Callable[[Any], Any]] = {
    "Normal": lambda D: D.Normal(A, 2.0),
    "LogNormal": lambda D: D.LogNormal(A, 0.5),
    "Exponential": lambda D: D.Exponential(A),
    "Gamma": lambda D: D.Gamma(A, 2.0),
    "Chi2": lambda D: D.Chi2(A),
    "InverseGamma": lambda D: D.InverseGamma(A, 2.0),
    "Beta": lambda D: D.Beta(A, 1.5),
    "Uniform": lambda D: D.Uniform(-A, A),
    "Laplace": lambda D: D.Laplace(0.0, A),
    "Cauchy": lambda D: D.Cauchy(0.0, A),
    "Logistic": lambda D: D.Logistic(0.0, A),
    "StudentT": lambda D: D.StudentT(A, 1.0, 2.0),
    "Weibull": lambda D: D.Weibull(2.0, A),
    "BernoulliProbs": lambda D: D.BernoulliProbs(P),
    "BernoulliLogits": lambda D: D.BernoulliLogits(L),
    "GeometricProbs": lambda D: D.GeometricProbs(P),
    "GeometricLogits": lambda D: D.GeometricLogits(L),
    "CategoricalProbs": lambda D: D.CategoricalProbs(P),
    "CategoricalLogits": lambda D: D.CategoricalLogits(L),
    "DiscreteUniform": lambda D: D.DiscreteUniform(0, jnp.array([2, 4])),
    "Dirichlet": lambda D: D.Dirichlet(A),
    "MultivariateNormal": lambda D: D.MultivariateNormal(np.zeros(2), covariance_matrix=COV),
    "Wishart": lambda D: D.Wishart(A + 1.5, scale_matrix=COV),
    "Wishart(batched scale)": lambda D: D.Wishart(
        4.0, scale_tril=np.linalg.cholesky([COV, 3 * COV])
    ),
    "Independent": lambda D: D.Normal(A, 2.0).to_event(1),
    "Expanded": lambda D: D.Exponential(2.0).expand((2, 3)),
    "Delta": lambda D: D.Delta(A, -1.5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_entropy_and_has_rsample_match_numpyro(jax_backend: Backend, name: str) -> None:
    ours, theirs = CASES[name](dist), CASES[name](ndist)
    assert ours.has_rsample == theirs.has_rsample
    np.testing.assert_allclose(ours.entropy(), theirs.entropy(), rtol=2e-5, atol=1e-6)


def test_has_rsample_of_wrappers_and_discrete_families_match_numpyro(
    jax_backend: Backend,
) -> None:
    for make in (
        lambda D: D.Bernoulli(probs=P).to_event(1),
        lambda D: D.Normal(A, 1.0).mask(A > 1),
        lambda D: D.Poisson(A),
        lambda D: D.VonMises(0.0, A),
        lambda D: D.MixtureSameFamily(D.Categorical(probs=P), D.Normal(A, 1.0)),
        lambda D: D.TruncatedNormal(0.0, 1.0, low=-1.0),
    ):
        assert make(dist).has_rsample == make(ndist).has_rsample


SHAPES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("Normal", ((3, 1), (4,)), {}),
    ("Gamma", ((2,), (5, 1)), {}),
    ("StudentT", ((3,), (), (2, 1)), {}),
    ("Uniform", ((3,), (2, 3)), {}),
    ("CategoricalProbs", ((4, 3),), {}),
    ("BinomialProbs", ((3,), (4, 1)), {}),
    ("Dirichlet", ((2, 4),), {}),
    ("MultivariateNormal", ((2,),), {"scale_tril": (3, 2, 2)}),
    ("MultivariateNormal", ((4, 1, 2),), {"covariance_matrix": (2, 2)}),
    ("MultinomialProbs", ((2, 5), (3, 1)), {}),
]


@pytest.mark.parametrize("name, args, kwargs", SHAPES)
def test_infer_shapes_matches_numpyro(
    jax_backend: Backend, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ours = getattr(dist, name).infer_shapes(*args, **kwargs)
    assert ours == getattr(ndist, name).infer_shapes(*args, **kwargs)

"""``kl_divergence`` against NumPyro's on the same pairs (JAX backend)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import numpyro.distributions as ndist  # noqa: E402
from numpyro.distributions.kl import kl_divergence as numpyro_kl  # noqa: E402

import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402

pytestmark = pytest.mark.reference

A = np.array([0.5, 2.0, 3.5], dtype=np.float32)
B = np.array([1.5, 0.7, 2.5], dtype=np.float32)
P = np.array([0.2, 0.5, 0.3], dtype=np.float32)
Q = np.array([0.6, 0.1, 0.3], dtype=np.float32)
COV = np.array([[2.0, 0.3], [0.3, 1.0]], dtype=np.float32)
MASK = np.array([True, False, True])

PAIRS: dict[str, Callable[[Any], tuple[Any, Any]]] = {
    "Normal": lambda D: (D.Normal(A, B), D.Normal(B, A)),
    "Independent": lambda D: (D.Normal(A, B).to_event(1), D.Normal(B, A).to_event(1)),
    "Independent(2, 1)": lambda D: (
        D.Normal(np.stack([A, B]), 1.0).to_event(2),
        D.Normal(np.stack([B, A]), 2.0).to_event(1).to_event(1),
    ),
    "Expanded": lambda D: (D.Normal(1.0, 2.0).expand((4, 3)), D.Normal(A, 1.0).expand((4, 3))),
    "Expanded-Normal": lambda D: (D.Normal(1.0, 2.0).expand((3,)), D.Normal(A, 1.0)),
    "Delta": lambda D: (D.Delta(B, 0.25), D.Gamma(A, B)),
    "Delta-Expanded": lambda D: (D.Delta(B), D.Normal(0.0, 1.0).expand((3,))),
    "Masked": lambda D: (D.Normal(A, B).mask(MASK), D.Normal(B, A).mask(~MASK | (A > 1))),
    "MultivariateNormal": lambda D: (
        D.MultivariateNormal(np.zeros(2), covariance_matrix=COV),
        D.MultivariateNormal(np.ones(2), scale_tril=np.diag(np.array([1.5, 0.5], np.float32))),
    ),
    "Beta": lambda D: (D.Beta(A, B), D.Beta(B, A)),
    "Gamma": lambda D: (D.Gamma(A, B), D.Gamma(B, A)),
    "Dirichlet": lambda D: (D.Dirichlet(A), D.Dirichlet(B)),
    "Categorical": lambda D: (D.CategoricalProbs(P), D.CategoricalProbs(Q)),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_kl_matches_numpyro(jax_backend: Backend, name: str) -> None:
    ours = dist.kl_divergence(*PAIRS[name](dist))
    theirs = numpyro_kl(*PAIRS[name](ndist))
    assert np.shape(ours) == np.shape(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=1e-6)


def test_an_unregistered_pair_raises_as_in_numpyro(jax_backend: Backend) -> None:
    with pytest.raises(NotImplementedError):
        numpyro_kl(ndist.Poisson(1.0), ndist.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError, match="Poisson against Normal"):
        dist.kl_divergence(dist.Poisson(1.0), dist.Normal(0.0, 1.0))

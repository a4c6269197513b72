"""``has_rsample``, ``rsample``, closed-form ``entropy()`` (scipy as the oracle) and
``infer_shapes`` (checked against the shapes of the distribution it predicts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minippl.distributions as dist
from backends import Backend

st = pytest.importorskip("scipy.stats")

A = np.array([0.5, 2.0, 3.5])
P = np.array([0.2, 0.5, 0.3])
COV = np.array([[2.0, 0.3], [0.3, 1.0]])

RSAMPLE: dict[str, tuple[Callable[[], dist.Distribution], bool]] = {
    "Normal": (lambda: dist.Normal(0.0, 1.0), True),
    "Gamma": (lambda: dist.Gamma(2.0, 1.0), True),
    "LogNormal": (lambda: dist.LogNormal(0.0, 1.0), True),
    "Dirichlet": (lambda: dist.Dirichlet(P), True),
    "Delta": (lambda: dist.Delta(1.0), True),
    "Expanded": (lambda: dist.Normal(0.0, 1.0).expand((3,)), True),
    "Independent": (lambda: dist.Normal(A, 1.0).to_event(1), True),
    "Masked": (lambda: dist.Normal(A, 1.0).mask(A > 1), True),
    "Bernoulli": (lambda: dist.Bernoulli(probs=0.3), False),
    "Categorical": (lambda: dist.Categorical(logits=P), False),
    "Poisson": (lambda: dist.Poisson(2.0), False),
    "VonMises": (lambda: dist.VonMises(0.0, 1.0), False),
    "Independent(Bernoulli)": (lambda: dist.Bernoulli(probs=P).to_event(1), False),
    "Mixture": (
        lambda: dist.MixtureSameFamily(dist.Categorical(probs=P), dist.Normal(A, 1.0)),
        False,
    ),
    "Unit": (lambda: dist.Unit(0.0), False),
}


@pytest.mark.parametrize("name", sorted(RSAMPLE))
def test_has_rsample(backend: Backend, name: str) -> None:
    make, expected = RSAMPLE[name]
    d = make()
    assert d.has_rsample is expected
    if expected:
        np.testing.assert_array_equal(d.rsample(backend.key(0)), d.sample(backend.key(0)))
    else:
        with pytest.raises(NotImplementedError, match="reparameterized"):
            d.rsample(backend.key(0))


ENTROPY: dict[str, tuple[Callable[[], dist.Distribution], Any]] = {
    "Normal": (lambda: dist.Normal(A, 2.0), st.norm(A, 2.0).entropy()),
    "LogNormal": (lambda: dist.LogNormal(A, 0.5), st.lognorm(0.5, scale=np.exp(A)).entropy()),
    "Exponential": (lambda: dist.Exponential(A), st.expon(scale=1 / A).entropy()),
    "Gamma": (lambda: dist.Gamma(A, 2.0), st.gamma(A, scale=0.5).entropy()),
    "Chi2": (lambda: dist.Chi2(A), st.chi2(A).entropy()),
    "InverseGamma": (lambda: dist.InverseGamma(A, 2.0), st.invgamma(A, scale=2.0).entropy()),
    "Beta": (lambda: dist.Beta(A, 1.5), st.beta(A, 1.5).entropy()),
    "Uniform": (lambda: dist.Uniform(-A, A), st.uniform(-A, 2 * A).entropy()),
    "Laplace": (lambda: dist.Laplace(0.0, A), st.laplace(0.0, A).entropy()),
    "Cauchy": (lambda: dist.Cauchy(0.0, A), st.cauchy(0.0, A).entropy()),
    "Logistic": (lambda: dist.Logistic(0.0, A), st.logistic(0.0, A).entropy()),
    "StudentT": (lambda: dist.StudentT(A, 1.0, 2.0), st.t(A, 1.0, 2.0).entropy()),
    "Weibull": (lambda: dist.Weibull(2.0, A), st.weibull_min(A, scale=2.0).entropy()),
    "BernoulliProbs": (lambda: dist.Bernoulli(probs=P), st.bernoulli(P).entropy()),
    "BernoulliLogits": (
        lambda: dist.Bernoulli(logits=np.log(P / (1 - P))),
        st.bernoulli(P).entropy(),
    ),
    "GeometricProbs": (lambda: dist.Geometric(probs=P), st.geom(P).entropy()),
    "GeometricLogits": (
        lambda: dist.Geometric(logits=np.log(P / (1 - P))),
        st.geom(P).entropy(),
    ),
    "CategoricalProbs": (lambda: dist.Categorical(probs=P), st.entropy(P)),
    "CategoricalLogits": (lambda: dist.Categorical(logits=np.log(P) + 1.0), st.entropy(P)),
    "DiscreteUniform": (lambda: dist.DiscreteUniform(0, 4), st.randint(0, 5).entropy()),
    "Dirichlet": (lambda: dist.Dirichlet(A), st.dirichlet(A).entropy()),
    "MultivariateNormal": (
        lambda: dist.MultivariateNormal(np.zeros(2), covariance_matrix=COV),
        st.multivariate_normal(np.zeros(2), COV).entropy(),
    ),
    "Wishart": (
        lambda: dist.Wishart(A + 1.5, scale_matrix=COV),
        [st.wishart(nu, COV).entropy() for nu in A + 1.5],
    ),
    "Wishart(batched scale)": (
        lambda: dist.Wishart(4.0, scale_tril=np.linalg.cholesky([COV, 3.0 * COV])),
        [st.wishart(4.0, COV).entropy(), st.wishart(4.0, 3.0 * COV).entropy()],
    ),
    "Independent": (lambda: dist.Normal(A, 2.0).to_event(1), 3 * st.norm(0, 2.0).entropy()),
    "Expanded": (lambda: dist.Exponential(2.0).expand((2, 3)), np.full((2, 3), 1 - np.log(2))),
    "Delta": (lambda: dist.Delta(A, np.log(0.25)), np.full(3, np.log(4.0))),
}


@pytest.mark.parametrize("name", sorted(ENTROPY))
def test_entropy_matches_scipy(backend: Backend, name: str, x64: None) -> None:
    make, expected = ENTROPY[name]
    d = make()
    h = d.entropy()
    assert tuple(np.shape(h)) == d.batch_shape
    np.testing.assert_allclose(h, expected, rtol=1e-6)


def test_a_family_without_a_closed_form_says_so(backend: Backend) -> None:
    with pytest.raises(NotImplementedError, match="Poisson has no closed-form entropy"):
        dist.Poisson(2.0).entropy()


SHAPES: list[tuple[type[dist.Distribution], tuple[Any, ...], dict[str, Any]]] = [
    (dist.Normal, (np.zeros((3, 1)), np.ones(4)), {}),
    (dist.Gamma, (np.ones(2), np.ones((5, 1))), {}),
    (dist.Beta, (1.0, np.ones((2, 3))), {}),
    (dist.StudentT, (np.ones(3), 0.0, np.ones((2, 1))), {}),
    (dist.Uniform, (np.zeros(3), np.ones((2, 3))), {}),
    (dist.CategoricalProbs, (np.full((4, 3), 1 / 3),), {}),
    (dist.Categorical, (), {"logits": np.zeros((2, 5))}),
    (dist.Bernoulli, (), {"probs": np.full((2, 3), 0.5)}),
    (dist.Binomial, (np.full((4, 1), 5), np.full(3, 0.5)), {}),
    (dist.Poisson, (np.ones((2, 2)),), {}),
    (dist.Dirichlet, (np.ones((2, 4)),), {}),
    (dist.MultivariateNormal, (np.zeros(2),), {"scale_tril": np.tile(np.eye(2), (3, 1, 1))}),
    (dist.MultivariateNormal, (np.zeros((4, 1, 2)),), {"covariance_matrix": COV}),
    (dist.Multinomial, (np.full((3, 1), 4),), {"probs": np.full((2, 5), 0.2)}),
]


@pytest.mark.parametrize("cls, args, kwargs", SHAPES, ids=lambda x: getattr(x, "__name__", ""))
def test_infer_shapes_predicts_the_built_distribution(
    backend: Backend, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    d = cls(*args, **kwargs)
    shapes = cls.infer_shapes(
        *(np.shape(a) for a in args), **{k: np.shape(v) for k, v in kwargs.items()}
    )
    assert shapes == (d.batch_shape, d.event_shape)


def test_infer_shapes_refuses_what_it_cannot_know(backend: Backend) -> None:
    with pytest.raises(NotImplementedError):
        dist.LKJCholesky.infer_shapes((), ())
    with pytest.raises(NotImplementedError):
        dist.Delta.infer_shapes((3,))

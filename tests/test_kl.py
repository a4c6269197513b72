"""``kl_divergence``: its registry (the closest registered pair of classes, NumPyro's
pairs) and each rule checked against an independent route to the same number."""

from __future__ import annotations

import numpy as np
import pytest

import minippl.distributions as dist
from backends import Backend
from minippl.distributions import kl_divergence

pytestmark = pytest.mark.usefixtures("x64")

A = np.array([0.5, 2.0, 3.5])
B = np.array([1.5, 0.7, 2.5])
P = np.array([0.2, 0.5, 0.3])
Q = np.array([0.6, 0.1, 0.3])


def _normal_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    return np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def test_normal_pair_and_a_distribution_against_itself(backend: Backend) -> None:
    kl = kl_divergence(dist.Normal(A, B), dist.Normal(B, A))
    np.testing.assert_allclose(kl, _normal_kl(A, B, B, A), rtol=1e-12)
    for d in (dist.Gamma(A, B), dist.Beta(A, B), dist.Dirichlet(A), dist.Categorical(probs=P)):
        np.testing.assert_allclose(kl_divergence(d, d), 0.0, atol=1e-12)


def test_independent_pairs_sum_the_shared_event_dims(backend: Backend) -> None:
    p = dist.Normal(np.stack([A, B]), 1.0)
    q = dist.Normal(0.0, np.stack([B, A]))
    per_element = kl_divergence(p, q.expand((2, 3)))
    np.testing.assert_allclose(
        kl_divergence(p.to_event(1), q.expand((2, 3)).to_event(1)), per_element.sum(-1)
    )
    np.testing.assert_allclose(
        kl_divergence(p.to_event(2), q.expand((2, 3)).to_event(1).to_event(1)), per_element.sum()
    )


def test_expanded_pairs_broadcast_the_base_pair(backend: Backend) -> None:
    kl = kl_divergence(dist.Normal(1.0, 2.0).expand((4, 3)), dist.Normal(A, 1.0))
    assert np.shape(kl) == (4, 3)
    np.testing.assert_allclose(kl[2], _normal_kl(1.0, 2.0, A, 1.0))


def test_delta_against_anything_is_minus_the_log_density_at_its_point(backend: Backend) -> None:
    q = dist.Gamma(A, B)
    kl = kl_divergence(dist.Delta(B, 0.25), q)
    np.testing.assert_allclose(kl, 0.25 - np.asarray(q.log_prob(B)), rtol=1e-12)
    expanded = kl_divergence(dist.Delta(B), dist.Normal(0.0, 1.0).expand((3,)))
    np.testing.assert_allclose(expanded, 0.5 * B**2 + 0.5 * np.log(2 * np.pi), rtol=1e-12)


def test_masked_pairs_are_zero_where_either_mask_is_false(backend: Backend) -> None:
    mask = np.array([True, False, True])
    p, q = dist.Normal(A, B), dist.Normal(B, A)
    kl = kl_divergence(p.mask(mask), q.mask(np.array([True, True, False])))
    np.testing.assert_allclose(kl, [_normal_kl(A, B, B, A)[0], 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(kl_divergence(p.mask(False), q.mask(mask)), np.zeros(3))


def test_multivariate_normal_with_diagonal_covariances_is_a_sum_of_normal_pairs(
    backend: Backend,
) -> None:
    p = dist.MultivariateNormal(A, covariance_matrix=np.diag(B**2))
    q = dist.MultivariateNormal(B, scale_tril=np.diag(A))
    np.testing.assert_allclose(kl_divergence(p, q), _normal_kl(A, B, B, A).sum(), rtol=1e-10)


def test_beta_pair_equals_the_two_category_dirichlet_pair(backend: Backend) -> None:
    beta = kl_divergence(dist.Beta(A, B), dist.Beta(B, A))
    dirichlet = kl_divergence(
        dist.Dirichlet(np.stack([A, B], -1)), dist.Dirichlet(np.stack([B, A], -1))
    )
    np.testing.assert_allclose(beta, dirichlet, rtol=1e-10)


def test_gamma_pair_serves_chi2_and_matches_the_exponential_case(backend: Backend) -> None:
    # Gamma(1, r) is Exponential(r): KL = log(r_p / r_q) + r_q / r_p - 1.
    kl = kl_divergence(dist.Gamma(1.0, A), dist.Gamma(1.0, B))
    np.testing.assert_allclose(kl, np.log(A / B) + B / A - 1, rtol=1e-12)
    chi2 = kl_divergence(dist.Chi2(2 * A), dist.Gamma(A, 0.5))
    np.testing.assert_allclose(chi2, 0.0, atol=1e-12)


def test_categorical_pair_in_either_form(backend: Backend) -> None:
    expected = np.sum(P * np.log(P / Q))
    np.testing.assert_allclose(
        kl_divergence(dist.Categorical(probs=P), dist.Categorical(logits=np.log(Q) + 3.0)),
        expected,
        rtol=1e-12,
    )
    zero_in_q = kl_divergence(
        dist.Categorical(probs=P), dist.Categorical(probs=np.array([0.5, 0.5, 0.0]))
    )
    assert float(zero_in_q) == np.inf


def test_an_unregistered_pair_names_both_types(backend: Backend) -> None:
    with pytest.raises(NotImplementedError, match="Poisson against Normal"):
        kl_divergence(dist.Poisson(1.0), dist.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError, match="Normal against Independent"):
        kl_divergence(dist.Normal(A, 1.0), dist.Normal(A, 1.0).to_event(1))

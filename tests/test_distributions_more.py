"""VonMises, Multinomial, ZeroSumNormal and MixtureSameFamily against scipy, on both backends:
densities at fixed points, and the moments of draws."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl.infer import MCMC, NUTS

N = 20_000


def _draws(d: dist.Distribution, backend: Backend, seed: int = 0) -> np.ndarray:
    return np.asarray(d.sample(backend.key(seed), (N,)), dtype=float)


def test_von_mises_density_support_and_draws(backend: Backend) -> None:
    k = np.array([0.1, 2.0, 30.0])
    d = dist.VonMises(0.5, k)
    x = np.array([0.3, -2.0, 0.55])
    np.testing.assert_allclose(
        np.asarray(d.log_prob(x)), st.vonmises.logpdf(x, k, loc=0.5), rtol=1e-5
    )
    assert float(d.log_prob(np.array([4.0, 0.0, 0.0]))[0]) == -np.inf  # outside [-pi, pi]
    s = _draws(d, backend)
    assert s.shape == (N, 3) and s.min() >= -np.pi and s.max() <= np.pi
    # Circular variance 1 - |E exp(i x)| against the closed form (and scipy's mean direction).
    np.testing.assert_allclose(
        1 - np.abs(np.mean(np.exp(1j * s), axis=0)), np.asarray(d.variance), atol=0.02
    )
    np.testing.assert_allclose(
        st.circmean(s[:, 1:], high=np.pi, low=-np.pi, axis=0), 0.5, atol=0.03
    )


def test_multinomial_density_and_draws(backend: Backend) -> None:
    p = np.array([0.2, 0.3, 0.5])
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    expected = st.multinomial.logpmf(x, 6, p)
    np.testing.assert_allclose(
        np.asarray(dist.Multinomial(6, probs=p).log_prob(x)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(dist.Multinomial(6, logits=np.log(p) + 1.0).log_prob(x)), expected, rtol=1e-5
    )
    d = dist.Multinomial(6, probs=p)
    assert d.event_shape == (3,) and d.batch_shape == ()
    assert float(d.log_prob(np.array([1.0, 1.0, 1.0]))) == -np.inf  # adds up to 3, not 6
    s = _draws(d, backend)
    assert np.all(s.sum(-1) == 6) and np.all(s >= 0)
    np.testing.assert_allclose(s.mean(0), 6 * p, atol=0.05)
    np.testing.assert_allclose(np.cov(s.T), st.multinomial.cov(6, p), atol=0.05)


def test_zero_sum_normal_density_and_draws(backend: Backend) -> None:
    d = dist.ZeroSumNormal(2.0, (3,))
    v = np.array([0.5, -1.0, 0.5])
    # The density of the 2-dim subspace: an isotropic Normal in an orthonormal basis of it.
    basis = np.linalg.svd(np.eye(3) - 1 / 3)[0][:, :2]
    expected = st.multivariate_normal.logpdf(basis.T @ v, np.zeros(2), 4.0 * np.eye(2))
    np.testing.assert_allclose(float(d.log_prob(v)), expected, rtol=1e-5)
    s = _draws(d, backend)
    np.testing.assert_allclose(s.sum(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(s.var(0), np.asarray(d.variance), rtol=0.05)


def test_mixture_same_family_density_moments_and_draws(backend: Backend) -> None:
    w, loc, scale = np.array([0.3, 0.7]), np.array([-1.0, 1.0]), np.array([0.5, 0.8])
    d = dist.MixtureSameFamily(dist.Categorical(probs=w), dist.Normal(loc, scale))
    x = np.array([-1.2, 0.0, 2.5])
    expected = np.log(
        w[0] * st.norm.pdf(x, loc[0], scale[0]) + w[1] * st.norm.pdf(x, loc[1], scale[1])
    )
    np.testing.assert_allclose(np.asarray(d.log_prob(x)), expected, rtol=1e-5)
    mean = float(w @ loc)
    variance = float(w @ (scale**2 + loc**2) - mean**2)
    np.testing.assert_allclose([float(d.mean), float(d.variance)], [mean, variance], rtol=1e-5)
    s = _draws(d, backend)
    np.testing.assert_allclose([s.mean(), s.var()], [mean, variance], atol=0.05)
    mvn = dist.MultivariateNormal(np.array([[0.0, 0.0], [3.0, 3.0]]), np.eye(2))
    vec = dist.MixtureSameFamily(dist.Categorical(probs=w), mvn)
    assert vec.event_shape == (2,) and vec.batch_shape == ()
    expected_vec = np.log(
        w @ [st.multivariate_normal.pdf(np.zeros(2), m, np.eye(2)) for m in ([0, 0], [3, 3])]
    )
    np.testing.assert_allclose(float(vec.log_prob(np.zeros(2))), expected_vec, rtol=1e-5)
    with pytest.raises(ValueError, match="components"):
        dist.MixtureSameFamily(
            dist.Categorical(probs=np.array([0.2, 0.3, 0.5])), dist.Normal(loc, scale)
        )


@pytest.mark.filterwarnings("ignore:.*divergent")
def test_zero_sum_normal_is_a_latent_site_for_nuts(backend: Backend) -> None:
    transform = dist.biject_to(dist.ZeroSumNormal(1.0, (3, 2)).support)
    x = np.random.default_rng(0).normal(size=(5, 2, 1))
    y = np.asarray(transform(x))
    assert y.shape == (5, 3, 2)
    np.testing.assert_allclose([np.abs(y.sum(-1)).max(), np.abs(y.sum(-2)).max()], 0.0, atol=1e-5)
    np.testing.assert_allclose((y**2).sum((-1, -2)), (x**2).sum((-1, -2)), rtol=1e-5)  # an isometry
    np.testing.assert_allclose(np.asarray(transform.inv(y)), x, atol=1e-5)

    def model() -> None:
        minippl.sample("b", dist.ZeroSumNormal(2.0, (3,)))

    mcmc = MCMC(NUTS(model, max_tree_depth=3), num_warmup=20, num_samples=20, progress_bar=False)
    mcmc.run(backend.key(0))
    draws = np.asarray(mcmc.get_samples()["b"])
    assert draws.shape == (20, 3)
    np.testing.assert_allclose(draws.sum(-1), 0.0, atol=1e-5)


def test_wishart_and_its_cholesky_factor(backend: Backend) -> None:
    S = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    X = st.wishart(df=6, scale=S).rvs(2, random_state=1)
    expected = st.wishart.logpdf(np.moveaxis(X, 0, -1), 6, S)
    for form in (
        {"scale_matrix": S},
        {"rate_matrix": np.linalg.inv(S)},
        {"scale_tril": np.linalg.cholesky(S)},
    ):
        np.testing.assert_allclose(
            np.asarray(dist.Wishart(6.0, **form).log_prob(X)), expected, rtol=1e-5
        )
    # The factor's density: the Wishart's at C C^T times the Jacobian 2^p prod C_ii^(p - i).
    C = np.linalg.cholesky(X)
    jacobian = 3 * np.log(2.0) + np.sum(
        np.array([3, 2, 1]) * np.log(np.diagonal(C, axis1=-2, axis2=-1)), -1
    )
    np.testing.assert_allclose(
        np.asarray(dist.WishartCholesky(6.0, scale_matrix=S).log_prob(C)),
        expected + jacobian,
        rtol=1e-5,
    )
    d = dist.Wishart(6.0, scale_matrix=S)
    s = _draws(d, backend)
    assert s.shape == (N, 3, 3) and bool(np.all(np.asarray(d.support(s[:100]))))
    np.testing.assert_allclose(s.mean(0), np.asarray(d.mean), atol=0.1)
    np.testing.assert_allclose(s.var(0), np.asarray(d.variance), rtol=0.06)

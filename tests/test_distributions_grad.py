"""Gradients of ``log_prob`` on JAX agree with central finite differences (float64).

The derivative is taken with respect to every real parameter and, for continuous
distributions, the value too: what NUTS differentiates when a site is latent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import minippl.distributions as dist
from backends import Backend

jax = pytest.importorskip("jax")


@pytest.fixture
def jax64(jax_backend: Backend) -> Iterator[Backend]:
    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    yield jax_backend
    jax.config.update("jax_enable_x64", previous)


A3 = np.array([1.5, 0.7, 2.5])
TRIL = np.array([[1.2, 0.0, 0.0], [0.4, 0.9, 0.0], [-0.3, 0.5, 1.1]])
CHOL2 = np.array([[1.0, 0.0], [0.6, 0.8]])

# (name, make(**params), params, value, differentiate the value too)
CASES: list[tuple[str, Callable[..., Any], dict[str, Any], Any, bool]] = [
    ("Normal", dist.Normal, {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("HalfNormal", dist.HalfNormal, {"scale": 1.7}, 1.1, True),
    ("Cauchy", dist.Cauchy, {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("HalfCauchy", dist.HalfCauchy, {"scale": 1.7}, 1.1, True),
    ("StudentT", dist.StudentT, {"df": 3.5, "loc": 0.3, "scale": 1.7}, 1.1, True),
    ("Laplace", dist.Laplace, {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("Logistic", dist.Logistic, {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("LogNormal", dist.LogNormal, {"loc": 0.3, "scale": 0.7}, 1.1, True),
    ("Exponential", dist.Exponential, {"rate": 1.7}, 1.1, True),
    ("Gamma", dist.Gamma, {"concentration": 2.3, "rate": 1.7}, 1.1, True),
    ("InverseGamma", dist.InverseGamma, {"concentration": 2.3, "rate": 1.7}, 1.1, True),
    ("Chi2", dist.Chi2, {"df": 3.3}, 1.1, True),
    ("Beta", dist.Beta, {"concentration1": 2.3, "concentration0": 1.7}, 0.4, True),
    ("Uniform", dist.Uniform, {"low": -0.3, "high": 1.7}, 1.1, True),
    ("Weibull", dist.Weibull, {"scale": 1.7, "concentration": 2.3}, 1.1, True),
    ("Gumbel", dist.Gumbel, {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("TruncatedNormal", lambda loc, scale, low, high: dist.TruncatedNormal(
        loc, scale, low=low, high=high), {"loc": 0.3, "scale": 1.7, "low": -1.0, "high": 2.0},
     1.1, True),
    ("TruncatedNormal(tail)", lambda loc, scale, low, high: dist.TruncatedNormal(
        loc, scale, low=low, high=high), {"loc": 0.3, "scale": 0.5, "low": 2.0, "high": 3.0},
     2.2, True),
    ("TruncatedNormal(low)", lambda loc, scale, low: dist.TruncatedNormal(loc, scale, low=low),
     {"loc": 0.3, "scale": 1.7, "low": 1.0}, 1.1, True),
    ("TruncatedNormal(high)", lambda loc, scale, high: dist.TruncatedNormal(
        loc, scale, high=high), {"loc": 0.3, "scale": 1.7, "high": 2.0}, 1.1, True),
    ("TruncatedCauchy", lambda loc, scale, low: dist.TruncatedCauchy(loc, scale, low=low),
     {"loc": 0.3, "scale": 1.7, "low": -1.0}, 1.1, True),
    ("FoldedNormal", lambda loc, scale: dist.FoldedDistribution(dist.Normal(loc, scale)),
     {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("Dirichlet", dist.Dirichlet, {"concentration": A3}, np.array([0.2, 0.5, 0.3]), False),
    ("MultivariateNormal", lambda loc, scale_tril: dist.MultivariateNormal(
        loc, scale_tril=scale_tril), {"loc": A3, "scale_tril": TRIL}, np.array([0.1, 2.0, -1.0]),
     True),
    ("MultivariateNormal(cov)", lambda loc, cov: dist.MultivariateNormal(loc, cov),
     {"loc": A3, "cov": TRIL @ TRIL.T}, np.array([0.1, 2.0, -1.0]), True),
    ("LKJCholesky", lambda concentration: dist.LKJCholesky(2, concentration),
     {"concentration": 1.7}, CHOL2, False),
    ("Bernoulli(logits)", lambda logits: dist.Bernoulli(logits=logits), {"logits": 0.3}, 1.0,
     False),
    ("Bernoulli(probs)", lambda probs: dist.Bernoulli(probs=probs), {"probs": 0.3}, 1.0, False),
    ("Binomial", lambda probs: dist.Binomial(7, probs=probs), {"probs": 0.3}, 3.0, False),
    ("Categorical", lambda logits: dist.Categorical(logits=logits), {"logits": A3}, 1, False),
    ("Poisson", dist.Poisson, {"rate": 2.3}, 3.0, False),
    ("NegativeBinomial", lambda n, logits: dist.NegativeBinomial(n, logits=logits),
     {"n": 2.3, "logits": 0.4}, 3.0, False),
    ("NegativeBinomial2", dist.NegativeBinomial2, {"mean": 2.3, "concentration": 1.4}, 3.0,
     False),
    ("Geometric", lambda probs: dist.Geometric(probs=probs), {"probs": 0.3}, 3.0, False),
    ("BetaBinomial", lambda a, b: dist.BetaBinomial(a, b, 7), {"a": 2.3, "b": 1.4}, 3.0, False),
]


@pytest.mark.parametrize("name,make,params,value,wrt_value", CASES, ids=[c[0] for c in CASES])
def test_grad_log_prob_matches_finite_differences(
    jax64: Backend,
    name: str,
    make: Callable[..., Any],
    params: dict[str, Any],
    value: Any,
    wrt_value: bool,
) -> None:
    from jax.flatten_util import ravel_pytree

    point = {"params": {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}}
    if wrt_value:
        point["value"] = np.asarray(value, dtype=np.float64)
    flat, unravel = ravel_pytree(point)

    def f(theta: Any) -> Any:
        p = unravel(theta)
        return make(**p["params"]).log_prob(p.get("value", value)).sum()

    f_jit = jax.jit(f)
    grad = np.asarray(jax.jit(jax.grad(f))(flat))
    theta = np.asarray(flat)
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        h = 1e-6 * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (float(f_jit(up)) - float(f_jit(down))) / (2 * h)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)

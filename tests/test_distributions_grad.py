"""Gradients of ``log_prob`` agree with finite differences (float64), on both backends.

The derivative is taken with respect to every real parameter and, for continuous
distributions, the value too: what NUTS differentiates when a site is latent. Each backend's
automatic gradient (JAX's ``grad``; autograd on NumPy) is checked against fourth-order
central differences of the same function (``tests/finite_differences.py``) to 1e-6,
relative to the gradient's largest entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import finite_differences
import numpy as np
import pytest

import minippl.distributions as dist
from backends import Backend

A3 = np.array([1.5, 0.7, 2.5])
TRIL = np.array([[1.2, 0.0, 0.0], [0.4, 0.9, 0.0], [-0.3, 0.5, 1.1]])
CHOL2 = np.array([[1.0, 0.0], [0.6, 0.8]])
CORR3 = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.4], [-0.2, 0.4, 1.0]])

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
    ("Normal(batch)", dist.Normal, {"loc": A3, "scale": A3[::-1]}, np.array([0.1, 2.0, -1.0]),
     True),
    ("LKJ", lambda concentration: dist.LKJ(3, concentration), {"concentration": 1.7}, CORR3,
     False),
    ("GammaPoisson", dist.GammaPoisson, {"concentration": 2.3, "rate": 1.4}, 3.0, False),
    ("Categorical(probs)", lambda probs: dist.Categorical(probs=probs),
     {"probs": np.array([0.2, 0.5, 0.3])}, 1, False),
    ("Binomial(logits)", lambda logits: dist.Binomial(7, logits=logits), {"logits": 0.3}, 3.0,
     False),
    ("Geometric(logits)", lambda logits: dist.Geometric(logits=logits), {"logits": 0.3}, 3.0,
     False),
    ("NegativeBinomial(probs)", lambda n, probs: dist.NegativeBinomial(n, probs=probs),
     {"n": 2.3, "probs": 0.4}, 3.0, False),
    ("TruncatedLaplace", lambda loc, scale: dist.TruncatedDistribution(
        dist.Laplace(loc, scale), low=-1.0, high=2.0), {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("TruncatedLogistic(high)", lambda loc, scale: dist.TruncatedDistribution(
        dist.Logistic(loc, scale), high=2.0), {"loc": 0.3, "scale": 1.7}, 1.1, True),
    ("Independent", lambda loc, scale: dist.Normal(loc, scale).to_event(1),
     {"loc": A3, "scale": A3[::-1]}, np.array([0.1, 2.0, -1.0]), True),
    ("Masked", lambda loc: dist.Normal(loc, 1.0).mask(np.array([True, False, True])),
     {"loc": A3}, np.array([0.1, 2.0, -1.0]), True),
    ("Delta", lambda log_density: dist.Delta(1.1, log_density), {"log_density": 0.4}, 1.1,
     False),
    ("Unit", dist.Unit, {"log_factor": 0.4}, (), False),
    ("VonMises", dist.VonMises, {"loc": 0.3, "concentration": 1.7}, 1.1, True),
    ("VonMises(small)", dist.VonMises, {"loc": 0.3, "concentration": 0.05}, -2.0, True),
    ("Multinomial", lambda probs: dist.Multinomial(10, probs=probs),
     {"probs": np.array([0.2, 0.5, 0.3])}, np.array([3.0, 3.0, 4.0]), False),
    ("Multinomial(logits)", lambda logits: dist.Multinomial(10, logits=logits), {"logits": A3},
     np.array([3.0, 3.0, 4.0]), False),
    ("ZeroSumNormal", lambda scale: dist.ZeroSumNormal(scale, (3,)), {"scale": 1.7},
     np.array([0.4, -0.1, -0.3]), False),
    ("MixtureSameFamily", lambda logits, loc: dist.MixtureSameFamily(
        dist.Categorical(logits=logits), dist.Normal(loc, 1.3)), {"logits": A3, "loc": A3}, 1.1,
     True),
    # A symmetric matrix value: moving one entry alone leaves the support, so the value is
    # held fixed (as for the other matrix-valued families above).
    ("Wishart", lambda scale_tril: dist.Wishart(4.5, scale_tril=scale_tril),
     {"scale_tril": TRIL}, TRIL @ TRIL.T + np.eye(3), False),
]


@pytest.mark.parametrize("name,make,params,value,wrt_value", CASES, ids=[c[0] for c in CASES])
def test_grad_log_prob_matches_finite_differences(
    b64: Backend,
    name: str,
    make: Callable[..., Any],
    params: dict[str, Any],
    value: Any,
    wrt_value: bool,
) -> None:
    point = {"params": {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}}
    if wrt_value:
        point["value"] = np.asarray(value, dtype=np.float64)
    flat, unravel = b64.ravel_pytree(point)

    def f(theta: Any) -> Any:
        p = unravel(theta)
        return b64.xp.sum(make(**p["params"]).log_prob(p.get("value", value)))

    grad = np.asarray(b64.jit(b64.grad(f))(flat))
    _, numeric = finite_differences.value_and_grad(b64.jit(f))(np.asarray(flat))
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())

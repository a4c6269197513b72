"""Gradients of whole models: the NumPy backend's (autograd) against JAX's and against
finite differences, in float64.

Both backends differentiate exactly, so on the log densities of the guide's models they agree
to rounding (1e-10 relative here). On the benchmarks' reference models (eight schools centred
and non-centred, linear regression, the email regression), the NumPy backend's gradient of the
potential energy, at an unconstrained point, matches fourth-order central differences
(``tests/finite_differences.py``) to 1e-6 relative to its largest entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import finite_differences
import numpy as np
import pytest

import minippl
import minippl as numpyro
import minippl.distributions as dist
from benchmarks import models
from minippl import handlers
from minippl.infer.reparam import LocScaleReparam

X = np.linspace(-2.0, 2.0, 10)
Y = 1.0 + 2.0 * X + 0.5 * np.sin(7.0 * X)
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
Y_SCHOOLS = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])


def linear_model(x: Any, y: Any) -> None:
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, sigma), obs=y)


def eight_schools(sigma: Any, y: Any) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", sigma.shape[0]):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


noncentered = handlers.reparam(eight_schools, config={"theta": LocScaleReparam(centered=0)})

THETA = np.array([3.0, -1.0, 0.5, 2.0, -2.5, 1.0, 4.0, 0.0])
CASES: dict[str, tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] = {
    "linear": (linear_model, (X, Y), {"intercept": 0.7, "slope": 1.9, "sigma": 0.6}),
    "eight_schools": (eight_schools, (SIGMA, Y_SCHOOLS), {"mu": 4.0, "tau": 2.5, "theta": THETA}),
    "eight_schools_noncentered": (
        noncentered,
        (SIGMA, Y_SCHOOLS),
        {"mu": 4.0, "tau": 2.5, "theta_decentered": THETA / 3.0},
    ),
}


def log_density(
    model: Callable[..., None], args: tuple[Any, ...]
) -> Callable[[dict[str, Any]], Any]:
    """The joint log density as a function of the latent values (a dict)."""

    def fn(latents: dict[str, Any]) -> Any:
        xp = minippl.backend.current().xp
        tr = handlers.trace(handlers.substitute(model, data=latents)).get_trace(*args)
        total = 0.0
        for site in tr.values():
            if site.type == "sample":
                lp = xp.sum(site.fn.log_prob(site.value))
                total = total + (lp if site.scale is None else site.scale * lp)
        return total

    return fn



@pytest.mark.parametrize("case", sorted(CASES))
def test_numpy_gradients_match_jax(case: str, x64: None) -> None:
    model, args, point = CASES[case]
    results = {}
    for name in ("jax", "numpy"):
        backend = minippl.set_backend(name)
        try:
            xp = backend.xp
            latents = {k: xp.asarray(v, dtype=xp.float64) for k, v in point.items()}
            data = tuple(xp.asarray(a, dtype=xp.float64) for a in args)
            value, grad = backend.value_and_grad(log_density(model, data))(latents)
            results[name] = (
                float(value),
                {k: np.asarray(g, dtype=np.float64) for k, g in grad.items()},
            )
        finally:
            minippl.set_backend("jax")
    (v_jax, g_jax), (v_np, g_np) = results["jax"], results["numpy"]
    assert v_np == pytest.approx(v_jax, rel=1e-12)
    assert g_np.keys() == g_jax.keys() == point.keys()
    for k in point:
        np.testing.assert_allclose(g_np[k], g_jax[k], rtol=1e-10, atol=1e-12, err_msg=k)


REFERENCE_MODELS = ["eight_schools_c", "eight_schools_nc", "linreg", "email"]


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_numpy_model_gradient_matches_finite_differences(name: str) -> None:
    spec = models.get(name)
    model, data = spec.build(minippl, dist), spec.data()
    point, flat = finite_differences.check_potential_gradient(
        model, tuple(data.args), dict(data.kwargs), seed=3
    )
    assert flat.size == sum(np.size(v) for v in point.values())

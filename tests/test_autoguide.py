"""Autoguides on both backends: NumPyro's param names, plates and constrained sites,
``init_loc_fn``, ``sample_posterior`` / ``median`` / ``quantiles``, Laplace's covariance,
Predictive with a guide."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl.handlers.inspection import as_key
from minippl.infer import SVI, Predictive, Trace_ELBO, init_to_value
from minippl.infer.autoguide import (
    AutoDelta,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)
from minippl.optim import Adam

SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])


def schools(J: int, sigma: Any, y: Any = None) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", J):
        theta_decentered = numpyro.sample("theta_decentered", dist.Normal(0.0, 1.0))
        numpyro.deterministic("theta", mu + tau * theta_decentered)
        numpyro.sample("obs", dist.Normal(mu + tau * theta_decentered, sigma), obs=y)


def _init(guide: Any, backend: Backend) -> dict[str, Any]:
    xp = backend.xp
    svi = SVI(schools, guide, Adam(0.01), Trace_ELBO())
    state = svi.init(0, 8, xp.asarray(SIGMA), y=xp.asarray(Y))
    return svi.get_params(state)


def test_param_names_and_shapes_are_numpyros(backend: Backend) -> None:
    params = _init(AutoNormal(schools, init_scale=0.2), backend)
    assert sorted(params) == [
        "mu_auto_loc", "mu_auto_scale", "tau_auto_loc", "tau_auto_scale",
        "theta_decentered_auto_loc", "theta_decentered_auto_scale",
    ]  # fmt: skip
    assert params["theta_decentered_auto_loc"].shape == (8,)
    np.testing.assert_allclose(np.asarray(params["mu_auto_scale"]), 0.2, rtol=1e-6)
    delta = _init(AutoDelta(schools), backend)
    assert sorted(delta) == ["mu_auto_loc", "tau_auto_loc", "theta_decentered_auto_loc"]
    assert float(delta["tau_auto_loc"]) > 0.0  # constrained: a point of tau's support
    mvn = _init(AutoMultivariateNormal(schools, init_scale=0.3), backend)
    assert sorted(mvn) == ["auto_loc", "auto_scale_tril"]
    np.testing.assert_allclose(np.asarray(mvn["auto_scale_tril"]), 0.3 * np.eye(10), atol=1e-6)
    low = _init(AutoLowRankMultivariateNormal(schools, rank=2), backend)
    assert sorted(low) == ["auto_cov_factor", "auto_loc", "auto_scale"]
    assert low["auto_cov_factor"].shape == (10, 2)


def test_init_loc_fn_and_constrained_sites(backend: Backend) -> None:
    start = init_to_value(values={"mu": 1.5, "tau": 2.0})
    guide = AutoNormal(schools, init_loc_fn=start)
    params = _init(guide, backend)
    assert float(params["mu_auto_loc"]) == pytest.approx(1.5)
    assert float(params["tau_auto_loc"]) == pytest.approx(math.log(2.0), rel=1e-5)  # unconstrained
    median = guide.median(params)
    assert float(median["tau"]) == pytest.approx(2.0, rel=1e-5)
    # The deterministic site comes back recomputed from the medians.
    expected = 1.5 + 2.0 * np.asarray(median["theta_decentered"])
    np.testing.assert_allclose(np.asarray(median["theta"]), expected, rtol=1e-5)
    draws = guide.sample_posterior(as_key(1), params, sample_shape=(50,))
    assert draws["tau"].shape == (50,) and draws["theta"].shape == (50, 8)
    assert np.all(np.asarray(draws["tau"]) > 0)
    q = guide.quantiles(params, [0.1, 0.5, 0.9])
    assert q["tau"].shape == (3,)
    assert float(q["tau"][1]) == pytest.approx(2.0, rel=1e-5)
    assert float(q["tau"][0]) < 2.0 < float(q["tau"][2])


def test_autodelta_finds_the_map_and_keeps_deterministic_sites(backend: Backend) -> None:
    def model(x: Any) -> None:
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        numpyro.deterministic("twice", 2 * z)
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("x", dist.Normal(z, 1.0), obs=x)

    x = backend.xp.asarray(np.array([1.0, 2.0, 3.0]))
    guide = AutoDelta(model)
    result = SVI(model, guide, Adam(0.05), Trace_ELBO()).run(0, 300, x, progress_bar=False)
    assert float(result.params["z_auto_loc"]) == pytest.approx(6.0 / 4.0, abs=1e-2)
    draws = guide.sample_posterior(as_key(0), result.params, sample_shape=(3,))
    np.testing.assert_allclose(np.asarray(draws["twice"]), 2 * np.asarray(draws["z"]))


def test_local_latents_in_a_subsampled_plate(backend: Backend) -> None:
    def model(x: Any) -> None:
        with numpyro.plate("n", 20, subsample_size=5) as idx:
            z = numpyro.sample("z", dist.Normal(0.0, 1.0))
            numpyro.sample("x", dist.Normal(z, 1.0), obs=x[idx])

    x = backend.xp.asarray(np.linspace(-1.0, 1.0, 20))
    guide = AutoNormal(model)
    svi = SVI(model, guide, Adam(0.01), Trace_ELBO())
    state = svi.init(0, x)
    params = svi.get_params(state)
    assert params["z_auto_loc"].shape == (20,)  # every index gets its own, repeated init
    _, loss = svi.update(state, x)
    assert np.isfinite(float(loss))
    with pytest.raises(ValueError, match="subsampled plate 'n'"):
        SVI(model, AutoMultivariateNormal(model), Adam(0.01), Trace_ELBO()).init(0, x)


def test_laplace_covariance_is_the_posterior_of_a_gaussian_model(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("a", dist.Normal(1.0, 2.0))
        numpyro.sample("b", dist.Normal(-1.0, 0.5))

    guide = AutoLaplaceApproximation(model)
    result = SVI(model, guide, Adam(0.1), Trace_ELBO()).run(0, 400, progress_bar=False)
    posterior = guide.get_posterior(result.params)
    cov = np.asarray(posterior.covariance_matrix)
    np.testing.assert_allclose(cov, np.diag([4.0, 0.25]), rtol=2e-3, atol=1e-4)
    median = guide.median(result.params)
    assert float(median["a"]) == pytest.approx(1.0, abs=1e-2)
    q = guide.quantiles(result.params, [0.5])
    assert float(q["b"][0]) == pytest.approx(-1.0, abs=1e-2)


def test_predictive_with_a_guide(backend: Backend) -> None:
    xp = backend.xp
    guide = AutoNormal(schools)
    svi = SVI(schools, guide, Adam(0.01), Trace_ELBO())
    result = svi.run(0, 20, 8, xp.asarray(SIGMA), y=xp.asarray(Y), progress_bar=False)
    predictive = Predictive(schools, guide=guide, params=result.params, num_samples=7)
    draws = predictive(as_key(1), 8, xp.asarray(SIGMA))
    assert draws["obs"].shape == (7, 8) and draws["theta"].shape == (7, 8)
    chosen = Predictive(
        schools, guide=guide, params=result.params, num_samples=7, return_sites=["tau"]
    )(as_key(1), 8, xp.asarray(SIGMA))
    assert list(chosen) == ["tau"] and chosen["tau"].shape == (7,)


@pytest.mark.slow
def test_multivariate_normal_recovers_a_100d_covariance(jax_backend: Backend) -> None:
    """JAX only: 5,150 params, which the NumPy backend's finite differences cannot afford."""
    from benchmarks.models import correlated_gaussian, gaussian_data

    data = gaussian_data()
    covariance = np.linalg.inv(data.args[0] + np.eye(100))
    model = correlated_gaussian(numpyro, dist)
    guide = AutoMultivariateNormal(model)
    steps = 4000
    schedule = Adam(lambda i: 0.02 * 0.02 ** (i / steps))
    svi = SVI(model, guide, schedule, Trace_ELBO(num_particles=32))
    result = svi.run(0, steps, jax_backend.xp.asarray(data.args[0]), progress_bar=False)
    tril = np.asarray(result.params["auto_scale_tril"], dtype=float)
    error = np.linalg.norm(tril @ tril.T - covariance) / np.linalg.norm(covariance)
    assert error < 0.05

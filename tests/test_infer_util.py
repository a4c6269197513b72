"""The model utilities behind MCMC: log density, potential energy, initialisation, transforms.

Checked by hand on small models (both backends) and against NumPyro as the oracle (JAX).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import (
    constrain_fn,
    init_to_feasible,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
    initialize_model,
    log_density,
    log_likelihood,
    potential_energy,
)
from minippl.infer.util import InitError, find_valid_initial_params, unconstrain_fn

pytestmark = pytest.mark.usefixtures("x64")  # float64 on JAX (NumPy always is)



def norm_logpdf(x: float, loc: float, scale: float) -> float:
    return -0.5 * ((x - loc) / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)


def simple(y: Any) -> None:
    mu = minippl.sample("mu", dist.Normal(0.0, 2.0))
    sigma = minippl.sample("sigma", dist.HalfNormal(1.0))
    minippl.deterministic("shifted", mu + 1.0)
    minippl.sample("y", dist.Normal(mu, sigma), obs=y)


# -- log density and potential energy ------------------------------------------------------


def test_log_density_and_potential_by_hand(backend: Backend) -> None:
    """Potential = -(log joint at t(u)) - log|dt/du|; t = exp for the positive site."""
    mu, u = 0.3, -0.4
    sigma = math.exp(u)
    y = 1.2
    joint = (
        norm_logpdf(mu, 0.0, 2.0)
        + norm_logpdf(sigma, 0.0, 1.0)
        + math.log(2.0)
        + norm_logpdf(y, mu, sigma)
    )
    ld, model_trace = log_density(simple, (y,), {}, {"mu": mu, "sigma": sigma})
    assert float(ld) == pytest.approx(joint, rel=1e-12)
    assert float(model_trace["shifted"].value) == pytest.approx(mu + 1.0)
    pe = potential_energy(simple, (y,), {}, {"mu": backend.xp.asarray(mu), "sigma": u})
    assert float(pe) == pytest.approx(-(joint + u), rel=1e-12)


def test_log_density_of_drawn_transformed_sites(backend: Backend) -> None:
    """Sites drawn from a transformed distribution (which records the draw's intermediates)
    are scored by their density at the drawn value, alone, under to_event and expand."""

    def model() -> None:
        minippl.sample("x", dist.LogNormal(0.0, 1.0))
        minippl.sample("y", dist.LogNormal(0.5, 2.0).expand([3]).to_event(1))

    ld, model_trace = log_density(handlers.seed(model, 0), (), {}, {})
    x, y = float(model_trace["x"].value), np.asarray(model_trace["y"].value)
    expected = lognorm_logpdf(x, 0.0, 1.0) + sum(lognorm_logpdf(v, 0.5, 2.0) for v in y)
    assert float(ld) == pytest.approx(expected, rel=1e-5)


def lognorm_logpdf(x: float, mu: float, sigma: float) -> float:
    return norm_logpdf(math.log(x), mu, sigma) - math.log(x)


def test_potential_respects_plates_scale_mask_factor_param(backend: Backend) -> None:
    """Subsample scaling, scale, mask, factor and a param all enter the potential as they should."""
    xp = backend.xp
    data = xp.asarray([0.5, -1.0, 2.0, 0.0])

    def model() -> None:
        w = minippl.param("w", 3.0)
        x = minippl.sample("x", dist.Normal(0.0, 1.0))
        with minippl.plate("n", 4, subsample_size=2) as idx:
            minippl.sample("obs", dist.Normal(x, 1.0), obs=data[idx])
        with handlers.scale(scale=0.5):
            minippl.sample("half", dist.Normal(x, 1.0), obs=1.0)
        with handlers.mask(mask=xp.asarray([True, False])):
            minippl.sample("masked", dist.Normal(x, 1.0).expand([2]), obs=xp.asarray([1.0, 9.0]))
        minippl.factor("f", w * x)

    x = 0.7
    info = initialize_model(backend.key(0), model, model_args=())
    indices = np.asarray(info.model_trace["n"].value)
    pe = info.potential_fn({"x": xp.asarray(x)})
    subsample = sum(norm_logpdf(float(np.asarray(data)[i]), x, 1.0) for i in indices)
    expected = (
        norm_logpdf(x, 0.0, 1.0)
        + 2.0 * subsample
        + 0.5 * norm_logpdf(1.0, x, 1.0)
        + norm_logpdf(1.0, x, 1.0)
        + 3.0 * x
    )
    assert float(pe) == pytest.approx(-expected, rel=1e-10)


def test_jacobian_follows_the_site_under_plates(backend: Backend) -> None:
    """A positive vector site: the log-Jacobian is the sum of u over the batch."""
    xp = backend.xp

    def model() -> None:
        with minippl.plate("p", 3):
            minippl.sample("s", dist.Exponential(1.0))

    u = xp.asarray([0.1, -0.2, 0.3])
    pe = potential_energy(model, (), {}, {"s": u})
    expected = -sum(-math.exp(v) + v for v in (0.1, -0.2, 0.3))
    assert float(pe) == pytest.approx(expected, rel=1e-12)


def test_transforms_round_trip(backend: Backend) -> None:
    """constrain_fn and unconstrain_fn are inverse; deterministic sites are recomputed."""
    xp = backend.xp
    z = {"mu": xp.asarray(0.25), "sigma": xp.asarray(-0.5)}
    values = constrain_fn(simple, (1.0,), {}, z, return_deterministic=True)
    assert float(values["sigma"]) == pytest.approx(math.exp(-0.5))
    assert float(values["shifted"]) == pytest.approx(1.25)
    back = unconstrain_fn(simple, (1.0,), {}, {"mu": values["mu"], "sigma": values["sigma"]})
    assert float(back["sigma"]) == pytest.approx(-0.5)
    batched = constrain_fn(
        simple, (1.0,), {}, {"mu": xp.zeros((2, 3)), "sigma": xp.zeros((2, 3))},
        return_deterministic=True, batch_ndims=2,
    )  # fmt: skip
    assert tuple(batched["shifted"].shape) == (2, 3)


# -- initialisation ------------------------------------------------------------------------


def test_initialize_model_returns_what_a_kernel_needs(backend: Backend) -> None:
    info = initialize_model(backend.key(3), simple, model_args=(0.5,))
    z = info.param_info.z
    assert set(z) == {"mu", "sigma"}
    assert float(info.potential_fn(z)) == pytest.approx(float(info.param_info.potential_energy))
    post = info.postprocess_fn(z)
    assert set(post) == {"mu", "sigma", "shifted"}
    assert float(post["sigma"]) == pytest.approx(math.exp(float(z["sigma"])))
    dyn = initialize_model(backend.key(3), simple, model_args=(0.5,), dynamic_args=True)
    pe_other_data = dyn.potential_fn(2.0)(z)
    assert float(pe_other_data) != pytest.approx(float(info.param_info.potential_energy))
    assert float(dyn.potential_fn(0.5)(z)) == pytest.approx(float(info.param_info.potential_energy))
    assert set(dyn.postprocess_fn(0.5)(z)) == {"mu", "sigma", "shifted"}


def test_init_strategies(backend: Backend) -> None:
    def model() -> None:
        minippl.sample("a", dist.Normal(10.0, 0.001))
        minippl.sample("b", dist.Exponential(1.0).expand([3]))

    key = backend.key(0)
    for _ in range(3):
        z = initialize_model(key, model, init_strategy=init_to_uniform).param_info.z
        assert np.all(np.abs(np.asarray(z["b"])) < 2.0) and abs(float(z["a"])) < 2.0
        key = backend.split(key)[0]
    z = initialize_model(key, model, init_strategy=init_to_uniform(radius=0.1)).param_info.z
    assert np.all(np.abs(np.asarray(z["b"])) < 0.1)
    z = initialize_model(key, model, init_strategy=init_to_feasible).param_info.z
    np.testing.assert_allclose(np.asarray(z["b"]), 0.0)
    z = initialize_model(key, model, init_strategy=init_to_median(num_samples=31)).param_info.z
    assert float(z["a"]) == pytest.approx(10.0, abs=0.01)
    np.testing.assert_allclose(np.exp(np.asarray(z["b"])), math.log(2.0), atol=0.6)
    z = initialize_model(key, model, init_strategy=init_to_sample).param_info.z
    assert float(z["a"]) == pytest.approx(10.0, abs=0.01)
    values = {"a": 9.5, "b": backend.xp.asarray([1.0, 2.0, 3.0])}
    z = initialize_model(key, model, init_strategy=init_to_value(values=values)).param_info.z
    assert float(z["a"]) == pytest.approx(9.5)
    np.testing.assert_allclose(np.asarray(z["b"]), np.log([1.0, 2.0, 3.0]))


def test_init_retries_until_finite(backend: Backend) -> None:
    """A potential that is infinite for half the box is still initialised."""
    xp = backend.xp

    def model() -> None:
        x = minippl.sample("x", dist.Normal(0.0, 1.0))
        minippl.factor("wall", xp.where(x > 0, 0.0, -xp.inf))

    info, valid = find_valid_initial_params(
        backend.key(5), model, prototype_params={"x": xp.asarray(0.0)}
    )
    assert bool(valid) and float(info.z["x"]) > 0


def walled(y: Any) -> None:
    """Infinite potential for x <= 0.4: most points of the box take more than one try."""
    xp = minippl.backend.current().xp
    x = minippl.sample("x", dist.Normal(0.0, 1.0))
    scale = minippl.sample("scale", dist.HalfNormal(1.0))
    minippl.factor("wall", xp.where(x > 0.4, 0.0, -xp.inf))
    minippl.sample("y", dist.Normal(x, scale), obs=y)


@pytest.mark.parametrize("strategy", [init_to_uniform, init_to_median(num_samples=5)])
def test_kernel_set_up_finds_the_start_initialize_model_finds(
    backend: Backend, strategy: Any
) -> None:
    """The kernels' set-up (shapes only; on JAX, the tries as one loop of a compiled,
    vectorized program) starts each chain where the plain path starts it."""
    from minippl.infer.fast_setup import setup_model

    y = backend.xp.asarray([0.7, 1.2])
    keys = backend.split(backend.key(2), 4)
    setup = setup_model(
        keys[0], walled, init_strategy=strategy, model_args=(y,), shapes_only=True
    )
    assert setup.model_trace is None
    for i in range(4):
        info = initialize_model(keys[i], walled, init_strategy=strategy, model_args=(y,))
        eager, valid = setup.find_start(keys[i], (y,), {})
        assert bool(valid)
        for name, value in info.param_info.z.items():
            np.testing.assert_array_equal(np.asarray(eager.z[name]), np.asarray(value))
    if backend.name == "jax":
        import jax

        found, valid = jax.jit(jax.vmap(lambda k: setup.find_start(k, (y,), {})))(keys)
        assert bool(np.all(np.asarray(valid)))
        for i in range(4):
            z = initialize_model(keys[i], walled, init_strategy=strategy, model_args=(y,))
            for name, value in z.param_info.z.items():
                np.testing.assert_allclose(np.asarray(found.z[name][i]), np.asarray(value))


def no_valid_start() -> None:
    scale = minippl.sample("scale", dist.HalfNormal(1.0))
    minippl.sample("ok", dist.Normal(0.0, scale), obs=0.5)
    minippl.sample("y", dist.HalfNormal(scale), obs=-1.0)


def test_no_valid_start_names_the_sites(backend: Backend) -> None:
    with pytest.raises(InitError, match=r"after 100 tries.*\['y'\]"):
        initialize_model(backend.key(0), no_valid_start)


def test_a_stack_of_chains_with_no_valid_start_names_the_sites(backend: Backend) -> None:
    """Started together (vectorized on JAX), a chain with no valid start is run again alone,
    and its error names the sites, as a single chain's does."""
    from minippl.infer import MCMC, NUTS

    keys = backend.split(backend.key(0), 2)
    with pytest.raises(InitError, match=r"after 100 tries.*\['y'\]"):
        NUTS(no_valid_start).init(keys, 10)
    mcmc = MCMC(NUTS(no_valid_start), num_warmup=5, num_samples=5, num_chains=2,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    with pytest.raises(InitError, match=r"after 100 tries.*\['y'\]"):
        mcmc.run(backend.key(0))


def test_discrete_latent_site_is_rejected(backend: Backend) -> None:
    def model() -> None:
        minippl.sample("coin", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="'coin' is a discrete latent"):
        initialize_model(backend.key(0), model)


# -- pointwise log likelihood --------------------------------------------------------------


def scale_first(y: Any) -> None:
    """Latent sites out of alphabetical order (a starting point draws them in model order)."""
    scale = minippl.sample("scale", dist.HalfNormal(1.0))
    loc = minippl.sample("loc", dist.Normal(0.0, 2.0))
    minippl.sample("y", dist.Normal(loc, scale), obs=y)


def interval_model(y: Any) -> None:
    """Bounds built by the model from constants: arrays the backend may trace."""
    xp = minippl.backend.current().xp
    low = minippl.sample("low", dist.Uniform(xp.asarray(0.0), xp.asarray(1.0)))
    minippl.sample("y", dist.Normal(low, 1.0), obs=y)


def with_param(y: Any) -> None:
    shift = minippl.param("shift", 0.5)
    mu = minippl.sample("mu", dist.Normal(0.0, 2.0))
    minippl.sample("y", dist.Normal(mu + shift, 1.0), obs=y)


def subsampled(y: Any) -> None:
    mu = minippl.sample("mu", dist.Normal(0.0, 2.0))
    with minippl.plate("n", 3, subsample_size=2) as idx:
        minippl.sample("y", dist.Normal(mu, 1.0), obs=y[idx])


@pytest.mark.parametrize(
    "model, shapes_only",
    [(scale_first, True), (with_param, False), (subsampled, False), (interval_model, None)],
    ids=["plain", "param", "subsampled", "traced-bounds"],
)
def test_set_up_for_shapes_only_where_no_value_is_kept(
    backend: Backend, model: Any, shapes_only: bool | None
) -> None:
    """A set-up whose model has no param site, no subsampled plate and no transform with
    traced parameters traces shapes only (no eager trace is kept); any other keeps the
    eager trace. Either way the set-up gives the potential and prototype shapes of the eager
    one, its sites in the model's order. (Bounds made from constants are traced on JAX,
    plain arrays on NumPy.)"""
    from minippl.infer.util import setup_model

    y = backend.xp.asarray([0.2, -0.4, 1.1])
    kwargs: dict[str, Any] = {"model_args": (y,), "split_key": True}
    eager = setup_model(backend.key(3), model, **kwargs)
    setup = setup_model(backend.key(3), model, shapes_only=True, **kwargs)
    expected = (backend.name == "numpy") if shapes_only is None else shapes_only
    assert (setup.model_trace is None) == expected
    assert eager.model_trace is not None
    proto = {k: tuple(np.shape(v)) for k, v in eager.prototype.items()}
    assert [(k, tuple(v.shape)) for k, v in setup.prototype.items()] == list(proto.items())
    point = {k: backend.xp.full(v, 0.3) for k, v in proto.items()}
    np.testing.assert_allclose(
        float(setup.potential_fn(point)), float(eager.potential_fn(point)), rtol=1e-12
    )


def test_log_likelihood_pointwise(backend: Backend) -> None:
    xp = backend.xp

    def model(y: Any) -> None:
        mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
        with minippl.plate("n", y.shape[0]):
            minippl.sample("y", dist.Normal(mu, 1.0), obs=y)

    y = xp.asarray([0.0, 1.0, 2.0])
    mus = xp.asarray([[0.0, 0.5], [1.0, -1.0]])
    ll = log_likelihood(model, {"mu": mus}, y, batch_ndims=2)
    assert tuple(ll["y"].shape) == (2, 2, 3)
    assert float(ll["y"][1, 1, 2]) == pytest.approx(norm_logpdf(2.0, -1.0, 1.0))
    flat = log_likelihood(model, {"mu": xp.reshape(mus, (4,))}, y)
    assert tuple(flat["y"].shape) == (4, 3)


# -- NumPyro as the oracle -----------------------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("strategy", ["uniform", "median", "value"])
def test_initialize_model_matches_numpyro(jax_backend: Backend, strategy: str) -> None:
    """Same key, same model: the same starting point, potential energy and gradient."""
    numpyro = pytest.importorskip("numpyro")
    import jax
    import numpyro.distributions as ndist
    from numpyro.infer import init_to_median as n_median
    from numpyro.infer import init_to_value as n_value
    from numpyro.infer.util import initialize_model as n_initialize

    def ours(y: Any) -> None:
        mu = minippl.sample("mu", dist.Normal(0.0, 5.0))
        tau = minippl.sample("tau", dist.HalfCauchy(5.0))
        theta = minippl.sample("theta", dist.Normal(mu, tau).expand([3]))
        minippl.deterministic("d", 2.0 * theta)
        minippl.sample("y", dist.Normal(theta, 1.0), obs=y)

    def theirs(y: Any) -> None:
        mu = numpyro.sample("mu", ndist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", ndist.HalfCauchy(5.0))
        theta = numpyro.sample("theta", ndist.Normal(mu, tau).expand([3]))
        numpyro.deterministic("d", 2.0 * theta)
        numpyro.sample("y", ndist.Normal(theta, 1.0), obs=y)

    strategies = {
        "uniform": (init_to_uniform, {}),
        "median": (init_to_median(num_samples=7), {"init_strategy": n_median(num_samples=7)}),
        "value": (
            init_to_value(values={"mu": 1.5}),
            {"init_strategy": n_value(values={"mu": 1.5})},
        ),
    }
    mine, kw = strategies[strategy]
    y = np.array([1.0, -2.0, 0.5])
    a = initialize_model(jax.random.key(11), ours, init_strategy=mine, model_args=(y,))
    b = n_initialize(jax.random.key(11), theirs, model_args=(y,), **kw)
    for name in ("mu", "tau", "theta"):
        np.testing.assert_array_equal(np.asarray(a.param_info.z[name]), b.param_info.z[name])
        np.testing.assert_allclose(
            np.asarray(a.param_info.z_grad[name]), b.param_info.z_grad[name], rtol=1e-12
        )
    assert float(a.param_info.potential_energy) == pytest.approx(
        float(b.param_info.potential_energy), rel=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(a.postprocess_fn(a.param_info.z)["d"]),
        b.postprocess_fn(b.param_info.z)["d"],
        rtol=1e-12,
    )

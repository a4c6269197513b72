"""SVI and the ELBOs on both backends: conjugate posteriors recovered, unbiased gradients,
the state API, compiled chunks, and clear errors on bad input."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from compile_counter import CompileCounter

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl.distributions import constraints
from minippl.handlers.inspection import as_key
from minippl.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from minippl.infer.svi import NonFiniteLossError
from minippl.optim import Adam

# Normal-Normal with known variance: z ~ N(0, 1), x_i ~ N(z, 1), i = 1..n.
DATA = np.array([2.1, 1.4, 2.9, 2.2, 1.6, 2.5, 1.9, 2.6, 1.8, 2.4])
POST_PRECISION = 1.0 + DATA.size
POST_MEAN = DATA.sum() / POST_PRECISION
POST_SD = 1.0 / math.sqrt(POST_PRECISION)


def _log_evidence() -> float:
    # x ~ N(0, I + 11^T): the marginal of the data.
    cov = np.eye(DATA.size) + np.ones((DATA.size, DATA.size))
    _, logdet = np.linalg.slogdet(cov)
    quad = DATA @ np.linalg.solve(cov, DATA)
    return float(-0.5 * (DATA.size * math.log(2 * math.pi) + logdet + quad))


def normal_model(x: Any) -> None:
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", dist.Normal(z, 1.0), obs=x)


def normal_guide(x: Any) -> None:
    loc = numpyro.param("loc", 0.0)
    scale = numpyro.param("scale", 1.0, constraint=constraints.positive)
    numpyro.sample("z", dist.Normal(loc, scale))


def _decaying(base: float, steps: int) -> Any:
    return lambda i: base * 0.01 ** (i / steps)


def test_normal_normal_posterior(backend: Backend) -> None:
    x = backend.xp.asarray(DATA)
    steps = 600
    svi = SVI(normal_model, normal_guide, Adam(_decaying(0.05, steps)), Trace_ELBO(num_particles=2))
    result = svi.run(0, steps, x, progress_bar=False)
    assert float(result.params["loc"]) == pytest.approx(POST_MEAN, rel=0.02)
    assert float(result.params["scale"]) == pytest.approx(POST_SD, rel=0.05)


def test_elbo_at_the_exact_posterior_is_the_log_evidence(backend: Backend) -> None:
    # Where q is the posterior, log p(x, z) - log q(z) = log p(x) for every z: each
    # particle is the log evidence, whatever the key (this checks every term and sign).
    x = backend.xp.asarray(DATA)
    at = {"loc": POST_MEAN, "scale": POST_SD}
    for seed in (0, 1, 2):
        value = float(Trace_ELBO().loss(as_key(seed), at, normal_model, normal_guide, x))
        assert -value == pytest.approx(_log_evidence(), rel=1e-6)


def test_elbo_at_the_fitted_optimum_is_within_1e_3_of_the_log_evidence(
    jax_backend: Backend,
) -> None:
    x = jax_backend.xp.asarray(DATA)
    steps = 1500
    svi = SVI(
        normal_model, normal_guide, Adam(_decaying(0.05, steps)), Trace_ELBO(num_particles=16)
    )
    result = svi.run(0, steps, x, progress_bar=False)
    estimate = Trace_ELBO(num_particles=4000).loss(
        as_key(5), result.params, normal_model, normal_guide, x
    )
    assert -float(estimate) == pytest.approx(_log_evidence(), abs=1e-3)


def test_mean_field_kl_is_exact_for_a_latent_only_model(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("z", dist.Normal(1.0, 2.0).expand([3]).to_event(1))

    def guide() -> None:
        numpyro.sample("z", dist.Normal(numpyro.param("m", 0.0), 0.5).expand([3]).to_event(1))

    # KL(N(0, .5) || N(1, 2)) per coordinate, times 3: no sampling noise at all.
    kl = math.log(2.0 / 0.5) + (0.25 + 1.0) / 8.0 - 0.5
    for seed in (0, 1):
        loss = TraceMeanField_ELBO().loss(as_key(seed), {"m": 0.0}, model, guide)
        assert float(loss) == pytest.approx(3 * kl, rel=1e-6)


def test_single_particle_gradients_are_unbiased(backend: Backend) -> None:
    """z-test: the mean of single-particle gradients of -ELBO at (loc, log scale) against
    the exact gradient of the analytic ELBO."""
    xp = backend.xp
    x = xp.asarray(DATA[:3])
    loc, log_scale = 0.3, math.log(0.8)
    n = DATA[:3].size
    scale = math.exp(log_scale)
    # -ELBO = -E_q[log p(x|z) + log p(z)] - H(q); d/dloc and d/dlog_scale in closed form.
    exact = np.array([(1 + n) * loc - DATA[:3].sum(), (1 + n) * scale**2 - 1.0])

    def loss(params: Any, key: Any) -> Any:
        constrained = {"loc": params["loc"], "scale": xp.exp(params["log_scale"])}
        return Trace_ELBO().loss(key, constrained, normal_model, normal_guide, x)

    at = {"loc": xp.asarray(loc), "log_scale": xp.asarray(log_scale)}
    draws = 4000 if backend.name == "jax" else 300
    keys = backend.split(as_key(7), draws)
    grads_fn = backend.jit(backend.vmap(lambda key: backend.grad(loss)(at, key)))
    found = grads_fn(keys)
    grads = np.stack([np.asarray(found["loc"]), np.asarray(found["log_scale"])], axis=1)
    z = (grads.mean(0) - exact) / (grads.std(0, ddof=1) / math.sqrt(draws))
    assert np.all(np.abs(z) < 4.0), z


def beta_model(flips: Any) -> None:
    p = numpyro.sample("p", dist.Beta(2.0, 2.0))
    with numpyro.plate("flips", flips.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(probs=p), obs=flips)


def test_beta_bernoulli_through_autonormal(backend: Backend) -> None:
    from minippl.infer.autoguide import AutoNormal

    flips = np.array([1.0] * 60 + [0.0] * 40)
    a, b = 2.0 + 60, 2.0 + 40
    mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    guide = AutoNormal(beta_model)
    steps = 600
    svi = SVI(beta_model, guide, Adam(_decaying(0.05, steps)), Trace_ELBO(num_particles=2))
    result = svi.run(1, steps, backend.xp.asarray(flips), progress_bar=False)
    draws = np.asarray(guide.sample_posterior(as_key(2), result.params, sample_shape=(20000,))["p"])
    assert draws.mean() == pytest.approx(mean, rel=0.02)
    assert draws.std() == pytest.approx(sd, rel=0.05)


def test_state_api_update_evaluate_and_bar(backend: Backend) -> None:
    x = backend.xp.asarray(DATA)
    svi = SVI(normal_model, normal_guide, Adam(0.05), Trace_ELBO())
    state = svi.init(0, x)
    assert set(svi.get_params(state)) == {"loc", "scale"}
    evaluated = svi.evaluate(state, x)
    new_state, loss = svi.update(state, x)
    assert float(loss) == pytest.approx(float(evaluated), rel=1e-6)  # the same key
    assert float(svi.get_params(new_state)["loc"]) > 0.0  # moved towards the data
    # The bar and its chunks never change the result.
    plain = svi.run(3, 20, x, progress_bar=False)
    barred = svi.run(3, 20, x, progress_bar=True)
    np.testing.assert_array_equal(np.asarray(plain.losses), np.asarray(barred.losses))
    assert float(plain.params["loc"]) == float(barred.params["loc"])
    # Continuing from a state is the same as one longer run.
    first = svi.run(3, 10, x, progress_bar=False)
    rest = svi.run(None, 10, x, progress_bar=False, init_state=first.state)
    np.testing.assert_allclose(np.asarray(rest.losses), np.asarray(plain.losses)[10:], rtol=1e-6)


def test_params_are_constrained_and_init_params_override(backend: Backend) -> None:
    x = backend.xp.asarray(DATA)
    svi = SVI(normal_model, normal_guide, Adam(0.5), Trace_ELBO())
    result = svi.run(0, 20, x, progress_bar=False, init_params={"scale": 0.01})
    assert float(result.params["scale"]) > 0.0
    state = svi.init(0, x, init_params={"scale": 3.0})
    assert float(svi.get_params(state)["scale"]) == pytest.approx(3.0)


def test_one_compiled_program_reused_by_a_second_run(
    jax_backend: Backend, compile_counter: CompileCounter
) -> None:
    x = jax_backend.xp.asarray(DATA)
    svi = SVI(normal_model, normal_guide, Adam(0.05), Trace_ELBO())
    svi.run(0, 40, x, progress_bar=False)
    (program,) = svi._programs.values()
    state = svi.init(0, x)
    svi.update(state, x)
    with compile_counter.counting():
        svi.run(1, 40, x, progress_bar=False)
        svi.update(svi.update(state, x)[0], x)
    assert compile_counter.count == 0  # nothing traced, compiled or loaded again
    # One program for the chunks of run and one for update, each made once.
    assert list(svi._programs) == [("update", 40, (1, (), ())), ("update", 0, (1, (), ()))]
    assert svi._programs[("update", 40, (1, (), ()))] is program


def test_optax_optimizer(jax_backend: Backend) -> None:
    optax = pytest.importorskip("optax")
    x = jax_backend.xp.asarray(DATA)
    ours = SVI(normal_model, normal_guide, Adam(0.05), Trace_ELBO()).run(
        0, 50, x, progress_bar=False
    )
    theirs = SVI(normal_model, normal_guide, optax.adam(0.05), Trace_ELBO()).run(
        0, 50, x, progress_bar=False
    )
    np.testing.assert_allclose(np.asarray(theirs.losses), np.asarray(ours.losses), rtol=1e-5)


# -- bad input ---------------------------------------------------------------------------------


def _svi(model: Any, guide: Any) -> SVI:
    return SVI(model, guide, Adam(0.01), Trace_ELBO())


def test_guide_missing_a_latent_site(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("a", dist.Normal(0.0, 1.0))
        numpyro.sample("b", dist.Normal(0.0, 1.0))

    def guide() -> None:
        numpyro.sample("a", dist.Normal(numpyro.param("m", 0.0), 1.0))

    with pytest.raises(ValueError, match=r"latent site\(s\) \['b'\]"):
        _svi(model, guide).run(0, 2, progress_bar=False)


def test_guide_site_absent_from_model_or_observed(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("a", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=0.5)

    def extra_guide() -> None:
        numpyro.sample("a", dist.Normal(numpyro.param("m", 0.0), 1.0))
        numpyro.sample("c", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="'c', which is absent from the model"):
        _svi(model, extra_guide).run(0, 2, progress_bar=False)

    def observing_guide() -> None:
        numpyro.sample("a", dist.Normal(numpyro.param("m", 0.0), 1.0))
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=0.5)

    with pytest.raises(ValueError, match="site 'y' is observed in the guide"):
        _svi(model, observing_guide).run(0, 2, progress_bar=False)


def test_param_init_outside_its_constraint(backend: Backend) -> None:
    def guide(x: Any) -> None:
        scale = numpyro.param("scale", -1.0, constraint=constraints.positive)
        numpyro.sample("z", dist.Normal(0.0, scale))

    with pytest.raises(ValueError, match="param 'scale'.*outside its constraint"):
        _svi(normal_model, guide).init(0, backend.xp.asarray(DATA))


@pytest.mark.parametrize("num_steps", [0, -3, 2.0, "5", True])
def test_num_steps_must_be_positive(backend: Backend, num_steps: Any) -> None:
    svi = _svi(normal_model, normal_guide)
    message = f"SVI.run: num_steps must be a positive integer, got {num_steps!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        svi.run(0, num_steps, backend.xp.asarray(DATA))
    # NumPy's integers are integers.
    assert len(svi.run(0, np.int64(2), backend.xp.asarray(DATA), progress_bar=False).losses) == 2


def test_optim_must_be_an_optimizer(backend: Backend) -> None:
    with pytest.raises(
        TypeError, match="SVI: optim must be a minippl.optim optimizer .* got float"
    ):
        SVI(normal_model, normal_guide, 0.01, Trace_ELBO())


def test_forward_mode_is_refused_by_name(backend: Backend) -> None:
    x = backend.xp.asarray(DATA)
    svi = _svi(normal_model, normal_guide)
    state = svi.init(0, x)
    calls = [
        lambda: svi.run(0, 2, x, forward_mode_differentiation=True),
        lambda: svi.update(state, x, forward_mode_differentiation=True),
        lambda: svi.stable_update(state, x, forward_mode_differentiation=True),
    ]
    for call in calls:
        with pytest.raises(NotImplementedError, match="SVI: forward_mode_differentiation=True"):
            call()


def test_arguments_that_are_not_arrays_must_hash(backend: Backend) -> None:
    def model(x: Any, names: Any) -> None:
        normal_model(x)

    def guide(x: Any, names: Any) -> None:
        normal_guide(x)

    svi = _svi(model, guide)
    with pytest.raises(TypeError, match="SVI: arguments of the model that are not arrays must"):
        svi.run(0, 2, backend.xp.asarray(DATA), ["a", "b"], progress_bar=False)
    # A tuple hashes, and is fixed into the compiled step.
    result = svi.run(0, 2, backend.xp.asarray(DATA), ("a", "b"), progress_bar=False)
    assert len(result.losses) == 2


def _wall_guide() -> None:
    from minippl.backend import current

    loc = numpyro.param("loc", 0.0)
    # The guide's own factor: finite only while loc < 0.5, which the model pulls it past.
    numpyro.factor("wall", current().xp.log(0.5 - loc))
    numpyro.sample("z", dist.Normal(loc, 1.0))


# With the bar, 50 steps run in chunks of 3, and the failing step begins a chunk: the state
# kept is found again from the chunk before; without it, from the start of the run.
@pytest.mark.parametrize("progress_bar", [True, False])
def test_non_finite_loss_names_the_step_and_keeps_the_last_finite_state(
    backend: Backend, progress_bar: bool
) -> None:
    def model() -> None:
        numpyro.sample("z", dist.Normal(5.0, 0.1))

    svi = SVI(model, _wall_guide, Adam(0.1), Trace_ELBO())
    with np.errstate(invalid="ignore"), pytest.raises(NonFiniteLossError) as info:
        svi.run(0, 50, progress_bar=progress_bar)
    err = info.value
    assert 1 < err.step < 50
    assert (err.step - 1) % 3 == 0  # the first step of a chunk of 3
    assert f"step {err.step}" in str(err)
    assert len(err.result.losses) == err.step - 1
    assert np.all(np.isfinite(err.result.losses))
    assert float(err.result.params["loc"]) < 0.5
    # The state kept is the one the last finite loss was computed at: it evaluates to it.
    assert float(svi.evaluate(err.result.state)) == pytest.approx(err.result.losses[-1])


def test_stable_update_skips_non_finite_steps(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("z", dist.Normal(5.0, 0.1))

    svi = SVI(model, _wall_guide, Adam(0.1), Trace_ELBO())
    with np.errstate(invalid="ignore"):
        result = svi.run(0, 30, progress_bar=False, stable_update=True)
    losses = np.asarray(result.losses)
    first = int(np.flatnonzero(np.isnan(losses))[0])
    # Every step from there is skipped (the state does not move, so its loss stays NaN),
    # and nothing is raised: NumPyro's stable_update.
    assert first > 0 and np.all(np.isnan(losses[first:]))
    assert np.isfinite(float(result.params["loc"]))


def test_particles_vectorized_or_not_agree(backend: Backend) -> None:
    x = backend.xp.asarray(DATA)
    at = {"loc": 1.0, "scale": 0.5}
    values = [
        float(Trace_ELBO(num_particles=3, vectorize_particles=v).loss(
            as_key(4), at, normal_model, normal_guide, x
        ))
        for v in (True, False)
    ]  # fmt: skip
    assert values[0] == pytest.approx(values[1], rel=1e-6)


def test_subsample_scale_applies_to_model_and_guide(backend: Backend) -> None:
    # The guide equals the prior at every local site: if both terms are scaled by
    # size / subsample_size they cancel exactly; scaling only the model's would not.
    def model() -> None:
        with numpyro.plate("n", 20, subsample_size=5):
            numpyro.sample("z", dist.Normal(0.0, 1.0))

    def guide() -> None:
        with numpyro.plate("n", 20, subsample_size=5):
            numpyro.sample("z", dist.Normal(0.0, 1.0))

    assert float(Trace_ELBO().loss(as_key(0), {}, model, guide)) == pytest.approx(0.0, abs=1e-5)


def test_discrete_latent_sites_warn(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("k", dist.Bernoulli(probs=0.3))

    def guide() -> None:
        numpyro.sample("k", dist.Bernoulli(probs=numpyro.param("p", 0.5)))

    with pytest.warns(UserWarning, match="site 'k' is a discrete latent variable"):
        SVI(model, guide, Adam(0.01), Trace_ELBO()).init(0)

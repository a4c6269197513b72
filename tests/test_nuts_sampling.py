"""NUTS end to end: it samples the right distribution, adapts, survives undefined regions,
compiles and vectorises on JAX, and matches NumPyro draw for draw with the extensions off."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl.diagnostics import effective_sample_size
from minippl.infer.hmc import HMC, NUTS, HMCState


def run_chains(
    bk: Backend,
    kernel: Any,
    init: Any,
    num_warmup: int,
    num_samples: int,
    num_chains: int = 1,
    seed: int = 0,
    args: tuple[Any, ...] = (),
) -> tuple[HMCState, dict[str, np.ndarray]]:
    """A minimal driver: init each chain, then one compiled scan over ``kernel.sample``.

    Returns the last state and, per iteration (warmup included), ``(chains, iterations, ...)``
    arrays of the unconstrained ``z`` leaves, ``num_steps``, ``diverging``, ``accept_prob``.
    """
    xp = bk.xp
    keys = bk.split(bk.key(seed), num_chains)
    states = [kernel.init(keys[c], num_warmup, init, args, {}) for c in range(num_chains)]
    state = bk.tree_map(lambda *xs: xp.stack(xs), *states)

    def one_chain(s: HMCState) -> tuple[HMCState, Any]:
        def body(s: HMCState, _: Any) -> tuple[HMCState, Any]:
            s = kernel.sample(s, args, {})
            return s, (s.z, s.num_steps, s.diverging, s.accept_prob)

        return bk.scan(body, s, None, length=num_warmup + num_samples)  # type: ignore[no-any-return]

    final, (z, steps, diverging, accept) = bk.jit(bk.vmap(one_chain))(state)
    trace = {
        "z": bk.tree_map(bk.to_numpy, z),
        "num_steps": bk.to_numpy(steps),
        "diverging": bk.to_numpy(diverging),
        "accept_prob": bk.to_numpy(accept),
    }
    return final, trace


def assert_moments(draws: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
    """Mean and variances within 4.5 Monte Carlo standard errors (ESS from the draws)."""
    ess = effective_sample_size(draws)  # draws: (chains, n, d)
    flat = draws.reshape(-1, draws.shape[-1])
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(flat.mean(0) - mean), 4.5 * sd / np.sqrt(ess))
    rel_var = flat.var(0) / np.diag(cov) - 1
    np.testing.assert_array_less(np.abs(rel_var), 4.5 * np.sqrt(2 / ess))


def gaussian(xp: Any, cov: np.ndarray) -> Callable[[Any], Any]:
    precision = xp.asarray(np.linalg.inv(cov))
    return lambda z: 0.5 * z["x"] @ (precision @ z["x"])


# --------------------------------------------------------------------------- correctness


def test_nuts_samples_a_correlated_gaussian_dense_beats_diagonal(backend: Backend) -> None:
    # Correlation 0.95 and scales 1 and 3 (2-d on NumPy, 3-d with a third, independent site
    # on JAX). Both metrics sample it; the dense one, once adapted, needs far fewer steps.
    small = backend.name == "numpy"
    cov = np.array([[1.0, 0.95 * 3], [0.95 * 3, 9.0]])
    if not small:
        cov = np.block([[cov, np.zeros((2, 1))], [np.zeros((1, 2)), np.eye(1) * 0.25]])
    d = cov.shape[0]
    warmup, samples, chains = (150, 600, 1) if small else (300, 1000, 4)
    steps = {}
    for dense in (False, True):
        kernel = NUTS(potential_fn=gaussian(backend.xp, cov), dense_mass=dense)
        final, trace = run_chains(
            backend, kernel, {"x": backend.xp.zeros(d)}, warmup, samples, chains, seed=1
        )
        assert_moments(trace["z"]["x"][:, warmup:], np.zeros(d), cov)
        steps[dense] = trace["num_steps"][:, warmup:].mean()
        assert not trace["diverging"][:, warmup:].any()
        # Dual averaging drives the acceptance statistic to its target during warmup.
        assert trace["accept_prob"][:, warmup - 50 : warmup].mean() == pytest.approx(0.8, abs=0.08)
        if dense and not small:
            estimate = backend.to_numpy(final.adapt_state.inverse_mass_matrix)[0]
            np.testing.assert_allclose(estimate, cov, rtol=0.35, atol=0.35)
    assert steps[True] < 0.5 * steps[False]


def test_undefined_regions_count_divergences_and_keep_sampling(backend: Backend) -> None:
    # A standard normal whose potential is NaN beyond x0 = 1 and +inf below x1 = -1.5:
    # trajectories that cross an edge diverge; the chain stays where the density is
    # defined and samples the normal truncated there (E[x0] = -phi(1)/Phi(1) = -0.2876,
    # E[x1] = phi(1.5)/(1 - Phi(-1.5)) = 0.1388).
    xp = backend.xp

    def potential(z: Any) -> Any:
        x = z["x"]
        u = xp.where(x[1] < -1.5, xp.inf, 0.5 * xp.sum(x * x))
        return xp.where(x[0] > 1.0, xp.nan, u)

    small = backend.name == "numpy"
    warmup, samples, chains = (150, 600, 1) if small else (300, 1000, 2)
    kernel = NUTS(potential_fn=potential)
    _, trace = run_chains(backend, kernel, {"x": xp.zeros(2)}, warmup, samples, chains)
    x = trace["z"]["x"][:, warmup:]
    assert np.isfinite(x).all() and (x[..., 0] <= 1.0).all() and (x[..., 1] >= -1.5).all()
    assert trace["diverging"][:, warmup:].sum() > 0
    ess = effective_sample_size(x)
    for i, (mean, sd) in enumerate([(-0.2876, 0.7779), (0.1388, 0.8549)]):
        assert abs(x[..., i].mean() - mean) < 4.5 * sd / math.sqrt(ess[i])


# --------------------------------------------------------------------------- options


def test_options_tree_depth_heuristic_and_frozen_adaptation() -> None:
    # Backend-neutral logic, checked eagerly on NumPy.
    bk = minippl.set_backend("numpy")
    try:
        xp = bk.xp
        cov = np.array([[1.0, 0.9], [0.9, 1.0]])
        kernel = NUTS(potential_fn=gaussian(xp, cov), max_tree_depth=(2, 3))
        assert kernel.max_tree_depth == (2, 3)
        _, trace = run_chains(bk, kernel, {"x": xp.zeros(2)}, 30, 30)
        assert trace["num_steps"][0, :30].max() <= 3 and trace["num_steps"][0, 30:].max() <= 7

        inverse = xp.asarray([2.0, 0.5])
        frozen = NUTS(
            potential_fn=gaussian(xp, cov),
            step_size=0.3,
            inverse_mass_matrix=inverse,
            adapt_step_size=False,
            adapt_mass_matrix=False,
        )
        final, _ = run_chains(bk, frozen, {"x": xp.zeros(2)}, 40, 5)
        assert float(final.adapt_state.step_size[0]) == 0.3
        np.testing.assert_array_equal(final.adapt_state.inverse_mass_matrix[0], inverse)

        heuristic = NUTS(
            potential_fn=gaussian(xp, cov), find_heuristic_step_size=True, step_size=50.0
        )
        state = heuristic.init(bk.key(0), 40, {"x": xp.zeros(2)}, (), {})
        assert float(state.adapt_state.step_size) < 5.0  # searched down from 50
        for _ in range(45):
            state = heuristic.sample(state, (), {})
        assert np.isfinite(state.z["x"]).all()
        assert heuristic.get_diagnostics_str(state).endswith(
            f"acc. prob={float(state.mean_accept_prob):.2f}"
        )
    finally:
        minippl.set_backend("jax")


def test_block_dense_mass_with_a_model(backend: Backend) -> None:
    # mu and tau share a dense block, the vector theta gets a diagonal one; the result is
    # the posterior of a conjugate normal model (plus a half-normal scale).
    xp = backend.xp
    y = xp.asarray(np.random.default_rng(0).normal(1.0, 0.5, size=30))

    def model(y: Any) -> None:
        mu = minippl.sample("mu", dist.Normal(0.0, 10.0))
        tau = minippl.sample("tau", dist.HalfNormal(1.0))
        minippl.sample("theta", dist.Normal(xp.zeros(2), 1.0).to_event(1))
        minippl.deterministic("mu2", 2 * mu)
        with minippl.plate("n", y.shape[0]):
            minippl.sample("y", dist.Normal(mu, 0.5), obs=y)
        minippl.sample("t", dist.Normal(tau, 0.1), obs=xp.asarray(0.3))

    kernel = NUTS(model, dense_mass=[("mu", "tau")])
    small = backend.name == "numpy"
    warmup, samples = (150, 500) if small else (300, 1000)
    final, trace = run_chains(backend, kernel, None, warmup, samples, args=(y,))
    inverse = final.adapt_state.inverse_mass_matrix
    assert sorted(inverse) == [("mu", "tau"), ("theta",)]
    assert backend.to_numpy(inverse[("mu", "tau")]).shape == (1, 2, 2)
    assert backend.to_numpy(inverse[("theta",)]).shape == (1, 2)
    mu = trace["z"]["mu"][:, warmup:]
    post_var = 1 / (30 / 0.25 + 1 / 100)
    post_mean = post_var * float(np.sum(backend.to_numpy(y))) / 0.25
    ess = effective_sample_size(mu[..., None])[0]
    assert abs(mu.mean() - post_mean) < 4.5 * math.sqrt(post_var / ess)
    constrained = kernel.postprocess_fn((y,), {})(bk_index(backend, final.z, 0))
    assert float(constrained["tau"]) > 0
    assert float(constrained["mu2"]) == pytest.approx(2 * float(constrained["mu"]))


def bk_index(backend: Backend, tree: Any, i: int) -> Any:
    return backend.tree_map(lambda x: x[i], tree)


# --------------------------------------------------------------------------- JAX programs


def test_sample_jits_and_vmaps_over_chains(jax_backend: Backend) -> None:
    bk = jax_backend
    xp = bk.xp
    kernel = NUTS(potential_fn=gaussian(xp, np.array([[1.0, 0.5], [0.5, 2.0]])))
    keys = bk.split(bk.key(7), 3)
    states = [kernel.init(keys[c], 10, {"x": xp.full(2, 0.5 * c)}, (), {}) for c in range(3)]
    one = bk.jit(kernel.sample)
    many = bk.jit(bk.vmap(kernel.sample, in_axes=(0, None, None)))
    stacked = bk.tree_map(lambda *xs: xp.stack(xs), *states)
    for _ in range(12):  # through the end of warmup
        states = [one(s, (), {}) for s in states]
        stacked = many(stacked, (), {})
    for c in range(3):
        np.testing.assert_allclose(stacked.z["x"][c], states[c].z["x"], rtol=1e-5)
        assert int(stacked.num_steps[c]) == int(states[c].num_steps)
        np.testing.assert_allclose(
            stacked.adapt_state.step_size[c], states[c].adapt_state.step_size, rtol=1e-5
        )
    # A stack of keys initialises a stack of chains, and `sample` then maps over them.
    vectorized = kernel.init(
        keys, 10, {"x": xp.stack([xp.full(2, 0.5 * c) for c in range(3)])}, (), {}
    )
    assert vectorized.z["x"].shape == (3, 2)
    again = kernel.sample(vectorized, (), {})
    assert again.z["x"].shape == (3, 2) and again.i.shape == (3,)


def test_model_arguments_are_traced(jax_backend: Backend) -> None:
    # The data are arguments of the compiled `sample`, so new data of the same shape
    # reuse the program, and the posterior follows the data.
    bk = jax_backend
    xp = bk.xp
    traces = []

    def model(y: Any) -> None:
        traces.append(1)
        mu = minippl.sample("mu", dist.Normal(0.0, 10.0))
        with minippl.plate("n", y.shape[0]):
            minippl.sample("y", dist.Normal(mu, 1.0), obs=y)

    kernel = NUTS(model)
    y0 = xp.zeros(20)
    state = kernel.init(bk.key(0), 50, None, (y0,), {})
    sample = bk.jit(kernel.sample)
    state = sample(state, (y0,), {})
    count = len(traces)
    for _ in range(100):
        state = sample(state, (y0 + 5.0,), {})
    assert len(traces) == count
    assert float(state.z["mu"]) == pytest.approx(5.0, abs=1.0)


def test_state_is_a_picklable_pytree(backend: Backend) -> None:
    kernel = NUTS(potential_fn=gaussian(backend.xp, np.eye(2)))
    state = kernel.init(backend.key(0), 5, {"x": backend.xp.zeros(2)}, (), {})
    if backend.name == "numpy":  # (an eager JAX transition would only cost time here)
        state = kernel.sample(state, (), {})
    restored = pickle.loads(pickle.dumps(state))
    assert isinstance(restored, HMCState)
    leaves = [leaf for leaf in backend.tree_flatten(state)[0] if not backend.is_key(leaf)]
    again = [leaf for leaf in backend.tree_flatten(restored)[0] if not backend.is_key(leaf)]
    for a, b in zip(leaves, again, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_constructor_and_init_errors(backend: Backend) -> None:
    with pytest.raises(ValueError, match="Only one of"):
        NUTS()
    with pytest.raises(ValueError, match="Only one of"):
        NUTS(model=lambda: None, potential_fn=lambda z: z)
    with pytest.raises(ValueError, match="At least one of"):
        HMC(potential_fn=lambda z: z, trajectory_length=None)
    with pytest.raises(ValueError, match="init_params"):
        NUTS(potential_fn=lambda z: z).init(backend.key(0), 10, None, (), {})


# --------------------------------------------------------------------------- NumPyro


@pytest.mark.reference
@pytest.mark.parametrize("dense", [False, True])
def test_matches_numpyro_draw_for_draw(jax_backend: Backend, dense: bool) -> None:
    # With Stan's extra checks and the dense shrinkage off, the same key gives NumPyro's
    # chain: same tree sizes and (up to compiler reassociation) the same draws and step
    # sizes, through the end of warmup (50 steps: windows 0-6, 7-44, 45-49).
    numpyro_infer = pytest.importorskip("numpyro.infer")
    import jax

    bk = jax_backend
    xp = bk.xp
    cov = np.array([[1.0, 0.8, 0.1], [0.8, 2.0, 0.3], [0.1, 0.3, 0.5]])
    precision = xp.asarray(np.linalg.inv(cov))

    def potential(z: Any) -> Any:
        v = xp.concatenate([z["x"], z["y"][None]])
        return 0.5 * v @ (precision @ v) + 0.1 * xp.sum(v**4)

    init = {"x": xp.asarray([0.5, -0.3]), "y": xp.asarray(1.0)}
    ours = NUTS(
        potential_fn=potential, dense_mass=dense, robust_u_turn=False, dense_shrinkage=False
    )
    theirs = numpyro_infer.NUTS(potential_fn=potential, dense_mass=dense)
    key = jax.random.PRNGKey(3)
    a = ours.init(key, 50, init, (), {})
    b = theirs.init(key, 50, init, (), {})
    step_a, step_b = bk.jit(ours.sample), bk.jit(theirs.sample)
    for i in range(60):
        a, b = step_a(a, (), {}), step_b(b, (), {})
        assert int(a.num_steps) == int(b.num_steps), i
        for site in init:
            np.testing.assert_allclose(a.z[site], b.z[site], rtol=2e-4, atol=2e-5, err_msg=str(i))
        np.testing.assert_allclose(a.adapt_state.step_size, b.adapt_state.step_size, rtol=2e-4)
    np.testing.assert_allclose(
        a.adapt_state.inverse_mass_matrix, b.adapt_state.inverse_mass_matrix, rtol=2e-4
    )

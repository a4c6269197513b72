"""NUTS end to end: it samples the right distribution, adapts, survives undefined regions,
compiles and vectorises on JAX, and with the extensions off follows NumPyro's kernel on one
potential for 60 iterations (the whole-run claim is measured through ``MCMC`` in
``tests/reference/test_reference_nuts_parity.py``)."""

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


def test_nuts_samples_a_correlated_gaussian(backend: Backend) -> None:
    # Correlation 0.95 and scales 1 and 3. On NumPy (2-d, eager) both metrics sample it,
    # and the dense one, once adapted, needs far fewer leapfrog steps; on JAX (plus a third,
    # independent coordinate; four chains under vmap) the dense one is checked.
    small = backend.name == "numpy"
    cov = np.array([[1.0, 0.95 * 3], [0.95 * 3, 9.0]])
    if not small:
        cov = np.block([[cov, np.zeros((2, 1))], [np.zeros((1, 2)), np.eye(1) * 0.25]])
    d = cov.shape[0]
    warmup, samples, chains = (300, 500, 1) if small else (300, 1000, 4)
    steps = {}
    for dense in (False, True) if small else (True,):
        kernel = NUTS(potential_fn=gaussian(backend.xp, cov), dense_mass=dense)
        final, trace = run_chains(
            backend, kernel, {"x": backend.xp.zeros(d)}, warmup, samples, chains, seed=1
        )
        assert_moments(trace["z"]["x"][:, warmup:], np.zeros(d), cov)
        steps[dense] = trace["num_steps"][:, warmup:].mean()
        assert not trace["diverging"][:, warmup:].any()
        # Dual averaging drives the acceptance statistic to its target during warmup.
        assert trace["accept_prob"][:, warmup - 50 : warmup].mean() == pytest.approx(0.8, abs=0.08)
        if dense:
            # The last slow window (100 draws) found the correlation.
            estimate = backend.to_numpy(final.adapt_state.inverse_mass_matrix)[0]
            corr = estimate[0, 1] / np.sqrt(estimate[0, 0] * estimate[1, 1])
            assert corr == pytest.approx(0.95, abs=0.1)
    if small:
        assert steps[True] < 0.6 * steps[False]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy: inf - inf past an edge
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
    from minippl import backend as selection

    previous = selection.current().name
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
        minippl.set_backend(previous)


def test_model_with_block_mass_and_data_as_arguments(jax_backend: Backend) -> None:
    # NUTS(model) through a tiny loop over one compiled `sample`: mu and tau share a dense
    # block, theta gets a diagonal one. The data are arguments of the program, so a second
    # data set reuses it (no new trace of the model) and the posterior follows the data.
    bk = jax_backend
    xp = bk.xp
    traces = []

    def model(y: Any) -> None:
        traces.append(1)
        mu = minippl.sample("mu", dist.Normal(0.0, 10.0))
        tau = minippl.sample("tau", dist.HalfNormal(1.0))
        minippl.sample("theta", dist.Normal(xp.zeros(2), 1.0).to_event(1))
        minippl.deterministic("mu2", 2 * mu)
        with minippl.plate("n", y.shape[0]):
            minippl.sample("y", dist.Normal(mu, 0.5), obs=y)
        minippl.sample("t", dist.Normal(tau, 0.1), obs=xp.asarray(0.3))

    kernel = NUTS(model, dense_mass=[("mu", "tau")])
    sample = bk.jit(kernel.sample)
    rng = np.random.default_rng(0)
    traced_by_sample = []
    for true_mu in (1.0, -2.0):
        y = xp.asarray(rng.normal(true_mu, 0.5, size=30))
        state = kernel.init(bk.key(1), 300, None, (y,), {})
        inverse = state.adapt_state.inverse_mass_matrix
        assert sorted(inverse) == [("mu", "tau"), ("theta",)]
        assert inverse[("mu", "tau")].shape == (2, 2) and inverse[("theta",)].shape == (2,)
        draws = []
        before = len(traces)
        for i in range(1300):
            state = sample(state, (y,), {})
            if i >= 300:
                draws.append(float(state.z["mu"]))
        traced_by_sample.append(len(traces) - before)
        mu = np.array(draws)
        post_var = 1 / (30 / 0.25 + 1 / 100)
        post_mean = post_var * float(xp.sum(y)) / 0.25
        ess = float(effective_sample_size(mu[None, :, None])[0])
        assert abs(mu.mean() - post_mean) < 4.5 * math.sqrt(post_var / ess)
        constrained = kernel.postprocess_fn((y,), {})(state.z)
        assert float(constrained["tau"]) > 0
        assert float(constrained["mu2"]) == pytest.approx(2 * float(constrained["mu"]))
    assert traced_by_sample[0] > 0 and traced_by_sample[1] == 0
    # Continuing a chain on other data needs its cached potential refreshed, as in NumPyro.
    other = (y + 1.0,)
    refreshed = kernel.refresh(state, other, {})
    expected = kernel.get_potential_fn(other, {})(state.z)
    assert float(refreshed.potential_energy) == pytest.approx(float(expected), rel=1e-6)


_COV = np.array([[1.0, 0.8, 0.1], [0.8, 2.0, 0.3], [0.1, 0.3, 0.5]])
_INIT = {"x": np.array([0.5, -0.3], dtype=np.float32), "y": np.float32(1.0)}
_CHAINS: dict[tuple[Any, ...], list[Any]] = {}


def _quartic_potential(z: Any) -> Any:
    import jax.numpy as jnp

    precision = jnp.asarray(np.linalg.inv(_COV))
    v = jnp.concatenate([z["x"], z["y"][None]])
    return 0.5 * v @ (precision @ v) + 0.1 * jnp.sum(v**4)


def our_chains(bk: Backend, seeds: tuple[int, ...], vectorized: bool) -> list[Any]:
    """Our dense NUTS, NumPyro's variant, on a quartic-perturbed 3-d Gaussian: the state
    of the first chain after each of 60 iterations (50 of warmup), cached per module."""
    import jax

    if (seeds, vectorized) not in _CHAINS:
        xp = bk.xp
        kernel = NUTS(
            potential_fn=_quartic_potential,
            dense_mass=True,
            robust_u_turn=False,
            dense_shrinkage=False,
        )
        states = [kernel.init(jax.random.PRNGKey(seed), 50, _INIT, (), {}) for seed in seeds]
        if vectorized:
            step = bk.jit(bk.vmap(kernel.sample, in_axes=(0, None, None)))
            state = bk.tree_map(lambda *xs: xp.stack(xs), *states)
        else:
            step = bk.jit(kernel.sample)
            state = states[0]
        history = []
        for _ in range(60):
            state = step(state, (), {})
            history.append(bk.tree_map(lambda x: x[0], state) if vectorized else state)
        _CHAINS[(seeds, vectorized)] = history
    return _CHAINS[(seeds, vectorized)]


def test_sample_vmaps_over_chains(jax_backend: Backend) -> None:
    # Chain 0 of a jitted, vmapped `sample` over two chains is that chain run alone,
    # through window ends (6, 44) and the end of warmup (49).
    alone = our_chains(jax_backend, (3,), False)
    together = our_chains(jax_backend, (3, 4), True)
    for i, (a, b) in enumerate(zip(alone, together, strict=True)):
        assert int(a.num_steps) == int(b.num_steps), i
        np.testing.assert_allclose(a.z["x"], b.z["x"], rtol=1e-4, atol=1e-5, err_msg=str(i))
    np.testing.assert_allclose(
        alone[-1].adapt_state.inverse_mass_matrix,
        together[-1].adapt_state.inverse_mass_matrix,
        rtol=1e-4,
    )
    # A stack of keys initialises a stack of chains (NumPyro's vectorized init).
    kernel = NUTS(potential_fn=_quartic_potential)
    keys = jax_backend.split(jax_backend.key(0), 3)
    init = {k: np.stack([v] * 3) for k, v in _INIT.items()}
    stacked = kernel.init(keys, 10, init, (), {})
    assert stacked.z["x"].shape == (3, 2) and stacked.i.shape == (3,)
    single = kernel.init(keys[1], 10, _INIT, (), {})
    np.testing.assert_allclose(stacked.energy[1], single.energy, rtol=1e-6)


@pytest.mark.reference
def test_kernel_follows_numpyros_for_60_iterations(jax_backend: Backend) -> None:
    # With Stan's extra checks and the dense shrinkage off, the same key gives NumPyro's
    # chain for these 60 iterations: the same tree sizes, and the same draws, step sizes and
    # mass matrix up to the compiler's rounding, which over longer runs tips a tree's size
    # (tests/reference/test_reference_nuts_parity.py measures how soon).
    numpyro_infer = pytest.importorskip("numpyro.infer")
    import jax

    ours = our_chains(jax_backend, (3,), False)
    kernel = numpyro_infer.NUTS(potential_fn=_quartic_potential, dense_mass=True)
    state = kernel.init(jax.random.PRNGKey(3), 50, _INIT, (), {})
    step = jax.jit(kernel.sample)
    for i, a in enumerate(ours):
        state = step(state, (), {})
        assert int(a.num_steps) == int(state.num_steps), i
        for site in _INIT:
            np.testing.assert_allclose(a.z[site], state.z[site], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(a.adapt_state.step_size, state.adapt_state.step_size, rtol=2e-4)
    np.testing.assert_allclose(
        ours[-1].adapt_state.inverse_mass_matrix, state.adapt_state.inverse_mass_matrix, rtol=2e-4
    )


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

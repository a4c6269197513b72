"""HMC with a fixed trajectory: correctness, its step-count rules, and NumPyro parity."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from test_nuts_sampling import assert_moments, gaussian, run_chains

from backends import Backend
from minippl.infer.hmc import HMC

COV = np.array([[1.0, 0.6], [0.6, 2.0]])


def test_hmc_samples_a_gaussian(backend: Backend) -> None:
    # Trajectory length 2 (not a multiple of the period, so the chain mixes); the number
    # of steps follows the adapted step size: ceil(2 / step_size).
    small = backend.name == "numpy"
    warmup, samples, chains = (200, 600, 1) if small else (300, 1000, 2)
    kernel = HMC(potential_fn=gaussian(backend.xp, COV), trajectory_length=2.0)
    final, trace = run_chains(backend, kernel, {"x": backend.xp.zeros(2)}, warmup, samples, chains)
    assert_moments(trace["z"]["x"][:, warmup:], np.zeros(2), COV)
    step_size = float(backend.to_numpy(final.adapt_state.step_size)[0])
    assert trace["num_steps"][0, -1] == math.ceil(2.0 / step_size)
    assert trace["accept_prob"][:, warmup - 50 : warmup].mean() == pytest.approx(0.8, abs=0.08)


def test_hmc_with_a_fixed_number_of_steps() -> None:
    import minippl
    from minippl import backend as selection

    previous = selection.current().name
    bk = minippl.set_backend("numpy")
    try:
        kernel = HMC(potential_fn=gaussian(bk.xp, COV), num_steps=4, trajectory_length=None)
        final, trace = run_chains(bk, kernel, {"x": bk.xp.zeros(2)}, 60, 20)
        assert (trace["num_steps"] == 4).all()
        assert float(final.adapt_state.step_size[0]) != 1.0  # adapted
        with pytest.warns(UserWarning, match="step size can't be adapted"):
            HMC(potential_fn=gaussian(bk.xp, COV), num_steps=4)
    finally:
        minippl.set_backend(previous)


@pytest.mark.reference
def test_hmc_matches_numpyro_draw_for_draw(jax_backend: Backend) -> None:
    numpyro_infer = pytest.importorskip("numpyro.infer")
    import jax

    xp = jax_backend.xp
    potential = gaussian(xp, COV)

    def quartic(z: Any) -> Any:
        return potential(z) + 0.05 * xp.sum(z["x"] ** 4)

    init = {"x": xp.asarray([0.3, -1.0])}
    ours = HMC(potential_fn=quartic, trajectory_length=1.5)
    theirs = numpyro_infer.HMC(potential_fn=quartic, trajectory_length=1.5)
    key = jax.random.PRNGKey(0)
    a, b = ours.init(key, 40, init, (), {}), theirs.init(key, 40, init, (), {})
    step_a, step_b = jax.jit(ours.sample), jax.jit(theirs.sample)
    for i in range(50):
        a, b = step_a(a, (), {}), step_b(b, (), {})
        assert int(a.num_steps) == int(b.num_steps), i
        np.testing.assert_allclose(a.z["x"], b.z["x"], rtol=1e-4, atol=1e-5, err_msg=str(i))
    np.testing.assert_allclose(
        a.adapt_state.inverse_mass_matrix, b.adapt_state.inverse_mass_matrix, rtol=1e-4
    )


def test_cache_identity_keeps_settings_and_leaves_out_the_model(backend: Backend) -> None:
    from minippl import primitives
    from minippl.distributions import Normal
    from minippl.infer.hmc import NUTS

    def model() -> None:
        primitives.sample("x", Normal(0.0, 1.0))

    kernel = NUTS(model, step_size=0.5, max_tree_depth=(4, 6))
    kernel.init(backend.key(0), 10)
    identity = kernel.cache_identity()
    assert identity["_step_size"] == 0.5
    assert identity["_tree_depths"] == (4, 6)
    assert identity["_num_warmup"] == 10
    for name in ("_model", "_potential_fn", "_potential_fn_gen", "_postprocess_fn", "_setups"):
        assert name not in identity
    assert NUTS(model, step_size=0.25).cache_identity()["_step_size"] == 0.25

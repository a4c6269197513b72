"""Small pieces NumPyro code expects: plate_stack, validation_enabled, init_to_mean."""

from __future__ import annotations

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import init_to_mean
from minippl.infer.util import initialize_model


def test_plate_stack_names_dims_and_shape(backend: Backend) -> None:
    def model() -> None:
        with minippl.plate_stack("p", (2, 3)):
            minippl.sample("x", dist.Normal(0.0, 1.0))

    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
    assert tuple(np.shape(tr["x"].value)) == (2, 3)
    frames = {f.name: (f.dim, f.size) for f in tr["x"].cond_indep_stack}
    assert frames == {"p_0": (-1, 3), "p_1": (-2, 2)}


def test_validation_enabled_is_a_query_and_a_context_manager(backend: Backend) -> None:
    before = bool(minippl.validation_enabled())
    with minippl.validation_enabled():
        assert minippl.validation_enabled()
        with pytest.raises(ValueError, match="scale"):
            dist.Normal(0.0, -1.0)
        with minippl.validation_enabled(False):
            assert not minippl.validation_enabled()
            dist.Normal(0.0, -1.0)  # no check
        assert minippl.validation_enabled()
    assert bool(minippl.validation_enabled()) == before
    minippl.enable_validation(True)
    try:
        assert minippl.validation_enabled()
    finally:
        minippl.enable_validation(before)


def test_init_to_mean_starts_at_prior_means(backend: Backend) -> None:
    def model() -> None:
        minippl.sample("a", dist.Normal(3.0, 1.0))
        minippl.sample("b", dist.Gamma(2.0, 4.0))
        minippl.sample("c", dist.Cauchy(1.0, 1.0))  # no mean: the median of draws

    info = initialize_model(backend.key(0), model, init_strategy=init_to_mean)
    z = info.param_info.z
    np.testing.assert_allclose(float(z["a"]), 3.0, rtol=1e-6)
    np.testing.assert_allclose(float(np.exp(z["b"])), 0.5, rtol=1e-5)
    assert np.isfinite(float(z["c"]))


def _two_site_model() -> None:
    minippl.sample("a", dist.Normal(0.0, 1.0).expand((2,)))
    minippl.sample("b", dist.Gamma(2.0, 1.0))


def test_initialize_model_gives_one_starting_point_per_key(backend: Backend) -> None:
    keys = backend.split(backend.key(3), 4)
    info = initialize_model(keys, _two_site_model)
    shapes = backend.tree_map(np.shape, info.param_info)
    assert shapes == (({"a": (4, 2), "b": (4,)}), (4,), {"a": (4, 2), "b": (4,)})
    # Each row is what that key alone gives, and the trace is the first key's.
    for i in range(4):
        alone = initialize_model(keys[i], _two_site_model)
        np.testing.assert_allclose(info.param_info.z["a"][i], alone.param_info.z["a"])
        np.testing.assert_allclose(
            info.param_info.potential_energy[i], alone.param_info.potential_energy
        )
    first = initialize_model(keys[0], _two_site_model).model_trace
    np.testing.assert_array_equal(info.model_trace["b"].value, first["b"].value)
    assert len({float(b) for b in info.param_info.z["b"]}) == 4


def test_initialize_model_with_keys_names_the_site_at_fault(backend: Backend) -> None:
    from minippl.infer.util import InitError

    def model() -> None:
        minippl.sample("a", dist.Normal(0.0, 1.0))
        minippl.sample("y", dist.Exponential(1.0), obs=-1.0)

    with pytest.raises(InitError, match=r"\['y'\]"):
        initialize_model(backend.split(backend.key(0), 2), model)

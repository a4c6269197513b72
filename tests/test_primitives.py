"""Every primitive: sample, param, deterministic, plate, factor, get_mask, prng_key, subsample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.messages import CondIndepStackFrame as Frame


def traced(model: Any, *args: Any, seed: int = 0) -> Any:
    return handlers.trace(handlers.seed(model, rng_seed=seed)).get_trace(*args)


# -- sample ---------------------------------------------------------------------------------


def test_sample_without_handlers(backend: Backend) -> None:
    assert numpyro.sample("x", dist.Normal(0.0, 1.0), obs=1.25) == 1.25
    key = backend.key(3)
    a = numpyro.sample("x", dist.Normal(0.0, 1.0), rng_key=key, sample_shape=(2,))
    assert np.shape(a) == (2,)
    np.testing.assert_array_equal(a, dist.Normal(0.0, 1.0).sample(key, (2,)))


def test_sample_message_fields(backend: Backend) -> None:
    hint = {"enumerate": "parallel"}

    def model() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0), infer=hint)
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=0.5)

    tr = traced(model)
    x, y = tr["x"], tr["y"]
    assert (x.type, x.name, x.args, x.scale, x.is_observed) == ("sample", "x", (), None, False)
    assert x.kwargs["sample_shape"] == () and backend.is_key(x.kwargs["rng_key"])
    assert x.infer == hint and x.intermediates == [] and x.cond_indep_stack == []
    assert isinstance(x.fn, dist.Normal)
    assert y.is_observed and y.value == 0.5 and y.kwargs["rng_key"] is None  # no key spent


def test_sample_shape(backend: Backend) -> None:
    tr = traced(
        lambda: numpyro.sample("x", dist.Normal(backend.xp.zeros(3), 1.0), sample_shape=(4, 2))
    )
    assert np.shape(tr["x"].value) == (4, 2, 3)
    assert tr["x"].kwargs["sample_shape"] == (4, 2)


def test_sample_shape_inside_a_plate_is_folded_into_the_batch(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("p", 3):
            numpyro.sample("x", dist.Normal(0.0, 1.0), sample_shape=(2, 1))

    x = traced(model)["x"]
    assert np.shape(x.value) == (2, 3)
    assert x.kwargs["sample_shape"] == () and x.fn.batch_shape == (2, 3)


def test_explicit_rng_key_costs_no_key_from_seed(backend: Backend) -> None:
    key = backend.key(7)

    def model() -> tuple[Any, Any]:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0), rng_key=key)
        b = numpyro.sample("b", dist.Normal(0.0, 1.0))
        return a, b

    a, b = handlers.seed(model, rng_seed=0)()
    assert float(a) == float(dist.Normal(0.0, 1.0).sample(key))
    first = handlers.seed(one_draw, rng_seed=0)()
    assert float(b) == float(first)


def one_draw() -> Any:
    return numpyro.sample("z", dist.Normal(0.0, 1.0))


def test_obs_mask_splits_the_site(backend: Backend) -> None:
    xp = backend.xp
    data = xp.asarray([1.0, 2.0, 3.0])
    observed = xp.asarray([True, False, True])

    def model() -> Any:
        with numpyro.plate("p", 3):
            return numpyro.sample("y", dist.Normal(xp.zeros(3), 1.0), obs=data, obs_mask=observed)

    tr = traced(model)
    assert list(tr) == ["p", "y_observed", "y_unobserved", "y"]
    assert tr["y_observed"].is_observed and not tr["y_unobserved"].is_observed
    assert tr["y"].type == "deterministic"
    value = np.asarray(tr["y"].value)
    assert value[0] == 1.0 and value[2] == 3.0 and value[1] == tr["y_unobserved"].value[1]
    lp = tr["y_observed"].fn.log_prob(tr["y_observed"].value)
    assert float(lp[1]) == 0.0


def test_mask_widens_a_scalar_distribution_inside_a_plate(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("p", 3), handlers.mask(mask=backend.xp.asarray([True, False, True])):
            numpyro.sample("y", dist.Normal(0.0, 1.0))

    assert np.shape(traced(model)["y"].value) == (3,)


# -- param ----------------------------------------------------------------------------------


def test_param_without_handlers_returns_init(backend: Backend) -> None:
    assert numpyro.param("p", 2.0) == 2.0


def test_param_message_keeps_constraint_kwargs(backend: Backend) -> None:
    positive = dist.constraints.positive

    def model() -> Any:
        return numpyro.param("s", 1.0, constraint=positive, event_dim=0)

    tr = traced(model)
    s = tr["s"]
    assert (s.type, s.value, s.args, s.scale) == ("param", 1.0, (1.0,), None)
    assert s.kwargs == {"constraint": positive, "event_dim": 0}
    assert s.get("is_observed", "N/A") == "N/A" and "infer" not in s


def test_param_with_a_callable_init_draws_under_seed(backend: Backend) -> None:
    def model() -> Any:
        return numpyro.param("w", lambda key: dist.Normal(0.0, 1.0).sample(key, (2,)))

    a, b = handlers.seed(model, rng_seed=0)(), handlers.seed(model, rng_seed=0)()
    assert np.shape(a) == (2,)
    np.testing.assert_array_equal(a, b)
    # The init function's key comes from seed through a prng_key message.
    key = backend.split(backend.key(0))[1]
    np.testing.assert_array_equal(a, dist.Normal(0.0, 1.0).sample(key, (2,)))


def test_repeated_param_overwrites_in_trace(backend: Backend) -> None:
    def model() -> None:
        numpyro.param("p", 1.0)
        numpyro.param("p", 2.0)

    assert traced(model)["p"].value == 2.0


def test_param_with_event_dim_is_subsampled_by_plate(backend: Backend) -> None:
    xp = backend.xp

    def model() -> Any:
        with numpyro.plate("p", 5, subsample_size=2) as idx:
            w = numpyro.param("w", xp.arange(10.0).reshape(5, 2), event_dim=1)
            return idx, w

    idx, w = handlers.seed(model, rng_seed=0)()
    np.testing.assert_array_equal(w, np.arange(10.0).reshape(5, 2)[np.asarray(idx)])


# -- deterministic --------------------------------------------------------------------------


def test_deterministic(backend: Backend) -> None:
    assert numpyro.deterministic("d", 4.0) == 4.0

    def model() -> None:
        with numpyro.plate("p", 2):
            numpyro.deterministic("d", backend.xp.ones(2))

    d = traced(model)["d"]
    assert d.type == "deterministic" and d.cond_indep_stack == [Frame("p", -1, 2)]
    assert list(d.keys()) == ["type", "name", "value", "cond_indep_stack"]


# -- plate ----------------------------------------------------------------------------------


def test_plate_returns_indices_and_records_a_plate_site(backend: Backend) -> None:
    def model() -> Any:
        with numpyro.plate("p", 4) as idx:
            return idx

    np.testing.assert_array_equal(handlers.seed(model, 0)(), np.arange(4))
    with numpyro.plate("p", 3) as idx:  # also without handlers
        np.testing.assert_array_equal(idx, np.arange(3))
    site = traced(model)["p"]
    assert site.type == "plate" and site.args == (4, None) and site.scale == 1.0


def test_nested_plates_get_automatic_dims(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("outer", 3), numpyro.plate("inner", 4):
            numpyro.sample("x", dist.Normal(0.0, 1.0))

    tr = traced(model)
    assert tr["x"].cond_indep_stack == [Frame("inner", -2, 4), Frame("outer", -1, 3)]
    assert np.shape(tr["x"].value) == (4, 3)
    assert tr["inner"].cond_indep_stack == [Frame("outer", -1, 3)]


def test_plate_dim_argument(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("p", 3, dim=-2):
            numpyro.sample("x", dist.Normal(0.0, 1.0))
            with numpyro.plate("q", 2):
                numpyro.sample("y", dist.Normal(0.0, 1.0))

    tr = traced(model)
    assert np.shape(tr["x"].value) == (3, 1)
    assert tr["y"].cond_indep_stack == [Frame("q", -1, 2), Frame("p", -2, 3)]
    assert np.shape(tr["y"].value) == (3, 2)


def test_plate_broadcasts_batch_shapes(backend: Backend) -> None:
    xp = backend.xp

    def model() -> None:
        with numpyro.plate("outer", 3), numpyro.plate("inner", 4):
            numpyro.sample("a", dist.Normal(xp.zeros((4, 1)), 1.0))
            numpyro.sample("b", dist.Normal(xp.zeros(3), 1.0))
            numpyro.sample("c", dist.Normal(xp.zeros((2, 4, 3)), 1.0))
            numpyro.sample("d", dist.Normal(0.0, 1.0).expand((3,)).to_event(1))

    tr = traced(model)
    assert np.shape(tr["a"].value) == (4, 3) and np.shape(tr["b"].value) == (4, 3)
    assert np.shape(tr["c"].value) == (2, 4, 3)
    assert tr["d"].fn.batch_shape == (4, 3) and np.shape(tr["d"].value) == (4, 3, 3)


def test_subsampled_plate_scale_and_subsample(backend: Backend) -> None:
    xp = backend.xp
    data = xp.arange(10.0) * 10

    def model() -> Any:
        with numpyro.plate("data", 10, subsample_size=4) as idx:
            batch = numpyro.subsample(data, event_dim=0)
            numpyro.sample("x", dist.Normal(0.0, 1.0))
            numpyro.deterministic("d", batch)
            return idx, batch

    tr = handlers.trace(handlers.seed(model, rng_seed=1))
    idx, batch = tr()
    idx = np.asarray(idx)
    assert idx.shape == (4,) and len(set(idx.tolist())) == 4 and idx.min() >= 0 and idx.max() < 10
    np.testing.assert_array_equal(batch, np.asarray(data)[idx])
    assert tr.trace["x"].scale == 10 / 4
    assert tr.trace["x"].cond_indep_stack == [Frame("data", -1, 4)]
    assert tr.trace["d"].get("scale", "N/A") == "N/A"  # deterministic sites are not scaled
    np.testing.assert_array_equal(tr.trace["data"].value, idx)
    assert np.shape(tr.trace["x"].value) == (4,)


def test_subsample_scale_multiplies_and_nests(backend: Backend) -> None:
    def model() -> None:
        with handlers.scale(scale=3.0), numpyro.plate("a", 6, subsample_size=3):
            with numpyro.plate("b", 4, subsample_size=2):
                numpyro.sample("x", dist.Normal(0.0, 1.0))

    tr = traced(model)
    assert tr["x"].scale == 3.0 * (6 / 3) * (4 / 2)
    assert tr["b"].scale == 3.0 * (6 / 3)  # the inner plate message: scale and outer plate
    assert np.shape(tr["x"].value) == (2, 3)


def test_subsample_without_a_plate_and_without_handlers(backend: Backend) -> None:
    data = backend.xp.arange(5.0)
    assert numpyro.subsample(data, event_dim=0) is data
    with handlers.trace() as tr:
        np.testing.assert_array_equal(numpyro.subsample(data, event_dim=0), data)
    assert len(tr) == 0  # unnamed messages are not recorded


def test_subsample_full_size_plate_is_a_no_op(backend: Backend) -> None:
    data = backend.xp.arange(5.0)
    with handlers.seed(rng_seed=0), numpyro.plate("p", 5):
        np.testing.assert_array_equal(numpyro.subsample(data, event_dim=0), data)


# -- factor ---------------------------------------------------------------------------------


def test_factor_is_an_observed_unit_site(backend: Backend) -> None:
    xp = backend.xp

    def model() -> None:
        numpyro.factor("f", -1.5)
        with numpyro.plate("p", 3):
            numpyro.factor("g", xp.asarray([1.0, 2.0, 3.0]))

    tr = traced(model)
    f, g = tr["f"], tr["g"]
    assert f.type == "sample" and f.is_observed and f.infer == {"is_auxiliary": True}
    assert isinstance(f.fn, dist.Unit) and np.shape(f.value) == (0,)
    assert float(f.fn.log_prob(f.value)) == -1.5
    np.testing.assert_array_equal(g.fn.log_prob(g.value), [1.0, 2.0, 3.0])
    assert f.kwargs["rng_key"] is None  # observed: no key spent


# -- get_mask and prng_key ------------------------------------------------------------------


def test_get_mask(backend: Backend) -> None:
    xp = backend.xp
    assert numpyro.get_mask() is None
    with handlers.trace():
        assert numpyro.get_mask() is None
    m1, m2 = xp.asarray([True, True, False]), xp.asarray([True, False, True])
    with handlers.mask(mask=m1):
        np.testing.assert_array_equal(numpyro.get_mask(), m1)
        with handlers.mask(mask=m2):
            np.testing.assert_array_equal(numpyro.get_mask(), [True, False, False])
    with handlers.mask(mask=False):
        assert numpyro.get_mask() is False


def test_prng_key(backend: Backend) -> None:
    with pytest.warns(UserWarning, match="outside a seed"):
        assert numpyro.prng_key() is None
    with handlers.trace():
        assert numpyro.prng_key() is None  # a stack, but no seed
    with handlers.seed(rng_seed=0):
        k1, k2 = numpyro.prng_key(), numpyro.prng_key()
    expected = backend.split(backend.key(0))
    np.testing.assert_array_equal(backend.to_numpy(_raw(backend, k1)), _raw(backend, expected[1]))
    assert not np.array_equal(_raw(backend, k1), _raw(backend, k2))
    with handlers.trace() as tr, handlers.seed(rng_seed=0):
        numpyro.prng_key()
    assert len(tr) == 0


def _raw(backend: Backend, key: Any) -> Any:
    if backend.name == "jax":
        import jax

        return np.asarray(jax.random.key_data(key))
    return np.asarray(key)


def test_substituted_indices_of_another_size_warn(backend: Backend) -> None:
    def model() -> Any:
        with numpyro.plate("p", 10, subsample_size=3) as idx:
            return idx

    substituted = handlers.substitute(model, data={"p": backend.xp.asarray([1, 2])})
    with pytest.warns(UserWarning, match="plate 'p': subsample_size=3 but a handler supplied 2"):
        idx = handlers.seed(substituted, rng_seed=0)()
    np.testing.assert_array_equal(idx, [1, 2])

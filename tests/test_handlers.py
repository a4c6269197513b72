"""Every handler's documented behaviour, and the outputs the guide prints, on both backends.

The guide is *Effect Handlers in NumPyro: A Practical Guide* (the tutorial rebuilds it);
cell numbers like [8] refer to it. Exact NumPyro numbers (``-2.4425``...) are checked on
JAX, where draws are NumPyro's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.messages import CondIndepStackFrame as Frame
from minippl.messages import Message


def linear_model(x: Any) -> None:
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", len(x)):
        numpyro.sample("obs", dist.Normal(mu, sigma))


def causal_chain(x: Any) -> Any:
    z = numpyro.sample("z", dist.Normal(x, 1.0))
    return numpyro.sample("y", dist.Normal(z, 0.5))


def simple_obs_model() -> None:
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    numpyro.sample("obs", dist.Normal(z, 1.0), obs=0.5)


def three_draws() -> tuple[Any, Any, Any]:
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0), obs=0.25)
    c = numpyro.sample("c", dist.Normal(0.0, 1.0))
    return a, b, c


def get_trace(model: Any, *args: Any, seed: int = 0) -> Any:
    return handlers.trace(handlers.seed(model, rng_seed=seed)).get_trace(*args)


def values(tr: Any) -> dict[str, Any]:
    return {name: np.asarray(site.value) for name, site in tr.items() if site.type != "plate"}


@pytest.fixture
def x_data(backend: Backend) -> Any:
    return backend.xp.linspace(-2.0, 2.0, 10)


# -- seed -------------------------------------------------------------------------------------


def test_seed_guide_value(jax_backend: Backend) -> None:  # [4], [5]
    with handlers.seed(rng_seed=0):
        val = numpyro.sample("x", dist.Normal(0.0, 1.0))
    assert f"{val:.4f}" == "-2.4425"
    val2 = handlers.seed(lambda: numpyro.sample("x", dist.Normal(0.0, 1.0)), rng_seed=0)()
    assert float(val) == float(val2)


def test_seed_key_contract(backend: Backend) -> None:
    # The site gets split(key)[1]; the handler keeps split(key)[0] for the next site.
    k0 = backend.key(0)
    k1 = backend.split(k0)[0]
    a, _, c = handlers.seed(three_draws, rng_seed=0)()
    assert float(a) == float(dist.Normal(0.0, 1.0).sample(backend.split(k0)[1]))
    assert float(c) == float(dist.Normal(0.0, 1.0).sample(backend.split(k1)[1]))  # b cost none


def test_seeded_model_repeats_each_call(backend: Backend) -> None:
    seeded = handlers.seed(three_draws, rng_seed=3)
    assert [float(v) for v in seeded()] == [float(v) for v in seeded()]
    assert float(seeded()[0]) != float(handlers.seed(three_draws, rng_seed=4)()[0])


def test_seed_as_context_manager_keeps_advancing(backend: Backend) -> None:
    s = handlers.seed(rng_seed=0)
    with s:
        a = numpyro.sample("x", dist.Normal(0.0, 1.0))
        b = numpyro.sample("x2", dist.Normal(0.0, 1.0))
    with s:  # as in NumPyro, the handler's key carries on from the first block
        c = numpyro.sample("x", dist.Normal(0.0, 1.0))
    with handlers.seed(rng_seed=0):
        expected = [float(numpyro.sample(f"x{i}", dist.Normal(0.0, 1.0))) for i in range(3)]
    assert [float(a), float(b), float(c)] == expected


def test_seed_accepts_int_and_key(backend: Backend) -> None:
    key = backend.key(5)
    a = handlers.seed(three_draws, rng_seed=5)()[0]
    b = handlers.seed(three_draws, rng_seed=key)()[0]
    assert float(a) == float(b)


def test_innermost_seed_wins(backend: Backend) -> None:
    inner = handlers.seed(three_draws, rng_seed=1)()
    nested = handlers.seed(handlers.seed(three_draws, rng_seed=1), rng_seed=2)()
    assert float(inner[0]) == float(nested[0])


def test_seed_skips_sites_with_a_value(backend: Backend) -> None:
    # condition inside seed sets a's value, so a costs no key and c takes a's key.
    seeded = handlers.seed(handlers.condition(three_draws, data={"a": 1.0}), rng_seed=0)
    _, _, c = seeded()
    a_plain = handlers.seed(three_draws, rng_seed=0)()[0]
    assert float(c) == float(a_plain)


def test_seed_hide_types(backend: Backend) -> None:
    def model() -> Any:
        with handlers.seed(rng_seed=1, hide_types=["sample"]):
            return numpyro.sample("x", dist.Normal(0.0, 1.0))

    # The inner seed ignores sample sites, so the outer seed draws x.
    assert float(handlers.seed(model, rng_seed=0)()) == float(handlers.seed(one, rng_seed=0)())


def one() -> Any:
    return numpyro.sample("x", dist.Normal(0.0, 1.0))


# -- trace ------------------------------------------------------------------------------------


def test_trace_guide_table(backend: Backend, x_data: Any) -> None:  # [6]
    tr = get_trace(linear_model, x_data)
    rows = [
        (n, s["type"], str(s.get("is_observed", "N/A")), np.shape(s["value"]))
        for n, s in tr.items()
    ]
    assert rows == [
        ("intercept", "sample", "False", ()),
        ("slope", "sample", "False", ()),
        ("sigma", "sample", "False", ()),
        ("mu", "deterministic", "N/A", (10,)),
        ("data", "plate", "N/A", (10,)),
        ("obs", "sample", "False", (10,)),
    ]


def test_trace_slope_message(jax_backend: Backend) -> None:  # [7]
    tr = get_trace(linear_model, jax_backend.xp.linspace(-2.0, 2.0, 50))
    slope = tr["slope"]
    assert f"{slope['value']:.4f}" == "-6.2874"
    import jax

    assert jax.random.key_data(slope["kwargs"]["rng_key"]).tolist() == [1353695780, 2116000888]


def test_trace_context_manager_returns_a_fresh_dict(backend: Backend) -> None:
    tracer = handlers.trace()
    with tracer as first, handlers.seed(rng_seed=0):
        one()
    with tracer as second:
        pass
    assert list(first) == ["x"] and len(second) == 0 and tracer.trace is second


# -- condition and substitute -------------------------------------------------------------


def test_condition_vs_substitute(backend: Backend, x_data: Any) -> None:  # [8], [9]
    cond = get_trace(handlers.condition(linear_model, data={"slope": 3.0}), x_data)
    subs = get_trace(handlers.substitute(linear_model, data={"slope": 3.0}), x_data)
    assert (cond["slope"]["value"], cond["slope"]["is_observed"]) == (3.0, True)
    assert (subs["slope"]["value"], subs["slope"]["is_observed"]) == (3.0, False)


def test_condition_overrides_obs_and_takes_condition_fn(backend: Backend) -> None:
    tr = get_trace(handlers.condition(simple_obs_model, data={"obs": 2.0}))
    assert tr["obs"].value == 2.0 and tr["obs"].is_observed
    tr = get_trace(
        handlers.condition(simple_obs_model, condition_fn=lambda m: 7.0 if m.name == "z" else None)
    )
    assert tr["z"].value == 7.0 and tr["z"].is_observed and tr["obs"].value == 0.5


def test_condition_acts_on_sample_sites_only(backend: Backend) -> None:
    def model() -> Any:
        return numpyro.param("p", 1.0)

    with pytest.warns(UserWarning, match="'p'"):
        assert handlers.condition(model, data={"p": 5.0})() == 1.0


def test_substitute_sites_of_every_kind(backend: Backend) -> None:
    xp = backend.xp

    def model() -> Any:
        p = numpyro.param("p", 1.0)
        d = numpyro.deterministic("d", 2.0)
        o = numpyro.sample("o", dist.Normal(0.0, 1.0), obs=0.0)
        with numpyro.plate("batch", 10, subsample_size=3) as idx:
            pass
        return p, d, o, idx

    data = {"p": 10.0, "d": 20.0, "o": 30.0, "batch": xp.asarray([1, 4, 7])}
    tracer = handlers.trace(handlers.seed(handlers.substitute(model, data=data), rng_seed=0))
    p, d, o, idx = tracer()
    assert (p, d, o) == (10.0, 20.0, 30.0)
    np.testing.assert_array_equal(idx, [1, 4, 7])
    assert tracer.trace["o"].is_observed  # substitute leaves is_observed alone


def test_substitute_fn(backend: Backend) -> None:
    tr = get_trace(
        handlers.substitute(
            simple_obs_model, substitute_fn=lambda m: 1.5 if m.name == "z" else None
        )
    )
    assert tr["z"].value == 1.5 and not tr["z"].is_observed


def test_composing_order_table(backend: Backend, x_data: Any) -> None:  # [35], [36]
    seeded = handlers.seed(linear_model, rng_seed=0)
    t1 = handlers.trace(
        handlers.condition(handlers.substitute(seeded, data={"slope": 10.0}), data={"slope": 3.0})
    ).get_trace(x_data)
    t2 = handlers.trace(
        handlers.substitute(handlers.condition(seeded, data={"slope": 3.0}), data={"slope": 10.0})
    ).get_trace(x_data)
    assert (t1["slope"]["value"], t1["slope"]["is_observed"]) == (3.0, True)
    assert (t2["slope"]["value"], t2["slope"]["is_observed"]) == (10.0, True)
    with handlers.trace() as tr, handlers.condition(data={"slope": 2.5}):
        handlers.seed(linear_model, rng_seed=0)(x_data)
    assert tr["slope"]["value"] == 2.5


def test_condition_and_seed_order_changes_keys(backend: Backend) -> None:
    cond_outside = handlers.condition(handlers.seed(three_draws, rng_seed=0), data={"a": 1.0})()
    seed_outside = handlers.seed(handlers.condition(three_draws, data={"a": 1.0}), rng_seed=0)()
    plain = handlers.seed(three_draws, rng_seed=0)()
    assert float(cond_outside[2]) == float(plain[2])  # a still spent its key
    assert float(seed_outside[2]) == float(plain[0])  # a spent none; c got a's key


# -- block ------------------------------------------------------------------------------------


def test_block_modes(backend: Backend, x_data: Any) -> None:  # [10], [11], [12]
    hidden = get_trace(handlers.block(linear_model, hide=["sigma"]), x_data)
    assert list(hidden) == ["intercept", "slope", "mu", "data", "obs"]
    exposed = get_trace(handlers.block(linear_model, expose=["slope", "intercept"]), x_data)
    assert list(exposed) == ["intercept", "slope"]
    no_latents = get_trace(
        handlers.block(
            linear_model, hide_fn=lambda site: site["type"] == "sample" and not site["is_observed"]
        ),
        x_data,
    )
    assert list(no_latents) == ["mu", "data"]
    only_samples = get_trace(handlers.block(linear_model, expose_types=["sample"]), x_data)
    assert list(only_samples) == ["intercept", "slope", "sigma", "obs"]
    assert len(get_trace(handlers.block(linear_model), x_data)) == 0


def test_blocked_sites_still_run_and_spend_keys_the_same(backend: Backend) -> None:
    inside = handlers.trace(handlers.seed(handlers.block(three_draws, hide=["a"]), rng_seed=0))
    outside = handlers.trace(handlers.block(handlers.seed(three_draws, rng_seed=0), hide=["a"]))
    a_in, _, c_in = inside()
    a_out, _, c_out = outside()
    assert list(inside.trace) == list(outside.trace) == ["b", "c"]
    assert float(a_in) == float(a_out) and float(c_in) == float(c_out)


def test_block_never_hides_prng_key(backend: Backend) -> None:
    with handlers.seed(rng_seed=0), handlers.block():
        assert numpyro.prng_key() is not None


# -- uncondition ------------------------------------------------------------------------------


def test_uncondition_guide(backend: Backend, x_data: Any) -> None:  # [13], [14]
    y_data = 1.0 + 2.0 * x_data
    conditioned = handlers.condition(linear_model, data={"obs": y_data})
    obs_trace = get_trace(conditioned, x_data)
    assert obs_trace["obs"]["is_observed"]
    np.testing.assert_array_equal(obs_trace["obs"]["value"], y_data)
    uncond = handlers.trace(handlers.uncondition(handlers.seed(conditioned, rng_seed=0))).get_trace(
        x_data
    )
    site = uncond["obs"]
    assert site["is_observed"] is False and site["infer"]["was_observed"] is True
    np.testing.assert_array_equal(site["infer"]["obs"], y_data)
    assert not np.allclose(site["value"], y_data)


def test_uncondition_guide_numbers(jax_backend: Backend) -> None:  # [2], [13], [14] exactly
    import jax

    _, subkey = jax.random.split(jax.random.key(42))
    x_data = jax_backend.xp.linspace(-2, 2, 50)
    y_data = 1.0 + 2.0 * x_data + 0.5 * jax.random.normal(subkey, shape=(50,))
    conditioned = handlers.condition(linear_model, data={"obs": y_data})
    obs = get_trace(conditioned, x_data)["obs"]["value"]
    assert np.array2string(np.asarray(obs[:3])) == "[-2.697118  -2.4372127 -3.127933 ]"
    uncond = handlers.trace(handlers.uncondition(handlers.seed(conditioned, rng_seed=0)))
    value = uncond.get_trace(x_data)["obs"]["value"]
    assert np.array2string(np.asarray(value[:3])) == "[-15.044792 -12.289793 -10.538498]"


def test_uncondition_commutes_with_seed(backend: Backend) -> None:
    a = values(
        handlers.trace(handlers.seed(handlers.uncondition(three_draws), rng_seed=0)).get_trace()
    )
    b = values(
        handlers.trace(handlers.uncondition(handlers.seed(three_draws, rng_seed=0))).get_trace()
    )
    assert a.keys() == b.keys() == {"a", "b", "c"}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert float(a["b"]) != 0.25


def test_uncondition_keeps_the_users_infer_dict(backend: Backend) -> None:
    hint: dict[str, Any] = {"note": 1}

    def model() -> None:
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=1.0, infer=hint)

    tr = get_trace(handlers.uncondition(model))
    assert tr["y"].infer == {"note": 1, "was_observed": True, "obs": 1.0}
    assert hint == {"note": 1}


# -- lift -------------------------------------------------------------------------------------


def model_with_param(x: Any) -> None:
    s = numpyro.param("s", 1.0, constraint=dist.constraints.positive)
    loc = numpyro.sample("loc", dist.Normal(0.0, s))
    numpyro.sample("obs", dist.Normal(loc, 1.0), obs=x)


def test_lift_guide(backend: Backend) -> None:  # [15]
    ones = backend.xp.ones(5)
    assert get_trace(model_with_param, ones)["s"]["type"] == "param"
    lifted = get_trace(handlers.lift(model_with_param, prior={"s": dist.Exponential(1.0)}), ones)
    site = lifted["s"]
    assert (
        site.type == "sample"
        and site.is_observed is False
        and isinstance(site.fn, dist.Exponential)
    )
    assert site.args == () and set(site.kwargs) == {"rng_key", "sample_shape"} and site.value > 0
    if backend.name == "jax":
        assert f"{site['value']:.4f}" == "0.0073"


def test_lift_one_prior_for_all_and_repeated_params(backend: Backend) -> None:
    def model() -> tuple[Any, Any, Any]:
        return numpyro.param("a", 1.0), numpyro.param("a", 1.0), numpyro.param("b", 2.0)

    with handlers.trace() as tr, handlers.seed(rng_seed=0):
        a1, a2, b = handlers.lift(model, prior=dist.Normal(0.0, 1.0))()
    assert float(a1) == float(a2) and b != 2.0
    assert tr["a"].type == "sample" and not tr["a"].is_observed  # the repeat is stopped
    assert handlers.lift(model, prior={"c": dist.Normal(0.0, 1.0)})() == (1.0, 1.0, 2.0)


# -- replay -----------------------------------------------------------------------------------


def test_replay_guide(backend: Backend, x_data: Any) -> None:  # [17]
    original = get_trace(linear_model, x_data)
    replayed = handlers.trace(
        handlers.replay(handlers.seed(linear_model, rng_seed=99), trace=original)
    ).get_trace(x_data)
    for name in ("intercept", "slope", "sigma", "obs"):
        np.testing.assert_array_equal(replayed[name]["value"], original[name]["value"])
    if backend.name == "jax":
        assert f"{replayed['slope']['value']:.4f}" == "-6.2874"


def test_replay_partial_trace_keeps_observed_and_copies_infer(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("a", dist.Normal(0.0, 1.0), infer={"from": "model"})
        numpyro.sample("b", dist.Normal(0.0, 1.0), obs=0.5)
        numpyro.sample("c", dist.Normal(0.0, 1.0))

    guide_tr = get_trace(
        handlers.infer_config(model, config_fn=lambda m: {"from": "guide"}), seed=1
    )
    partial = {"a": guide_tr["a"], "b": guide_tr["b"]}
    fresh = get_trace(model, seed=2)
    tr = handlers.trace(
        handlers.replay(handlers.seed(model, rng_seed=2), trace=partial)
    ).get_trace()
    assert tr["a"].value == guide_tr["a"].value and tr["a"].infer == {"from": "guide"}
    assert tr["b"].value == 0.5 and tr["b"].is_observed
    assert tr["c"].value == fresh["c"].value  # not in the partial trace: drawn as usual


def test_replay_subsample_indices(backend: Backend) -> None:
    def model() -> Any:
        with numpyro.plate("p", 20, subsample_size=5) as idx:
            return idx

    tr = get_trace(model, seed=1)
    again = handlers.replay(handlers.seed(model, rng_seed=2), trace=tr)()
    np.testing.assert_array_equal(again, tr["p"].value)


# -- scope ------------------------------------------------------------------------------------


def component() -> Any:
    return numpyro.sample("z", dist.Normal(0.0, 1.0))


def test_scope_guide(backend: Backend) -> None:  # [16]
    def composed_model() -> None:
        with handlers.scope(prefix="first", divider="::"):
            z1 = component()
        with handlers.scope(prefix="second", divider="/"):
            z2 = component()
        numpyro.deterministic("diff", z1 - z2)

    assert list(get_trace(composed_model)) == ["first::z", "second/z", "diff"]
    assert list(get_trace(handlers.scope(component, prefix="group", divider="."))) == ["group.z"]


def test_nested_scopes_and_plate_frames(backend: Backend) -> None:
    def inner() -> None:
        with numpyro.plate("p", 2):
            numpyro.sample("x", dist.Normal(0.0, 1.0))

    def outer() -> None:
        with numpyro.plate("q", 3, dim=-2), handlers.scope(prefix="a"):
            inner()

    tr = get_trace(handlers.scope(outer, prefix="b"))
    assert list(tr) == ["b/q", "b/a/p", "b/a/x"]
    # q is outside scope "a" but inside scope "b": each scope renames the frames added inside it.
    assert tr["b/a/x"].cond_indep_stack == [Frame("b/a/p", -1, 2), Frame("b/q", -2, 3)]
    with handlers.trace() as raw, handlers.seed(rng_seed=0), numpyro.plate("r", 4, dim=-2):
        handlers.scope(inner, prefix="a")()
    assert raw["a/x"].cond_indep_stack == [Frame("a/p", -1, 2), Frame("r", -2, 4)]


def test_scope_hide_types(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("p", 2):
            numpyro.sample("x", dist.Normal(0.0, 1.0))

    tr = get_trace(handlers.scope(model, prefix="s", hide_types=["plate"]))
    assert list(tr) == ["p", "s/x"] and tr["s/x"].cond_indep_stack == [Frame("p", -1, 2)]


# -- scale and mask ---------------------------------------------------------------------------


def test_scale_guide(backend: Backend) -> None:  # [18]
    assert get_trace(simple_obs_model)["obs"]["scale"] is None
    with handlers.trace() as scaled_trace, handlers.scale(scale=10.0):
        handlers.seed(simple_obs_model, rng_seed=0)()
    assert scaled_trace["obs"]["scale"] == 10.0


def test_scale_nests_and_reaches_params_and_plates(backend: Backend) -> None:
    def model() -> None:
        numpyro.param("p", 1.0)
        with numpyro.plate("q", 2):
            numpyro.deterministic("d", 1.0)

    tr = get_trace(handlers.scale(handlers.scale(model, scale=2.0), scale=3.0))
    assert tr["p"].scale == 6.0 and tr["q"].scale == 6.0
    assert "scale" not in tr["d"]


def test_mask_guide(backend: Backend) -> None:  # [19]
    xp = backend.xp

    def model_for_mask() -> None:
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        numpyro.sample("obs", dist.Normal(z, 1.0), obs=xp.asarray([1.0, 2.0, 3.0]))

    mask_array = xp.asarray([True, False, True])
    tr = get_trace(handlers.mask(model_for_mask, mask=mask_array))
    site = tr["obs"]
    assert type(site["fn"]).__name__ == "MaskedDistribution"
    lp = np.asarray(site["fn"].log_prob(site["value"]))
    full = np.asarray(dist.Normal(tr["z"].value, 1.0).log_prob(site["value"]))
    np.testing.assert_array_equal(lp, [full[0], 0.0, full[2]])


def test_mask_false_and_true(backend: Backend) -> None:
    tr = get_trace(handlers.mask(simple_obs_model, mask=False))
    assert float(tr["obs"].fn.log_prob(0.5)) == 0.0
    tr = get_trace(handlers.mask(simple_obs_model, mask=True))
    assert isinstance(tr["obs"].fn, dist.Normal)


# -- do ---------------------------------------------------------------------------------------


def test_do_guide(backend: Backend) -> None:  # [20], [21]
    natural = get_trace(causal_chain, 1.0)
    with handlers.trace() as int_trace:
        y_result = handlers.seed(handlers.do(causal_chain, data={"z": 5.0}), rng_seed=0)(1.0)
    assert list(int_trace.keys()) == ["z", "y"]
    z = int_trace["z"]
    assert z["value"] != 5.0 and z["is_observed"] is False
    assert float(z["value"]) == float(natural["z"]["value"])  # the same key as without do
    assert float(int_trace["y"]["fn"].loc) == 5.0  # downstream used the intervention
    assert float(y_result) == float(int_trace["y"]["value"])
    if backend.name == "jax":
        assert (
            f"{natural['z']['value']:.3f}" == "-1.442"
            and f"{natural['y']['value']:.3f}" == "-2.071"
        )
        assert f"{z['value']:.3f}" == "-1.442" and f"{y_result:.3f}" == "4.371"


def test_handlers_inside_do_see_both_sites(backend: Backend) -> None:
    with handlers.trace() as outer:
        inner = handlers.trace(handlers.seed(causal_chain, rng_seed=0))
        handlers.do(inner, data={"z": 5.0})(1.0)
    assert list(outer) == ["z", "y"]
    assert list(inner.trace) == ["z", "z__CF", "y"]
    cf = inner.trace["z__CF"]
    assert cf.value == 5.0 and cf.is_observed


def test_do_several_sites(backend: Backend) -> None:
    def chain() -> Any:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        b = numpyro.sample("b", dist.Normal(a, 1.0))
        return numpyro.sample("c", dist.Normal(b, 1.0))

    with handlers.trace() as tr:
        handlers.seed(handlers.do(chain, data={"a": 1.0, "b": 2.0}), rng_seed=0)()
    assert list(tr) == ["a", "b", "c"]
    assert float(tr["b"].fn.loc) == 1.0 and float(tr["c"].fn.loc) == 2.0
    assert not tr["a"].is_observed and not tr["b"].is_observed


def test_do_inside_a_plate_has_one_frame(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("N", 3):
            numpyro.sample("z", dist.Normal(0.0, 1.0))

    with handlers.trace() as tr:
        inner = handlers.trace(handlers.seed(model, rng_seed=0))
        handlers.do(inner, data={"z": backend.xp.zeros(3)})()
    assert tr["z"].cond_indep_stack == [Frame("N", -1, 3)]  # NumPyro records ['N', 'N']
    assert inner.trace["z__CF"].cond_indep_stack == [Frame("N", -1, 3)]


def test_do_under_an_outer_scope(backend: Backend) -> None:
    with handlers.trace() as tr:
        handlers.scope(
            handlers.seed(handlers.do(causal_chain, data={"z": 5.0}), rng_seed=0), prefix="s"
        )(1.0)
    assert list(tr) == ["s/z", "s/y"] and float(tr["s/y"].fn.loc) == 5.0


def test_do_twice_on_one_site_warns_and_terminates(backend: Backend) -> None:
    model = handlers.do(handlers.do(causal_chain, data={"z": 1.0}), data={"z": 2.0})
    with pytest.warns(RuntimeWarning, match="'z' is intervened on twice"), handlers.trace() as tr:
        y = handlers.seed(model, rng_seed=0)(0.0)
    assert list(tr) == ["z", "y"] and float(tr["y"].fn.loc) == 1.0 and y is not None


# -- infer_config -----------------------------------------------------------------------------


def test_infer_config(backend: Backend) -> None:
    hint: dict[str, Any] = {"a": 1}

    def model() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0), infer=hint)
        numpyro.param("p", 1.0)

    tr = get_trace(handlers.infer_config(model, config_fn=lambda msg: {"site": msg.name}))
    assert tr["x"].infer == {"a": 1, "site": "x"}
    assert hint == {"a": 1}  # NumPyro updates the user's dict in place; minippl copies
    assert "infer" not in tr["p"]


# -- a custom handler in NumPyro's style ------------------------------------------------------


def test_custom_messenger_with_mapping_access(backend: Backend) -> None:
    class Double(handlers.Messenger):
        def process_message(self, msg: Message) -> None:
            if msg["type"] == "sample" and msg["is_observed"]:
                msg["value"] = msg["value"] * 2

    tr = get_trace(Double(simple_obs_model))
    assert tr["obs"]["value"] == 1.0


def test_no_warnings_from_a_plain_run(backend: Backend, x_data: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_trace(handlers.condition(linear_model, data={"slope": 1.0}), x_data)


def test_scale_made_inside_jit_is_the_same_as_eagerly(jax_backend: Backend) -> None:
    """A handler built inside a compiled function checks its concrete factor on the host:
    comparing it with JAX there would be traced and could not decide the check."""
    import jax

    def factor(x: Any) -> Any:
        model = lambda: numpyro.sample("x", dist.Normal(0.0, 1.0), obs=x)  # noqa: E731
        return handlers.trace(handlers.scale(model, scale=2.0)).get_trace()["x"]["scale"]

    assert float(jax.jit(factor)(0.5)) == float(factor(0.5)) == 2.0
    with pytest.raises(ValueError, match="factor must be positive"):
        jax.jit(lambda x: handlers.scale(scale=-1.0) and x)(0.5)

"""The NumPyro reference suite: the same handler compositions under NumPyro and minippl.

Each model is written once, against a :class:`PPL` (the ``numpyro``-like module, its
``handlers`` and its ``distributions``), and run under both libraries with the same seeds on
the JAX backend. :func:`assert_same_trace` then checks site names and order, types,
``is_observed``, ``scale``, ``infer``, plate frames (``cond_indep_stack``), the distribution's
type and shapes, the keys each site drew with, and every value bit for bit.

Deliberate differences, each asserted where it shows (see also the handlers' docstrings):

* ``do`` inside a plate: NumPyro's forked copy shares its plate list with the original, so
  the free site records the inner plate twice (``['N', 'N']``); minippl records it once. An
  inner ``scale`` is likewise applied twice by NumPyro and once by minippl.
* ``infer_config`` and ``uncondition`` build a new ``infer`` dict; NumPyro updates the dict
  the user passed to ``sample(infer=...)`` in place. Traces are equal.
* A ``seed`` handler reused inside and outside ``jit`` keeps no tracer (NumPyro raises
  ``UnexpectedTracerError`` on the second use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from backends import Backend  # noqa: E402

pytestmark = pytest.mark.reference


@dataclass(frozen=True)
class PPL:
    """One library, seen through NumPyro's module names."""

    name: str
    numpyro: ModuleType
    handlers: ModuleType
    dist: ModuleType
    reparam: ModuleType
    transforms: ModuleType


def _numpyro() -> PPL:
    import numpyro
    import numpyro.distributions
    import numpyro.distributions.transforms
    import numpyro.handlers
    import numpyro.infer.reparam

    return PPL(
        "numpyro",
        numpyro,
        numpyro.handlers,
        numpyro.distributions,
        numpyro.infer.reparam,
        numpyro.distributions.transforms,
    )


def _minippl() -> PPL:
    import minippl
    import minippl.distributions
    import minippl.distributions.transforms
    import minippl.handlers
    import minippl.infer.reparam

    return PPL(
        "minippl",
        minippl,
        minippl.handlers,
        minippl.distributions,
        minippl.infer.reparam,
        minippl.distributions.transforms,
    )


NUMPYRO, MINIPPL = _numpyro(), _minippl()


@pytest.fixture(autouse=True)
def _on_jax(jax_backend: Backend) -> Iterator[None]:
    yield


# -- comparing traces ---------------------------------------------------------------------


def _bits(x: Any) -> tuple[str, tuple[int, ...], bytes]:
    if jnp.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    a = np.asarray(x)
    return str(a.dtype), a.shape, a.tobytes()


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if a is None or b is None or isinstance(a, (str, bool)):
        return a is b or a == b
    return _bits(a) == _bits(b)


def _frames(site: Any) -> list[tuple[str, int, int]]:
    return [(f.name, f.dim, f.size) for f in site.get("cond_indep_stack", [])]


def site_summary(site: Any) -> dict[str, Any]:
    """What must agree between the libraries, for one site."""
    out: dict[str, Any] = {
        "type": site["type"],
        "is_observed": site.get("is_observed", "N/A"),
        "scale": site.get("scale", "N/A"),
        "frames": _frames(site),
    }
    fn = site.get("fn")
    if site["type"] == "sample":
        out["fn"] = (type(fn).__name__, tuple(fn.batch_shape), tuple(fn.event_shape))
        out["kwargs"] = sorted(site["kwargs"])
        out["sample_shape"] = tuple(site["kwargs"].get("sample_shape", ()))
        out["n_intermediates"] = len(site["intermediates"])
    if site["type"] == "param":
        out["kwargs"] = sorted(site["kwargs"])
    if site["type"] == "plate":
        out["args"] = site["args"]
    return out


def assert_same_trace(ours: Any, theirs: Any, frames_differ: tuple[str, ...] = ()) -> None:
    """Equal traces, value bits included; ``frames_differ`` names sites whose plate frames
    are allowed to differ (a documented difference, asserted by the caller)."""
    assert list(ours) == list(theirs)
    for name in theirs:
        mine, ref = site_summary(ours[name]), site_summary(theirs[name])
        if name in frames_differ:
            mine.pop("frames"), ref.pop("frames")
        assert mine == ref, name
        assert _same_value(ours[name]["value"], theirs[name]["value"]), f"value of {name}"
        if "infer" in theirs[name] or "infer" in ours[name]:
            assert _same_value(ours[name].get("infer", {}), theirs[name].get("infer", {})), name
        if theirs[name]["type"] == "sample":
            key, ref_key = ours[name]["kwargs"]["rng_key"], theirs[name]["kwargs"]["rng_key"]
            assert (key is None) == (ref_key is None), f"rng_key of {name}"
            if key is not None:
                assert _bits(key) == _bits(ref_key), f"rng_key of {name}"


def run_both(case: Callable[[PPL], Any]) -> tuple[Any, Any]:
    return case(MINIPPL), case(NUMPYRO)


def check(case: Callable[[PPL], Any], frames_differ: tuple[str, ...] = ()) -> tuple[Any, Any]:
    ours, theirs = run_both(case)
    assert_same_trace(ours, theirs, frames_differ)
    return ours, theirs


def traced(p: PPL, model: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return p.handlers.trace(model).get_trace(*args, **kwargs)


# -- the models, written once ------------------------------------------------------------

X = jnp.linspace(-2.0, 2.0, 10)
Y = 1.0 + 2.0 * X
SIGMA = jnp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
Y_SCHOOLS = jnp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])


def linear_model(p: PPL) -> Callable[[Any], None]:
    def model(x: Any) -> None:
        intercept = p.numpyro.sample("intercept", p.dist.Normal(0.0, 10.0))
        slope = p.numpyro.sample("slope", p.dist.Normal(0.0, 5.0))
        sigma = p.numpyro.sample("sigma", p.dist.HalfNormal(1.0))
        mu = p.numpyro.deterministic("mu", intercept + slope * x)
        with p.numpyro.plate("data", len(x)):
            p.numpyro.sample("obs", p.dist.Normal(mu, sigma))

    return model


def eight_schools(p: PPL) -> Callable[..., None]:
    def model(J: int, sigma: Any, y: Any = None) -> None:
        mu = p.numpyro.sample("mu", p.dist.Normal(0, 5))
        tau = p.numpyro.sample("tau", p.dist.HalfCauchy(5))
        with p.numpyro.plate("J", J):
            theta = p.numpyro.sample("theta", p.dist.Normal(mu, tau))
            p.numpyro.sample("obs", p.dist.Normal(theta, sigma), obs=y)

    return model


def causal_chain(p: PPL) -> Callable[[Any], Any]:
    def model(x: Any) -> Any:
        z = p.numpyro.sample("z", p.dist.Normal(x, 1.0))
        return p.numpyro.sample("y", p.dist.Normal(z, 0.5))

    return model


def chain3(p: PPL) -> Callable[[], Any]:
    def model() -> Any:
        a = p.numpyro.sample("a", p.dist.Normal(0.0, 1.0))
        b = p.numpyro.sample("b", p.dist.Normal(a, 1.0))
        c = p.numpyro.sample("c", p.dist.Normal(b, 1.0), obs=0.5)
        return p.numpyro.sample("d", p.dist.Normal(c + b, 1.0))

    return model


def plated(p: PPL) -> Callable[[], None]:
    """Nested plates with automatic dims, dim=, sample_shape, params and deterministics."""

    def model() -> None:
        w = p.numpyro.param("w", jnp.ones(3), constraint=p.dist.constraints.positive)
        with p.numpyro.plate("outer", 3):
            a = p.numpyro.sample("a", p.dist.Normal(w, 1.0))
            with p.numpyro.plate("inner", 4):
                p.numpyro.sample("b", p.dist.Normal(a, 1.0))
                p.numpyro.sample("c", p.dist.Normal(0.0, 1.0), sample_shape=(2, 1, 1))
                p.numpyro.deterministic("d", a * 2)
        with p.numpyro.plate("explicit", 2, dim=-3):
            p.numpyro.sample("e", p.dist.Normal(0.0, 1.0).expand((2, 1, 1)).to_event(0))
            p.numpyro.sample("f", p.dist.Exponential(jnp.ones((2, 1, 1, 5))).to_event(1))

    return model


def subsampled(p: PPL) -> Callable[[], Any]:
    data = jnp.arange(20.0)

    def model() -> Any:
        with p.numpyro.plate("N", 20, subsample_size=5) as idx:
            batch = p.numpyro.subsample(data, event_dim=0)
            p.numpyro.sample("x", p.dist.Normal(batch, 1.0))
            with p.numpyro.plate("M", 6, subsample_size=3, dim=-2):
                p.numpyro.sample("y", p.dist.Normal(0.0, 1.0))
            p.numpyro.deterministic("idx", idx)
            p.numpyro.param("loc", jnp.arange(20.0), event_dim=0)

    return model


# -- seed and trace ------------------------------------------------------------------------


def test_guide_linear_model() -> None:
    ours, theirs = check(lambda p: traced(p, p.handlers.seed(linear_model(p), rng_seed=0), X))
    assert f"{ours['slope']['value']:.4f}" == f"{theirs['slope']['value']:.4f}"


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_seed_values_and_keys(seed: int) -> None:
    check(lambda p: traced(p, p.handlers.seed(chain3(p), rng_seed=seed)))
    check(lambda p: traced(p, p.handlers.seed(chain3(p), rng_seed=jax.random.key(seed))))
    check(lambda p: traced(p, p.handlers.seed(chain3(p), rng_seed=jax.random.PRNGKey(seed))))


def test_seed_as_with_block_keeps_advancing() -> None:
    def case(p: PPL) -> Any:
        s = p.handlers.seed(rng_seed=3)
        with p.handlers.trace() as tr:
            with s:
                p.numpyro.sample("a", p.dist.Normal(0.0, 1.0))
            with s:
                p.numpyro.sample("b", p.dist.Normal(0.0, 1.0))
        return tr

    check(case)


def test_nested_seeds_and_hide_types() -> None:
    check(lambda p: traced(p, p.handlers.seed(p.handlers.seed(chain3(p), 1), 2)))
    check(
        lambda p: traced(p, p.handlers.seed(p.handlers.seed(plated(p), 1, hide_types=["plate"]), 2))
    )


def test_plates_params_deterministics() -> None:
    check(lambda p: traced(p, p.handlers.seed(plated(p), rng_seed=0)))


def test_independent_expanded_by_a_plate() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            with p.numpyro.plate("p", 2, dim=-3):
                p.numpyro.sample("f", p.dist.Exponential(jnp.ones((1, 5))).to_event(1))

        return m

    check(lambda p: traced(p, p.handlers.seed(model(p), rng_seed=0)))


def test_mask_widens_a_scalar_site() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            p.numpyro.sample("z", p.dist.Normal(0.0, 1.0))

        return m

    mask = jnp.array([True, False, True])
    check(lambda p: traced(p, p.handlers.seed(p.handlers.mask(model(p), mask=mask), 0)))


def test_subsampling() -> None:
    ours, _ = check(lambda p: traced(p, p.handlers.seed(subsampled(p), rng_seed=3)))
    assert ours["x"]["scale"] == 4.0 and ours["y"]["scale"] == 8.0


def test_prng_key_and_callable_param_init() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            key = p.numpyro.prng_key()
            p.numpyro.deterministic("key_bits", jax.random.key_data(key))
            p.numpyro.param("w", lambda k: jax.random.normal(k, (2,)))
            p.numpyro.sample("x", p.dist.Normal(0.0, 1.0))

        return m

    check(lambda p: traced(p, p.handlers.seed(model(p), rng_seed=0)))


def test_factor_and_obs_mask() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            p.numpyro.factor("f", -1.5)
            with p.numpyro.plate("p", 3):
                p.numpyro.factor("g", jnp.array([1.0, 2.0, 3.0]))
                p.numpyro.sample(
                    "y",
                    p.dist.Normal(jnp.zeros(3), 1.0),
                    obs=jnp.array([1.0, 2.0, 3.0]),
                    obs_mask=jnp.array([True, False, True]),
                )

        return m

    ours, theirs = check(lambda p: traced(p, p.handlers.seed(model(p), rng_seed=0)))
    for name in ("f", "g", "y_observed"):
        lp, ref = (
            ours[name]["fn"].log_prob(ours[name]["value"]),
            theirs[name]["fn"].log_prob(theirs[name]["value"]),
        )
        assert _bits(lp) == _bits(ref)


# -- condition, substitute, their order, and seed's key consumption -----------------------------


def test_condition_and_substitute() -> None:
    check(
        lambda p: traced(
            p, p.handlers.seed(p.handlers.condition(linear_model(p), data={"slope": 3.0}), 0), X
        )
    )
    check(
        lambda p: traced(
            p, p.handlers.seed(p.handlers.substitute(linear_model(p), data={"slope": 3.0}), 0), X
        )
    )
    check(
        lambda p: traced(
            p, p.handlers.seed(p.handlers.condition(linear_model(p), data={"obs": Y}), 0), X
        )
    )
    check(
        lambda p: traced(
            p,
            p.handlers.seed(
                p.handlers.substitute(
                    chain3(p), substitute_fn=lambda m: 2.0 if m["name"] == "c" else None
                ),
                0,
            ),
        )
    )
    check(
        lambda p: traced(
            p,
            p.handlers.seed(
                p.handlers.condition(
                    chain3(p), condition_fn=lambda m: 1.0 if m["name"] == "b" else None
                ),
                0,
            ),
        )
    )


def test_substitute_plate_and_param() -> None:
    data = {"N": jnp.array([0, 5, 10, 15, 19]), "loc": jnp.ones(20), "x": jnp.zeros(5)}
    check(lambda p: traced(p, p.handlers.seed(p.handlers.substitute(subsampled(p), data=data), 1)))


def test_composing_order_table() -> None:  # guide [35]
    def cond_of_subs(p: PPL) -> Any:
        seeded = p.handlers.seed(linear_model(p), rng_seed=0)
        return traced(
            p,
            p.handlers.condition(
                p.handlers.substitute(seeded, data={"slope": 10.0}), data={"slope": 3.0}
            ),
            X,
        )

    def subs_of_cond(p: PPL) -> Any:
        seeded = p.handlers.seed(linear_model(p), rng_seed=0)
        return traced(
            p,
            p.handlers.substitute(
                p.handlers.condition(seeded, data={"slope": 3.0}), data={"slope": 10.0}
            ),
            X,
        )

    ours, _ = check(cond_of_subs)
    assert (ours["slope"]["value"], ours["slope"]["is_observed"]) == (3.0, True)
    ours, _ = check(subs_of_cond)
    assert (ours["slope"]["value"], ours["slope"]["is_observed"]) == (10.0, True)


def test_seed_consumption_order() -> None:
    outside, _ = check(
        lambda p: traced(p, p.handlers.condition(p.handlers.seed(chain3(p), 0), data={"a": 1.0}))
    )
    inside, _ = check(
        lambda p: traced(p, p.handlers.seed(p.handlers.condition(chain3(p), data={"a": 1.0}), 0))
    )
    assert _bits(outside["b"]["value"]) != _bits(inside["b"]["value"])


# -- block, uncondition, lift -----------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"hide": ["sigma"]},
        {"expose": ["slope", "intercept"]},
        {"hide_fn": lambda site: site["type"] == "sample" and not site["is_observed"]},
        {"expose_types": ["sample"]},
        {},
    ],
    ids=["hide", "expose", "hide_fn", "expose_types", "everything"],
)
def test_block_modes(options: dict[str, Any]) -> None:
    check(lambda p: traced(p, p.handlers.seed(p.handlers.block(linear_model(p), **options), 0), X))
    check(lambda p: traced(p, p.handlers.block(p.handlers.seed(linear_model(p), 0), **options), X))


def test_block_around_condition() -> None:
    def case(p: PPL, seed_inside: bool) -> Any:
        model = p.handlers.condition(chain3(p), data={"b": 2.0})
        if seed_inside:
            return traced(p, p.handlers.block(p.handlers.seed(model, 0), hide=["b", "a"]))
        return traced(p, p.handlers.seed(p.handlers.block(model, hide=["b", "a"]), 0))

    check(lambda p: case(p, True))
    check(lambda p: case(p, False))


@pytest.mark.parametrize("seed_outside", [True, False])
def test_uncondition_under_seed_both_orders(seed_outside: bool) -> None:
    def case(p: PPL) -> Any:
        conditioned = p.handlers.condition(linear_model(p), data={"obs": Y})
        if seed_outside:
            return traced(p, p.handlers.seed(p.handlers.uncondition(conditioned), 0), X)
        return traced(p, p.handlers.uncondition(p.handlers.seed(conditioned, 0)), X)

    ours, _ = check(case)
    assert ours["obs"]["infer"]["was_observed"] is True


def test_lift() -> None:
    def model_with_param(p: PPL) -> Callable[[Any], None]:
        def m(x: Any) -> None:
            s = p.numpyro.param("s", 1.0, constraint=p.dist.constraints.positive)
            loc = p.numpyro.sample("loc", p.dist.Normal(0.0, s))
            p.numpyro.param("s", 1.0)
            p.numpyro.param("unlifted", 2.0)
            p.numpyro.sample("obs", p.dist.Normal(loc, 1.0), obs=x)

        return m

    ours, theirs = check(
        lambda p: traced(
            p,
            p.handlers.seed(
                p.handlers.lift(model_with_param(p), prior={"s": p.dist.Exponential(1.0)}), 0
            ),
            jnp.ones(5),
        )
    )
    assert f"{ours['s']['value']:.4f}" == "0.0073"
    check(
        lambda p: traced(
            p,
            p.handlers.seed(p.handlers.lift(model_with_param(p), prior=p.dist.Exponential(2.0)), 0),
            jnp.ones(5),
        )
    )


# -- scope and replay -------------------------------------------------------------------------


def test_scope_guide_and_nested_scopes() -> None:
    def component(p: PPL) -> Any:
        with p.numpyro.plate("p", 2):
            return p.numpyro.sample("z", p.dist.Normal(0.0, 1.0))

    def composed(p: PPL) -> Callable[[], None]:
        def m() -> None:
            with p.handlers.scope(prefix="first", divider="::"):
                z1 = component(p)
            with p.numpyro.plate("q", 3, dim=-2), p.handlers.scope(prefix="second"):
                with p.handlers.scope(prefix="inner"):
                    z2 = component(p)
            p.numpyro.deterministic("diff", z1 - z2)

        return m

    ours, _ = check(
        lambda p: traced(p, p.handlers.seed(p.handlers.scope(composed(p), prefix="top"), 0))
    )
    assert list(ours) == [
        "top/first::p", "top/first::z", "top/q",
        "top/second/inner/p", "top/second/inner/z", "top/diff",
    ]  # fmt: skip
    check(
        lambda p: traced(
            p, p.handlers.seed(p.handlers.scope(composed(p), prefix="s", hide_types=["plate"]), 0)
        )
    )


def test_replay_full_and_partial_traces() -> None:
    def case(p: PPL, keep: tuple[str, ...]) -> Any:
        model = linear_model(p)
        original = traced(p, p.handlers.seed(model, rng_seed=0), X)
        partial = {k: v for k, v in original.items() if k in keep} if keep else original
        return traced(p, p.handlers.replay(p.handlers.seed(model, rng_seed=99), trace=partial), X)

    check(lambda p: case(p, ()))
    ours, _ = check(lambda p: case(p, ("slope", "obs")))
    assert f"{ours['slope']['value']:.4f}" == "-6.2874"


def test_replay_of_subsample_indices_and_guide_infer() -> None:
    def case(p: PPL) -> Any:
        guide_tr = traced(
            p, p.handlers.seed(p.handlers.infer_config(subsampled(p), lambda m: {"g": 1}), 5)
        )
        return traced(
            p, p.handlers.replay(p.handlers.seed(subsampled(p), rng_seed=6), trace=guide_tr)
        )

    check(case)


# -- scale, mask, infer_config ----------------------------------------------------------------


def test_scale_and_mask() -> None:
    def simple_obs_model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            z = p.numpyro.sample("z", p.dist.Normal(0.0, 1.0))
            p.numpyro.param("w", 1.0)
            p.numpyro.sample("obs", p.dist.Normal(z, 1.0), obs=jnp.array([1.0, 2.0, 3.0]))

        return m

    ours, _ = check(lambda p: traced(p, p.handlers.seed(simple_obs_model(p), 0)))
    assert ours["obs"]["scale"] is None
    check(
        lambda p: traced(p, p.handlers.scale(p.handlers.seed(simple_obs_model(p), 0), scale=10.0))
    )
    check(
        lambda p: traced(
            p, p.handlers.scale(p.handlers.scale(p.handlers.seed(subsampled(p), 0), 3.0), 0.5)
        )
    )

    def masked_model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            z = p.numpyro.sample("z", p.dist.Normal(jnp.zeros(3), 1.0))
            p.numpyro.sample("obs", p.dist.Normal(z, 1.0), obs=jnp.array([1.0, 2.0, 3.0]))

        return m

    mask = jnp.array([True, False, True])
    ours, theirs = check(
        lambda p: traced(p, p.handlers.seed(p.handlers.mask(masked_model(p), mask=mask), 0))
    )
    assert type(ours["obs"]["fn"]).__name__ == "MaskedDistribution"
    lp, ref = (
        ours["obs"]["fn"].log_prob(ours["obs"]["value"]),
        theirs["obs"]["fn"].log_prob(theirs["obs"]["value"]),
    )
    assert _bits(lp) == _bits(ref)


def test_get_mask() -> None:
    def case(p: PPL) -> list[Any]:
        masks = [p.numpyro.get_mask()]
        with p.handlers.trace():
            masks.append(p.numpyro.get_mask())
            with (
                p.handlers.mask(mask=jnp.array([True, False])),
                p.handlers.mask(mask=jnp.array([True, True])),
            ):
                masks.append(p.numpyro.get_mask())
        return masks

    ours, theirs = run_both(case)
    assert ours[:2] == theirs[:2] == [None, None]
    assert _bits(ours[2]) == _bits(theirs[2])


def test_infer_config() -> None:
    check(
        lambda p: traced(
            p, p.handlers.seed(p.handlers.infer_config(chain3(p), lambda m: {"n": m["name"]}), 0)
        )
    )


# -- do ---------------------------------------------------------------------------------------


def test_do_guide() -> None:  # [21]
    def case(p: PPL) -> Any:
        with p.handlers.trace() as tr:
            y = p.handlers.seed(p.handlers.do(causal_chain(p), data={"z": 5.0}), rng_seed=0)(1.0)
        return tr, y

    (ours, y), (theirs, y_ref) = run_both(case)
    assert_same_trace(ours, theirs)
    assert _bits(y) == _bits(y_ref) and list(ours) == ["z", "y"]


def test_do_inner_trace_and_several_sites() -> None:
    def case(p: PPL) -> Any:
        inner = p.handlers.trace(p.handlers.seed(chain3(p), rng_seed=0))
        with p.handlers.trace() as outer:
            p.handlers.do(inner, data={"a": 1.0, "b": 2.0})()
        return outer, inner.trace

    (outer, inner), (outer_ref, inner_ref) = run_both(case)
    assert_same_trace(outer, outer_ref)
    assert list(inner) == list(inner_ref) == ["a", "a__CF", "b", "b__CF", "c", "d"]
    assert_same_trace(inner, inner_ref)


def test_do_inside_a_plate_records_the_plate_once() -> None:
    """The documented difference: NumPyro's fork repeats the inner plate's frame."""

    def case(p: PPL) -> Any:
        def model() -> None:
            with p.numpyro.plate("N", 3):
                z = p.numpyro.sample("z", p.dist.Normal(0.0, 1.0))
                p.numpyro.sample("y", p.dist.Normal(z, 1.0))

        return traced(p, p.handlers.seed(p.handlers.do(model, data={"z": jnp.zeros(3)}), 0))

    ours, theirs = check(case, frames_differ=("z",))
    assert _frames(ours["z"]) == [("N", -1, 3)]
    assert _frames(theirs["z"]) == [("N", -1, 3), ("N", -1, 3)]


def test_do_inside_scale_scales_once() -> None:
    def case(p: PPL) -> Any:
        scaled = p.handlers.scale(causal_chain(p), scale=3.0)
        return traced(p, p.handlers.seed(p.handlers.do(scaled, data={"z": 5.0}), 0), 1.0)

    ours, theirs = run_both(case)
    assert ours["z"]["scale"] == 3.0 and theirs["z"]["scale"] == 9.0
    ours["z"]["scale"] = 9.0
    assert_same_trace(ours, theirs)


def test_do_and_scope() -> None:
    # An outer scope renames the free site; the intervention is still looked up as "z".
    def outer_scope(p: PPL) -> Any:
        model = p.handlers.scope(p.handlers.do(causal_chain(p), data={"z": 5.0}), prefix="s")
        return traced(p, p.handlers.seed(model, 0), 1.0)

    ours, _ = check(outer_scope)
    assert list(ours) == ["s/z", "s/y"]

    # A scope inside do sees the fork again and prefixes it twice, in both libraries.
    def inner_scope(p: PPL) -> Any:
        model = p.handlers.do(p.handlers.scope(causal_chain(p), prefix="s"), data={"s/z": 5.0})
        return traced(p, p.handlers.seed(model, 0), 1.0)

    ours, _ = check(inner_scope)
    assert list(ours) == ["s/s/z", "s/y"]


# -- more compositions ----------------------------------------------------------------------


def test_lift_and_substitute_both_orders() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            s = p.numpyro.param("s", 1.0)
            p.numpyro.sample("x", p.dist.Normal(0.0, s))

        return m

    def case(p: PPL, lift_inside: bool) -> Any:
        prior = p.dist.Exponential(1.0)
        if lift_inside:
            fn = p.handlers.substitute(p.handlers.lift(model(p), prior=prior), data={"s": 2.0})
        else:
            fn = p.handlers.lift(p.handlers.substitute(model(p), data={"s": 2.0}), prior=prior)
        return traced(p, p.handlers.seed(fn, 0))

    check(lambda p: case(p, True))
    check(lambda p: case(p, False))


def test_block_between_plates() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            with p.numpyro.plate("a", 2), p.handlers.block(hide=["x"]), p.numpyro.plate("b", 3):
                p.numpyro.sample("x", p.dist.Normal(0.0, 1.0))
                p.numpyro.sample("y", p.dist.Normal(0.0, 1.0))

        return m

    check(lambda p: traced(p, p.handlers.seed(model(p), 0)))


def test_mask_and_scale_in_a_subsampled_plate() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            with p.numpyro.plate("N", 10, subsample_size=4):
                keep = jnp.array([True, False, True, True])
                with p.handlers.mask(mask=keep), p.handlers.scale(scale=2.0):
                    p.numpyro.sample("x", p.dist.Normal(jnp.zeros(4), 1.0), obs=jnp.ones(4))

        return m

    ours, _ = check(lambda p: traced(p, p.handlers.seed(model(p), 0)))
    assert ours["x"]["scale"] == 5.0


def test_params_in_plates_and_scopes() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            with p.numpyro.plate("N", 4):
                p.numpyro.param("w", jnp.ones(4))
                with p.handlers.scope(prefix="s"):
                    p.numpyro.param("w", jnp.ones(4), event_dim=0)

        return m

    check(lambda p: traced(p, p.handlers.seed(model(p), 0)))


def test_seed_with_keys_traced_by_vmap() -> None:
    def case(p: PPL) -> dict[str, Any]:
        def run(key: Any) -> dict[str, Any]:
            tr = traced(p, p.handlers.seed(chain3(p), key))
            return {name: site["value"] for name, site in tr.items()}

        return jax.vmap(run)(jax.random.split(jax.random.key(0), 3))

    ours, theirs = run_both(case)
    assert ours.keys() == theirs.keys()
    assert all(_bits(ours[k]) == _bits(theirs[k]) for k in theirs)


# -- reparam ----------------------------------------------------------------------------------


@pytest.mark.parametrize("centered", [0, 0.3, None, 1, "array"])
def test_eight_schools_reparam(centered: Any) -> None:
    if isinstance(centered, str):
        centered = jnp.linspace(0.0, 1.0, 8)

    def case(p: PPL) -> Any:
        config = {"theta": p.reparam.LocScaleReparam(centered=centered)}
        model = p.handlers.reparam(eight_schools(p), config=config)
        return traced(p, p.handlers.seed(model, rng_seed=0), 8, SIGMA, y=Y_SCHOOLS)

    ours, _ = check(case)
    if isinstance(centered, int) and centered == 0:
        assert [(n, s["type"]) for n, s in ours.items()] == [
            ("mu", "sample"), ("tau", "sample"), ("J", "plate"),
            ("theta_decentered", "sample"), ("theta", "deterministic"), ("obs", "sample"),
        ]  # fmt: skip


def test_reparam_inside_nested_plates_and_with_events() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            loc = p.numpyro.sample("loc", p.dist.Normal(0.0, 1.0))
            with p.numpyro.plate("a", 2), p.numpyro.plate("b", 3):
                p.numpyro.sample("x", p.dist.Normal(loc, 2.0))
                p.numpyro.sample("v", p.dist.Normal(jnp.zeros(4), 0.5).to_event(1))
                p.numpyro.sample("t", p.dist.StudentT(5.0, loc, 1.5))

        return m

    def case(p: PPL) -> Any:
        config = {
            "x": p.reparam.LocScaleReparam(0.25),
            "v": p.reparam.LocScaleReparam(0),
            "t": p.reparam.LocScaleReparam(0, shape_params=("df",)),
        }
        return traced(p, p.handlers.seed(p.handlers.reparam(model(p), config=config), 1))

    check(case)


def test_transform_reparam() -> None:
    def model(p: PPL) -> Callable[[], None]:
        def m() -> None:
            with p.numpyro.plate("p", 3):
                affine = p.transforms.AffineTransform(jnp.array([1.0, 2.0, 3.0]), 0.5)
                p.numpyro.sample(
                    "x", p.dist.TransformedDistribution(p.dist.Normal(0.0, 1.0), affine)
                )
                p.numpyro.sample("s", p.dist.LogNormal(0.0, 1.0))

        return m

    def case(p: PPL) -> Any:
        config = {"x": p.reparam.TransformReparam(), "s": p.reparam.TransformReparam()}
        return traced(p, p.handlers.seed(p.handlers.reparam(model(p), config=config), 0))

    check(case)


# -- a NumPyro trap minippl avoids ----------------------------------------------------------


def test_seed_reused_around_jit() -> None:
    def case(p: PPL) -> Any:
        s = p.handlers.seed(rng_seed=0)

        @jax.jit
        def inside() -> Any:
            with s:
                return p.numpyro.sample("x", p.dist.Normal(0.0, 1.0))

        inside()
        with s:
            return p.numpyro.sample("x", p.dist.Normal(0.0, 1.0))

    ours = case(MINIPPL)
    assert not isinstance(ours, jax.core.Tracer)
    with pytest.raises(jax.errors.UnexpectedTracerError):
        case(NUMPYRO)

"""Algebraic laws of the handlers, checked over a small registry of models (Pyro's pattern)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers


def chain() -> None:
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    b = numpyro.sample("b", dist.Normal(a, 1.0))
    numpyro.sample("y", dist.Normal(b, 0.5), obs=0.3)


def plated() -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    with numpyro.plate("outer", 2), numpyro.plate("inner", 3):
        theta = numpyro.sample("theta", dist.Normal(mu, 1.0))
        numpyro.deterministic("double", 2 * theta)
        numpyro.sample("obs", dist.Normal(theta, 1.0), obs=theta * 0 + 1.0)


def subsampled() -> None:
    with numpyro.plate("N", 8, subsample_size=3):
        numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.factor("f", -1.0)


def scoped() -> None:
    with handlers.scope(prefix="left"):
        chain()
    with handlers.scope(prefix="right"):
        chain()


MODELS: dict[str, Callable[[], None]] = {
    "chain": chain,
    "plated": plated,
    "subsampled": subsampled,
    "scoped": scoped,
}


def run(fn: Callable[[], None], seed: int = 0) -> dict[str, Any]:
    return handlers.trace(handlers.seed(fn, rng_seed=seed)).get_trace()


def same(t1: dict[str, Any], t2: dict[str, Any]) -> bool:
    if list(t1) != list(t2):
        return False
    for name in t1:
        a, b = t1[name], t2[name]
        if a.type != b.type or a.get("is_observed") != b.get("is_observed"):
            return False
        if a.get("scale") != b.get("scale") or a.cond_indep_stack != b.cond_indep_stack:
            return False
        if not np.array_equal(np.asarray(a.value), np.asarray(b.value)):
            return False
    return True


def latents(tr: dict[str, Any]) -> dict[str, Any]:
    return {n: s.value for n, s in tr.items() if s.type == "sample" and not s.is_observed}


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest, backend: Backend) -> Callable[[], None]:
    return MODELS[request.param]


def test_seeded_runs_repeat(model: Callable[[], None]) -> None:
    assert same(run(model), run(model))


def test_block_is_idempotent(model: Callable[[], None]) -> None:
    once = run(handlers.block(model, hide=["a", "left/b", "mu", "x"]))
    twice = run(handlers.block(handlers.block(model, hide=["a", "left/b", "mu", "x"]), hide=["a"]))
    assert same(once, twice)


def test_replaying_a_trace_reproduces_it(model: Callable[[], None]) -> None:
    tr = run(model)
    assert same(run(handlers.replay(model, trace=tr), seed=7), tr)


def test_substituting_the_latents_reproduces_the_trace(model: Callable[[], None]) -> None:
    tr = run(model)
    plates = {n: s.value for n, s in tr.items() if s.type == "plate"}
    assert same(run(handlers.substitute(model, data={**latents(tr), **plates}), seed=7), tr)


def test_uncondition_commutes_with_seed(model: Callable[[], None]) -> None:
    a = run(handlers.uncondition(model))
    b = handlers.trace(handlers.uncondition(handlers.seed(model, rng_seed=0))).get_trace()
    assert same(a, b)


def test_condition_on_a_trace_marks_latents_observed(model: Callable[[], None]) -> None:
    tr = run(model)
    conditioned = run(handlers.condition(model, data=latents(tr)))
    assert all(conditioned[n].is_observed for n in latents(tr))
    for name, value in latents(tr).items():
        np.testing.assert_array_equal(conditioned[name].value, value)


def test_scale_composes_multiplicatively(model: Callable[[], None]) -> None:
    nested = run(handlers.scale(handlers.scale(model, scale=2.0), scale=3.0))
    flat = run(handlers.scale(model, scale=6.0))
    assert same(nested, flat)


def test_nested_scopes_prefix_from_the_inside_out(model: Callable[[], None]) -> None:
    nested = run(handlers.scope(handlers.scope(model, prefix="a"), prefix="b"))
    flat = run(handlers.scope(model, prefix="b/a"))
    assert same(nested, flat)


def test_handlers_that_touch_no_site_change_nothing(model: Callable[[], None]) -> None:
    tr = run(model)
    untouched = run(handlers.do(handlers.mask(model, mask=True), data={}))
    assert same(untouched, tr)

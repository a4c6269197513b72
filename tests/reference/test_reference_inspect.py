"""``get_dependencies`` and ``get_model_relations`` against NumPyro's ``numpyro.infer.inspect``
on the same models (JAX backend): the dicts are equal, except the text of a param's
constraint (each library prints its constraints its own way)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import numpyro  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402
import numpyro.infer.inspect as ninspect  # noqa: E402
from numpyro.handlers import reparam as nreparam  # noqa: E402
from numpyro.infer.reparam import LocScaleReparam as NLocScale  # noqa: E402

import minippl  # noqa: E402
import minippl.distributions as dist  # noqa: E402
import minippl.infer.inspect as inspect  # noqa: E402
from backends import Backend  # noqa: E402
from minippl.handlers import reparam  # noqa: E402
from minippl.infer.reparam import LocScaleReparam  # noqa: E402

pytestmark = pytest.mark.reference

SIGMA = np.array([15.0, 10.0, 16.0], dtype=np.float32)
Y = np.array([28.0, 8.0, -3.0], dtype=np.float32)


def schools(P: ModuleType, D: ModuleType, sigma: Any, y: Any = None) -> None:
    mu = P.sample("mu", D.Normal(0.0, 5.0))
    tau = P.sample("tau", D.HalfCauchy(5.0))
    with P.plate("J", len(sigma)):
        theta = P.sample("theta", D.Normal(mu, tau))
        P.sample("obs", D.Normal(theta, sigma), obs=y)


def collider(P: ModuleType, D: ModuleType) -> None:
    a = P.sample("a", D.Normal(0.0, 1.0))
    b = P.sample("b", D.LogNormal(0.0, 1.0))
    c = P.sample("c", D.Normal(a, b))
    P.sample("d", D.Normal(c, 1.0), obs=0.0)


def plate_sum(P: ModuleType, D: ModuleType) -> None:
    with P.plate("p", 5):
        a = P.sample("a", D.Normal(0.0, 1.0))
    P.sample("b", D.Normal(a.sum(), 1.0), obs=0.0)


def nested(P: ModuleType, D: ModuleType) -> None:
    s = P.param("s", 1.0, constraint=D.constraints.positive)
    with P.plate("i", 3, dim=-2):
        a = P.sample("a", D.Normal(0.0, s))
        with P.plate("j", 2):
            b = P.sample("b", D.Normal(a, 1.0))
    with P.plate("j", 2):
        P.sample("c", D.Normal(b.sum(-2), 1.0))


def special_sites(P: ModuleType, D: ModuleType) -> None:
    a = P.sample("a", D.Normal(0.0, 1.0))
    d = P.deterministic("d", 2.0 * a)
    x = P.sample("x", D.Delta(d + 1.0))
    P.sample("c", D.Normal(x, 1.0))
    P.sample("e", D.Normal(d, 1.0), obs=0.0)
    P.factor("f", -(a**2))


def regression(P: ModuleType, D: ModuleType, x: Any, y: Any) -> None:
    intercept = P.sample("intercept", D.Normal(0.0, 10.0))
    slope = P.sample("slope", D.Normal(0.0, 5.0))
    sigma = P.sample("sigma", D.HalfNormal(1.0))
    mu = P.deterministic("mu", intercept + slope * x)
    with P.plate("data", x.shape[0]):
        P.sample("y", D.Normal(mu, sigma), obs=y)


Case = tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]
CASES: dict[str, Case] = {
    "schools, observed": (schools, (SIGMA,), {"y": Y}),
    "schools, no data": (schools, (SIGMA,), {}),
    "collider": (collider, (), {}),
    "plate sum": (plate_sum, (), {}),
    "nested plates": (nested, (), {}),
    "deterministic, Delta, factor": (special_sites, (), {}),
    "regression": (regression, (np.arange(4.0, dtype=np.float32), np.ones(4, np.float32)), {}),
}


def _both(name: str) -> tuple[Any, Any, tuple[Any, ...], dict[str, Any]]:
    model, args, kwargs = CASES[name]
    return partial(model, minippl, dist), partial(model, numpyro, ndist), args, kwargs


@pytest.mark.parametrize("name", sorted(CASES))
def test_get_dependencies_matches_numpyro(jax_backend: Backend, name: str) -> None:
    ours, theirs, args, kwargs = _both(name)
    expected = ninspect.get_dependencies(theirs, args, kwargs)
    assert inspect.get_dependencies(ours, args, kwargs) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_get_model_relations_matches_numpyro(jax_backend: Backend, name: str) -> None:
    ours, theirs, args, kwargs = _both(name)
    got = inspect.get_model_relations(ours, args, kwargs)
    expected = ninspect.get_model_relations(theirs, args, kwargs)
    assert got["param_constraint"].keys() == expected["param_constraint"].keys()
    got["param_constraint"] = expected["param_constraint"] = {}
    assert got == expected


def test_a_reparameterized_model_matches_numpyro(jax_backend: Backend) -> None:
    ours = reparam(partial(schools, minippl, dist), config={"theta": LocScaleReparam(0)})
    theirs = nreparam(partial(schools, numpyro, ndist), config={"theta": NLocScale(0)})
    for function in ("get_dependencies", "get_model_relations"):
        got = getattr(inspect, function)(ours, (SIGMA,), {"y": Y})
        assert got == getattr(ninspect, function)(theirs, (SIGMA,), {"y": Y}), function

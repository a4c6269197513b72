"""``minippl.infer.inspect``: NumPyro's ``get_dependencies`` and ``get_model_relations``,
found by perturbation, on both backends."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import inspect
from minippl.infer.inspect import get_dependencies, get_model_relations


def schools(sigma: Any, y: Any = None) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", len(sigma)):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


SIGMA = np.array([15.0, 10.0, 16.0])
Y = np.array([28.0, 8.0, -3.0])


def test_a_hierarchical_model(backend: Backend) -> None:
    deps = get_dependencies(schools, (SIGMA,), {"y": Y})
    assert deps["prior_dependencies"] == {
        "mu": {"mu": set()},
        "tau": {"tau": set()},
        "theta": {"theta": set(), "mu": set(), "tau": set()},
        "obs": {"obs": set(), "theta": set()},
    }
    # mu and tau are both parents of theta, so the data tie them together.
    assert deps["posterior_dependencies"] == {
        "mu": {"mu": set(), "theta": set(), "tau": set()},
        "tau": {"tau": set(), "theta": set()},
        "theta": {"theta": set(), "obs": set()},
    }


def test_without_data_the_observed_site_is_latent(backend: Backend) -> None:
    deps = get_dependencies(schools, (SIGMA,))
    assert deps["prior_dependencies"]["obs"] == {"obs": set(), "theta": set()}
    assert deps["posterior_dependencies"]["obs"] == {"obs": set()}
    assert deps["posterior_dependencies"]["theta"] == {"theta": set(), "obs": set()}


def test_a_collider_ties_its_causes_and_only_direct_parents_count(backend: Backend) -> None:
    def collider() -> None:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        b = numpyro.sample("b", dist.LogNormal(0.0, 1.0))
        c = numpyro.sample("c", dist.Normal(a, b))
        numpyro.sample("d", dist.Normal(c, 1.0), obs=0.0)

    deps = get_dependencies(collider)
    assert deps["prior_dependencies"]["d"] == {"d": set(), "c": set()}  # not a or b
    assert deps["posterior_dependencies"] == {
        "a": {"a": set(), "b": set(), "c": set()},
        "b": {"b": set(), "c": set()},
        "c": {"c": set(), "d": set()},
    }


def test_deterministic_sites_are_seen_through_and_point_masses_left_out(
    backend: Backend,
) -> None:
    def model() -> None:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        d = numpyro.deterministic("d", 2.0 * a)
        x = numpyro.sample("x", dist.Delta(d + 1.0))
        numpyro.sample("c", dist.Normal(x, 1.0))
        numpyro.sample("e", dist.Normal(d, 1.0), obs=0.0)
        numpyro.factor("f", -(a**2))

    deps = get_dependencies(model)
    assert deps["prior_dependencies"] == {
        "a": {"a": set()},
        "c": {"c": set()},  # its one parent, the point mass x, is left out (NumPyro's rule)
        "e": {"e": set(), "a": set()},
        "f": {"f": set(), "a": set()},
    }
    assert deps["posterior_dependencies"] == {
        "a": {"a": set(), "e": set(), "f": set()},
        "c": {"c": set()},
    }


def test_a_sum_over_a_plate_ties_the_plate_elements(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("p", 5):
            a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        numpyro.sample("b", dist.Normal(a.sum(), 1.0), obs=0.0)

    deps = get_dependencies(model)
    assert deps["prior_dependencies"] == {"a": {"a": set()}, "b": {"b": set(), "a": set()}}
    assert deps["posterior_dependencies"] == {"a": {"a": {"p"}, "b": set()}}


def nested() -> None:
    s = numpyro.param("s", 1.0, constraint=dist.constraints.positive)
    with numpyro.plate("i", 3, dim=-2):
        a = numpyro.sample("a", dist.Normal(0.0, s))
        with numpyro.plate("j", 2):
            b = numpyro.sample("b", dist.Normal(a, 1.0))
    with numpyro.plate("j", 2):
        numpyro.sample("c", dist.Normal(b.sum(-2), 1.0))


def test_nested_plates_tie_only_the_plate_the_child_sums_over(backend: Backend) -> None:
    deps = get_dependencies(nested)
    assert deps["prior_dependencies"] == {
        "a": {"a": set()},
        "b": {"b": set(), "a": set()},
        "c": {"c": set(), "b": set()},
    }
    assert deps["posterior_dependencies"] == {
        "a": {"a": set(), "b": set()},
        "b": {"b": {"i"}, "c": set()},
        "c": {"c": set()},
    }


def test_model_relations_in_numpyro_form(backend: Backend) -> None:
    relations = get_model_relations(nested)
    assert relations == {
        "sample_sample": {"a": [], "b": ["a"], "c": ["b"]},
        "sample_param": {"a": ["s"], "b": [], "c": []},
        "sample_dist": {"a": "Normal", "b": "Normal", "c": "Normal"},
        "param_constraint": {"s": str(dist.constraints.positive)},
        # j holds b (inside i) and c (outside it): split so that each group nests or not.
        "plate_sample": {"i": ["a", "b"], "j": ["b"], "j__CLONE": ["c"]},
        "observed": [],
    }


def test_model_relations_of_an_observed_deterministic_model(backend: Backend) -> None:
    def model(x: Any, y: Any) -> None:
        slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
        mu = numpyro.deterministic("mu", slope * x)
        x_point = numpyro.sample("x_point", dist.Delta(slope))
        with numpyro.plate("data", 3):
            numpyro.sample("y", dist.Normal(mu + x_point, 1.0), obs=y)

    relations = get_model_relations(model, (np.arange(3.0), np.zeros(3)))
    assert relations["sample_sample"] == {
        "slope": [],
        "mu": ["slope"],
        "x_point": ["slope"],
        "y": ["mu", "x_point"],  # a point mass is moved by a nudge: no fresh draw differs
    }
    assert relations["sample_dist"]["mu"] == "Deterministic"
    assert relations["observed"] == ["y"]
    assert relations["plate_sample"] == {"data": ["y"]}


def test_a_model_that_fails_when_perturbed_warns_and_keeps_going(backend: Backend) -> None:
    means = (0.0, 1.0)

    def model() -> None:
        n = numpyro.sample("n", dist.Delta(backend.xp.asarray(1)))
        numpyro.sample("y", dist.Normal(means[int(n)], 1.0))  # n + 1 is out of range

    with pytest.warns(RuntimeWarning, match="get_model_relations: .* site 'n' was perturbed"):
        relations = get_model_relations(model)
    assert relations["sample_sample"] == {"n": [], "y": []}


def test_reparameterized_site_is_seen_through(backend: Backend) -> None:
    from minippl.infer.reparam import LocScaleReparam

    model = handlers.reparam(schools, config={"theta": LocScaleReparam(centered=0)})
    prior = get_dependencies(model, (SIGMA,), {"y": Y})["prior_dependencies"]
    assert "theta" not in prior  # deterministic after the reparameterization
    assert prior["obs"] == {"obs": set(), "mu": set(), "tau": set(), "theta_decentered": set()}


def test_the_docstring_examples_run(backend: Backend) -> None:
    globs = {"minippl": numpyro, "dist": dist}
    tests = [t for t in doctest.DocTestFinder().find(inspect, extraglobs=globs) if t.examples]
    assert len(tests) == 2
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_render_model_is_where_numpyro_has_it() -> None:
    import minippl.infer

    assert minippl.infer.inspect is inspect  # an attribute of the package, as in NumPyro
    assert inspect.render_model is numpyro.render_model
    assert inspect.__all__ == ["get_dependencies", "get_model_relations", "render_model"]

"""``minippl.render_model``: sites, plates as clusters, observed shading, traced dependencies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.render import get_model_relations, render_model, write_graph


def linear_model(x: Any) -> None:
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, sigma))


def email_model(credit: Any, email: Any = None, payments: Any = None) -> None:
    n = credit.shape[0]
    p = numpyro.sample("p", dist.Beta(1.0, 1.0))
    email = numpyro.sample("email", dist.Bernoulli(p).expand([n]).to_event(1), obs=email)
    b0 = numpyro.sample("b0", dist.Normal(0.0, 1.0))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", n):
        numpyro.sample("payments", dist.Normal(b0 + b1 * email + credit, 1.0), obs=payments)


def edges(graph: Any) -> list[str]:
    return [line.strip() for line in graph.source.splitlines() if "->" in line]


def test_linear_model_dependencies(backend: Backend) -> None:
    x = backend.xp.linspace(-2, 2, 10)
    relations = get_model_relations(linear_model, (x,))
    assert relations.parents == {
        "intercept": [],
        "slope": [],
        "sigma": [],
        "mu": ["intercept", "slope"],
        "obs": ["sigma", "mu"],
    }
    assert relations.plates == {"data": (10, None)}
    assert relations.sites["obs"].plate == "data"
    assert relations.sites["mu"].kind == "deterministic"
    graph = render_model(linear_model, model_args=(x,), render_distributions=True)
    assert edges(graph) == ["intercept -> mu", "slope -> mu", "sigma -> obs", "mu -> obs"]
    assert "subgraph cluster_data" in graph.source
    assert 'style="filled,dashed"' in graph.source  # the deterministic mu
    assert r"sigma ~ HalfNormal\l" in graph.source


def test_only_direct_dependencies(backend: Backend) -> None:
    def chain() -> None:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        b = numpyro.sample("b", dist.Normal(a, 1.0))
        numpyro.sample("c", dist.Normal(b, 1.0))

    assert get_model_relations(chain).parents == {"a": [], "b": ["a"], "c": ["b"]}


def test_observed_discrete_and_nested_plates(backend: Backend) -> None:
    xp = backend.xp
    credit = xp.linspace(0.0, 1.0, 6)
    email = xp.asarray([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    relations = get_model_relations(email_model, (credit,), {"email": email})
    assert relations.parents["email"] == ["p"]
    assert relations.parents["payments"] == ["email", "b0", "b1"]
    assert relations.sites["email"].is_observed
    graph = render_model(email_model, (credit,), {"email": email, "payments": credit})
    assert "email [label=email fillcolor=grey" in graph.source
    assert "payments [label=payments fillcolor=grey" in graph.source
    assert "b0 [label=b0 fillcolor=white" in graph.source

    def nested() -> None:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        with numpyro.plate("outer", 3):
            b = numpyro.sample("b", dist.Normal(a, 1.0))
            with numpyro.plate("inner", 2, dim=-2):
                numpyro.sample("c", dist.Normal(b, 1.0))

    relations = get_model_relations(nested)
    assert relations.plates == {"outer": (3, None), "inner": (2, "outer")}
    assert relations.sites["c"].plate == "inner"
    source = render_model(nested).source
    outer = source.index("subgraph cluster_outer")
    inner = source.index("subgraph cluster_inner")
    assert outer < inner < source.index("}", inner)  # inner is drawn inside outer
    assert 'label="inner (2)"' in source


def test_params_and_reparam(backend: Backend) -> None:
    def with_param() -> None:
        s = numpyro.param("s", 1.0)
        numpyro.sample("x", dist.Normal(0.0, s))

    assert get_model_relations(with_param).parents["x"] == ["s"]
    assert "s [label=s shape=plain]" in render_model(with_param, render_params=True).source
    assert "s [label" not in render_model(with_param).source

    from minippl.infer.reparam import LocScaleReparam

    def schools(sigma: Any) -> None:
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        with numpyro.plate("J", 3):
            theta = numpyro.sample("theta", dist.Normal(mu, tau))
            numpyro.sample("obs", dist.Normal(theta, sigma))

    model = handlers.reparam(schools, config={"theta": LocScaleReparam(centered=0)})
    relations = get_model_relations(model, (backend.xp.ones(3),))
    assert relations.parents["theta"] == ["mu", "tau", "theta_decentered"]
    assert relations.parents["obs"] == ["theta"]


def test_write_graph_without_dot_writes_the_source(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("minippl.render.shutil.which", lambda name: None)
    graph = render_model(linear_model, (backend.xp.ones(3),))
    with pytest.warns(RuntimeWarning, match="dot program is not installed"):
        path = write_graph(graph, tmp_path / "model.svg")
    assert path == tmp_path / "model.gv"
    assert path.read_text() == graph.source
    assert write_graph(graph, tmp_path / "model.dot") == tmp_path / "model.gv"


def test_write_graph_with_dot_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeGraph:
        source = "digraph {}"

        def pipe(self, format: str) -> bytes:
            return f"<{format}/>".encode()

    monkeypatch.setattr("minippl.render.shutil.which", lambda name: "/usr/bin/dot")
    path = write_graph(FakeGraph(), tmp_path / "model.svg")
    assert path == tmp_path / "model.svg" and path.read_text() == "<svg/>"


def test_missing_graphviz_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match="pip install graphviz"):
        render_model(lambda: None)

"""Distributions are pytrees: they pass into and out of ``jit`` and through ``vmap``, on
both backends, wrappers and validation included (``minippl/distributions/pytree.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minippl.distributions as dist
from backends import Backend

A = np.array([0.3, -1.2, 2.0])
P = np.array([0.2, 0.5, 0.3])
COV = np.array([[2.0, 0.3], [0.3, 1.0]])

# Each family, and each wrapper, with a value to evaluate its log density at.
CASES: dict[str, tuple[Callable[[], dist.Distribution], Any]] = {
    "Normal": (lambda: dist.Normal(A, 2.0), A),
    "Normal(floats)": (lambda: dist.Normal(0.5, 2.0), 1.0),
    "validated": (lambda: dist.Normal(A, 2.0, validate_args=True), A),
    "Expanded": (lambda: dist.Normal(0.5, 2.0).expand((2, 3)), np.ones((2, 3))),
    "Independent": (lambda: dist.Normal(A, 1.0).to_event(1), A),
    "Masked": (lambda: dist.Normal(A, 1.0).mask(np.array([True, False, True])), A),
    "Masked(bool)": (lambda: dist.Normal(A, 1.0).mask(False), A),
    "LogNormal": (lambda: dist.LogNormal(A, 1.0), np.exp(A)),
    "Uniform": (lambda: dist.Uniform(np.zeros(3), np.full(3, 4.0)), np.array([0.5, 1.0, 3.0])),
    "Gamma": (lambda: dist.Gamma(np.array([2.0, 3.0]), 1.5), np.array([0.7, 2.0])),
    "Beta": (lambda: dist.Beta(2.0, np.array([3.0, 0.5])), np.array([0.25, 0.5])),
    "Categorical": (lambda: dist.Categorical(probs=P), np.array([0, 2])),
    "Bernoulli": (lambda: dist.Bernoulli(logits=A), np.array([1, 0, 1])),
    "Binomial": (lambda: dist.Binomial(10, probs=P), np.array([3, 5, 0])),
    "Poisson": (lambda: dist.Poisson(np.array([1.0, 4.0])), np.array([2, 3])),
    "Dirichlet": (lambda: dist.Dirichlet(np.array([1.0, 2.0, 3.0])), P),
    "MultivariateNormal": (
        lambda: dist.MultivariateNormal(np.zeros(2), covariance_matrix=COV),
        np.array([0.5, -0.2]),
    ),
    "Delta": (lambda: dist.Delta(A, 0.5), A),
    "TruncatedNormal": (lambda: dist.TruncatedNormal(0.0, 1.0, low=-1.0), A),
    "MixtureSameFamily": (
        lambda: dist.MixtureSameFamily(dist.Categorical(probs=P), dist.Normal(A, 1.0)),
        0.4,
    ),
    "StudentT": (lambda: dist.StudentT(3.0, A, 2.0), A),
    "DiscreteUniform": (lambda: dist.DiscreteUniform(0, 4), np.array([0, 3])),
    "BetaBinomial": (lambda: dist.BetaBinomial(np.array([2.0, 1.0]), 3.0, 10), np.array([0, 7])),
    "Multinomial": (lambda: dist.Multinomial(5, probs=P), np.array([1.0, 2.0, 2.0])),
    "VonMises": (lambda: dist.VonMises(A, 2.0), A),
    "ZeroSumNormal": (lambda: dist.ZeroSumNormal(1.0, (3,)), np.array([0.5, -0.2, -0.3])),
    "LowRankMultivariateNormal": (
        lambda: dist.LowRankMultivariateNormal(np.zeros(2), np.ones((2, 1)), np.ones(2)),
        np.array([0.5, -0.2]),
    ),
    "LKJCholesky": (lambda: dist.LKJCholesky(2, 2.0), np.eye(2)),
    "Wishart": (lambda: dist.Wishart(4.0, scale_tril=np.eye(2)), np.eye(2)),
    "Folded": (lambda: dist.FoldedDistribution(dist.Normal(0.5, 1.0)), A),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_flatten_then_unflatten_gives_the_same_distribution(backend: Backend, name: str) -> None:
    make, value = CASES[name]
    d = make()
    leaves, treedef = backend.tree_flatten(d)
    rebuilt = backend.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is type(d)
    assert (rebuilt.batch_shape, rebuilt.event_shape) == (d.batch_shape, d.event_shape)
    np.testing.assert_allclose(rebuilt.log_prob(value), d.log_prob(value), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_distribution_passes_into_jit(backend: Backend, name: str) -> None:
    make, value = CASES[name]
    d = make()
    compiled = backend.jit(lambda d: d.log_prob(value))
    np.testing.assert_allclose(compiled(d), d.log_prob(value), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_draw_inside_jit_is_the_eager_draw(backend: Backend, name: str) -> None:
    d = CASES[name][0]()
    key = backend.key(5)
    np.testing.assert_allclose(backend.jit(lambda d: d.sample(key))(d), d.sample(key), rtol=1e-5)


def test_the_leaves_are_the_parameters_and_the_shapes_are_static(backend: Backend) -> None:
    leaves, _ = backend.tree_flatten(dist.Normal(0.5, 2.0).expand((3,)))
    assert [float(x) for x in leaves] == [0.5, 2.0]
    assert backend.tree_flatten(dist.Normal(A, 1.0).mask(False))[0][0] is A
    assert len(backend.tree_flatten(dist.Normal(A, 1.0).mask(A > 0))[0]) == 3


def test_a_distribution_comes_out_of_jit(backend: Backend) -> None:
    d = backend.jit(lambda loc: dist.Normal(loc, 2.0).to_event(1))(backend.xp.asarray(A))
    assert isinstance(d, dist.Independent) and isinstance(d.base_dist, dist.Normal)
    assert (d.batch_shape, d.event_shape) == ((), (3,))
    np.testing.assert_allclose(d.log_prob(A), dist.Normal(A, 2.0).to_event(1).log_prob(A))


def test_vmap_maps_over_a_batch_of_distributions(backend: Backend) -> None:
    xp = backend.xp
    batch = dist.Normal(xp.asarray(A), xp.asarray([1.0, 2.0, 3.0]))
    per_member = backend.vmap(lambda d: d.log_prob(0.25))(batch)
    np.testing.assert_allclose(per_member, batch.log_prob(0.25), rtol=1e-6)
    gammas = dist.Gamma(xp.asarray([2.0, 6.0]), xp.ones(2))
    values = xp.asarray([1.5, 4.0])
    paired = backend.vmap(lambda d, x: d.log_prob(x))(gammas, values)
    np.testing.assert_allclose(paired, gammas.log_prob(values), rtol=1e-6)
    # As in NumPyro, the shapes are aux data: inside ``vmap`` a member keeps the batch's
    # ``batch_shape``, so what broadcasts to it (``mean``, ``sample``) has the batch's shape.


def test_jit_traces_python_numbers_as_parameters(backend: Backend) -> None:
    """One compiled program for every ``Normal(loc, scale)``: the numbers are leaves."""
    traced: list[int] = []

    def log_density(d: dist.Distribution) -> Any:
        traced.append(1)
        return d.log_prob(1.0)

    compiled = backend.jit(log_density)
    for loc in (0.0, 1.0, 2.0):
        expected = -0.5 * (1 - loc) ** 2 - 0.9189385
        np.testing.assert_allclose(compiled(dist.Normal(loc, 1.0)), expected, rtol=1e-6)
    assert len(traced) == (1 if backend.name == "jax" else 3)


def test_validation_survives_jit_and_is_not_repeated_on_traced_parameters(
    backend: Backend,
) -> None:
    d = dist.Normal(0.0, 1.0, validate_args=True)
    out = backend.jit(lambda d: d)(d)
    assert out._validate_args is True
    assert float(out.scale) == 1.0


def test_a_subclass_defined_later_is_a_pytree(backend: Backend) -> None:
    class Shifted(dist.Normal):
        def _log_prob(self, value: Any) -> Any:
            return super()._log_prob(value - 1.0)

    d = Shifted(0.0, 1.0)
    out = backend.jit(lambda d: d)(d)
    assert type(out) is Shifted
    np.testing.assert_allclose(backend.jit(lambda d: d.log_prob(1.0))(d), -0.9189385, rtol=1e-6)


@pytest.mark.parametrize("module", ["pytree", "distribution", "kl"])
def test_the_docstring_examples_run(backend: Backend, module: str) -> None:
    """The examples in the docstrings of the pytree split, ``infer_shapes`` and
    ``kl_divergence`` (each module has at least one)."""
    import doctest
    import importlib

    found = doctest.DocTestFinder().find(importlib.import_module(f"minippl.distributions.{module}"))
    examples = [t for t in found if t.examples]
    assert examples
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for example in examples:
        runner.run(example, out=report.append)
    assert runner.failures == 0, "".join(report)

"""``handlers.reparam`` with LocScaleReparam and TransformReparam, on both backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.distributions.transforms import AffineTransform, ExpTransform
from minippl.infer.reparam import LocScaleReparam, Reparam, TransformReparam
from minippl.messages import CondIndepStackFrame as Frame

SIGMA = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


def eight_schools(J: int, sigma: Any, y: Any = None) -> None:
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    with numpyro.plate("J", J):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def reparam_trace(config: Any, backend: Backend, seed: int = 0) -> Any:
    model = handlers.reparam(eight_schools, config=config)
    sigma = backend.xp.asarray(SIGMA)
    return handlers.trace(handlers.seed(model, rng_seed=seed)).get_trace(8, sigma)


def test_guide_trace_table(backend: Backend) -> None:  # guide cell [34]
    tr = reparam_trace({"theta": LocScaleReparam(centered=0)}, backend)
    rows = [(name, site["type"], np.shape(site["value"])) for name, site in tr.items()]
    assert rows == [
        ("mu", "sample", ()),
        ("tau", "sample", ()),
        ("J", "plate", (8,)),
        ("theta_decentered", "sample", (8,)),
        ("theta", "deterministic", (8,)),
        ("obs", "sample", (8,)),
    ]
    noise = tr["theta_decentered"]
    base: Any = noise.fn.base_dist if isinstance(noise.fn, dist.ExpandedDistribution) else noise.fn
    assert float(base.loc) == 0.0 and float(base.scale) == 1.0
    mu, tau = tr["mu"].value, tr["tau"].value
    np.testing.assert_allclose(tr["theta"].value, mu + tau * noise.value, rtol=1e-6)
    # Inside the plate: the noise site and the deterministic site carry the plate's frame.
    assert noise.cond_indep_stack == tr["theta"].cond_indep_stack == [Frame("J", -1, 8)]
    assert list(tr["theta"].keys()) == ["type", "name", "value", "cond_indep_stack"]
    assert float(tr["obs"].fn.loc[0]) == float(np.asarray(tr["theta"].value)[0])


def test_fully_centered_is_unchanged(backend: Backend) -> None:
    plain = reparam_trace({}, backend)
    tr = reparam_trace({"theta": LocScaleReparam(centered=1)}, backend)
    assert list(tr) == list(plain) and tr["theta"].type == "sample"
    np.testing.assert_array_equal(tr["theta"].value, plain["theta"].value)


@pytest.mark.parametrize("centered", [0.3, [0.0, 0.25, 0.5, 0.75, 1.0, 0.1, 0.2, 0.9]])
def test_partial_centering(backend: Backend, centered: Any) -> None:
    c = backend.xp.asarray(centered)
    tr = reparam_trace({"theta": LocScaleReparam(centered=c)}, backend)
    mu, tau = tr["mu"].value, tr["tau"].value
    noise = tr["theta_decentered"]
    base: Any = noise.fn.base_dist if isinstance(noise.fn, dist.ExpandedDistribution) else noise.fn
    np.testing.assert_allclose(base.loc, mu * c, rtol=1e-6)
    np.testing.assert_allclose(base.scale, tau**c, rtol=1e-6)
    expected = mu + tau ** (1 - c) * (noise.value - c * mu)
    np.testing.assert_allclose(tr["theta"].value, expected, rtol=1e-6)


def test_learned_centering_is_a_param(backend: Backend) -> None:
    tr = reparam_trace({"theta": LocScaleReparam()}, backend)
    assert list(tr) == ["mu", "tau", "J", "theta_centered", "theta_decentered", "theta", "obs"]
    site = tr["theta_centered"]
    assert site.type == "param" and float(site.value) == 0.5 and np.shape(site.value) == ()
    assert site.kwargs["constraint"] is dist.constraints.unit_interval


def test_event_dims_are_unwrapped_and_restored(backend: Backend) -> None:
    xp = backend.xp

    def model() -> None:
        with numpyro.plate("p", 2):
            numpyro.sample("x", dist.Normal(xp.zeros(3), 2.0).to_event(1))

    tr = handlers.trace(
        handlers.seed(handlers.reparam(model, config={"x": LocScaleReparam(0.5)}), rng_seed=0)
    ).get_trace()
    noise = tr["x_decentered"]
    assert noise.fn.event_shape == (3,) and noise.fn.batch_shape == (2,)
    assert np.shape(tr["x"].value) == (2, 3)
    np.testing.assert_allclose(tr["x"].value, 2.0**0.5 * noise.value, rtol=1e-6)


class TaggedNormal(dist.Normal):
    """A Normal with one more constructor argument, standing in for StudentT's ``df``
    (StudentT's draws are slow to compile, and only the copying is under test)."""

    def __init__(self, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> None:
        self.df = df
        super().__init__(loc, scale)


def test_shape_params(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("x", TaggedNormal(4.0, 1.0, 2.0))

    config = {"x": LocScaleReparam(0, shape_params=("df",))}
    tr = handlers.trace(
        handlers.seed(handlers.reparam(model, config=config), rng_seed=0)
    ).get_trace()
    noise = tr["x_decentered"]
    assert isinstance(noise.fn, TaggedNormal) and noise.fn.df == 4.0
    np.testing.assert_allclose(tr["x"].value, 1.0 + 2.0 * noise.value, rtol=1e-6)
    with pytest.raises(ValueError, match="attributes loc, scale, nu"):
        handlers.seed(handlers.reparam(model, config={"x": LocScaleReparam(0, ("nu",))}), 0)()


def test_config_as_a_function_and_decorator(backend: Backend) -> None:
    @handlers.reparam(config=lambda msg: LocScaleReparam(0) if msg.name == "theta" else None)
    def model() -> None:
        numpyro.sample("theta", dist.Normal(1.0, 2.0))
        numpyro.sample("other", dist.Normal(1.0, 2.0))

    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
    assert list(tr) == ["theta_decentered", "theta", "other"]


def test_a_reparam_that_returns_a_distribution_and_value(backend: Backend) -> None:
    class Fixed(Reparam):
        def __call__(self, name: str, fn: Any, obs: Any) -> tuple[Any, Any]:
            return dist.Normal(0.0, 3.0), 1.0

    def model() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    tr = handlers.trace(handlers.reparam(model, config={"x": Fixed()})).get_trace()
    assert tr["x"].type == "sample" and tr["x"].is_observed and tr["x"].value == 1.0
    assert float(tr["x"].fn.scale) == 3.0


def test_transform_reparam(backend: Backend) -> None:
    xp = backend.xp

    def model() -> None:
        with numpyro.plate("p", 3):
            affine = AffineTransform(xp.asarray([1.0, 2.0, 3.0]), 0.5)
            numpyro.sample("x", dist.TransformedDistribution(dist.Normal(0.0, 1.0), affine))
            numpyro.sample("s", dist.LogNormal(0.0, 1.0))

    config = {"x": TransformReparam(), "s": TransformReparam()}
    tr = handlers.trace(
        handlers.seed(handlers.reparam(model, config=config), rng_seed=0)
    ).get_trace()
    assert list(tr) == ["p", "x_base", "x", "s_base", "s"]
    assert tr["x"].type == "deterministic" and tr["x_base"].cond_indep_stack == [Frame("p", -1, 3)]
    assert np.shape(tr["x_base"].value) == (3,)
    np.testing.assert_allclose(
        tr["x"].value, np.array([1.0, 2.0, 3.0]) + 0.5 * np.asarray(tr["x_base"].value), rtol=1e-6
    )
    np.testing.assert_allclose(tr["s"].value, np.exp(tr["s_base"].value), rtol=1e-6)


def test_transform_reparam_with_event_dims(backend: Backend) -> None:
    def model() -> None:
        base = dist.Normal(backend.xp.zeros(2), 1.0).to_event(1)
        numpyro.sample("x", dist.TransformedDistribution(base, ExpTransform()))

    tr = handlers.trace(
        handlers.seed(handlers.reparam(model, config={"x": TransformReparam()}), rng_seed=0)
    ).get_trace()
    assert tr["x_base"].fn.event_shape == (2,)
    np.testing.assert_allclose(tr["x"].value, np.exp(tr["x_base"].value), rtol=1e-6)


def test_observed_sites_are_refused(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=1.0)

    for reparameterizer in (LocScaleReparam(0), TransformReparam()):
        with pytest.raises(ValueError, match="site 'y' is observed"):
            handlers.reparam(model, config={"y": reparameterizer})()


def test_transform_reparam_needs_a_transformed_distribution(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(
        ValueError, match="site 'x' has a Normal distribution.*TransformedDistribution"
    ):
        handlers.seed(handlers.reparam(model, config={"x": TransformReparam()}), rng_seed=0)()


def test_centered_outside_the_unit_interval(backend: Backend) -> None:
    with pytest.raises(ValueError, match=r"centered must lie in \[0, 1\]"):
        LocScaleReparam(centered=1.5)

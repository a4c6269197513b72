"""``minippl.control_flow.scan`` and ``cond``: sites inside compiled control flow are traced,
seeded, conditioned and substituted step by step, on both backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.control_flow import cond, scan
from minippl.infer import MCMC, NUTS, Predictive
from minippl.infer.util import log_density


def local_level(T: int, y: Any = None) -> Any:
    """y_t ~ Normal(level_t, s), level_t ~ Normal(level_{t-1}, q), level_0 = 0."""
    q = minippl.sample("q", dist.HalfNormal(1.0))
    s = minippl.sample("s", dist.HalfNormal(1.0))

    def step(level: Any, y_t: Any) -> tuple[Any, Any]:
        level = minippl.sample("level", dist.Normal(level, q))
        minippl.sample("y", dist.Normal(level, s), obs=y_t)
        return level, level

    return scan(step, 0.0, y, length=T)


def _normal_logpdf(x: Any, loc: Any, scale: Any) -> Any:
    x, loc, scale = (np.asarray(v, dtype=float) for v in (x, loc, scale))
    return -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


def test_scan_sites_appear_once_with_a_time_axis(backend: Backend) -> None:
    tr = handlers.trace(handlers.seed(local_level, rng_seed=0)).get_trace(5)
    assert list(tr) == ["q", "s", "level", "y"]
    for name in ("level", "y"):
        assert tuple(np.shape(tr[name].value)) == (5,)
        assert tr[name].fn.batch_shape == (5,)
        assert not tr[name].is_observed
    level, y = (np.asarray(tr[n].value) for n in ("level", "y"))
    q, s = float(tr["q"].value), float(tr["s"].value)
    # The series' log density is the sum of the steps' densities, each with its own loc.
    expected = _normal_logpdf(level, np.concatenate([[0.0], level[:-1]]), q)
    np.testing.assert_allclose(
        np.asarray(tr["level"].fn.log_prob(tr["level"].value)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(tr["y"].fn.log_prob(tr["y"].value)), _normal_logpdf(y, level, s), rtol=1e-5
    )


def test_scan_key_flow_one_split_per_step(backend: Backend) -> None:
    """The outer seed gives the scan one key; step t draws from split(key)[1] after t
    splits of split(key)[0], and seeds its body with it."""

    def model() -> Any:
        return scan(
            lambda c, _: (c, minippl.sample("x", dist.Normal(0.0, 1.0))), 0.0, None, length=4
        )

    tr = handlers.trace(handlers.seed(model, rng_seed=3)).get_trace()
    key = backend.split(backend.key(3))[1]  # what seed hands the control-flow message
    expected = []
    for _ in range(4):
        keys = backend.split(key)
        key, step_key = keys[0], keys[1]
        site_key = backend.split(step_key)[1]  # the step's own seed splits once for x
        expected.append(float(dist.Normal(0.0, 1.0).sample(site_key)))
    np.testing.assert_array_equal(
        np.asarray(tr["x"].value), np.asarray(expected, dtype=np.asarray(tr["x"].value).dtype)
    )
    assert len(set(np.asarray(tr["x"].value).tolist())) == 4


def test_scan_condition_and_substitute_take_one_step_each(backend: Backend) -> None:
    levels = np.array([0.5, 1.0, -0.5, 2.0])
    conditioned = handlers.condition(local_level, data={"level": levels})
    tr = handlers.trace(handlers.seed(conditioned, rng_seed=1)).get_trace(4)
    np.testing.assert_allclose(np.asarray(tr["level"].value), levels)
    assert tr["level"].is_observed
    # Each y is drawn around its own step's level: far apart levels, small noise.
    substituted = handlers.substitute(local_level, data={"level": 100 * levels, "s": 1e-3})
    tr = handlers.trace(handlers.seed(substituted, rng_seed=1)).get_trace(4)
    assert not tr["level"].is_observed
    np.testing.assert_allclose(np.asarray(tr["y"].value), 100 * levels, atol=0.05)


def test_scan_shorter_series_is_continued_by_draws(backend: Backend) -> None:
    given = np.array([1.0, 2.0, 3.0])
    model = handlers.substitute(local_level, data={"level": given, "q": 1e-3})
    tr = handlers.trace(handlers.seed(model, rng_seed=2)).get_trace(6)
    level = np.asarray(tr["level"].value)
    np.testing.assert_allclose(level[:3], given)
    np.testing.assert_allclose(level[3:], 3.0, atol=0.02)  # a random walk from 3 with q tiny
    assert np.all(level[3:] != 3.0)


def test_scan_log_density_and_observed_data(backend: Backend) -> None:
    y = np.array([0.1, 0.4, -0.2])
    params = {"q": 0.7, "s": 0.3, "level": np.array([0.0, 0.5, -0.1])}
    lp, tr = log_density(local_level, (3, y), {}, params)
    assert tr["y"].is_observed
    np.testing.assert_allclose(np.asarray(tr["y"].value), y)
    expected = (
        float(dist.HalfNormal(1.0).log_prob(0.7)) + float(dist.HalfNormal(1.0).log_prob(0.3))
        + _normal_logpdf(params["level"], [0.0, 0.0, 0.5], 0.7).sum()
        + _normal_logpdf(y, params["level"], 0.3).sum()
    )  # fmt: skip
    np.testing.assert_allclose(float(lp), expected, rtol=1e-5)


def test_scan_outside_handlers_and_under_plate(backend: Backend) -> None:
    carry, ys = scan(lambda c, x: (c + x, c * x), 0.0, np.arange(4.0))
    assert float(carry) == 6.0
    np.testing.assert_allclose(np.asarray(ys), [0.0 * 0, 0.0 * 1, 1.0 * 2, 3.0 * 3])
    with pytest.raises(NotImplementedError, match="plate"):
        with handlers.seed(rng_seed=0), minippl.plate("N", 2):
            scan(lambda c, x: (c, c), 0.0, None, length=2)


@pytest.mark.filterwarnings("ignore:.*max_tree_depth")
def test_scan_nuts_then_forecast_with_predictive(backend: Backend) -> None:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(0.0, 0.5, 3)) + rng.normal(0.0, 0.1, 3)
    mcmc = MCMC(
        NUTS(local_level, max_tree_depth=3), num_warmup=15, num_samples=15, progress_bar=False
    )
    mcmc.run(backend.key(0), 3, y)
    samples = mcmc.get_samples()
    assert tuple(np.shape(samples["level"])) == (15, 3)
    assert np.all(np.isfinite(np.asarray(samples["level"])))
    forecast = Predictive(local_level, samples, return_sites=["level", "y"])(backend.key(1), 5)
    level = np.asarray(forecast["level"])
    assert level.shape == (15, 5) and tuple(np.shape(forecast["y"])) == (15, 5)
    np.testing.assert_allclose(level[:, :3], np.asarray(samples["level"]))
    assert np.all(np.isfinite(level[:, 3:]))


def test_cond_traces_the_branch_taken_and_is_conditioned(backend: Backend) -> None:
    def model(flag: Any) -> Any:
        return cond(
            flag,
            lambda _: minippl.sample("x", dist.Normal(20.0, 1.0)),
            lambda _: minippl.sample("x", dist.Normal(-20.0, 1.0)),
            None,
        )

    for flag, sign in ((True, 1.0), (False, -1.0)):
        tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(flag)
        assert list(tr) == ["x"] and float(tr["x"].value) * sign > 10
        np.testing.assert_allclose(float(tr["x"].fn.mean), 20.0 * sign)
    tr = handlers.trace(
        handlers.seed(handlers.condition(model, data={"x": 3.0}), rng_seed=0)
    ).get_trace(True)
    assert float(tr["x"].value) == 3.0 and tr["x"].is_observed


def mixed_steps(T: int, y: Any = None) -> Any:
    """A scan whose sites take both ways of scoring a series (``control_flow/stacked.py``):
    ``level`` and ``y`` whole (no batch dims, only parameters), step by step ``spread`` (a
    HalfNormal holds a Normal), ``pair`` (batch dims) and ``twice`` (sample dims)."""
    q = minippl.sample("q", dist.HalfNormal(1.0))

    def step(level: Any, y_t: Any) -> tuple[Any, Any]:
        level = minippl.sample("level", dist.Normal(level, q))
        spread = minippl.sample("spread", dist.HalfNormal(q))
        minippl.sample("pair", dist.Normal(level + np.array([0.0, 1.0]), spread))
        minippl.sample("twice", dist.Normal(level, spread), sample_shape=(2,))
        minippl.sample("y", dist.Normal(level, spread), obs=y_t)
        return level, level

    return scan(step, 0.0, y, length=T)


Y_MIXED = np.array([0.3, -0.2, 0.8, 1.1])


def test_scan_series_log_prob_is_the_steps_log_probs(backend: Backend) -> None:
    tr = handlers.trace(handlers.seed(mixed_steps, rng_seed=4)).get_trace(4, Y_MIXED)
    for name in ("level", "spread", "pair", "twice", "y"):
        site = tr[name]
        value = np.asarray(site.value)
        steps = [np.asarray(site.fn.step(t).log_prob(value[t])) for t in range(4)]
        np.testing.assert_allclose(
            np.asarray(site.fn.log_prob(site.value)), np.stack(steps), rtol=1e-6, err_msg=name
        )


# A step distribution of each kind, its parameters moving with the carry ``c``: scored whole
# (parameters only, one event each) or step by step (a support, a base distribution, batch
# dims, a count held as structure).
STEP_FAMILIES: dict[str, Any] = {
    "Cauchy": lambda xp, c: dist.Cauchy(c, 0.5),
    "Gamma": lambda xp, c: dist.Gamma(xp.exp(c), 2.0),
    "MultivariateNormal": lambda xp, c: dist.MultivariateNormal(
        xp.stack([c, -c]), scale_tril=2.0 * xp.eye(2)
    ),
    "Dirichlet": lambda xp, c: dist.Dirichlet(xp.stack([xp.exp(c), 1.0 + 0 * c, 2.0 + 0 * c])),
    "Uniform": lambda xp, c: dist.Uniform(c - 1.0, c + 2.0),
    "Categorical": lambda xp, c: dist.Categorical(logits=xp.stack([c, -c, 2 * c])),
    "Beta": lambda xp, c: dist.Beta(xp.exp(c), 2.0),
    "Binomial": lambda xp, c: dist.Binomial(10, probs=1 / (1 + xp.exp(-c))),
    "expand": lambda xp, c: dist.Normal(c, 1.0).expand((2,)),
    "to_event": lambda xp, c: dist.Normal(xp.stack([c, c]), 1.0).to_event(1),
}


@pytest.mark.parametrize("family", list(STEP_FAMILIES))
def test_scan_series_log_prob_of_each_kind_of_step(backend: Backend, family: str) -> None:
    make = STEP_FAMILIES[family]

    def model() -> Any:
        def step(c: Any, _: Any) -> tuple[Any, Any]:
            return c + 0.3, minippl.sample("x", make(backend.xp, c))

        return scan(step, backend.xp.asarray(0.2), None, length=4)

    site = handlers.trace(handlers.seed(model, rng_seed=1)).get_trace()["x"]
    value = np.asarray(site.value)
    steps = np.stack([np.asarray(site.fn.step(t).log_prob(value[t])) for t in range(4)])
    np.testing.assert_allclose(np.asarray(site.fn.log_prob(site.value)), steps, rtol=1e-6)


def test_scan_potential_gradient_matches_finite_differences() -> None:
    """On NumPy, through every step's handlers, the stacked sites and their slices."""
    import finite_differences

    point, flat = finite_differences.check_potential_gradient(mixed_steps, (4, Y_MIXED), {}, 5)
    assert sorted(point) == ["level", "pair", "q", "spread", "twice"]
    assert flat.size == 1 + 4 + 8 + 4 + 8

"""SVI against NumPyro 0.22 on JAX, through the public API of both: the same seed gives
the same loss sequence and the same params.

Tolerance: a relative 1e-5 on every loss of 200 Adam steps, 1e-5 absolute on the params
(float32). The two agree closer than that (a few 1e-7 relative): NumPyro adds the sites'
terms in a set's order and uses the pre-image kept by a transformed draw, so the sums
differ in their last bits. The optimizers alone agree to the bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402
import numpyro.infer.autoguide as nautoguide  # noqa: E402
import numpyro.optim as noptim  # noqa: E402
from numpyro.infer import SVI as NSVI  # noqa: E402
from numpyro.infer import Predictive as NPredictive  # noqa: E402
from numpyro.infer import Trace_ELBO as NTrace_ELBO  # noqa: E402
from numpyro.infer import TraceMeanField_ELBO as NTraceMeanField_ELBO  # noqa: E402

import minippl  # noqa: E402
import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402
from benchmarks.models import (  # noqa: E402
    eight_schools_noncentered,
    logistic_data,
    logistic_regression,
)
from minippl import optim  # noqa: E402
from minippl.infer import SVI, Predictive, Trace_ELBO, TraceMeanField_ELBO, autoguide  # noqa: E402

pytestmark = pytest.mark.reference

STEPS = 200
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], dtype=np.float32)
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], dtype=np.float32)


def _schools_data() -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (8, jnp.asarray(SIGMA)), {"y": jnp.asarray(Y)}


def _logistic_data() -> tuple[tuple[Any, ...], dict[str, Any]]:
    data = logistic_data(rows=500, features=5)
    return (jnp.asarray(data.args[0], dtype=jnp.float32),), {
        "y": jnp.asarray(data.kwargs["y"], dtype=jnp.float32)
    }


MODELS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[], Any]]] = {
    "schools_noncentered": (eight_schools_noncentered, _schools_data),
    "logistic": (logistic_regression, _logistic_data),
}


def _fit_both(model_name: str, guide_name: str, loss: str = "Trace_ELBO") -> Any:
    build, data = MODELS[model_name]
    args, kwargs = data()
    ours_model, their_model = build(minippl, dist), build(numpyro, ndist)
    ours_guide = getattr(autoguide, guide_name)(ours_model)
    their_guide = getattr(nautoguide, guide_name)(their_model)
    ours_loss = {"Trace_ELBO": Trace_ELBO, "TraceMeanField_ELBO": TraceMeanField_ELBO}[loss]
    their_loss = {"Trace_ELBO": NTrace_ELBO, "TraceMeanField_ELBO": NTraceMeanField_ELBO}[loss]
    ours = SVI(ours_model, ours_guide, optim.Adam(0.01), ours_loss()).run(
        0, STEPS, *args, progress_bar=False, **kwargs
    )
    theirs = NSVI(their_model, their_guide, noptim.Adam(0.01), their_loss()).run(
        jax.random.key(0), STEPS, *args, progress_bar=False, **kwargs
    )
    return (ours_guide, ours), (their_guide, theirs), (args, kwargs)


def _assert_same_fit(ours: Any, theirs: Any) -> None:
    a, b = np.asarray(ours.losses), np.asarray(theirs.losses)
    assert a.shape == b.shape == (STEPS,)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert sorted(ours.params) == sorted(theirs.params)
    for name in theirs.params:
        np.testing.assert_allclose(
            np.asarray(ours.params[name]), np.asarray(theirs.params[name]), atol=1e-5, err_msg=name
        )


@pytest.mark.parametrize("guide_name", ["AutoNormal", "AutoDelta"])
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_same_losses_and_params_as_numpyro(
    jax_backend: Backend, model_name: str, guide_name: str
) -> None:
    (_, ours), (_, theirs), _ = _fit_both(model_name, guide_name)
    _assert_same_fit(ours, theirs)


@pytest.mark.parametrize("guide_name", ["AutoMultivariateNormal", "AutoLowRankMultivariateNormal"])
def test_joint_guides_and_their_posterior_api(jax_backend: Backend, guide_name: str) -> None:
    (ours_guide, ours), (their_guide, theirs), _ = _fit_both("logistic", guide_name)
    _assert_same_fit(ours, theirs)
    key = jax.random.key(3)
    pairs = [
        (ours_guide.median(ours.params), their_guide.median(theirs.params)),
        (
            ours_guide.sample_posterior(key, ours.params, sample_shape=(4,)),
            their_guide.sample_posterior(key, theirs.params, sample_shape=(4,)),
        ),
        (
            ours_guide.quantiles(ours.params, [0.1, 0.9]),
            their_guide.quantiles(theirs.params, [0.1, 0.9]),
        ),
    ]
    for mine, reference in pairs:
        for name in reference:
            np.testing.assert_allclose(
                np.asarray(mine[name]), np.asarray(reference[name]), atol=1e-5, err_msg=name
            )


def test_mean_field_elbo_with_autonormal(jax_backend: Backend) -> None:
    (_, ours), (_, theirs), _ = _fit_both(
        "schools_noncentered", "AutoNormal", "TraceMeanField_ELBO"
    )
    _assert_same_fit(ours, theirs)


def test_predictive_with_a_guide_matches(jax_backend: Backend) -> None:
    (ours_guide, ours), (their_guide, theirs), (args, _) = _fit_both(
        "schools_noncentered", "AutoNormal"
    )
    key = jax.random.key(1)
    mine = Predictive(ours_guide.model, guide=ours_guide, params=ours.params, num_samples=6)(
        key, *args
    )
    reference = NPredictive(
        their_guide.model, guide=their_guide, params=theirs.params, num_samples=6
    )(key, *args)
    assert sorted(mine) == sorted(reference)
    for name in reference:
        np.testing.assert_allclose(np.asarray(mine[name]), np.asarray(reference[name]), atol=1e-4)


OPTIMIZERS: dict[str, tuple[Any, Any]] = {
    "SGD": (lambda: optim.SGD(0.1), lambda: noptim.SGD(0.1)),
    "Momentum": (lambda: optim.Momentum(0.1, 0.9), lambda: noptim.Momentum(0.1, 0.9)),
    "Adagrad": (lambda: optim.Adagrad(0.1), lambda: noptim.Adagrad(0.1)),
    "RMSProp": (lambda: optim.RMSProp(0.01), lambda: noptim.RMSProp(0.01)),
    "Adam": (
        lambda: optim.Adam(lambda i: 0.1 / (1 + i)),
        lambda: noptim.Adam(lambda i: 0.1 / (1 + i)),
    ),
    "ClippedAdam": (
        lambda: optim.ClippedAdam(0.05, clip_norm=0.5),
        lambda: noptim.ClippedAdam(0.05, clip_norm=0.5),
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_match_numpyros_bit_for_bit(jax_backend: Backend, name: str) -> None:
    make_ours, make_theirs = OPTIMIZERS[name]
    ours, theirs = make_ours(), make_theirs()
    params = {"a": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.3)}
    state, their_state = ours.init(params), theirs.init(params)
    rng = np.random.default_rng(0)
    for _ in range(5):
        grads = {"a": jnp.asarray(rng.standard_normal(3), jnp.float32), "b": jnp.float32(1.5)}
        state, their_state = ours.update(grads, state), theirs.update(grads, their_state)
        mine, reference = ours.get_params(state), theirs.get_params(their_state)
        for key in params:
            np.testing.assert_array_equal(np.asarray(mine[key]), np.asarray(reference[key]))

"""The optimizers of ``minippl.optim``: each rule's first steps against a computation by
hand (float64 NumPy), on both backends; optax through the adapter on JAX."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backends import Backend
from minippl import optim

X0 = np.array([0.5, -1.0, 2.0])
GRADS = [np.array([1.0, -2.0, 0.0]), np.array([0.5, 1.0, 0.0]), np.array([-3.0, 0.25, 0.0])]


def _run(opt: optim.Optimizer, backend: Backend) -> list[np.ndarray]:
    xp = backend.xp
    state = opt.init({"x": xp.asarray(X0)})
    path = []
    for g in GRADS:
        state = opt.update({"x": xp.asarray(g)}, state)
        path.append(np.asarray(backend.to_numpy(opt.get_params(state)["x"]), dtype=float))
    return path


def _sgd() -> list[np.ndarray]:
    x, out = X0.copy(), []
    for i, g in enumerate(GRADS):
        x = x - 0.1 / (i + 1) * g
        out.append(x)
    return out


def _momentum() -> list[np.ndarray]:
    x, v, out = X0.copy(), np.zeros(3), []
    for g in GRADS:
        v = 0.9 * v + g
        x = x - 0.1 * v
        out.append(x)
    return out


def _adagrad() -> list[np.ndarray]:
    x, gsq, m, out = X0.copy(), np.zeros(3), np.zeros(3), []
    for g in GRADS:
        gsq = gsq + g**2
        inv = np.array([1 / np.sqrt(s) if s > 0 else 0.0 for s in gsq])
        m = 0.1 * g * inv + 0.9 * m
        x = x - 0.1 * m
        out.append(x)
    return out


def _rmsprop() -> list[np.ndarray]:
    x, a, out = X0.copy(), np.zeros(3), []
    for g in GRADS:
        a = 0.9 * a + 0.1 * g**2
        x = x - 0.01 * g / np.sqrt(a + 1e-8)
        out.append(x)
    return out


def _adam(clip: float | None = None) -> list[np.ndarray]:
    x, m, v, out = X0.copy(), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(GRADS, start=1):
        if clip is not None:
            g = np.clip(g, -clip, clip)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        x = x - 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        out.append(x)
    return out


CASES: dict[str, tuple[Any, Any]] = {
    "sgd_schedule": (lambda: optim.SGD(lambda i: 0.1 / (i + 1)), _sgd),
    "momentum": (lambda: optim.Momentum(0.1, mass=0.9), _momentum),
    "adagrad": (lambda: optim.Adagrad(0.1), _adagrad),
    "rmsprop": (lambda: optim.RMSProp(0.01), _rmsprop),
    "adam": (lambda: optim.Adam(0.05), _adam),
    "clipped_adam": (lambda: optim.ClippedAdam(0.05, clip_norm=0.6), lambda: _adam(0.6)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_steps_match_a_hand_computation(backend: Backend, name: str) -> None:
    make, expected = CASES[name]
    got = _run(make(), backend)
    rtol = 1e-12 if backend.name == "numpy" else 1e-5
    for step, (a, b) in enumerate(zip(got, expected(), strict=True)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6, err_msg=f"{name} step {step}")


def test_pytree_params_and_step_count(backend: Backend) -> None:
    xp = backend.xp
    opt = optim.Adam(0.1)
    params = {"a": xp.asarray(1.0), "b": (xp.zeros(2), xp.ones((2, 2)))}
    state = opt.init(params)
    grads = backend.tree_map(xp.ones_like, params)
    state = opt.update(grads, opt.update(grads, state))
    assert int(state[0]) == 2
    new = opt.get_params(state)
    assert new["b"][1].shape == (2, 2)
    # Adam's first steps move each coordinate by about step_size against the gradient's sign.
    np.testing.assert_allclose(float(new["a"]), 1.0 - 0.2, rtol=1e-4)


def test_stable_update_skips_a_non_finite_step(backend: Backend) -> None:
    xp = backend.xp
    opt = optim.SGD(0.1)
    state = opt.init({"x": xp.asarray(1.0)})

    def bad(params: Any) -> tuple[Any, None]:
        return xp.sqrt(params["x"] - 2.0), None  # NaN at x = 1

    with np.errstate(invalid="ignore"):
        (loss, _), new = opt.eval_and_stable_update(bad, state)
    assert np.isnan(float(loss))
    assert float(opt.get_params(new)["x"]) == 1.0


def test_optax_adapter_equals_the_hand_written_adam(jax_backend: Backend) -> None:
    optax = pytest.importorskip("optax")
    got = _run(optim.optax_to_minippl(optax.adam(0.05)), jax_backend)
    ours = _run(optim.Adam(0.05), jax_backend)
    for a, b in zip(got, ours, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "module",
    [
        "minippl.optim",
        "minippl.infer.svi",
        "minippl.infer.elbo",
        "minippl.distributions.kl",
        "minippl.distributions.softplus",
        "minippl.distributions.lowrank",
    ],
)
def test_variational_docstring_examples_run(backend: Backend, module: str) -> None:
    import doctest
    import importlib

    failures, tried = doctest.testmod(importlib.import_module(module), verbose=False)
    assert tried > 0 and failures == 0

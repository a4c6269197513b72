"""The NumPy backend's lean autograd nodes and fused formulas (``backends/numpy_nodes.py``,
``backends/numpy_fused.py``): the same values as the plain NumPy operations and formulas,
gradients bit for bit equal to autograd's own where the VJP formula is autograd's, and equal
to finite differences where it is written out (the fused formulas)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asps
import finite_differences
import numpy as np
import pytest
import scipy.special as sps

from backends import numpy_autodiff as ad
from backends import numpy_fused, numpy_nodes

xp, special = ad.xp, ad.special

X = np.array([0.7, -1.3, 2.1, 0.4, -0.2, 1.1])


def _ops(ns: Any, sp: Any, x: Any) -> Any:
    """Every lean operation, with broadcasting both ways, written against namespace ``ns``."""
    a = ns.reshape(x, (2, 3))
    col = x[:2].reshape(2, 1) if ns is anp else ns.reshape(x[:2], (2, 1))
    terms = [
        ns.sum(a + col) - ns.sum(2.0 - a) + ns.sum(a * col),
        ns.sum(a / (col + 3.0)) + ns.sum(1.0 / (ns.exp(a) + 1.0)),
        ns.sum(-a) + ns.sum(a**2) + ns.sum(ns.abs(a) ** 3.0),
        ns.sum(ns.maximum(a, 0.5)) + ns.sum(ns.minimum(a, col)),
        ns.sum(ns.log(ns.exp(a) + 1.0)) + ns.sum(ns.log1p(ns.square(a))),
        ns.sum(ns.expm1(a / 4.0)) + ns.sum(ns.sqrt(a * a + 1.0)) + ns.sum(ns.tanh(a)),
        ns.sum(ns.clip(a, -1.0, 1.0)) + ns.sum(sp.expit(a)) + ns.sum(sp.logit(sp.expit(a))),
        ns.sum(ns.where(a > 0, a, -a * 0.5)) + ns.sum(ns.sum(a * a, axis=-1)),
        ns.sum(ns.sum(a, axis=0, keepdims=True) * a),
    ]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def test_lean_gradients_are_autograds_bit_for_bit() -> None:
    value, grad = ad.value_and_grad(lambda x: _ops(xp, special, x))(X)
    expected = autograd.grad(lambda x: _ops(anp, asps, x))(X)
    assert value == _ops(np, sps, X)
    np.testing.assert_array_equal(grad, expected)


def _stacks(ns: Any, x: Any) -> Any:
    """Stacks of slices: an array stacked three times, arrays sharing inputs, both axes, and
    an index that takes an entry twice."""
    a, b, c = x[0] * x[1], x[1] * x[2], x[0] + x[2]
    rows = ns.stack([a, b, c, a, x[3], a])
    cols = ns.stack([x[:3], x[3:] * 2.0], axis=1)
    twice = x[np.array([4, 4, 5])]
    return ns.sum(ns.exp(rows) * rows) + ns.sum(cols[1:, 0] * cols[:, 1][0]) + ns.sum(twice**2)


def test_lean_stack_and_slices_are_autograds_bit_for_bit() -> None:
    value, grad = ad.value_and_grad(lambda x: _stacks(xp, x))(X)
    expected_value, expected = autograd.value_and_grad(lambda x: _stacks(anp, x))(X)
    assert value == expected_value
    np.testing.assert_array_equal(grad, expected)


def test_lean_gradients_agree_with_finite_differences() -> None:
    _, grad = ad.value_and_grad(lambda x: _ops(xp, special, x))(X)
    _, numeric = finite_differences.value_and_grad(lambda x: _ops(xp, special, x))(X)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_array_on_the_left_takes_the_lean_node() -> None:
    """``ndarray op box`` reaches the box through NumPy's ufunc protocol."""
    consts = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    def fn(x: Any) -> Any:
        out = (consts - x) * (consts / (x + 10.0))
        assert isinstance(out, numpy_nodes.LeanBox)
        assert not isinstance(consts > x, numpy_nodes.LeanBox)  # comparisons: plain arrays
        return xp.sum(out)

    _, grad = ad.value_and_grad(fn)(X)
    np.testing.assert_allclose(grad, -consts / (X + 10.0) - (consts - X) * consts / (X + 10.0) ** 2)


def test_traced_exponent_and_keywords_fall_back_to_autograd() -> None:
    def fn(x: Any) -> Any:
        powers = xp.sum(x.reshape(2, 3) ** x[0], axis=0, dtype=np.float64)
        ordered = xp.reshape(x, (3, 2), "F")[0] * xp.sum(x, None, np.float64)
        return xp.sum(powers) + xp.sum(ordered)

    _, grad = ad.value_and_grad(fn)(np.abs(X) + 0.5)
    _, numeric = finite_differences.value_and_grad(fn)(np.abs(X) + 0.5)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6)


def test_where_true_everywhere_records_nothing() -> None:
    def fn(x: Any) -> Any:
        kept = xp.where(np.ones(6, dtype=bool), x, -np.inf)
        assert kept is x
        cut = xp.where(x > 0, x, -np.inf)  # not everywhere: recorded
        return xp.sum(kept * 2.0) + xp.sum(xp.where(np.isfinite(cut), cut, 0.0))

    _, grad = ad.value_and_grad(fn)(X)
    np.testing.assert_array_equal(grad, 2.0 + (X > 0))


def test_a_dict_of_leaves_and_a_flat_vector_give_the_same_gradient() -> None:
    tree = {"a": X[:2], "b": np.float64(X[2]), "c": X[3:].reshape(3, 1)}
    flat, unravel = ad.ravel_values(tree)

    def fn(t: Any) -> Any:
        return xp.sum(t["a"] ** 2) * t["b"] + xp.sum(xp.exp(t["c"]))

    value, grad = ad.value_and_grad(fn)(tree)
    flat_value, flat_grad = ad.value_and_grad(lambda v: fn(unravel(v)))(flat)
    assert value == flat_value
    for name in tree:
        assert np.shape(grad[name]) == np.shape(tree[name])
        np.testing.assert_array_equal(grad[name], unravel(flat_grad)[name])


def test_a_leaf_the_value_does_not_use_has_a_zero_gradient() -> None:
    _, grad = ad.value_and_grad(lambda t: xp.sum(t["a"] ** 2))({"a": X[:2], "b": X[2:]})
    np.testing.assert_array_equal(grad["b"], np.zeros(4))


# -- fused formulas ------------------------------------------------------------------------------


def _normal(value: Any, loc: Any, scale: Any) -> Any:
    z = (value - loc) / scale
    return -0.5 * z**2 - np.log(scale) - 0.5 * math.log(2 * math.pi)


def _cauchy(value: Any, loc: Any, scale: Any) -> Any:
    z = (value - loc) / scale
    return -math.log(math.pi) - np.log(scale) - np.log1p(z**2)


def _softplus(x: Any) -> Any:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _bernoulli(value: Any, probs: Any) -> Any:
    return sps.xlogy(value, probs) + sps.xlog1py(1 - value, -probs)


COIN = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
PROBS = np.array([0.2, 0.5, 0.9, 0.6, 0.3, 0.45])

# (name, fused, plain formula, arguments: broadcast against each other)
FORMULAS: list[tuple[str, Callable[..., Any], Callable[..., Any], tuple[Any, ...]]] = [
    ("normal", numpy_fused.normal_log_density, _normal, (X, np.float64(0.3), np.float64(1.7))),
    ("normal, vector loc", numpy_fused.normal_log_density, _normal, (1.5, X, np.float64(0.8))),
    ("cauchy", numpy_fused.cauchy_log_density, _cauchy, (X, np.float64(-0.4), np.float64(2.5))),
    ("cauchy, vector scale", numpy_fused.cauchy_log_density, _cauchy, (X, 0.2, np.abs(X) + 0.1)),
    (
        "softplus",
        numpy_fused.softplus,
        _softplus,
        (np.concatenate([X * 30.0, [0.0]]),),
    ),
    ("add_up", numpy_fused.add_up, lambda t, lp: t + np.sum(lp), (np.float64(2.0), X)),
    (
        "log_sigmoid_slope",
        numpy_fused.log_sigmoid_slope,
        lambda x: -_softplus(x) - _softplus(-x),
        (np.concatenate([X * 30.0, [0.0]]),),
    ),
    ("bernoulli", numpy_fused.bernoulli_log_prob, _bernoulli, (COIN, np.float64(0.3))),
    ("bernoulli, vector probs", numpy_fused.bernoulli_log_prob, _bernoulli, (COIN, PROBS)),
]


@pytest.mark.parametrize(
    "fused, plain, args", [c[1:] for c in FORMULAS], ids=[c[0] for c in FORMULAS]
)
def test_fused_formula_has_the_plain_value(fused: Any, plain: Any, args: tuple[Any, ...]) -> None:
    np.testing.assert_array_equal(fused(*args), plain(*args))


GRADIENTS = [(c[0], c[1], c[3], i) for c in FORMULAS for i in range(len(c[3]))]


@pytest.mark.parametrize(
    "fused, args, argnum", [g[1:] for g in GRADIENTS], ids=[f"{g[0]}-arg{g[3]}" for g in GRADIENTS]
)
def test_fused_gradient_agrees_with_finite_differences(
    fused: Any, args: tuple[Any, ...], argnum: int
) -> None:
    def fn(x: Any) -> Any:
        return xp.sum(fused(*args[:argnum], x, *args[argnum + 1 :]) * (1.0 + X[0]))

    point = np.asarray(args[argnum], dtype=np.float64)
    _, grad = ad.value_and_grad(fn)(point)
    _, numeric = finite_differences.value_and_grad(fn)(point)
    assert np.shape(grad) == np.shape(point)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_fused_formula_under_a_nested_gradient_is_the_plain_formula() -> None:
    """A trace of a trace takes ``plain`` (autograd's wrapper): second derivatives work."""
    d2 = autograd.grad(autograd.grad(lambda m: numpy_fused.normal_log_density(1.0, m, 2.0)))
    assert d2(0.3) == pytest.approx(-0.25)

"""The NumPy backend's autodiff (``backends/numpy_autodiff.py``): the VJPs it adds to autograd,
checked against finite differences at the points where a shortcut would go wrong (repeated
indices, a zero factor, the far tail of the normal cdf), and its stated gaps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import finite_differences
import numpy as np
import pytest

from backends import numpy_autodiff as ad

xp, special = ad.xp, ad.special

X = np.array([0.7, -1.3, 2.1, 0.4])

# (name, scalar function of a vector, point)
CASES: list[tuple[str, Callable[[Any], Any], np.ndarray]] = [
    (
        "broadcast_to new axes",
        lambda x: xp.sum(xp.broadcast_to(x, (3, 4)) * np.arange(12.0).reshape(3, 4)),
        X,
    ),
    ("cumprod", lambda x: xp.sum(xp.cumprod(x) * np.arange(1.0, 5.0)), X),
    (
        "cumprod through a zero",
        lambda x: xp.sum(
            xp.cumprod(x * np.array([1.0, 0.0, 1.0, 1.0]) + np.array([0.0, 0.0, 0.0, 0.0]))
        ),
        X,
    ),
    ("take, repeated", lambda x: xp.sum(xp.take(x, np.array([0, 2, 2, 3])) ** 2), X),
    (
        "take_along_axis, repeated",
        lambda x: xp.sum(
            xp.take_along_axis(xp.reshape(x, (2, 2)), np.array([[1, 1], [0, 1]]), axis=-1) ** 2
        ),
        X,
    ),
    ("diagonal, offset", lambda x: xp.sum(xp.diagonal(xp.reshape(x, (2, 2)) ** 3, 1, -2, -1)), X),
    (
        "index_update",
        lambda x: xp.sum(ad.index_update(x, np.array([1, 2]), x[:2] ** 2) * np.arange(1.0, 5.0)),
        X,
    ),
    ("asarray keeps the trace", lambda x: xp.sum(xp.asarray(x, dtype=np.float64) ** 2), X),
    (
        "cholesky",
        lambda x: xp.sum(
            xp.linalg.cholesky(xp.reshape(x, (2, 2)) @ xp.reshape(x, (2, 2)).T + np.eye(2))
        ),
        X,
    ),
    ("ndtr", lambda x: xp.sum(special.ndtr(x)), X),
    ("log_ndtr, far tail", lambda x: xp.sum(special.log_ndtr(x - 30.0)), X),
    ("ndtri", lambda x: xp.sum(special.ndtri(special.expit(x))), X),
    ("xlogy", lambda x: xp.sum(special.xlogy(x[:2] ** 2, xp.exp(x[2:]))), X),
    ("xlog1py", lambda x: xp.sum(special.xlog1py(x[:2] ** 2, xp.exp(x[2:]))), X),
]


@pytest.mark.parametrize("name,fn,point", CASES, ids=[c[0] for c in CASES])
def test_added_vjps_match_finite_differences(
    name: str, fn: Callable[[Any], Any], point: np.ndarray
) -> None:
    value, grad = ad.value_and_grad(fn)(point)
    fd_value, fd_grad = finite_differences.value_and_grad(fn)(point)
    assert float(value) == pytest.approx(fd_value, rel=1e-12)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-6 * np.abs(fd_grad).max())


def test_xlogy_at_zero_has_the_gradient_of_zero() -> None:
    # x * log(y) is 0 along x = 0 whatever y is; d/dy there is 0, not 0/0 at y = 0.
    _, grad = ad.value_and_grad(lambda v: special.xlogy(v[0], v[1]))(np.array([0.0, 0.0]))
    assert grad[1] == 0.0


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
def test_aux_comes_back_untraced_and_constants_have_zero_gradient() -> None:
    fn = ad.value_and_grad(
        lambda x: (xp.sum(x["a"] ** 2), {"double": 2 * x["a"]}), has_aux=True
    )
    (value, aux), grad = fn({"a": np.array([1.0, 2.0])})
    assert value == 5.0 and not ad.is_traced(aux["double"])
    np.testing.assert_array_equal(grad["a"], [2.0, 4.0])
    _, zero = ad.value_and_grad(lambda x: 3.0)(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(zero, [0.0, 0.0])


def test_the_gaps_raise_instead_of_returning_a_wrong_number() -> None:
    # gammainc's derivative in its shape parameter: listed in the module docstring.
    with pytest.raises(NotImplementedError, match="gammainc"):
        ad.value_and_grad(lambda a: special.gammainc(a, 1.5))(np.float64(2.0))
    # A SciPy function autograd does not know: NumPy refuses the traced array.
    with pytest.raises(TypeError):
        ad.value_and_grad(lambda x: special.erfcx(x))(np.float64(0.5))

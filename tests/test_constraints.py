"""Constraints answer membership point by point (per event), on both backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backends import Backend
from minippl.distributions import constraints as C  # noqa: N812

L3 = np.array([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-1.0, 0.3, 0.7]])
R = np.array([[1.0, 0.0], [0.6, 0.8]])  # Cholesky factor of a 2x2 correlation matrix

# (constraint, points inside, points outside); each list holds single events.
MEMBERSHIP: list[tuple[Any, list[Any], list[Any]]] = [
    (C.real, [0.0, -1e30, 5.5], [np.inf, -np.inf, np.nan]),
    (C.positive, [1e-30, 3.0], [0.0, -1.0]),
    (C.nonnegative, [0.0, 3.0], [-1e-30]),
    (C.unit_interval, [0.0, 0.5, 1.0], [-0.1, 1.1]),
    (C.interval(-1.0, 2.0), [-1.0, 2.0, 0.0], [-1.5, 2.5]),
    (C.open_interval(-1.0, 2.0), [0.0], [-1.0, 2.0]),
    (C.greater_than(2.0), [2.5], [2.0, 1.0]),
    (C.greater_than_eq(2.0), [2.0], [1.9]),
    (C.less_than(2.0), [1.5], [2.0]),
    (C.less_than_eq(2.0), [2.0], [2.1]),
    (C.boolean, [0, 1, True, 0.0], [2, 0.5, -1]),
    (C.integer, [-3.0, 0, 7], [0.5, np.inf]),
    (C.nonnegative_integer, [0, 4.0], [-1, 1.5]),
    (C.positive_integer, [1, 4.0], [0, 1.5]),
    (C.integer_interval(0, 3), [0, 3], [4, -1, 1.5]),
    (C.integer_greater_than(2), [2, 10], [1, 2.5]),
    (C.real_vector, [np.array([0.0, 1.0])], [np.array([0.0, np.nan])]),
    (C.real_matrix, [np.zeros((2, 2))], [np.array([[0.0, np.inf], [0.0, 0.0]])]),
    (C.simplex, [np.array([0.2, 0.8]), np.array([1.0, 0.0, 0.0])],
     [np.array([0.5, 0.6]), np.array([1.5, -0.5])]),
    (C.ordered_vector, [np.array([-1.0, 0.0, 3.0])],
     [np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0])]),
    (C.positive_ordered_vector, [np.array([0.5, 1.0])], [np.array([-1.0, 1.0])]),
    (C.lower_cholesky, [L3], [L3.T, -L3]),
    (C.corr_cholesky, [R, np.eye(3)], [R.T, L3]),
    (C.positive_definite, [L3 @ L3.T], [-np.eye(3), np.array([[1.0, 2.0], [0.0, 1.0]])]),
    (C.corr_matrix, [R @ R.T], [np.array([[1.0, 0.5], [0.5, 2.0]]), L3 @ L3.T]),
    (C.independent(C.positive, 1), [np.array([1.0, 2.0])], [np.array([1.0, -2.0])]),
]


@pytest.mark.parametrize("constraint,inside,outside", MEMBERSHIP, ids=lambda v: repr(v)[:30])
def test_membership(
    backend: Backend, constraint: Any, inside: list[Any], outside: list[Any]
) -> None:
    for x in inside:
        assert bool(np.asarray(constraint(x))), (constraint, x)
        assert bool(np.asarray(constraint.check(x)))
    for x in outside:
        assert not bool(np.asarray(constraint(x))), (constraint, x)


@pytest.mark.parametrize("constraint,inside,outside", MEMBERSHIP, ids=lambda v: repr(v)[:30])
def test_batches_answer_per_event(
    backend: Backend, constraint: Any, inside: list[Any], outside: list[Any]
) -> None:
    same = [o for o in outside if np.shape(o) == np.shape(inside[0])]
    if not same:
        pytest.skip("no outside point of the inside point's shape")
    x = np.stack([np.asarray(inside[0], dtype=float), np.asarray(same[0], dtype=float)])
    ok = np.asarray(constraint(x))
    assert ok.shape == (2,)
    assert ok.tolist() == [True, False]


@pytest.mark.parametrize("constraint,inside,outside", MEMBERSHIP, ids=lambda v: repr(v)[:30])
def test_feasible_like_is_inside(
    backend: Backend, constraint: Any, inside: list[Any], outside: list[Any]
) -> None:
    prototype = np.zeros((4,) + np.shape(inside[0]))

    def feasible(prototype: Any) -> Any:
        point = constraint.feasible_like(prototype)
        return point, constraint(point)

    point, ok = backend.jit(feasible)(prototype)
    assert np.shape(point) == prototype.shape
    assert np.asarray(ok).all()


def test_event_dims_and_discreteness() -> None:
    assert C.real.event_dim == 0 and C.real_vector.event_dim == 1 and C.real_matrix.event_dim == 2
    assert C.simplex.event_dim == 1 and C.ordered_vector.event_dim == 1
    assert C.lower_cholesky.event_dim == 2 and C.corr_cholesky.event_dim == 2
    assert C.independent(C.simplex, 2).event_dim == 3
    assert all(c.is_discrete for c in (C.boolean, C.integer, C.nonnegative_integer,
                                        C.integer_interval(0, 2)))
    assert not any(c.is_discrete for c in (C.real, C.positive, C.simplex, C.corr_cholesky))
    assert C.independent(C.boolean, 1).is_discrete
    with pytest.raises(ValueError):
        C.independent(C.real, -1)


def test_reprs_name_the_constraint() -> None:
    assert repr(C.positive) == "positive"
    assert repr(C.unit_interval) == "unit_interval"
    assert repr(C.simplex) == "simplex"
    assert repr(C.interval(0.0, 1.5)) == "interval(lower_bound=0.0, upper_bound=1.5)"
    assert repr(C.greater_than(2.0)) == "greater_than(lower_bound=2.0)"
    assert repr(C.independent(C.positive, 1)) == "independent(positive, 1)"
    assert repr(C.nonnegative_integer) == "nonnegative_integer"


def test_dependent_cannot_be_checked() -> None:
    with pytest.raises(ValueError, match="dependent"):
        C.dependent(0.0)

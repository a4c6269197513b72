"""Constraints: where a distribution's values and parameters live.

A constraint answers ``check(x)`` (an elementwise boolean array, reduced over its
``event_dim`` rightmost dims) and says how many rightmost dims form one point
(``event_dim``). ``biject_to`` in :mod:`minippl.distributions.transforms` maps each one to a
bijection from unconstrained space, which is how the samplers work in R^n.
"""

from __future__ import annotations

from typing import Any

from minippl.backend import current


class Constraint:
    """A region of R^n; subclasses implement :meth:`__call__`."""

    event_dim = 0
    is_discrete = False

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError

    def check(self, x: Any) -> Any:
        return self(x)

    def feasible_like(self, prototype: Any) -> Any:
        """A point inside the constraint with the shape of ``prototype``."""
        return current().xp.zeros_like(prototype)

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_")


class _Real(Constraint):
    def __call__(self, x: Any) -> Any:
        return current().xp.isfinite(x)


class _Boolean(Constraint):
    is_discrete = True

    def __call__(self, x: Any) -> Any:
        return (x == 0) | (x == 1)


class _GreaterThan(Constraint):
    def __init__(self, lower_bound: Any) -> None:
        self.lower_bound = lower_bound

    def __call__(self, x: Any) -> Any:
        return x > self.lower_bound

    def feasible_like(self, prototype: Any) -> Any:
        return current().xp.broadcast_to(self.lower_bound + 1.0, current().xp.shape(prototype))

    def __repr__(self) -> str:
        return f"greater_than(lower_bound={self.lower_bound})"


class _Positive(_GreaterThan):
    def __init__(self) -> None:
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "positive"


class _Interval(Constraint):
    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def __call__(self, x: Any) -> Any:
        return (x >= self.lower_bound) & (x <= self.upper_bound)

    def feasible_like(self, prototype: Any) -> Any:
        mid = (self.lower_bound + self.upper_bound) / 2
        return current().xp.broadcast_to(mid, current().xp.shape(prototype))

    def __repr__(self) -> str:
        return f"interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _UnitInterval(_Interval):
    def __init__(self) -> None:
        super().__init__(0.0, 1.0)

    def __repr__(self) -> str:
        return "unit_interval"


class _IndependentConstraint(Constraint):
    """A constraint whose rightmost ``reinterpreted_batch_ndims`` dims form one event."""

    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint = base
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.event_dim = base.event_dim + reinterpreted_batch_ndims
        self.is_discrete = base.is_discrete

    def __call__(self, x: Any) -> Any:
        ok = self.base_constraint(x)
        n = self.reinterpreted_batch_ndims
        return current().xp.all(ok, axis=tuple(range(-n, 0))) if n else ok

    def feasible_like(self, prototype: Any) -> Any:
        return self.base_constraint.feasible_like(prototype)

    def __repr__(self) -> str:
        return f"independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Simplex(Constraint):
    event_dim = 1

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        return xp.all(x >= 0, axis=-1) & (xp.abs(xp.sum(x, axis=-1) - 1) < 1e-6)

    def feasible_like(self, prototype: Any) -> Any:
        xp = current().xp
        return xp.full_like(prototype, 1.0 / xp.shape(prototype)[-1])


real = _Real()
boolean = _Boolean()
positive = _Positive()
unit_interval = _UnitInterval()
simplex = _Simplex()
greater_than = _GreaterThan
interval = _Interval
independent = _IndependentConstraint
real_vector = _IndependentConstraint(real, 1)

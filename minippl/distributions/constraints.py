"""Constraints: where a distribution's values and parameters live.

A constraint is called on an array and answers, point by point, whether it lies inside
(reducing over its ``event_dim`` rightmost dims, so a simplex answers once per vector).
Distributions use them twice: ``arg_constraints`` for parameter validation and ``support``
for ``log_prob`` (``-inf`` outside). :func:`minippl.distributions.transforms.biject_to` maps
each continuous constraint to a bijection from unconstrained space, which is how the samplers
work in R^n; a new constraint type registers its bijection there.

The names are NumPyro's, so ``constraints.positive`` and friends read the same.
"""

from __future__ import annotations

from typing import Any

from minippl.backend import current
from minippl.distributions.pytree import PytreeNode


class Constraint(PytreeNode):
    """A region of R^n; subclasses implement :meth:`__call__`. A pytree, for the
    distributions whose support holds their (traced) parameters."""

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
        return type(self).__name__.lstrip("_").lower()


def _asarray(x: Any) -> Any:
    return current().xp.asarray(x)


def _broadcast_like(value: Any, prototype: Any) -> Any:
    xp = current().xp
    dtype = xp.result_type(prototype, float)
    return xp.broadcast_to(xp.asarray(value, dtype=dtype), xp.shape(prototype))


class _Dependent(Constraint):
    """A placeholder for a constraint that depends on other parameters (never checked)."""

    def __init__(self, is_discrete: bool = False, event_dim: int = 0) -> None:
        self.is_discrete = is_discrete
        self.event_dim = event_dim

    def __call__(self, x: Any) -> Any:
        raise ValueError("a dependent constraint cannot decide membership on its own")

    def __repr__(self) -> str:
        return "dependent"


# -- the real line and its pieces -------------------------------------------------------------


class _Real(Constraint):
    """Every finite real number."""

    def __call__(self, x: Any) -> Any:
        return current().xp.isfinite(x)

    def __repr__(self) -> str:
        return "real"


class _GreaterThan(Constraint):
    """Reals strictly above ``lower_bound``."""

    def __init__(self, lower_bound: Any) -> None:
        self.lower_bound = lower_bound

    def __call__(self, x: Any) -> Any:
        return _asarray(x) > self.lower_bound

    def feasible_like(self, prototype: Any) -> Any:
        return _broadcast_like(self.lower_bound + 1.0, prototype)

    def __repr__(self) -> str:
        return f"greater_than(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    """Reals at or above ``lower_bound``."""

    def __call__(self, x: Any) -> Any:
        return _asarray(x) >= self.lower_bound

    def __repr__(self) -> str:
        return f"greater_than_eq(lower_bound={self.lower_bound})"


# The named special cases (``positive``, ``nonnegative`` here, ``nonnegative_integer`` and
# ``positive_integer`` below) repeat one shape, which ``duplicates`` pairs: each is a class of
# its own because ``biject_to`` dispatches on the constraint's type, and its ``repr`` is
# NumPyro's name.
class _Positive(_GreaterThan):
    """Reals strictly above zero."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "positive"


class _Nonnegative(_GreaterThanEq):
    """Reals at or above zero."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def __repr__(self) -> str:
        return "nonnegative"


class _LessThan(Constraint):
    """Reals strictly below ``upper_bound``."""

    def __init__(self, upper_bound: Any) -> None:
        self.upper_bound = upper_bound

    def __call__(self, x: Any) -> Any:
        return _asarray(x) < self.upper_bound

    def feasible_like(self, prototype: Any) -> Any:
        return _broadcast_like(self.upper_bound - 1.0, prototype)

    def __repr__(self) -> str:
        return f"less_than(upper_bound={self.upper_bound})"


class _LessThanEq(_LessThan):
    """Reals at or below ``upper_bound``."""

    def __call__(self, x: Any) -> Any:
        return _asarray(x) <= self.upper_bound

    def __repr__(self) -> str:
        return f"less_than_eq(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    """The closed interval ``[lower_bound, upper_bound]``."""

    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def __call__(self, x: Any) -> Any:
        x = _asarray(x)
        return (x >= self.lower_bound) & (x <= self.upper_bound)

    def feasible_like(self, prototype: Any) -> Any:
        return _broadcast_like((self.lower_bound + self.upper_bound) / 2, prototype)

    def __repr__(self) -> str:
        return f"interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _OpenInterval(_Interval):
    """The open interval ``(lower_bound, upper_bound)``."""

    def __call__(self, x: Any) -> Any:
        x = _asarray(x)
        return (x > self.lower_bound) & (x < self.upper_bound)

    def __repr__(self) -> str:
        return f"open_interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _UnitInterval(_Interval):
    """The closed interval ``[0, 1]``."""

    def __init__(self) -> None:
        super().__init__(0.0, 1.0)

    def __repr__(self) -> str:
        return "unit_interval"


# -- discrete sets -----------------------------------------------------------------------------


class _Boolean(Constraint):
    """The two values 0 and 1 (or False and True)."""

    is_discrete = True

    def __call__(self, x: Any) -> Any:
        x = _asarray(x)
        return (x == 0) | (x == 1)

    def __repr__(self) -> str:
        return "boolean"


def _is_whole(x: Any) -> Any:
    xp = current().xp
    finite = xp.isfinite(x)
    return finite & (xp.mod(xp.where(finite, x, 0), 1) == 0)


class _Integer(Constraint):
    """Every whole number."""

    is_discrete = True

    def __call__(self, x: Any) -> Any:
        return _is_whole(_asarray(x))

    def __repr__(self) -> str:
        return "integer"


class _IntegerInterval(Constraint):
    """Whole numbers from ``lower_bound`` to ``upper_bound``, both included."""

    is_discrete = True

    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def __call__(self, x: Any) -> Any:
        x = _asarray(x)
        return _is_whole(x) & (x >= self.lower_bound) & (x <= self.upper_bound)

    def feasible_like(self, prototype: Any) -> Any:
        return _broadcast_like(self.lower_bound, prototype)

    def __repr__(self) -> str:
        return f"integer_interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    """Whole numbers at or above ``lower_bound``."""

    is_discrete = True

    def __init__(self, lower_bound: Any) -> None:
        self.lower_bound = lower_bound

    def __call__(self, x: Any) -> Any:
        x = _asarray(x)
        return _is_whole(x) & (x >= self.lower_bound)

    def feasible_like(self, prototype: Any) -> Any:
        return _broadcast_like(self.lower_bound, prototype)

    def __repr__(self) -> str:
        return f"integer_greater_than(lower_bound={self.lower_bound})"


class _NonnegativeInteger(_IntegerGreaterThan):
    """0, 1, 2, ..."""

    def __init__(self) -> None:
        super().__init__(0)

    def __repr__(self) -> str:
        return "nonnegative_integer"


class _PositiveInteger(_IntegerGreaterThan):
    """1, 2, 3, ..."""

    def __init__(self) -> None:
        super().__init__(1)

    def __repr__(self) -> str:
        return "positive_integer"


# -- events of more than one number ----------------------------------------------------------


class _IndependentConstraint(Constraint):
    """A constraint whose rightmost ``reinterpreted_batch_ndims`` dims form one event."""

    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int) -> None:
        if reinterpreted_batch_ndims < 0:
            raise ValueError(
                f"independent({base!r}, {reinterpreted_batch_ndims}): the number of "
                "reinterpreted dims must be >= 0"
            )
        self.base_constraint = base
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.event_dim = base.event_dim + reinterpreted_batch_ndims
        self.is_discrete = base.is_discrete

    def __call__(self, x: Any) -> Any:
        ok = self.base_constraint(x)
        n = self.reinterpreted_batch_ndims
        if n == 0:
            return ok
        return current().xp.all(ok, axis=tuple(range(-n, 0)))

    def feasible_like(self, prototype: Any) -> Any:
        return self.base_constraint.feasible_like(prototype)

    def __repr__(self) -> str:
        return f"independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Simplex(Constraint):
    """Vectors of nonnegative entries that sum to one (to within 1e-6)."""

    event_dim = 1

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        x = _asarray(x)
        total = xp.sum(x, axis=-1)
        return xp.all(x >= 0, axis=-1) & (total < 1 + 1e-6) & (total > 1 - 1e-6)

    def feasible_like(self, prototype: Any) -> Any:
        xp = current().xp
        return xp.full_like(prototype, 1.0 / xp.shape(prototype)[-1])

    def __repr__(self) -> str:
        return "simplex"


class _OrderedVector(Constraint):
    """Vectors whose entries strictly increase."""

    event_dim = 1

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        x = _asarray(x)
        return xp.all(x[..., 1:] > x[..., :-1], axis=-1) & xp.all(xp.isfinite(x), axis=-1)

    def feasible_like(self, prototype: Any) -> Any:
        xp = current().xp
        n = xp.shape(prototype)[-1]
        return _broadcast_like(xp.arange(n), prototype)

    def __repr__(self) -> str:
        return "ordered_vector"


class _PositiveOrderedVector(_OrderedVector):
    """Vectors of positive entries that strictly increase."""

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        return super().__call__(x) & xp.all(_asarray(x) > 0, axis=-1)

    def feasible_like(self, prototype: Any) -> Any:
        xp = current().xp
        n = xp.shape(prototype)[-1]
        return _broadcast_like(xp.arange(1, n + 1), prototype)

    def __repr__(self) -> str:
        return "positive_ordered_vector"


def _eye_like(prototype: Any) -> Any:
    xp = current().xp
    return _broadcast_like(xp.eye(xp.shape(prototype)[-1]), prototype)


def _is_lower_with_positive_diagonal(x: Any) -> Any:
    xp = current().xp
    lower = xp.all(xp.reshape(xp.tril(x) == x, x.shape[:-2] + (-1,)), axis=-1)
    positive_diag = xp.all(xp.diagonal(x, axis1=-2, axis2=-1) > 0, axis=-1)
    return lower & positive_diag


class _LowerCholesky(Constraint):
    """Lower-triangular square matrices with a positive diagonal."""

    event_dim = 2

    def __call__(self, x: Any) -> Any:
        return _is_lower_with_positive_diagonal(_asarray(x))

    def feasible_like(self, prototype: Any) -> Any:
        return _eye_like(prototype)

    def __repr__(self) -> str:
        return "lower_cholesky"


class _CorrCholesky(Constraint):
    """Cholesky factors of correlation matrices: lower cholesky with unit-norm rows."""

    event_dim = 2

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        x = _asarray(x)
        tol = xp.finfo(xp.result_type(x, float)).eps * x.shape[-1] * 10
        unit_rows = xp.all(xp.abs(xp.linalg.norm(x, axis=-1) - 1) <= tol, axis=-1)
        return _is_lower_with_positive_diagonal(x) & unit_rows

    def feasible_like(self, prototype: Any) -> Any:
        return _eye_like(prototype)

    def __repr__(self) -> str:
        return "corr_cholesky"


def _is_symmetric(x: Any) -> Any:
    xp = current().xp
    return xp.all(xp.isclose(x, xp.swapaxes(x, -2, -1)), axis=(-2, -1))


class _PositiveDefinite(Constraint):
    """Symmetric matrices whose eigenvalues are all positive."""

    event_dim = 2

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        x = _asarray(x)
        return _is_symmetric(x) & (xp.linalg.eigvalsh(x)[..., 0] > 0)

    def feasible_like(self, prototype: Any) -> Any:
        return _eye_like(prototype)

    def __repr__(self) -> str:
        return "positive_definite"


class _CorrMatrix(Constraint):
    """Positive-definite matrices with a unit diagonal."""

    event_dim = 2

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        x = _asarray(x)
        unit_diag = xp.all(xp.abs(xp.diagonal(x, axis1=-2, axis2=-1) - 1) < 1e-6, axis=-1)
        return _is_symmetric(x) & (xp.linalg.eigvalsh(x)[..., 0] > 0) & unit_diag

    def feasible_like(self, prototype: Any) -> Any:
        return _eye_like(prototype)

    def __repr__(self) -> str:
        return "corr_matrix"


dependent = _Dependent()
real = _Real()
real_vector = _IndependentConstraint(real, 1)
real_matrix = _IndependentConstraint(real, 2)
positive = _Positive()
nonnegative = _Nonnegative()
unit_interval = _UnitInterval()
boolean = _Boolean()
integer = _Integer()
nonnegative_integer = _NonnegativeInteger()
positive_integer = _PositiveInteger()
simplex = _Simplex()
ordered_vector = _OrderedVector()
positive_ordered_vector = _PositiveOrderedVector()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
corr_matrix = _CorrMatrix()
positive_definite = _PositiveDefinite()

greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
less_than_eq = _LessThanEq
interval = _Interval
open_interval = _OpenInterval
integer_interval = _IntegerInterval
integer_greater_than = _IntegerGreaterThan
independent = _IndependentConstraint

__all__ = [
    "Constraint",
    "boolean",
    "corr_cholesky",
    "corr_matrix",
    "dependent",
    "greater_than",
    "greater_than_eq",
    "independent",
    "integer",
    "integer_greater_than",
    "integer_interval",
    "interval",
    "less_than",
    "less_than_eq",
    "lower_cholesky",
    "nonnegative",
    "nonnegative_integer",
    "open_interval",
    "ordered_vector",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_ordered_vector",
    "real",
    "real_matrix",
    "real_vector",
    "simplex",
    "unit_interval",
]

"""Bijections between unconstrained space and each constraint, and ``biject_to``.

The samplers work in R^n: for every latent site they ask ``biject_to(site.fn.support)`` for a
bijection ``t``, move in unconstrained ``x``, evaluate the model at ``y = t(x)`` and add
``t.log_abs_det_jacobian(x, y)`` to the log density. Each transform knows

* ``domain`` and ``codomain`` (constraints; their ``event_dim`` says how many rightmost dims
  form one point, which is how a composite transform knows what to sum),
* ``__call__`` (forward), ``inv`` (the inverse, itself a :class:`Transform`),
* ``log_abs_det_jacobian(x, y)`` (reduced over the domain's event dims),
* ``forward_shape`` / ``inverse_shape`` for the transforms that change shape (a simplex of
  ``K`` entries has ``K - 1`` free coordinates; a ``D x D`` Cholesky factor has a vector).

``biject_to`` is a registry keyed on the constraint's type: it walks the type's MRO, so a
subclass of a registered constraint gets its parent's bijection unless it registers its own.
The choices match NumPyro's, so a model's unconstrained coordinates are the same in both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import numpy as np

from minippl._fast import fusable
from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.pytree import PytreeNode
from minippl.distributions.util import (
    Shape,
    add_diag,
    broadcast_shapes,
    float_type_of,
    log_sigmoid,
    matrix_to_tril_vec,
    shape_of,
    signed_stick_breaking_tril,
    softplus,
    solve_lower,
    sum_rightmost,
    tril_size_to_dim,
    vec_to_tril_matrix,
)

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "CholeskyTransform",
    "ComposeTransform",
    "ConstraintRegistry",
    "CorrCholeskyTransform",
    "CorrMatrixCholeskyTransform",
    "ExpTransform",
    "IdentityTransform",
    "IndependentTransform",
    "LowerCholeskyAffine",
    "LowerCholeskyTransform",
    "OrderedTransform",
    "PowerTransform",
    "SigmoidTransform",
    "SoftplusTransform",
    "StickBreakingTransform",
    "TanhTransform",
    "Transform",
    "biject_to",
]


class Transform(PytreeNode):
    """A bijection ``domain -> codomain`` with its inverse and log |det Jacobian|. A pytree,
    for the transformed distributions whose transforms hold (traced) parameters."""

    domain: Constraint = constraints.real
    codomain: Constraint = constraints.real

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward map")

    def _inverse(self, y: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    @property
    def inv(self) -> Transform:
        """The inverse bijection ``codomain -> domain``."""
        return _InverseTransform(self)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        """``log |det dy/dx|`` at ``x`` (with ``y = self(x)``), summed over the event dims."""
        raise NotImplementedError(f"{type(self).__name__} has no log-Jacobian")

    def call_with_intermediates(self, x: Any) -> tuple[Any, Any]:
        return self(x), None

    def forward_shape(self, shape: Shape) -> Shape:
        """The shape of ``self(x)`` for ``x`` of ``shape``."""
        return shape

    def inverse_shape(self, shape: Shape) -> Shape:
        """The shape of ``self.inv(y)`` for ``y`` of ``shape``."""
        return shape

    @property
    def sign(self) -> Any:
        """The sign of the derivative, for monotone scalar transforms."""
        raise NotImplementedError(f"{type(self).__name__} has no single sign")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _ParameterFree(Transform):
    """A transform with no parameters: two of the same class are equal."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class _InverseTransform(Transform):
    """The inverse of another transform (what ``t.inv`` returns)."""

    def __init__(self, base: Transform) -> None:
        self._base = base
        self.domain = base.codomain
        self.codomain = base.domain

    @property
    def inv(self) -> Transform:
        return self._base

    def __call__(self, x: Any) -> Any:
        return self._base._inverse(x)

    def _inverse(self, y: Any) -> Any:
        return self._base(y)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        return -self._base.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape: Shape) -> Shape:
        return self._base.inverse_shape(shape)

    def inverse_shape(self, shape: Shape) -> Shape:
        return self._base.forward_shape(shape)

    @property
    def sign(self) -> Any:
        return self._base.sign

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _InverseTransform) and self._base == other._base

    def __hash__(self) -> int:
        return hash(("inverse", self._base))

    def __repr__(self) -> str:
        return f"{self._base!r}.inv"


# -- scalar transforms ------------------------------------------------------------------------


class IdentityTransform(_ParameterFree):
    """``y = x``."""

    sign = 1

    def __call__(self, x: Any) -> Any:
        return x

    def _inverse(self, y: Any) -> Any:
        return y

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        return current().xp.zeros_like(x)


class ExpTransform(Transform):
    """``y = exp(x)``: reals to positive reals (or a bounded domain to its image)."""

    sign = 1

    def __init__(self, domain: Constraint = constraints.real) -> None:
        self.domain = domain
        self.codomain = self._image(domain)

    def _image(self, domain: Constraint) -> Constraint:
        if domain is constraints.real:
            return constraints.positive
        if domain is constraints.ordered_vector:
            return constraints.positive_ordered_vector
        if isinstance(domain, constraints.interval):
            return constraints.interval(self(domain.lower_bound), self(domain.upper_bound))
        if isinstance(domain, constraints.greater_than):
            return constraints.greater_than(self(domain.lower_bound))
        raise NotImplementedError(f"ExpTransform: no image known for the domain {domain!r}")

    def __call__(self, x: Any) -> Any:
        return current().xp.exp(x)

    def _inverse(self, y: Any) -> Any:
        return current().xp.log(y)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        return x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExpTransform) and other.domain is self.domain

    def __hash__(self) -> int:
        return hash((ExpTransform, id(self.domain)))


class SigmoidTransform(_ParameterFree):
    """``y = 1 / (1 + exp(-x))``: reals to the unit interval (clipped away from 0 and 1)."""

    codomain = constraints.unit_interval
    sign = 1

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        info = xp.finfo(float_type_of(x))
        return xp.clip(current().special.expit(x), info.tiny, 1.0 - info.eps)

    def _inverse(self, y: Any) -> Any:
        return current().special.logit(y)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        return log_sigmoid_slope(x)


@fusable
def log_sigmoid_slope(x: Any) -> Any:
    """``log(d sigmoid / dx) = log(sigmoid(x) sigmoid(-x)) = -softplus(x) - softplus(-x)``."""
    return -softplus(x) - softplus(-x)


class TanhTransform(_ParameterFree):
    """``y = tanh(x)``: reals to the open interval (-1, 1)."""

    codomain = constraints.open_interval(-1.0, 1.0)
    sign = 1

    def __call__(self, x: Any) -> Any:
        return current().xp.tanh(x)

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        eps = xp.finfo(float_type_of(y)).eps
        return xp.arctanh(xp.clip(y, -1 + eps, 1 - eps))

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        # 1 - tanh(x)^2 = 4 / (e^x + e^-x)^2, written to stay finite for large |x|.
        return 2.0 * (math.log(2.0) - x - softplus(-2.0 * x))


class SoftplusTransform(_ParameterFree):
    """``y = log(1 + exp(x))``: reals to positive reals, linear for large ``x``."""

    codomain = constraints.positive
    sign = 1

    def __call__(self, x: Any) -> Any:
        return softplus(x)

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        return xp.log(-xp.expm1(-y)) + y

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        return log_sigmoid(x)


class AffineTransform(Transform):
    """``y = loc + scale * x``, elementwise; maps bounded domains to their images."""

    def __init__(self, loc: Any, scale: Any, domain: Constraint = constraints.real) -> None:
        self.loc = loc
        self.scale = scale
        self.domain = domain
        self.codomain = self._image(domain)

    def _negative_scale(self) -> bool:
        backend = current()
        if not backend.is_concrete(self.scale):
            return False  # traced: assume a positive scale, as NumPyro does
        return bool(np.all(backend.to_numpy(self.scale) < 0))

    def _image(self, domain: Constraint) -> Constraint:
        if domain is constraints.real:
            return constraints.real
        flip = self._negative_scale()
        if isinstance(domain, constraints.interval):
            low, high = self(domain.lower_bound), self(domain.upper_bound)
            return constraints.interval(high, low) if flip else constraints.interval(low, high)
        if isinstance(domain, constraints.greater_than):
            bound = self(domain.lower_bound)
            return constraints.less_than(bound) if flip else constraints.greater_than(bound)
        if isinstance(domain, constraints.less_than):
            bound = self(domain.upper_bound)
            return constraints.greater_than(bound) if flip else constraints.less_than(bound)
        raise NotImplementedError(f"AffineTransform: no image known for the domain {domain!r}")

    def __call__(self, x: Any) -> Any:
        return self.loc + self.scale * x

    def _inverse(self, y: Any) -> Any:
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        shape = broadcast_shapes(shape_of(x), shape_of(self.scale))
        return xp.broadcast_to(xp.log(xp.abs(self.scale)), shape)

    def forward_shape(self, shape: Shape) -> Shape:
        return broadcast_shapes(shape, shape_of(self.loc), shape_of(self.scale))

    def inverse_shape(self, shape: Shape) -> Shape:
        return broadcast_shapes(shape, shape_of(self.loc), shape_of(self.scale))

    @property
    def sign(self) -> Any:
        return current().xp.sign(self.scale)

    def __repr__(self) -> str:
        return f"AffineTransform(loc={self.loc}, scale={self.scale})"


# Each parametrised transform answers the same questions (shapes, sign, repr) from its own
# parameters; ``duplicates`` pairs their answers by shape, e.g. with AffineTransform's above.
class PowerTransform(Transform):
    """``y = x ** exponent`` on the positive reals."""

    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent: Any) -> None:
        self.exponent = exponent

    def __call__(self, x: Any) -> Any:
        return current().xp.power(x, self.exponent)

    def _inverse(self, y: Any) -> Any:
        return current().xp.power(y, 1 / self.exponent)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        return xp.log(xp.abs(self.exponent * y / x))

    def forward_shape(self, shape: Shape) -> Shape:
        return broadcast_shapes(shape, shape_of(self.exponent))

    def inverse_shape(self, shape: Shape) -> Shape:
        return broadcast_shapes(shape, shape_of(self.exponent))

    @property
    def sign(self) -> Any:
        return current().xp.sign(self.exponent)

    def __repr__(self) -> str:
        return f"PowerTransform(exponent={self.exponent})"


class AbsTransform(_ParameterFree):
    """``y = |x|``: not a bijection; its "inverse" returns the positive preimage."""

    codomain = constraints.positive

    def __call__(self, x: Any) -> Any:
        return current().xp.abs(x)

    def _inverse(self, y: Any) -> Any:
        return y


# -- combining transforms -----------------------------------------------------------------------


class ComposeTransform(Transform):
    """``parts[-1](... parts[1](parts[0](x)))``, with the log-Jacobians summed."""

    def __init__(self, parts: Sequence[Transform]) -> None:
        if not parts:
            raise ValueError("ComposeTransform needs at least one part")
        self.parts = list(parts)
        # Event dims of the input and output: a part that works on bigger events than what
        # it receives turns the extra dims of its input into event dims (and vice versa).
        in_dim = self.parts[-1].domain.event_dim
        for part in reversed(self.parts[:-1]):
            in_dim = part.domain.event_dim + max(in_dim - part.codomain.event_dim, 0)
        out_dim = self.parts[0].codomain.event_dim
        for part in self.parts[1:]:
            out_dim = part.codomain.event_dim + max(out_dim - part.domain.event_dim, 0)
        self.domain = _with_event_dim(self.parts[0].domain, in_dim)
        self.codomain = _with_event_dim(self.parts[-1].codomain, out_dim)

    def __call__(self, x: Any) -> Any:
        for part in self.parts:
            x = part(x)
        return x

    def _inverse(self, y: Any) -> Any:
        for part in reversed(self.parts):
            y = part.inv(y)
        return y

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        total: Any = 0.0
        event_dim = self.domain.event_dim
        for i, part in enumerate(self.parts):
            y_part = y if i == len(self.parts) - 1 else part(x)
            extra = event_dim - part.domain.event_dim
            total = total + sum_rightmost(part.log_abs_det_jacobian(x, y_part), extra)
            event_dim = part.codomain.event_dim + extra
            x = y_part
        return total

    def forward_shape(self, shape: Shape) -> Shape:
        for part in self.parts:
            shape = part.forward_shape(shape)
        return shape

    def inverse_shape(self, shape: Shape) -> Shape:
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return shape

    @property
    def sign(self) -> Any:
        sign: Any = 1
        for part in self.parts:
            sign = sign * part.sign
        return sign

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(tuple(self.parts))

    def __repr__(self) -> str:
        return f"ComposeTransform({self.parts!r})"


def _with_event_dim(constraint: Constraint, event_dim: int) -> Constraint:
    extra = event_dim - constraint.event_dim
    return constraints.independent(constraint, extra) if extra > 0 else constraint


class IndependentTransform(Transform):
    """``base`` applied elementwise, with its rightmost ``reinterpreted_batch_ndims`` dims
    treated as one event (their log-Jacobians summed)."""

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int) -> None:
        if reinterpreted_batch_ndims < 0:
            raise ValueError("IndependentTransform: reinterpreted_batch_ndims must be >= 0")
        self.base_transform = base_transform
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.domain = constraints.independent(base_transform.domain, reinterpreted_batch_ndims)
        self.codomain = constraints.independent(base_transform.codomain, reinterpreted_batch_ndims)

    def __call__(self, x: Any) -> Any:
        return self.base_transform(x)

    def _inverse(self, y: Any) -> Any:
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        result = self.base_transform.log_abs_det_jacobian(x, y)
        n = self.reinterpreted_batch_ndims
        if len(shape_of(result)) < n:
            raise ValueError(
                f"IndependentTransform: expected an input of at least {self.domain.event_dim} "
                f"dims, got shape {shape_of(x)}"
            )
        return sum_rightmost(result, n)

    def forward_shape(self, shape: Shape) -> Shape:
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape: Shape) -> Shape:
        return self.base_transform.inverse_shape(shape)

    @property
    def sign(self) -> Any:
        return self.base_transform.sign

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IndependentTransform)
            and self.reinterpreted_batch_ndims == other.reinterpreted_batch_ndims
            and self.base_transform == other.base_transform
        )

    def __hash__(self) -> int:
        return hash((IndependentTransform, self.base_transform, self.reinterpreted_batch_ndims))

    def __repr__(self) -> str:
        return f"IndependentTransform({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


# -- vector and matrix transforms --------------------------------------------------------------


def _stick_offsets(n: int) -> Any:
    # Shifting x by log(n - i) makes x = 0 land on the uniform simplex (1/K, ..., 1/K).
    xp = current().xp
    return xp.log(n - xp.arange(n))


class StickBreakingTransform(_ParameterFree):
    """R^(K-1) to the K-simplex: each coordinate takes a sigmoid share of the stick left."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        x = xp.asarray(x)
        z = SigmoidTransform()(x - _stick_offsets(x.shape[-1]))
        left = xp.cumprod(1 - z, axis=-1)
        pad_right = [(0, 0)] * (x.ndim - 1) + [(0, 1)]
        pad_left = [(0, 0)] * (x.ndim - 1) + [(1, 0)]
        z_padded = xp.pad(z, pad_right, mode="constant", constant_values=1.0)
        left_before = xp.pad(left, pad_left, mode="constant", constant_values=1.0)
        return z_padded * left_before

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        y = xp.asarray(y)
        head = y[..., :-1]
        left = xp.clip(1 - xp.cumsum(head, axis=-1), xp.finfo(y.dtype).tiny, None)
        # logit of each share: y_i / (what was left after taking y_i)
        x = xp.log(head / left)
        return x + _stick_offsets(x.shape[-1])

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        x = xp.asarray(x)
        shifted = x - _stick_offsets(x.shape[-1])
        # dy_i/dx_i = y_i * (1 - sigmoid(x_i)), and the Jacobian is triangular.
        return xp.sum(xp.log(y[..., :-1]) + (log_sigmoid(shifted) - shifted), axis=-1)

    def forward_shape(self, shape: Shape) -> Shape:
        if len(shape) < 1:
            raise ValueError("StickBreakingTransform needs an input of at least one dim")
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape: Shape) -> Shape:
        if len(shape) < 1:
            raise ValueError("StickBreakingTransform needs an input of at least one dim")
        return shape[:-1] + (shape[-1] - 1,)


class OrderedTransform(_ParameterFree):
    """R^K to increasing vectors: the first entry, then positive (exp) increments."""

    domain = constraints.real_vector
    codomain = constraints.ordered_vector

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        steps = xp.concatenate([x[..., :1], xp.exp(x[..., 1:])], axis=-1)
        return xp.cumsum(steps, axis=-1)

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        return xp.concatenate([y[..., :1], xp.log(y[..., 1:] - y[..., :-1])], axis=-1)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        return current().xp.sum(x[..., 1:], axis=-1)


def _tril_forward_shape(shape: Shape, offset: int = 0) -> Shape:
    if len(shape) < 1:
        raise ValueError("expected a vector input")
    n = tril_size_to_dim(shape[-1]) - offset
    return shape[:-1] + (n, n)


def _tril_inverse_shape(shape: Shape, offset: int = 0) -> Shape:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"expected square matrices, got shape {shape}")
    n = shape[-1] + offset
    return shape[:-2] + (n * (n + 1) // 2,)


class LowerCholeskyTransform(_ParameterFree):
    """R^(n(n+1)/2) to lower-triangular matrices with a positive (exp) diagonal."""

    domain = constraints.real_vector
    codomain = constraints.lower_cholesky

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        n = tril_size_to_dim(x.shape[-1])
        strict = vec_to_tril_matrix(x[..., :-n], diagonal=-1)
        return add_diag(strict, xp.exp(x[..., -n:]))

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        strict = matrix_to_tril_vec(y, diagonal=-1)
        return xp.concatenate([strict, xp.log(xp.diagonal(y, axis1=-2, axis2=-1))], axis=-1)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        n = tril_size_to_dim(x.shape[-1])
        return current().xp.sum(x[..., -n:], axis=-1)

    def forward_shape(self, shape: Shape) -> Shape:
        return _tril_forward_shape(shape)

    def inverse_shape(self, shape: Shape) -> Shape:
        return _tril_inverse_shape(shape)


class CorrCholeskyTransform(_ParameterFree):
    """R^(D(D-1)/2) to Cholesky factors of D x D correlation matrices.

    The vector fills the strictly lower triangle row by row; ``tanh`` maps each entry into
    (-1, 1); a signed stick-breaking then makes every row a unit vector with a positive
    diagonal. The log-Jacobian is taken with respect to the strictly lower triangle of ``y``.
    """

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky

    def __call__(self, x: Any) -> Any:
        return signed_stick_breaking_tril(current().xp.tanh(x))

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        left = 1 - xp.cumsum(y * y, axis=-1)
        pad = [(0, 0)] * (y.ndim - 1) + [(1, 0)]
        left_before = xp.pad(left[..., :-1], pad, mode="constant", constant_values=1.0)
        t = matrix_to_tril_vec(y, diagonal=-1) / xp.sqrt(
            matrix_to_tril_vec(left_before, diagonal=-1)
        )
        return xp.arctanh(t)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        left = 1 - xp.cumsum(y * y, axis=-1)
        # Entry (i, j) of y is t_ij times sqrt(left before j); diagonal=-2 picks exactly the
        # "left before" factors of the strictly lower entries.
        stick = 0.5 * xp.sum(xp.log(matrix_to_tril_vec(left, diagonal=-2)), axis=-1)
        tanh = xp.sum(TanhTransform().log_abs_det_jacobian(x, None), axis=-1)
        return stick + tanh

    def forward_shape(self, shape: Shape) -> Shape:
        return _tril_forward_shape(shape, offset=-1)

    def inverse_shape(self, shape: Shape) -> Shape:
        return _tril_inverse_shape(shape, offset=-1)


class CholeskyTransform(_ParameterFree):
    """Positive-definite matrices to their lower Cholesky factors, ``y = cholesky(x)``.

    The log-Jacobian is with respect to the lower triangles of ``x`` and ``y``.
    """

    domain: Constraint = constraints.positive_definite
    codomain: Constraint = constraints.lower_cholesky

    def __call__(self, x: Any) -> Any:
        return current().xp.linalg.cholesky(x)

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        return xp.matmul(y, xp.swapaxes(y, -2, -1))

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        n = y.shape[-1]
        # d(LL^T) / dL has determinant 2^n prod_i L_ii^(n - i + 1); this is its inverse.
        powers = xp.arange(n, 0, -1)
        log_diag = xp.log(xp.diagonal(y, axis1=-2, axis2=-1))
        return -n * math.log(2.0) - xp.sum(powers * log_diag, axis=-1)


class CorrMatrixCholeskyTransform(CholeskyTransform):
    """Correlation matrices to their Cholesky factors (off-diagonal coordinates only)."""

    domain = constraints.corr_matrix
    codomain = constraints.corr_cholesky

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        n = y.shape[-1]
        powers = xp.arange(n - 1, -1, -1)
        return -xp.sum(powers * xp.log(xp.diagonal(y, axis1=-2, axis2=-1)), axis=-1)


class LowerCholeskyAffine(Transform):
    """``y = loc + scale_tril @ x`` for vectors ``x`` (how a MultivariateNormal draws)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, loc: Any, scale_tril: Any) -> None:
        shape = shape_of(scale_tril)
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(f"LowerCholeskyAffine: scale_tril must be square, got {shape}")
        self.loc = loc
        self.scale_tril = scale_tril

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        return self.loc + xp.squeeze(xp.matmul(self.scale_tril, x[..., None]), axis=-1)

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        return solve_lower(self.scale_tril, xp.expand_dims(y - self.loc, -1))[..., 0]

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        xp = current().xp
        diag = xp.diagonal(self.scale_tril, axis1=-2, axis2=-1)
        return xp.broadcast_to(xp.sum(xp.log(diag), axis=-1), shape_of(x)[:-1])

    def forward_shape(self, shape: Shape) -> Shape:
        return broadcast_shapes(shape, shape_of(self.loc), shape_of(self.scale_tril)[:-1])

    def inverse_shape(self, shape: Shape) -> Shape:
        return broadcast_shapes(shape, shape_of(self.loc), shape_of(self.scale_tril)[:-1])


# -- biject_to ------------------------------------------------------------------------------------

C = TypeVar("C", bound=Callable[[Any], Transform])


class ConstraintRegistry:
    """Maps a constraint type to a factory ``constraint -> Transform``."""

    def __init__(self) -> None:
        self._factories: dict[type, Callable[[Any], Transform]] = {}

    @overload
    def register(self, constraint: Any, factory: None = None) -> Callable[[C], C]: ...

    @overload
    def register(self, constraint: Any, factory: C) -> C: ...

    def register(self, constraint: Any, factory: C | None = None) -> Any:
        """Register ``factory`` for a constraint type (or the type of a constraint instance).

        Usable as a decorator: ``@biject_to.register(MyConstraint)``.
        """
        if factory is None:

            def decorator(fn: C) -> C:
                self.register(constraint, fn)
                return fn

            return decorator
        key = constraint if isinstance(constraint, type) else type(constraint)
        self._factories[key] = factory
        return factory

    def __call__(self, constraint: Constraint) -> Transform:
        for cls in type(constraint).__mro__:
            factory = self._factories.get(cls)
            if factory is not None:
                return factory(constraint)
        raise NotImplementedError(
            f"biject_to: no bijection is registered for the constraint {constraint!r} "
            f"(type {type(constraint).__name__}); register one with biject_to.register"
        )


biject_to = ConstraintRegistry()


@biject_to.register(constraints.real)
def _to_real(constraint: Constraint) -> Transform:
    return IdentityTransform()


@biject_to.register(constraints.independent)
def _to_independent(constraint: Any) -> Transform:
    base = biject_to(constraint.base_constraint)
    return IndependentTransform(base, constraint.reinterpreted_batch_ndims)


@biject_to.register(constraints.positive)
@biject_to.register(constraints.nonnegative)
def _to_positive(constraint: Constraint) -> Transform:
    return ExpTransform()


@biject_to.register(constraints.greater_than)
def _to_greater_than(constraint: Any) -> Transform:
    shift = AffineTransform(constraint.lower_bound, 1.0, domain=constraints.positive)
    return ComposeTransform([ExpTransform(), shift])


@biject_to.register(constraints.less_than)
def _to_less_than(constraint: Any) -> Transform:
    flip = AffineTransform(constraint.upper_bound, -1.0, domain=constraints.positive)
    return ComposeTransform([ExpTransform(), flip])


@biject_to.register(constraints.unit_interval)
def _to_unit_interval(constraint: Constraint) -> Transform:
    return SigmoidTransform()


@biject_to.register(constraints.interval)
def _to_interval(constraint: Any) -> Transform:
    width = constraint.upper_bound - constraint.lower_bound
    stretch = AffineTransform(constraint.lower_bound, width, domain=constraints.unit_interval)
    return ComposeTransform([SigmoidTransform(), stretch])


@biject_to.register(constraints.simplex)
def _to_simplex(constraint: Constraint) -> Transform:
    return StickBreakingTransform()


@biject_to.register(constraints.ordered_vector)
def _to_ordered_vector(constraint: Constraint) -> Transform:
    return OrderedTransform()


@biject_to.register(constraints.positive_ordered_vector)
def _to_positive_ordered_vector(constraint: Constraint) -> Transform:
    return ComposeTransform([OrderedTransform(), ExpTransform()])


@biject_to.register(constraints.lower_cholesky)
def _to_lower_cholesky(constraint: Constraint) -> Transform:
    return LowerCholeskyTransform()


@biject_to.register(constraints.corr_cholesky)
def _to_corr_cholesky(constraint: Constraint) -> Transform:
    return CorrCholeskyTransform()


@biject_to.register(constraints.positive_definite)
def _to_positive_definite(constraint: Constraint) -> Transform:
    return ComposeTransform([LowerCholeskyTransform(), CholeskyTransform().inv])


@biject_to.register(constraints.corr_matrix)
def _to_corr_matrix(constraint: Constraint) -> Transform:
    return ComposeTransform([CorrCholeskyTransform(), CorrMatrixCholeskyTransform().inv])

"""Constraints whose bijection goes through softplus, for the scales of autoguides.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``).

``softplus_positive`` is ``positive`` with ``softplus`` (not ``exp``) as its bijection: a
scale then moves linearly in its unconstrained coordinate once it is large, so a gradient
step cannot blow it up. ``scaled_unit_lower_cholesky`` is ``lower_cholesky`` parameterized
as a unit lower-triangular matrix times a softplus-positive diagonal, so the scale of each
coordinate and the correlations are separate unconstrained numbers. Both are NumPyro's
(``AutoNormal`` and ``AutoMultivariateNormal`` use them), with the same bijections.

>>> from minippl.distributions.softplus import softplus_positive
>>> from minippl.distributions.transforms import biject_to
>>> type(biject_to(softplus_positive)).__name__
'SoftplusTransform'
"""

from __future__ import annotations

from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.transforms import (
    LowerCholeskyTransform,
    SoftplusTransform,
    Transform,
    biject_to,
)
from minippl.distributions.util import (
    add_diag,
    matrix_to_tril_vec,
    softplus,
    tril_size_to_dim,
    vec_to_tril_matrix,
)

__all__ = [
    "ScaledUnitLowerCholeskyTransform",
    "scaled_unit_lower_cholesky",
    "softplus_positive",
]


class _SoftplusPositive(constraints._Positive):
    """Positive reals, reached from the reals through softplus."""

    def __repr__(self) -> str:
        return "softplus_positive"


class _ScaledUnitLowerCholesky(constraints._LowerCholesky):
    """Lower Cholesky factors, reached as (unit lower-triangular) x (softplus diagonal)."""

    def __repr__(self) -> str:
        return "scaled_unit_lower_cholesky"


softplus_positive = _SoftplusPositive()
scaled_unit_lower_cholesky = _ScaledUnitLowerCholesky()


def _softplus_inv(y: Any) -> Any:
    xp = current().xp
    return xp.log(-xp.expm1(-y)) + y


class ScaledUnitLowerCholeskyTransform(LowerCholeskyTransform):
    """``x`` (length ``n(n+1)/2``) to ``L = (I + strict_tril(x[:-n])) * softplus(x[-n:])``,
    the diagonal scaling each row: ``L @ eps`` has coordinate ``i`` of scale
    ``softplus(x[-n:])[i]`` times a unit-diagonal mix."""

    codomain = scaled_unit_lower_cholesky

    def __call__(self, x: Any) -> Any:
        n = tril_size_to_dim(x.shape[-1])
        unit = add_diag(vec_to_tril_matrix(x[..., :-n], diagonal=-1), 1.0)
        return unit * softplus(x[..., -n:])[..., None]

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        diag = xp.diagonal(y, axis1=-2, axis2=-1)
        strict = matrix_to_tril_vec(y / diag[..., None], diagonal=-1)
        return xp.concatenate([strict, _softplus_inv(diag)], axis=-1)

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        # Row i's strict part is scaled by its diagonal d_i (i entries), the diagonal itself
        # has derivative sigmoid(x) = exp(-softplus(-x)).
        xp = current().xp
        n = tril_size_to_dim(x.shape[-1])
        diag = xp.diagonal(y, axis1=-2, axis2=-1)
        return xp.sum(xp.log(diag) * xp.arange(n) - softplus(-x[..., -n:]), axis=-1)


@biject_to.register(_SoftplusPositive)
def _to_softplus_positive(constraint: Any) -> Transform:
    return SoftplusTransform()


@biject_to.register(_ScaledUnitLowerCholesky)
def _to_scaled_unit_lower_cholesky(constraint: Any) -> Transform:
    return ScaledUnitLowerCholeskyTransform()

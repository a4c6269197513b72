"""Distributions over vectors and matrices: Dirichlet, MultivariateNormal, LKJ.

They live apart from the univariate ones because their events have dims of their own
(``event_shape`` is ``(K,)`` or ``(D, D)``), and their parameters need linear algebra
(Cholesky factors, triangular solves) rather than elementwise formulas.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.distribution import (
    Distribution,
    check_param,
    validation_enabled,
)
from minippl.distributions.transformed import TransformedDistribution
from minippl.distributions.transforms import CorrMatrixCholeskyTransform
from minippl.distributions.util import (
    Shape,
    batch_mahalanobis,
    broadcast_shapes,
    cholesky_of_inverse,
    lazy_property,
    matrix_to_tril_vec,
    multigammaln,
    promote_shapes,
    shape_of,
    signed_stick_breaking_tril,
    solve_lower,
    tri_logabsdet,
    vec_to_tril_matrix,
    xlogy_at_boundary,
)

__all__ = ["LKJ", "Dirichlet", "LKJCholesky", "MultivariateNormal"]


class Dirichlet(Distribution):
    """A distribution over the probability simplex with positive ``concentration`` (alpha)."""

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        concentration = shapes["concentration"]
        return concentration[:-1], concentration[-1:]

    def entropy(self) -> Any:
        """``log B(alpha) + (a0 - K) digamma(a0) - sum (alpha_j - 1) digamma(alpha_j)``, with
        ``a0 = sum alpha_j``."""
        xp, sp = current().xp, current().special
        alpha = xp.asarray(self.concentration)
        total = xp.sum(alpha, axis=-1)
        log_beta = xp.sum(sp.gammaln(alpha), axis=-1) - sp.gammaln(total)
        k = alpha.shape[-1]
        h = log_beta + (total - k) * sp.digamma(total)
        return h - xp.sum((alpha - 1.0) * sp.digamma(alpha), axis=-1)

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    reparametrized_params = ("concentration",)

    def __init__(self, concentration: Any, *, validate_args: bool | None = None) -> None:
        shape = shape_of(concentration)
        if len(shape) < 1:
            raise ValueError(
                "Dirichlet: parameter 'concentration' must have at least one dim (the "
                f"categories), got shape {shape}"
            )
        self.concentration = concentration
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        draws = backend.dirichlet(key, self.concentration, tuple(sample_shape) + self.batch_shape)
        info = xp.finfo(draws.dtype)
        return xp.clip(draws, info.tiny, 1 - info.eps)

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        c = self.concentration
        norm = xp.sum(sp.gammaln(c), axis=-1) - sp.gammaln(xp.sum(c, axis=-1))
        # On a face of the simplex with a concentration 1, xlogy's own derivative is NaN.
        return xp.sum(xlogy_at_boundary(c - 1.0, value), axis=-1) - norm

    @property
    def mean(self) -> Any:
        xp = current().xp
        c = xp.asarray(self.concentration)
        return c / xp.sum(c, axis=-1, keepdims=True)

    @property
    def variance(self) -> Any:
        xp = current().xp
        c = xp.asarray(self.concentration)
        total = xp.sum(c, axis=-1, keepdims=True)
        m = c / total
        return m * (1 - m) / (total + 1)


class MultivariateNormal(Distribution):
    """The Gaussian on R^n, given one of ``covariance_matrix``, ``precision_matrix`` or
    ``scale_tril`` (a lower Cholesky factor of the covariance)."""

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        loc = shapes.get("loc", ())
        (name,) = [n for n in shapes if n != "loc"]  # exactly one matrix, as in __init__
        matrix = shapes[name]
        batch = broadcast_shapes(loc[:-1], matrix[:-2], what="MultivariateNormal")
        return batch, broadcast_shapes(loc[-1:], matrix[-1:], what="MultivariateNormal")

    def entropy(self) -> Any:
        """``n (1 + log 2 pi) / 2 + log |det scale_tril|``."""
        xp = current().xp
        n = self.scale_tril.shape[-1]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + tri_logabsdet(self.scale_tril)
        return xp.broadcast_to(h, self.batch_shape)

    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    reparametrized_params = ("loc", "covariance_matrix", "precision_matrix", "scale_tril")

    def __init__(
        self,
        loc: Any = 0.0,
        covariance_matrix: Any = None,
        precision_matrix: Any = None,
        scale_tril: Any = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        xp = current().xp
        given = {
            name: m
            for name, m in (
                ("covariance_matrix", covariance_matrix),
                ("precision_matrix", precision_matrix),
                ("scale_tril", scale_tril),
            )
            if m is not None
        }
        if len(given) != 1:
            raise ValueError(
                "MultivariateNormal: give exactly one of covariance_matrix=, precision_matrix= "
                f"or scale_tril=, got {sorted(given) or 'none'}"
            )
        ((name, matrix),) = given.items()
        mshape = shape_of(matrix)
        if len(mshape) < 2 or mshape[-1] != mshape[-2]:
            raise ValueError(
                f"MultivariateNormal: {name} must be a (batch of) square matrices, got shape "
                f"{mshape}"
            )
        loc = xp.asarray(loc)
        if loc.ndim == 0:
            loc = xp.reshape(loc, (1,))
        if loc.shape[-1] not in (1, mshape[-1]):
            raise ValueError(
                f"MultivariateNormal: loc of shape {loc.shape} does not match {name} of shape "
                f"{mshape}"
            )
        batch = broadcast_shapes(
            loc.shape[:-1], mshape[:-2], what=f"MultivariateNormal: batch shapes of loc and {name}"
        )
        validate = validation_enabled() if validate_args is None else validate_args
        if validate and name != "scale_tril":
            # Check before factorising: NumPy's Cholesky raises its own error on bad input.
            check_param(self, name, constraints.positive_definite, matrix)
        # Give loc a trailing column so it promotes against the matrices.
        loc_col, matrix = promote_shapes(xp.expand_dims(loc, -1), matrix)
        if name == "covariance_matrix":
            self.covariance_matrix = matrix
            self.scale_tril = xp.linalg.cholesky(matrix)
        elif name == "precision_matrix":
            self.precision_matrix = matrix
            self.scale_tril = cholesky_of_inverse(matrix)
        else:
            self.scale_tril = matrix
        self.loc = loc_col[..., 0]
        super().__init__(batch, mshape[-1:], validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        xp = current().xp
        eps = current().normal(key, self.shape(sample_shape))
        return self.loc + xp.squeeze(xp.matmul(self.scale_tril, eps[..., None]), axis=-1)

    def _log_prob(self, value: Any) -> Any:
        maha = batch_mahalanobis(self.scale_tril, value - self.loc)
        n = self.scale_tril.shape[-1]
        return -0.5 * maha - tri_logabsdet(self.scale_tril) - 0.5 * n * math.log(2 * math.pi)

    @lazy_property
    def covariance_matrix(self) -> Any:
        xp = current().xp
        return xp.matmul(self.scale_tril, xp.swapaxes(self.scale_tril, -1, -2))

    @lazy_property
    def precision_matrix(self) -> Any:
        xp = current().xp
        inv_tril = solve_lower(
            self.scale_tril,
            xp.broadcast_to(xp.eye(self.scale_tril.shape[-1]), self.scale_tril.shape),
        )
        return xp.matmul(xp.swapaxes(inv_tril, -1, -2), inv_tril)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(self.loc, self.shape())

    @property
    def variance(self) -> Any:
        xp = current().xp
        return xp.broadcast_to(xp.sum(self.scale_tril**2, axis=-1), self.shape())


class LKJCholesky(Distribution):
    """Cholesky factors ``L`` of ``dimension x dimension`` correlation matrices, with density
    proportional to ``det(L L^T) ** (concentration - 1)``.

    ``concentration = 1`` is uniform over correlation matrices; larger values favour the
    identity. Two samplers give the same distribution: "onion" (default) and "cvine".
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky
    reparametrized_params = ("concentration",)

    def __init__(
        self,
        dimension: int,
        concentration: Any = 1.0,
        sample_method: Literal["onion", "cvine"] = "onion",
        *,
        validate_args: bool | None = None,
    ) -> None:
        xp = current().xp
        if dimension < 2:
            raise ValueError(f"LKJCholesky: dimension must be at least 2, got {dimension}")
        if sample_method not in ("onion", "cvine"):
            raise ValueError(
                f"LKJCholesky: sample_method must be 'onion' or 'cvine', got {sample_method!r}"
            )
        self.dimension = dimension
        self.concentration = concentration
        self.sample_method = sample_method
        batch = shape_of(concentration)
        # Every off-diagonal correlation is marginally 2 * Beta(m, m) - 1 with this m.
        marginal = xp.asarray(concentration) + 0.5 * (dimension - 2)
        offset = 0.5 * xp.arange(dimension - 1)
        if sample_method == "onion":
            # Row k's squared norm off the diagonal is Beta(k/2, marginal - (k-1)/2).
            c1 = offset + 0.5
            c0 = xp.expand_dims(marginal, -1) - offset
        else:
            # Partial correlation (i, j) is 2 * Beta(b, b) - 1 with b = marginal - j/2.
            offset_tril = matrix_to_tril_vec(
                xp.broadcast_to(offset, (dimension - 1, dimension - 1))
            )
            c1 = c0 = xp.expand_dims(marginal, -1) - offset_tril
        self._beta_c1, self._beta_c0 = c1, c0
        super().__init__(batch, (dimension, dimension), validate_args=validate_args)

    def _beta_sample(self, key: Any, sample_shape: Shape) -> Any:
        from minippl.distributions.continuous import Beta

        return Beta(self._beta_c1, self._beta_c0, validate_args=False).sample(key, sample_shape)

    def _onion(self, key: Any, sample_shape: Shape) -> Any:
        backend = current()
        xp = backend.xp
        key_beta, key_normal = backend.split(key)
        y = self._beta_sample(key_beta, sample_shape)
        d = self.dimension
        normal = backend.normal(
            key_normal, tuple(sample_shape) + self.batch_shape + (d * (d - 1) // 2,)
        )
        # Row k (k >= 1) of the strictly lower part is a uniform direction in R^k with squared
        # norm y_k; the diagonal entry makes the row a unit vector.
        rows = vec_to_tril_matrix(normal, diagonal=0)
        direction = rows / xp.linalg.norm(rows, axis=-1, keepdims=True)
        w = xp.expand_dims(xp.sqrt(y), -1) * direction
        pad = [(0, 0)] * (w.ndim - 2) + [(1, 0), (0, 1)]
        lower = xp.pad(w, pad, mode="constant", constant_values=0.0)
        ones = xp.ones(lower.shape[:-1][:-1] + (1,), dtype=lower.dtype)
        diag = xp.concatenate([ones, xp.sqrt(1 - y)], axis=-1)
        return lower + xp.expand_dims(diag, -1) * xp.eye(d, dtype=lower.dtype)

    def _cvine(self, key: Any, sample_shape: Shape) -> Any:
        partial_corr = 2 * self._beta_sample(key, sample_shape) - 1
        return signed_stick_breaking_tril(partial_corr)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        if self.sample_method == "onion":
            return self._onion(key, tuple(sample_shape))
        return self._cvine(key, tuple(sample_shape))

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        d = self.dimension
        eta = xp.asarray(self.concentration)
        # Density of the correlation matrix, det^(eta - 1) = prod_i L_ii^(2 eta - 2), times
        # the Jacobian of L -> L L^T on the off-diagonal coordinates, prod_i L_ii^(d - i).
        i = xp.arange(2, d + 1)
        powers = 2 * xp.expand_dims(eta, -1) - 2 + d - i
        diag = xp.diagonal(xp.asarray(value), axis1=-2, axis2=-1)[..., 1:]
        unnormalized = xp.sum(powers * xp.log(diag), axis=-1)
        alpha = eta + 0.5 * (d - 1)
        log_norm = (
            0.5 * (d - 1) * math.log(math.pi)
            + multigammaln(alpha - 0.5, d - 1)
            - (d - 1) * sp.gammaln(alpha)
        )
        return unnormalized - log_norm


# LKJ repeats LKJCholesky's parameters and signature (``duplicates`` pairs them): it is the
# public constructor NumPyro users call for the matrices themselves, and passes them on.
class LKJ(TransformedDistribution):
    """Correlation matrices with density proportional to ``det(C) ** (concentration - 1)``."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_matrix
    reparametrized_params = ("concentration",)

    def __init__(
        self,
        dimension: int,
        concentration: Any = 1.0,
        sample_method: Literal["onion", "cvine"] = "onion",
        *,
        validate_args: bool | None = None,
    ) -> None:
        base = LKJCholesky(dimension, concentration, sample_method, validate_args=False)
        self.dimension = dimension
        self.concentration = concentration
        super().__init__(base, CorrMatrixCholeskyTransform().inv, validate_args=validate_args)

    @property
    def mean(self) -> Any:
        xp = current().xp
        eye = xp.eye(self.dimension)
        return xp.broadcast_to(eye, self.batch_shape + (self.dimension, self.dimension))

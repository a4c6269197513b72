"""Shape, probability and triangular-matrix helpers shared by every distribution.

Everything here goes through the active backend, so one helper serves JAX and NumPy alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

import numpy as np

from minippl._fast import fusable
from minippl.backend import current

Shape = tuple[int, ...]
T = TypeVar("T")


def shape_of(x: Any) -> Shape:
    """The shape of an array or a Python number."""
    return tuple(getattr(x, "shape", ()))


def broadcast_shapes(*shapes: Shape, what: str = "shapes") -> Shape:
    """NumPy broadcasting of shapes, with an error that prints the shapes involved.

    Every distribution and every plated site calls this, so the shapes are folded in pairwise
    and the usual pairs cost one comparison: equal shapes, or a scalar ``()`` beside another.
    """
    out: Shape = ()
    for shape in shapes:
        if shape == out or not shape:
            continue
        if not out:
            out = tuple(shape)
            continue
        pair = _broadcast_pair(out, tuple(shape))
        if pair is None:
            raise ValueError(f"{what} {', '.join(map(str, shapes))} do not broadcast together")
        out = pair
    return out


def _broadcast_pair(a: Shape, b: Shape) -> Shape | None:
    """Two shapes broadcast together, or ``None`` if they do not broadcast."""
    if len(a) < len(b):
        a, b = b, a
    lead = len(a) - len(b)
    out = list(a[:lead])
    for x, y in zip(a[lead:], b, strict=True):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


def promote_shapes(*args: Any, shape: Shape = ()) -> list[Any]:
    """Give every argument the same number of dims (leading 1s), as broadcasting would."""
    shapes = [shape_of(a) for a in args]
    ndim = len(broadcast_shapes(shape, *shapes))
    out = list(args)
    for i, s in enumerate(shapes):
        if len(s) < ndim:
            out[i] = _reshape(out[i], (1,) * (ndim - len(s)) + s)
    return out


def _reshape(x: Any, shape: Shape) -> Any:
    """``x`` reshaped: by its own method where it has one (a NumPy or JAX array or scalar,
    the same operation as ``xp.reshape`` without NumPy's dispatch wrapper, a microsecond
    on an eager site), else (a Python number) by NumPy, as NumPyro does: the number stays
    concrete inside ``jit``, where validation can still check it."""
    if hasattr(x, "reshape"):
        return x.reshape(shape)
    return np.reshape(x, shape)


def sum_rightmost(x: Any, n: int) -> Any:
    """Sum over the rightmost ``n`` dims (the event dims of a log density)."""
    if n <= 0:
        return x
    return current().xp.sum(x, axis=tuple(range(-n, 0)))


def finfo(dtype: Any) -> Any:
    return current().xp.finfo(dtype)


class lazy_property(Generic[T]):  # noqa: N801 - named like the decorator it is
    """A property computed on first access and then stored on the instance.

    It is how a distribution given ``probs`` offers ``logits`` (and the other way round)
    without computing, or validating, the form the user did not pass. Setting the attribute
    in ``__init__`` overrides it, since the instance dict wins over this descriptor.
    """

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> lazy_property[T]: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.fn.__name__] = value
        return value


# -- probabilities -------------------------------------------------------------------------


def float_type_of(x: Any) -> Any:
    """The floating dtype computations on ``x`` happen in (the backend default for ints)."""
    xp = current().xp
    dtype = xp.result_type(x)
    return dtype if xp.issubdtype(dtype, xp.floating) else current().float_dtype()


def full_param(param: Any, shape: Shape, dtype: Any = None) -> Any:
    """``param`` as a float array of exactly ``shape``.

    The iterative samplers (gamma, poisson, binomial) compile once per parameter shape on
    JAX; handing them full-shape parameters lets every draw of one output shape share one
    compiled sampler. The numbers are unchanged: the samplers broadcast the same way.
    """
    xp = current().xp
    dtype = current().float_dtype() if dtype is None else dtype
    return xp.broadcast_to(xp.asarray(param, dtype=dtype), shape)


def clamp_probs(probs: Any) -> Any:
    """Probabilities pulled into ``[tiny, 1 - eps]`` so their logs and logits stay finite."""
    xp = current().xp
    info = xp.finfo(float_type_of(probs))
    return xp.clip(probs, info.tiny, 1.0 - info.eps)


@fusable
def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``, stable for large ``|x|``.

    Written as ``max(x, 0) + log1p(exp(-|x|))`` rather than ``logaddexp(x, 0)``: JAX's
    ``logaddexp`` has a custom derivative that takes a second ``exp``, and in a logistic
    regression's gradient that is one more transcendental per row.
    """
    xp = current().xp
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


@fusable
def minus_inf_outside(inside: Any, log_density: Any) -> Any:
    """``log_density`` where ``inside`` holds, ``-inf`` elsewhere: a log density outside its
    distribution's support.

    A backend's fused version gives the same values; its gradient may skip the mask (where
    the density is ``-inf``, no gradient means anything).
    """
    xp = current().xp
    return xp.where(inside, log_density, -xp.inf)


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -softplus(-x)


def probs_to_logits(probs: Any) -> Any:
    """Log-odds of a probability, clamped so that 0 and 1 give large finite logits."""
    xp = current().xp
    p = clamp_probs(probs)
    return xp.log(p) - xp.log1p(-p)


def probs_to_logits_multinomial(probs: Any) -> Any:
    """Log of each category's probability; ``-inf`` for a category of probability 0."""
    xp = current().xp
    probs = xp.asarray(probs)
    safe = xp.where(probs > 0, probs, 1.0)
    return xp.where(probs > 0, xp.log(safe), -xp.inf)


def xlogy_at_boundary(x: Any, y: Any) -> Any:
    """``x * log(y)``, 0 where ``x`` is 0, as ``special.xlogy``, with a finite derivative
    where ``x`` and ``y`` are both 0.

    There JAX's derivative rule for ``xlogy`` computes ``x / y = 0 / 0`` and the gradient is
    NaN: a Beta(1, b) density's gradient at the value 0. The term is 0 for every ``y`` when
    ``x`` is 0, so its derivative in ``y`` is 0; evaluating it at ``y = 1`` there gives
    that, and every other point is computed exactly as ``xlogy`` computes it.
    """
    return current().special.xlogy(x, _where_both(x == 0, y == 0, 1.0, y))


def xlog1py_at_boundary(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, as :func:`xlogy_at_boundary`: finite where ``x`` is 0 and ``y`` -1."""
    return current().special.xlog1py(x, _where_both(x == 0, y == -1, 0.0, y))


def _where_both(a: Any, b: Any, stand_in: float, y: Any) -> Any:
    """``stand_in`` where ``a`` and ``b`` both hold, else ``y``, in their broadcast shape."""
    xp = current().xp
    both = a & b
    shape = xp.shape(both)
    # ``y`` in the full shape first: autograd's ``where`` cannot send a gradient back to a
    # smaller, broadcast argument.
    if xp.shape(y) != shape:
        y = xp.broadcast_to(y, shape)
    return xp.where(both, stand_in, y)


def log_binomial_coefficient(n: Any, k: Any) -> Any:
    """``log(n choose k)`` through log-gamma, so it is smooth in ``n`` and ``k``."""
    sp = current().special
    return sp.gammaln(n + 1.0) - sp.gammaln(k + 1.0) - sp.gammaln(n - k + 1.0)


def multigammaln(a: Any, d: int) -> Any:
    """The log multivariate gamma function ``log Gamma_d(a)`` (elementwise in ``a``)."""
    xp, sp = current().xp, current().special
    a = xp.asarray(a)
    half_steps = 0.5 * np.arange(d, dtype=np.float64)
    terms = sp.gammaln(xp.expand_dims(a, -1) - half_steps)
    return 0.25 * d * (d - 1) * math.log(math.pi) + xp.sum(terms, axis=-1)


# -- triangular matrices --------------------------------------------------------------------


def tril_size_to_dim(size: int, diagonal: int = 0) -> int:
    """The matrix dim ``n`` whose lower triangle (below ``diagonal`` <= 0) has ``size`` entries."""
    n = round((math.sqrt(1 + 8 * size) - 1) / 2) - diagonal
    if (n + diagonal) * (n + diagonal + 1) // 2 != size:
        raise ValueError(f"a vector of length {size} is not a flattened triangular matrix")
    return n


def vec_to_tril_matrix(t: Any, diagonal: int = 0) -> Any:
    """Place the trailing vector ``t`` row by row into a lower-triangular matrix."""
    backend = current()
    xp = backend.xp
    n = tril_size_to_dim(t.shape[-1], diagonal)
    flat_index = np.arange(n * n).reshape(n, n)[np.tril_indices(n, diagonal)]
    flat = xp.zeros(t.shape[:-1] + (n * n,), dtype=t.dtype)
    flat = backend.index_update(flat, (Ellipsis, flat_index), t)
    return xp.reshape(flat, t.shape[:-1] + (n, n))


def matrix_to_tril_vec(x: Any, diagonal: int = 0) -> Any:
    """The entries of ``x`` on and below ``diagonal``, row by row."""
    rows, cols = np.tril_indices(x.shape[-1], diagonal)
    return x[..., rows, cols]


def add_diag(matrix: Any, diag: Any) -> Any:
    """``matrix`` with ``diag`` added to its trailing diagonal."""
    xp = current().xp
    n = matrix.shape[-1]
    return matrix + xp.expand_dims(xp.asarray(diag), -1) * xp.eye(n, dtype=matrix.dtype)


def signed_stick_breaking_tril(t: Any) -> Any:
    """Map partial correlations in (-1, 1) to the Cholesky factor of a correlation matrix.

    Row ``i`` of the result is a unit vector: each off-diagonal entry takes its share
    ``t`` of what the row's squared norm has left, the diagonal takes the rest.
    """
    xp = current().xp
    eps = xp.finfo(t.dtype).eps
    t = xp.clip(t, -1 + eps, 1 - eps)
    r = vec_to_tril_matrix(t, diagonal=-1)
    # sqrt of the stick left after each entry: cumulative products of sqrt(1 - r^2).
    remaining = xp.cumprod(xp.sqrt(1 - r**2), axis=-1)
    pad = [(0, 0)] * (r.ndim - 1) + [(1, 0)]
    remaining_before = xp.pad(remaining[..., :-1], pad, mode="constant", constant_values=1.0)
    return add_diag(r, 1.0) * remaining_before


def solve_lower(tril: Any, rhs: Any) -> Any:
    """``tril^{-1} rhs`` for a batch of lower-triangular ``tril`` and matrices ``rhs``."""
    xp = current().xp
    batch = broadcast_shapes(tril.shape[:-2], rhs.shape[:-2])
    tril = xp.broadcast_to(tril, batch + tril.shape[-2:])
    rhs = xp.broadcast_to(rhs, batch + rhs.shape[-2:])
    return xp.linalg.solve(tril, rhs)


def batch_mahalanobis(scale_tril: Any, diff: Any) -> Any:
    """``diff^T (L L^T)^{-1} diff`` for each vector ``diff`` and Cholesky factor ``L``."""
    xp = current().xp
    solved = solve_lower(scale_tril, xp.expand_dims(diff, -1))[..., 0]
    return xp.sum(solved**2, axis=-1)


def tri_logabsdet(tril: Any) -> Any:
    """``log|det L|`` of a triangular matrix: the sum of the logs of its diagonal."""
    xp = current().xp
    return xp.sum(xp.log(xp.abs(xp.diagonal(tril, axis1=-2, axis2=-1))), axis=-1)


def cholesky_of_inverse(matrix: Any) -> Any:
    """The lower Cholesky factor of ``matrix^{-1}``, without forming the inverse.

    If ``P = U U^T`` with ``U`` upper triangular (a Cholesky of the index-reversed ``P``),
    then ``P^{-1} = U^{-T} U^{-1}`` and ``U^{-T}`` is the lower factor we want.
    """
    xp = current().xp
    flipped = xp.linalg.cholesky(matrix[..., ::-1, ::-1])[..., ::-1, ::-1]
    lower = xp.swapaxes(flipped, -2, -1)
    identity = xp.broadcast_to(xp.eye(matrix.shape[-1], dtype=lower.dtype), lower.shape)
    return solve_lower(lower, identity)

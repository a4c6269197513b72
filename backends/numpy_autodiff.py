"""Exact reverse-mode gradients for the NumPy backend, by autograd.

The NumPy backend's ``value_and_grad`` records the operations of one eager call of the
function (autograd wraps each array in a ``Box`` that notes what was done to it) and then
walks that record backwards, as JAX's ``grad`` does with a traced program. The result is
exact to rounding, costs a small constant times one evaluation whatever the dimension, and
every step of the forward pass is still plain NumPy that a debugger can step into.

Why autograd (HIPS)
    It differentiates NumPy code as written: ``autograd.numpy`` has NumPy's names, so the
    distributions, transforms and samplers run unchanged through the backend's ``xp``; it is
    pure Python over NumPy and SciPy (no compiler, no JAX), float64, and has gradients for
    most of ``numpy``, ``numpy.linalg`` and ``scipy.special``. It is small, stable and still
    released. The alternatives on PyPI either are not NumPy (PyTorch, TensorFlow, JAX itself,
    MXNet's ``mxnet.autograd``), or ask the code to be written against their own array type
    (``tangent``, ``micrograd``-style scalar engines, ``ad``/``algopy`` operator overloading,
    which is slow per element and lacks ``scipy.special``), or are forward mode, whose cost
    grows with the dimension as finite differences do.

What this module adds to autograd
    ``xp`` and ``special``: namespaces with NumPy's and SciPy's names (autograd's wrapped
    functions), plus the functions autograd lacks or gets wrong for minippl, each a
    ``primitive`` with its vector-Jacobian product (VJP) written here: ``asarray`` (a traced
    array passes through), ``broadcast_to`` (autograd's VJP refuses new leading axes),
    ``diagonal`` (autograd's VJP takes only the last two axes), ``linalg.cholesky`` (of the
    symmetric part, as JAX's), ``cumprod``, ``take``, ``take_along_axis``, ``index_update``,
    and the special functions ``ndtr``, ``ndtri``, ``log_ndtr``, ``xlogy``, ``xlog1py``,
    ``i0e``, ``i1e``. The operations a potential spends its time in (arithmetic, ``exp``,
    ``log``, ``sum``, ``where``, ...) record lean nodes (``backends/numpy_nodes.py``), and
    ``value_and_grad`` gives each leaf of its argument its own root node.

Gaps (no gradient; what happens instead)
    - ``gammainc``/``gammaincc`` with respect to the shape ``a``, and ``betainc`` with respect
      to ``a`` and ``b``: autograd has only the derivative in ``x``. They appear in the
      ``cdf`` of ``Gamma``, ``Beta`` and ``Poisson``, never in a ``log_prob``; differentiating
      through them raises ``NotImplementedError`` ("VJP of gammainc wrt argnums (0,) not
      defined") rather than returning a wrong number.
    - A SciPy special function not listed above has no gradient: ``special`` falls back to
      ``scipy.special``'s own, and calling it on a traced array raises ``TypeError``.
    - Code that leaves NumPy's API for Python numbers (``float(x)``, ``x.item()``,
      ``np.asarray(x)`` with raw ``numpy``) on a traced value fails loudly; ``to_numpy`` and
      ``stop_gradient`` are the ways out of the trace.
    - Only reverse mode: ``value_and_grad`` of a scalar, as the samplers need.

Examples
--------
>>> import numpy as np
>>> value, grad = value_and_grad(lambda x: xp.sum(special.gammaln(x)))(np.array([1.5, 3.0]))
>>> np.allclose(grad, special.digamma(np.array([1.5, 3.0])))
True
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable
from typing import Any, TypeVar, cast

import autograd.numpy as anp
import autograd.scipy.linalg as aspl
import autograd.scipy.special as asps
import numpy as np
import scipy.special as sps
from autograd.core import VJPNode, add_outgrads, make_vjp, sparse_object_types
from autograd.extend import Box, defvjp, vspace
from autograd.extend import primitive as _primitive
from autograd.tracer import getval, toposort, trace_stack

from backends import numpy_nodes, pytree

__all__ = [
    "getval",
    "index_update",
    "is_traced",
    "solve_triangular",
    "special",
    "value_and_grad",
    "xp",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

_F = TypeVar("_F", bound=Callable[..., Any])


def primitive(fn: _F) -> _F:
    """``fn`` as an autograd primitive: traced arrays are unboxed for it, and its output is
    recorded so that the VJP given to ``defvjp`` carries the gradient back."""
    return cast(_F, _primitive(fn))


def is_traced(x: object) -> bool:
    """Whether ``x`` is an array being recorded for a gradient (an autograd ``Box``)."""
    return isinstance(x, Box)


def _unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape``: the VJP of broadcasting an array of that shape."""
    g = np.asarray(g)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if kept:
        g = g.sum(axis=kept, keepdims=True)
    return g.reshape(shape)


# -- arrays ---------------------------------------------------------------------------------


def asarray(a: Any, dtype: Any = None, **kwargs: Any) -> Any:
    """``numpy.asarray``, except that a traced array (or a list holding some) stays traced.

    Untraced input goes straight to NumPy: ``asarray`` is the most frequent call of the
    core, and autograd's wrapper would add its bookkeeping for nothing.
    """
    if isinstance(a, Box):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    if isinstance(a, (list, tuple)) and any(isinstance(v, Box) for v in a):
        return anp.array(a, dtype=dtype)
    return np.asarray(a, dtype=dtype, **kwargs)


@primitive
def _broadcast_to(x: Any, shape: Any) -> Any:
    return np.broadcast_to(x, shape)


defvjp(_broadcast_to, lambda ans, x, shape: lambda g: _unbroadcast(g, np.shape(x)))


def broadcast_to(x: Any, shape: Any) -> Any:
    """``numpy.broadcast_to``; its VJP sums the gradient back over the broadcast axes.

    A traced array that has the shape already is returned as it is: the identity, with no
    node to record (log densities broadcast to their batch shape at every site).
    """
    if not isinstance(x, Box):
        return np.broadcast_to(x, shape)
    if np.shape(x._value) == tuple(shape):
        return x
    return _broadcast_to(x, shape)


@primitive
def cumprod(x: Any, axis: int = -1) -> Any:
    """``numpy.cumprod`` along one axis."""
    return np.cumprod(x, axis=axis)


def _cumprod_vjp(ans: Any, x: Any, axis: int = -1) -> Callable[[Any], Any]:
    """``d out_k / d x_j`` is the product of ``x_i`` for ``i <= k``, ``i != j`` (``k >= j``).

    Computed as written (an ``n x n`` table per row), not as ``cumsum(g * out) / x``: that
    shortcut divides by zero wherever an ``x_j`` is 0.
    """

    def vjp(g: Any) -> Any:
        xs = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
        gs = np.moveaxis(np.asarray(g, dtype=np.float64), axis, -1)
        n = xs.shape[-1]
        table = np.repeat(xs[..., None, :], n, axis=-2)  # row j: x with x_j set to 1
        table[..., np.arange(n), np.arange(n)] = 1.0
        partial = np.cumprod(table, axis=-1) * np.triu(np.ones((n, n)))
        return np.moveaxis(np.einsum("...jk,...k->...j", partial, gs), -1, axis)

    return vjp


defvjp(cumprod, _cumprod_vjp)


@primitive
def take(a: Any, indices: Any, axis: int | None = None) -> Any:
    """``numpy.take``; repeated indices add their gradients up."""
    return np.take(a, indices, axis=axis)


def _take_vjp(ans: Any, a: Any, indices: Any, axis: int | None = None) -> Callable[[Any], Any]:
    def vjp(g: Any) -> Any:
        out = np.zeros(np.shape(a))
        if axis is None:
            np.add.at(out.reshape(-1), np.asarray(indices), g)
        else:
            where: tuple[Any, ...] = (slice(None),) * (axis % out.ndim) + (np.asarray(indices),)
            np.add.at(out, where, g)
        return out

    return vjp


defvjp(take, _take_vjp)


def _along_axis_index(shape: tuple[int, ...], indices: Any, axis: int) -> tuple[Any, ...]:
    """The fancy index that ``take_along_axis(a, indices, axis)`` reads, for ``a.shape``."""
    axis = axis % len(shape)
    index: list[Any] = []
    for dim, size in enumerate(shape):
        if dim == axis:
            index.append(np.asarray(indices))
        else:
            along = [1] * len(shape)
            along[dim] = size
            index.append(np.arange(size).reshape(along))
    return tuple(index)


@primitive
def take_along_axis(a: Any, indices: Any, axis: int) -> Any:
    """``numpy.take_along_axis``; repeated indices add their gradients up."""
    return np.take_along_axis(a, indices, axis=axis)


def _take_along_axis_vjp(ans: Any, a: Any, indices: Any, axis: int) -> Callable[[Any], Any]:
    def vjp(g: Any) -> Any:
        out = np.zeros(np.shape(a))
        np.add.at(out, _along_axis_index(out.shape, indices, axis), g)
        return out

    return vjp


defvjp(take_along_axis, _take_along_axis_vjp)


@primitive
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``numpy.diagonal``, for any pair of axes (autograd's VJP takes only the last two)."""
    return np.diagonal(a, offset, axis1, axis2)


def _diagonal_vjp(
    ans: Any, a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1
) -> Callable[[Any], Any]:
    def vjp(g: Any) -> Any:
        out = np.zeros(np.shape(a))
        # The diagonal's entries, laid out as ``numpy.diagonal`` reads them: its two axes
        # last, the diagonal index last of all.
        square = np.moveaxis(out, (axis1, axis2), (-2, -1))
        n = np.shape(g)[-1]
        rows, cols = np.arange(n) + max(-offset, 0), np.arange(n) + max(offset, 0)
        square[..., rows, cols] = g
        return out

    return vjp


defvjp(diagonal, _diagonal_vjp)


@primitive
def index_update(x: Any, index: Any, value: Any) -> Any:
    """A copy of ``x`` with ``x[index] = value`` (JAX's ``x.at[index].set(value)``)."""
    out = np.array(x, copy=True)
    out[index] = value
    return out


def _index_update_vjp_x(ans: Any, x: Any, index: Any, value: Any) -> Callable[[Any], Any]:
    def vjp(g: Any) -> Any:
        out = np.array(g, copy=True)
        out[index] = 0.0  # the entries written over do not depend on ``x``
        return out

    return vjp


def _index_update_vjp_value(ans: Any, x: Any, index: Any, value: Any) -> Callable[[Any], Any]:
    return lambda g: _unbroadcast(np.asarray(g)[index], np.shape(value))


defvjp(index_update, _index_update_vjp_x, None, _index_update_vjp_value)


def cholesky(a: Any) -> Any:
    """The lower Cholesky factor of the symmetric part of ``a`` (as JAX reads its input).

    LAPACK reads only the lower triangle, so the derivative of ``numpy.linalg.cholesky`` in
    an upper entry is zero, while autograd's VJP (like JAX's) is that of a function of a
    symmetric matrix; symmetrising first makes the function the one the VJP describes.
    """
    return anp.linalg.cholesky(0.5 * (a + anp.swapaxes(a, -1, -2)))


def solve_triangular(a: Any, b: Any, lower: bool) -> Any:
    """``a^{-1} b`` for a triangular matrix ``a`` (2-d, as autograd's VJP requires)."""
    return aspl.solve_triangular(a, b, lower=lower)


# -- special functions ----------------------------------------------------------------------


@primitive
def ndtr(x: Any) -> Any:
    """The standard normal cdf."""
    return sps.ndtr(x)


@primitive
def log_ndtr(x: Any) -> Any:
    """The log of the standard normal cdf, accurate far into the lower tail."""
    return sps.log_ndtr(x)


@primitive
def ndtri(p: Any) -> Any:
    """The standard normal quantile (the inverse of ``ndtr``)."""
    return sps.ndtri(p)


def _log_normal_pdf(x: Any) -> Any:
    return -0.5 * np.square(x) - _LOG_SQRT_2PI


defvjp(ndtr, lambda ans, x: lambda g: g * np.exp(_log_normal_pdf(x)))
# pdf / cdf as a difference of logs, so that the ratio stays finite where both underflow.
defvjp(log_ndtr, lambda ans, x: lambda g: g * np.exp(_log_normal_pdf(x) - ans))
defvjp(ndtri, lambda ans, p: lambda g: g * np.exp(-_log_normal_pdf(ans)))


@primitive
def _xlogy(x: Any, y: Any) -> Any:
    return sps.xlogy(x, y)


@primitive
def _xlog1py(x: Any, y: Any) -> Any:
    return sps.xlog1py(x, y)


def ratio_or_zero(x: Any, y: Any) -> Any:
    """``x / y``, and 0 where ``x`` is 0: d/dy of ``x * log(y)`` is ``x / y``, taken as 0
    where ``x`` is 0 (the function is 0 there for every ``y``, 0 included). Only a ``y`` of
    0 (or a nan) can make the plain ratio wrong there, so only then is it patched."""
    x = np.asarray(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = x / y
    if not np.isfinite(ratio).all():
        ratio = np.where(x == 0, 0.0, ratio)
    return ratio


defvjp(
    _xlogy,
    lambda ans, x, y: lambda g: _unbroadcast(sps.xlogy(g, y), np.shape(x)),
    lambda ans, x, y: lambda g: _unbroadcast(g * ratio_or_zero(x, y), np.shape(y)),
)
defvjp(
    _xlog1py,
    lambda ans, x, y: lambda g: _unbroadcast(sps.xlog1py(g, y), np.shape(x)),
    lambda ans, x, y: lambda g: _unbroadcast(g * ratio_or_zero(x, 1.0 + y), np.shape(y)),
)
xlogy = numpy_nodes.record(
    _xlogy,
    sps.xlogy,
    (lambda g, a, x, y: sps.xlogy(g, y), lambda g, a, x, y: g * ratio_or_zero(x, y)),
)
"""``x * log(y)``, 0 where ``x`` is 0."""
xlog1py = numpy_nodes.record(
    _xlog1py,
    sps.xlog1py,
    (lambda g, a, x, y: sps.xlog1py(g, y), lambda g, a, x, y: g * ratio_or_zero(x, 1.0 + y)),
)
"""``x * log1p(y)``, 0 where ``x`` is 0."""


@primitive
def i0e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 0, ``exp(-|x|) I0(x)``."""
    return sps.i0e(x)


@primitive
def i1e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 1, ``exp(-|x|) I1(x)``."""
    return sps.i1e(x)


def _i1e_slope(x: Any, ans: Any) -> Any:
    """d/dx ``i1e``: ``i0e - i1e (sign(x) + 1/x)``, whose limit at 0 is 1/2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = sps.i0e(x) - ans * (np.sign(x) + 1.0 / x)
    return np.where(np.asarray(x) == 0, 0.5, slope)


# I0' = I1 and I1' = I0 - I1 / x, with the scaling's -sign(x) term.
defvjp(i0e, lambda ans, x: lambda g: g * (sps.i1e(x) - np.sign(x) * ans))
defvjp(i1e, lambda ans, x: lambda g: g * _i1e_slope(x, ans))


def _untraced_fast(wrapped: Callable[..., Any]) -> Callable[..., Any]:
    """An autograd primitive that calls the plain NumPy function when no argument is traced.

    Most calls of the backend's ``xp`` (the sampler's own arithmetic, and everything outside
    a gradient) see no traced array; autograd's wrapper would still inspect every argument
    for the ways NumPy lets other array types take over a call, which costs several times
    the NumPy call itself on the small arrays of a NUTS step. Like autograd, it looks for
    traced arrays among the positional arguments only.
    """
    raw = wrapped.fun  # type: ignore[attr-defined]

    def call(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            if isinstance(arg, Box):
                return wrapped(*args, **kwargs)
        return raw(*args, **kwargs)

    functools.update_wrapper(call, raw)
    return call


def _keeps_x(condition: Any, x: Any, y: Any) -> bool:
    """Whether ``where(condition, x, y)`` is ``x`` itself: an untraced condition true
    everywhere, neither it nor a float ``y`` adding axes to the float64 ``x``."""
    if not isinstance(x, Box) or isinstance(y, Box):
        return False
    x_shape = getattr(x._value, "shape", None)
    if getattr(x._value, "dtype", None) != np.float64 or type(y) not in (float, np.float64):
        return False
    if type(condition) is np.ndarray:
        return condition.shape in ((), x_shape) and bool(condition.all())
    return type(condition) in (bool, np.bool_) and bool(condition)


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """``numpy.where``, recorded for traced ``x`` or ``y``.

    Where the (untraced) condition holds everywhere and ``x`` already has the result's shape
    and type, the result is ``x`` itself, with no node to record: every log density passes
    through ``where(inside_support, log_prob, -inf)``, and it is rarely outside.
    """
    if isinstance(x, Box) or isinstance(y, Box) or isinstance(condition, Box):
        if _keeps_x(condition, x, y):
            return x
        return numpy_nodes.lean_where(condition, x, y)
    if x is None and y is None:
        return np.where(condition)
    return np.where(condition, x, y)


def _namespace(name: str, *layers: dict[str, Any]) -> types.SimpleNamespace:
    """A namespace whose names come from ``layers``, later layers winning; autograd's
    primitives among them skip autograd's bookkeeping when no argument is traced."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if not k.startswith("_")})
    for k, v in merged.items():
        if getattr(v, "_is_autograd_primitive", False):
            merged[k] = _untraced_fast(v)
    space = types.SimpleNamespace(**merged)
    space.__name__ = name
    return space


linalg = _namespace("minippl NumPy-backend linalg", vars(anp.linalg), {"cholesky": cholesky})
"""``numpy.linalg``'s names, differentiable (``autograd.numpy.linalg``)."""

xp = _namespace(
    "minippl NumPy-backend xp (autograd.numpy)",
    vars(np),  # what autograd leaves out (``s_``, ``index_exp``, ``mgrid``, ...) is NumPy's
    vars(anp),
    {
        "linalg": linalg,
        "asarray": asarray,
        "broadcast_to": broadcast_to,
        "cumprod": cumprod,
        "diagonal": diagonal,
        "take": take,
        "take_along_axis": take_along_axis,
        "where": where,
    },
    numpy_nodes.XP,
)
"""NumPy's names, differentiable: ``autograd.numpy`` with the additions above."""

special = _namespace(
    "minippl NumPy-backend special (autograd.scipy.special)",
    vars(sps),
    vars(asps),
    {
        "ndtr": ndtr,
        "log_ndtr": log_ndtr,
        "ndtri": ndtri,
        "xlogy": xlogy,
        "xlog1py": xlog1py,
        "i0e": i0e,
        "i1e": i1e,
    },
    numpy_nodes.SPECIAL,
)
"""``scipy.special``'s names; the ones autograd or this module differentiate are wrapped."""


# -- gradients ------------------------------------------------------------------------------


def ravel_values(tree: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The leaves of ``tree`` as one float64 vector, and the function that rebuilds the tree
    from such a vector (traced or not: slices and reshapes are recorded by autograd)."""
    leaves, treedef = pytree.tree_flatten(tree)
    arrays = [np.asarray(getval(leaf)) for leaf in leaves]
    layout = [(a.shape, a.dtype, a.size) for a in arrays]
    if any(isinstance(leaf, Box) for leaf in leaves):
        flat = anp.concatenate([anp.ravel(asarray(leaf, dtype=np.float64)) for leaf in leaves])
    elif arrays:
        flat = np.concatenate([a.ravel().astype(np.float64) for a in arrays])
    else:
        flat = np.zeros(0)
    all_float = all(np.issubdtype(dtype, np.floating) for _, dtype, _ in layout)

    def unravel(vec: Any) -> Any:
        if all_float and numpy_nodes.is_lean_traced(vec):
            # One node per leaf (slice and reshape together), the sampler's usual case.
            parts, start = [], 0
            for shape, _, size in layout:
                parts.append(numpy_nodes.lean_piece(vec, start, start + size, shape))
                start += size
            return pytree.tree_unflatten(treedef, parts)
        vec = vec if isinstance(vec, Box) else np.asarray(vec)
        parts, start = [], 0
        for shape, dtype, size in layout:
            chunk = vec[start : start + size].reshape(shape)
            # Keep float64 perturbations of float leaves; cast back only non-floats.
            parts.append(chunk if np.issubdtype(dtype, np.floating) else chunk.astype(dtype))
            start += size
        return pytree.tree_unflatten(treedef, parts)

    return flat, unravel


def _float_leaves(tree: Any) -> tuple[list[Any], Any] | None:
    """The leaves of ``tree`` as float64 arrays, or None where a leaf is not a plain float
    array (integers, or a value traced by an outer gradient)."""
    leaves, treedef = pytree.tree_flatten(tree)
    arrays = []
    for leaf in leaves:
        if isinstance(leaf, Box):
            return None
        array = np.asarray(leaf)
        if array.dtype.kind != "f":
            return None
        arrays.append(array.astype(np.float64, copy=False))
    return arrays, treedef


def _vjp_of_leaves(fn: Callable[[list[Any]], Any], leaves: list[Any]) -> tuple[Any, Any]:
    """``fn(leaves)`` traced with each leaf as its own input, and the function that maps the
    output's cotangent to the cotangent of each leaf.

    autograd's ``make_vjp`` takes one input; giving each leaf its own root node spares the
    slice and the reshape that would cut each leaf out of one vector (two nodes per leaf).
    """
    with trace_stack.new_trace() as trace:
        roots = [VJPNode.new_root() for _ in leaves]
        boxes = [numpy_nodes.LeanBox(x, trace, root) for x, root in zip(leaves, roots, strict=True)]
        out = fn(boxes)
    if not (isinstance(out, Box) and out._trace == trace):
        return out, lambda g: [np.zeros(np.shape(x)) for x in leaves]

    def vjp(g: Any) -> list[Any]:
        grads = _backward_pass(g, out._node, set(roots))
        return [
            np.array(grads[r], dtype=np.float64) if r in grads else np.zeros(np.shape(x))
            for x, r in zip(leaves, roots, strict=True)
        ]

    return out._value, vjp


def _backward_pass(g: Any, end_node: Any, roots: set[Any]) -> dict[Any, Any]:
    """autograd's backward pass (``autograd.core.backward_pass``), keeping the cotangent of
    every root. Cotangents reaching one node add up as ``prev + new`` (autograd's
    ``vspace.add``, without its call through the primitive wrapper); autograd's sparse
    cotangents (of ``x[index]``) go through its own ``add_outgrads``, which makes them dense."""
    outgrads: dict[Any, Any] = {end_node: g}
    kept = {}
    for node in toposort(end_node):
        outgrad = outgrads.pop(node)
        if node in roots:
            kept[node] = outgrad
            continue
        for parent, ingrad in zip(node.parents, node.vjp(outgrad), strict=True):
            prev = outgrads.get(parent)
            if type(ingrad) in sparse_object_types:
                outgrads[parent] = add_outgrads(None if prev is None else (prev, False), ingrad)[0]
            else:
                outgrads[parent] = ingrad if prev is None else prev + ingrad
    return kept


def value_and_grad(
    fn: Callable[..., Any], argnums: int = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """``fn``'s value and its gradient with respect to argument ``argnums`` (a pytree).

    ``fn`` returns a scalar, or ``(scalar, aux)`` with ``has_aux``; ``aux`` comes back with
    no trace left in it. A value that does not depend on the argument has a zero gradient.
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        aux: list[Any] = []

        def call(x: Any) -> Any:
            new_args = list(args)
            new_args[argnums] = x
            out = fn(*new_args, **kwargs)
            if has_aux:
                out, extra = out
                aux.append(extra)
            return out

        split = _float_leaves(args[argnums])
        if split is not None:
            leaves, treedef = split
            value, vjp = _vjp_of_leaves(lambda xs: call(pytree.tree_unflatten(treedef, xs)), leaves)
            grad = pytree.tree_unflatten(treedef, vjp(np.ones(np.shape(value))))
        else:
            flat, unravel = ravel_values(args[argnums])
            vjp_flat, value = make_vjp(lambda x: call(unravel(x)), flat)
            grad = unravel(np.asarray(vjp_flat(vspace(value).ones()), dtype=np.float64))
        if has_aux:
            return (value, pytree.tree_map(getval, aux[0])), grad
        return value, grad

    return wrapped

"""Lean autograd nodes for the operations a potential's gradient spends its time in.

autograd records every NumPy call on a traced array as a node, through one general wrapper:
it inspects each argument for traces and for other array types that might take over the
call, and builds each VJP from broadcasting metadata (shape, dtype, complexness) whether or
not the gradient will need it. A potential is a few dozen such calls, mostly on scalars, so
that bookkeeping, not the arithmetic, is what a gradient costs.

The functions here are the same operations (``add``, ``multiply``, ``exp``, ``sum``, ...)
recorded more cheaply: a node holds its parents and one closure, the traced arguments are
found in one pass, and a VJP only sums over broadcast axes when the shapes differ. Their
VJPs are autograd's own formulas, in the same arithmetic, so a gradient comes out the same
to the last bit. A traced array these functions make is a :class:`LeanBox`, whose operators
(``+``, ``*``, ``**``, ...) and ``reshape``/``sum`` methods are these functions too. Anything
else takes autograd's wrapper: other NumPy functions, keyword arguments these do not take,
arguments traced by two nested gradients, a traced exponent.

Examples
--------
>>> import numpy as np
>>> from autograd.core import make_vjp
>>> vjp, value = make_vjp(lambda x: lean_sum(lean_exp(x) * 2.0), np.array([0.0, 1.0]))
>>> bool(np.allclose(vjp(1.0), 2.0 * np.exp([0.0, 1.0])))
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import autograd.numpy as anp
import autograd.scipy.special as asps
import numpy as np
import scipy.special as sps
from autograd.core import VJPNode
from autograd.extend import vspace
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.numpy.numpy_vjps import untake
from autograd.tracer import Box

__all__ = [
    "SPECIAL",
    "XP",
    "LeanBox",
    "broadcast_back",
    "fuse",
    "is_lean_traced",
    "record",
    "lean_getitem",
    "lean_piece",
    "lean_stack",
    "lean_where",
    "unbroadcast",
]

_BOX_TYPES: set[type] = Box.types  # autograd's registry of traced types

Vjp = Callable[..., Any]


class LeanBox(ArrayBox):  # type: ignore[misc]
    """A traced array whose arithmetic records lean nodes."""

    __slots__ = ()

    # Read from the value directly (autograd's go through its wrapper of ``numpy.shape``).
    shape = property(lambda self: np.shape(self._value))
    ndim = property(lambda self: np.ndim(self._value))
    size = property(lambda self: np.size(self._value))
    dtype = property(lambda self: np.result_type(self._value))

    def __add__(self, other: Any) -> Any:
        return lean_add(self, other)

    def __radd__(self, other: Any) -> Any:
        return lean_add(other, self)

    def __sub__(self, other: Any) -> Any:
        return lean_subtract(self, other)

    def __rsub__(self, other: Any) -> Any:
        return lean_subtract(other, self)

    def __mul__(self, other: Any) -> Any:
        return lean_multiply(self, other)

    def __rmul__(self, other: Any) -> Any:
        return lean_multiply(other, self)

    def __truediv__(self, other: Any) -> Any:
        return lean_divide(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return lean_divide(other, self)

    def __neg__(self) -> Any:
        return lean_negative(self)

    def __pow__(self, other: Any) -> Any:
        return lean_power(self, other)

    # Comparisons have no gradient: compare the values, as autograd's (untraced) ones do.
    def __eq__(self, other: Any) -> Any:
        return np.equal(self._value, _value_of(other))

    def __ne__(self, other: Any) -> Any:
        return np.not_equal(self._value, _value_of(other))

    def __lt__(self, other: Any) -> Any:
        return np.less(self._value, _value_of(other))

    def __le__(self, other: Any) -> Any:
        return np.less_equal(self._value, _value_of(other))

    def __gt__(self, other: Any) -> Any:
        return np.greater(self._value, _value_of(other))

    def __ge__(self, other: Any) -> Any:
        return np.greater_equal(self._value, _value_of(other))

    __hash__ = ArrayBox.__hash__

    def __getitem__(self, index: Any) -> Any:
        return lean_getitem(self, index)

    def reshape(self, *shape: Any, **kwargs: Any) -> Any:
        return _reshape_method(self, *shape, **kwargs)

    def sum(self, axis: Any = None, *rest: Any, **kwargs: Any) -> Any:
        return lean_sum(self, axis, *rest, **kwargs)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # ``ndarray + box`` hands NumPy's ufunc to the box: take the lean node for it.
        lean = _LEAN_UFUNCS.get(ufunc)
        if lean is not None and method == "__call__" and not kwargs:
            return lean(*inputs)
        return super().__array_ufunc__(ufunc, method, *inputs, **kwargs)


# autograd tells traced values by ``type(x) in Box.types``: the lean box joins that set. No
# value type maps to it, so autograd's own functions still box their results as ArrayBox.
_BOX_TYPES.add(LeanBox)


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape``, axis by axis in autograd's order (the same rounding)."""
    if getattr(g, "shape", ()) == shape:
        return g
    while np.ndim(g) > len(shape):
        g = np.sum(g, axis=0)
    for axis, size in enumerate(shape):
        if size == 1:
            g = np.sum(g, axis=axis, keepdims=True)
    return g


def _value_of(x: Any) -> Any:
    """The value under a box (one level: a comparison needs no more)."""
    return x._value if type(x) in _BOX_TYPES else x


def broadcast_back(g: Any, shape: tuple[int, ...]) -> Any:
    """``g`` broadcast to ``shape`` (the VJP of a sum), as it is where it has that shape."""
    return g if getattr(g, "shape", ()) == shape else np.broadcast_to(g, shape)


def is_lean_traced(x: Any) -> bool:
    """Traced by one gradient (a trace of a trace needs autograd's wrapper)."""
    return type(x) in _BOX_TYPES and type(x._value) not in _BOX_TYPES


def _new_node(parents: tuple[Any, ...], vjp: Callable[[Any], list[Any]]) -> Any:
    node = VJPNode.__new__(VJPNode)
    node.parents = parents
    node.vjp = vjp
    return node


def record(
    generic: Callable[..., Any], raw: Callable[..., Any], vjps: tuple[Vjp | None, ...]
) -> Callable[..., Any]:
    """The lean version of ``generic`` (autograd's primitive for the NumPy function ``raw``).

    ``vjps[i](g, ans, *args)`` is the gradient with respect to argument ``i``, before the sum
    over broadcast axes; ``None`` where there is none (zeros, as autograd gives).
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        trace = -1
        traced: list[int] = []
        for i, arg in enumerate(args):
            if type(arg) in _BOX_TYPES:
                if (trace >= 0 and arg._trace != trace) or type(arg._value) in _BOX_TYPES:
                    return generic(*args, **kwargs)
                trace = arg._trace
                traced.append(i)
        if not traced:
            return raw(*args, **kwargs)
        if kwargs:
            return generic(*args, **kwargs)
        values = list(args)
        for i in traced:
            values[i] = args[i]._value
        ans = raw(*values)

        def vjp(g: Any) -> list[Any]:
            out = []
            for i in traced:
                rule = vjps[i]
                shape = getattr(values[i], "shape", ())  # a traced Python float has none
                grad = np.zeros(shape) if rule is None else rule(g, ans, *values)
                out.append(unbroadcast(grad, shape))
            return out

        node = VJPNode.__new__(VJPNode)
        node.parents = tuple(args[i]._node for i in traced)
        node.vjp = vjp
        return LeanBox(ans, trace, node)

    call.__name__ = getattr(raw, "__name__", "lean")
    call.__doc__ = f"``{call.__name__}``, recorded as a lean node when traced."
    return call


def fuse(
    forward: Callable[..., tuple[Any, Any]],
    vjps: tuple[Vjp, ...],
    plain: Callable[..., Any],
) -> Callable[..., Any]:
    """A formula of several operations as one lean node.

    ``forward(*args)`` returns the formula's value and what its derivatives reuse (``saved``);
    ``vjps[i](g, saved, *args)`` is the gradient with respect to argument ``i``, before the sum
    over broadcast axes. ``plain`` is the formula written with the backend's ``xp``, for
    arguments traced by nested gradients.
    """

    def call(*args: Any) -> Any:
        trace = -1
        traced: list[int] = []
        for i, arg in enumerate(args):
            if type(arg) in _BOX_TYPES:
                if (trace >= 0 and arg._trace != trace) or type(arg._value) in _BOX_TYPES:
                    return plain(*args)
                trace = arg._trace
                traced.append(i)
        if not traced:
            return forward(*args)[0]
        values = list(args)
        for i in traced:
            values[i] = args[i]._value
        ans, saved = forward(*values)

        def vjp(g: Any) -> list[Any]:
            return [
                unbroadcast(vjps[i](g, saved, *values), getattr(values[i], "shape", ()))
                for i in traced
            ]

        node = VJPNode.__new__(VJPNode)
        node.parents = tuple(args[i]._node for i in traced)
        node.vjp = vjp
        return LeanBox(ans, trace, node)

    call.__name__ = getattr(plain, "__name__", "fused")
    call.__doc__ = plain.__doc__
    return call


def _balanced_eq(x: Any, z: Any, y: Any) -> Any:
    """Where ``x`` is the max (or min) ``z``; a tie with ``y`` shares the gradient."""
    return (x == z) / (1.0 + (x == y))


def _power_vjp(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if type(y) in (int, float) and y == 2:
        return g * y * x  # autograd's formula, with x ** 1 (which is x) left out
    return g * y * x ** np.where(y, y - 1, 1.0)


def _abs_vjp(g: Any, ans: Any, x: Any) -> Any:
    """d|x|/dx as autograd writes it: ``x / |x|``, 0 at 0."""
    return g * np.where(x, x, 0.0) / np.where(ans, ans, 1.0)


lean_add = record(anp.add, np.add, (lambda g, a, x, y: g, lambda g, a, x, y: g))
lean_subtract = record(anp.subtract, np.subtract, (lambda g, a, x, y: g, lambda g, a, x, y: -g))
lean_multiply = record(
    anp.multiply, np.multiply, (lambda g, a, x, y: y * g, lambda g, a, x, y: x * g)
)
lean_divide = record(
    anp.divide, np.divide, (lambda g, a, x, y: g / y, lambda g, a, x, y: -g * x / y**2)
)
lean_negative = record(anp.negative, np.negative, (lambda g, a, x: -g,))
lean_maximum = record(
    anp.maximum,
    np.maximum,
    (lambda g, a, x, y: g * _balanced_eq(x, a, y), lambda g, a, x, y: g * _balanced_eq(y, a, x)),
)
lean_minimum = record(
    anp.minimum,
    np.minimum,
    (lambda g, a, x, y: g * _balanced_eq(x, a, y), lambda g, a, x, y: g * _balanced_eq(y, a, x)),
)
_power_of_constant = record(anp.power, np.power, (_power_vjp, None))


def lean_power(x: Any, y: Any) -> Any:
    """``x ** y``; lean when the exponent is not traced (its VJP would need ``log x``)."""
    if type(y) in _BOX_TYPES:
        return anp.power(x, y)
    return _power_of_constant(x, y)


lean_exp = record(anp.exp, np.exp, (lambda g, a, x: a * g,))
lean_log = record(anp.log, np.log, (lambda g, a, x: g / x,))
lean_log1p = record(anp.log1p, np.log1p, (lambda g, a, x: g / (x + 1),))
lean_expm1 = record(anp.expm1, np.expm1, (lambda g, a, x: (a + 1) * g,))
lean_sqrt = record(anp.sqrt, np.sqrt, (lambda g, a, x: g * 0.5 * x**-0.5,))
lean_square = record(anp.square, np.square, (lambda g, a, x: g * 2 * x,))
lean_tanh = record(anp.tanh, np.tanh, (lambda g, a, x: g / np.cosh(x) ** 2,))
lean_abs = record(anp.abs, np.abs, (_abs_vjp,))
lean_expit = record(asps.expit, sps.expit, (lambda g, a, x: g * a * (1 - a),))
lean_logit = record(asps.logit, sps.logit, (lambda g, a, x: g / (x * (1 - x)),))
lean_clip = record(
    anp.clip,
    np.clip,
    (lambda g, a, x, lo, hi: g * np.logical_and(a != lo, a != hi), None, None),
)
_where = record(
    anp.where,
    np.where,
    (
        None,
        lambda g, a, c, x, y: np.where(c, g, np.zeros(np.shape(g))),
        lambda g, a, c, x, y: np.where(c, np.zeros(np.shape(g)), g),
    ),
)


def lean_where(condition: Any, x: Any, y: Any) -> Any:
    """``numpy.where(condition, x, y)``; the gradient goes to the branch each entry took."""
    return _where(condition, x, y)


def lean_sum(x: Any, axis: Any = None, *rest: Any, **kwargs: Any) -> Any:
    """``numpy.sum`` over ``axis`` (with ``keepdims``); autograd's wrapper for the rest."""
    if type(x) not in _BOX_TYPES:
        return np.sum(x, axis, *rest, **kwargs)
    if rest or not is_lean_traced(x) or set(kwargs) - {"keepdims"}:
        return anp.sum(x, axis, *rest, **kwargs)
    keepdims = bool(kwargs.get("keepdims", False))
    shape = np.shape(x._value)

    def vjp(g: Any) -> list[Any]:
        if not (keepdims or axis is None):
            g = np.expand_dims(g, axis)
        return [broadcast_back(g, shape)]

    ans = np.sum(x._value, axis=axis, keepdims=keepdims)
    return LeanBox(ans, x._trace, _new_node((x._node,), vjp))


def _reshape(x: Any, new_shape: Any) -> Any:
    old_shape = np.shape(x._value)
    ans = np.reshape(x._value, new_shape)
    return LeanBox(ans, x._trace, _new_node((x._node,), lambda g: [np.reshape(g, old_shape)]))


def lean_reshape(a: Any, newshape: Any, *rest: Any, **kwargs: Any) -> Any:
    """``numpy.reshape(a, newshape)``; autograd's wrapper for an ``order``."""
    if rest or kwargs or not is_lean_traced(a):
        return anp.reshape(a, newshape, *rest, **kwargs)
    return _reshape(a, newshape)


def _reshape_method(self: Any, *shape: Any, **kwargs: Any) -> Any:
    """``x.reshape(shape)``, the shape given as one tuple or as integers."""
    return lean_reshape(self, shape[0] if len(shape) == 1 else shape, **kwargs)


def lean_getitem(x: Any, index: Any) -> Any:
    """``x[index]``. For an index of integers and slices (no entry taken twice) the
    cotangent is dense, zeros with ``g`` added at ``index``; for any other index it is
    autograd's sparse one, which adds repeated entries up.

    ``scan`` on NumPy takes one step's slice of a whole series at every step: a dense
    cotangent is added to the series' in one NumPy call, where autograd's sparse one copies
    the series' cotangent and adds into it with ``numpy.add.at``. Both give ``0.0 + g`` at
    ``index`` and leave the other entries as they are, so the sums are the same numbers.
    """
    if type(index) in _BOX_TYPES or not is_lean_traced(x):
        return ArrayBox.__getitem__(x, index)
    value = x._value

    if _is_basic_index(index):

        def vjp(g: Any) -> list[Any]:
            out = np.zeros_like(value)
            out[index] += g
            return [out]

    else:

        def vjp(g: Any) -> list[Any]:
            return [untake(g, index, vspace(value))]

    return LeanBox(value[index], x._trace, _new_node((x._node,), vjp))


def _is_basic_index(index: Any) -> bool:
    """An index of integers and slices, which takes no entry twice."""
    parts = index if type(index) is tuple else (index,)
    return all(type(part) in _BASIC_INDEX_TYPES for part in parts)


_BASIC_INDEX_TYPES = (int, slice, np.int64, np.int32)


def lean_piece(vec: Any, start: int, stop: int, shape: tuple[int, ...]) -> Any:
    """``vec[start:stop].reshape(shape)`` of a traced flat vector, as one node."""
    size = np.shape(vec._value)[0]

    def vjp(g: Any) -> list[Any]:
        out = np.zeros(size)
        out[start:stop] = g if len(shape) <= 1 else np.ravel(g)
        return [out]

    ans = vec._value[start:stop].reshape(shape)
    return LeanBox(ans, vec._trace, _new_node((vec._node,), vjp))


def lean_stack(arrays: Any, axis: int = 0, *rest: Any, **kwargs: Any) -> Any:
    """``numpy.stack(arrays, axis)`` as one node; autograd's wrapper for ``out``/``dtype``.

    autograd stacks through three nodes per array (``array``, ``expand_dims`` and one
    ``concatenate``); a per-step loop (``vmap`` and ``scan`` on NumPy) stacks one traced
    scalar per step. The VJP hands each traced array its slice of the cotangent, and the
    gradient comes out as autograd's, bit for bit: the node lists each array once, in order
    (so the backward pass visits them in autograd's order, last first), and an array stacked
    several times (a parameter shared by the steps of a ``scan``) gets the sum of its
    slices, added last first as autograd's one node per copy adds them.
    """
    arrays = list(arrays)
    traced = [i for i, a in enumerate(arrays) if type(a) in _BOX_TYPES]
    if not traced:
        return np.stack(arrays, axis, *rest, **kwargs)
    trace = arrays[traced[0]]._trace
    if (
        rest
        or kwargs
        or any(arrays[i]._trace != trace or not is_lean_traced(arrays[i]) for i in traced)
    ):
        return anp.stack(arrays, axis, *rest, **kwargs)
    values = [a._value if type(a) in _BOX_TYPES else a for a in arrays]
    ans = np.stack(values, axis)
    lead = (slice(None),) * (axis % ans.ndim)
    places: dict[Any, list[int]] = {}  # each traced array's node: where it was stacked
    for i in traced:
        places.setdefault(arrays[i]._node, []).append(i)

    def vjp(g: Any) -> list[Any]:
        sums = []
        for where in places.values():
            total = g[(*lead, where[-1])]
            for i in reversed(where[:-1]):
                total = total + g[(*lead, i)]
            sums.append(total)
        return sums

    return LeanBox(ans, trace, _new_node(tuple(places), vjp))


def _untraced(ufunc: Any) -> Callable[..., Any]:
    """``ufunc`` of the values under the boxes: it has no gradient (a comparison, a test)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            if type(arg) in _BOX_TYPES:
                return ufunc(*[_value_of(a) for a in args], **kwargs)
        return ufunc(*args, **kwargs)

    call.__name__ = ufunc.__name__
    return call


_NO_GRADIENT = (
    np.equal,
    np.not_equal,
    np.less,
    np.less_equal,
    np.greater,
    np.greater_equal,
    np.isfinite,
    np.isnan,
    np.isinf,
)

_LEAN_UFUNCS: dict[Any, Callable[..., Any]] = {
    **{ufunc: _untraced(ufunc) for ufunc in _NO_GRADIENT},
    np.add: lean_add,
    np.subtract: lean_subtract,
    np.multiply: lean_multiply,
    np.divide: lean_divide,
    np.negative: lean_negative,
    np.power: lean_power,
    np.maximum: lean_maximum,
    np.minimum: lean_minimum,
    np.exp: lean_exp,
    np.log: lean_log,
    np.log1p: lean_log1p,
    np.expm1: lean_expm1,
    np.sqrt: lean_sqrt,
    np.square: lean_square,
    np.tanh: lean_tanh,
    np.abs: lean_abs,
}

XP: dict[str, Callable[..., Any]] = {
    "add": lean_add,
    "subtract": lean_subtract,
    "multiply": lean_multiply,
    "divide": lean_divide,
    "true_divide": lean_divide,
    "negative": lean_negative,
    "power": lean_power,
    "maximum": lean_maximum,
    "minimum": lean_minimum,
    "exp": lean_exp,
    "log": lean_log,
    "log1p": lean_log1p,
    "expm1": lean_expm1,
    "sqrt": lean_sqrt,
    "square": lean_square,
    "tanh": lean_tanh,
    "abs": lean_abs,
    "absolute": lean_abs,
    "clip": lean_clip,
    "sum": lean_sum,
    "reshape": lean_reshape,
    "stack": lean_stack,
    **{ufunc.__name__: _LEAN_UFUNCS[ufunc] for ufunc in _NO_GRADIENT},
}
"""The backend's ``xp`` names these functions stand for."""

SPECIAL: dict[str, Callable[..., Any]] = {"expit": lean_expit, "logit": lean_logit}
"""The backend's ``special`` names these functions stand for."""

"""Shape helpers shared by every distribution."""

from __future__ import annotations

from typing import Any

from minippl.backend import current

Shape = tuple[int, ...]


def shape_of(x: Any) -> Shape:
    """The shape of an array or a Python number."""
    return tuple(getattr(x, "shape", ()))


def broadcast_shapes(*shapes: Shape, what: str = "shapes") -> Shape:
    """NumPy broadcasting of shapes, with an error that prints the shapes involved."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis and s[axis] != 1}
        if len(sizes) > 1:
            raise ValueError(f"{what} {', '.join(map(str, shapes))} do not broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def promote_shapes(*args: Any, shape: Shape = ()) -> list[Any]:
    """Give every argument the same number of dims (leading 1s), as broadcasting would."""
    xp = current().xp
    ndim = len(broadcast_shapes(shape, *(shape_of(a) for a in args)))
    return [
        xp.reshape(a, (1,) * (ndim - len(shape_of(a))) + shape_of(a))
        if len(shape_of(a)) < ndim
        else a
        for a in args
    ]


def sum_rightmost(x: Any, n: int) -> Any:
    """Sum over the rightmost ``n`` dims (the event dims of a log density)."""
    if n <= 0:
        return x
    return current().xp.sum(x, axis=tuple(range(-n, 0)))


def finfo(dtype: Any) -> Any:
    return current().xp.finfo(dtype)

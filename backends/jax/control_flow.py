"""The JAX backend's ``cond`` and ``apply_if``, written around two habits of XLA on a CPU.

Layouts: a LAPACK call (Cholesky, triangular solve) works on column-major matrices, and
XLA's layout assignment lets that choice spread from the call to the results of the
conditional (or loop) around it, while the loop outside keeps its matrices row-major. Each
pass then transposes the matrices in and out, also through the branch that leaves them
alone: with a dense mass matrix at dimension 100 (factorised at the end of each adaptation
window) the transposes are most of a one-leaf NUTS iteration. A vector has one layout, so
matrices cross these boundaries flattened; reshaping them back where they are used is free.

Copies: XLA gives a conditional's results buffers of their own, so a conditional whose
second branch is the identity still copies all it returns on every pass; a loop updates its
state in place. :func:`apply_if_as_loop` is therefore a loop that runs once or never.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from backends.protocol import Shape

__all__ = ["apply_if_as_loop", "cond_with_flat_matrices"]


def _matrix_shapes(leaves: list[Any]) -> list[Shape | None]:
    """Each leaf's shape if it is a numeric matrix (two or more axes), else ``None``."""

    def shape(x: Any) -> Shape | None:
        dtype = getattr(x, "dtype", None)
        if dtype is None or len(x.shape) < 2 or not jnp.issubdtype(dtype, jnp.number):
            return None
        return tuple(x.shape)

    return [shape(x) for x in leaves]


def _flat(leaves: list[Any], shapes: list[Shape | None]) -> list[Any]:
    return [x if s is None else jnp.ravel(x) for x, s in zip(leaves, shapes, strict=True)]


def _unflat(leaves: list[Any], shapes: list[Shape | None]) -> list[Any]:
    return [x if s is None else x.reshape(s) for x, s in zip(leaves, shapes, strict=True)]


def cond_with_flat_matrices(
    pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], operands: tuple[Any, ...]
) -> Any:
    """``lax.cond(pred, true_fn, false_fn, *operands)``, its matrices flattened in and out."""
    leaves, tree = jax.tree_util.tree_flatten(operands)
    shapes = _matrix_shapes(leaves)
    out: dict[str, Any] = {}  # the branches' output structure, known once they are traced

    def branch(fn: Callable[..., Any]) -> Callable[..., list[Any]]:
        def flat_fn(*flat: Any) -> list[Any]:
            result = fn(*jax.tree_util.tree_unflatten(tree, _unflat(list(flat), shapes)))
            out_leaves, out_tree = jax.tree_util.tree_flatten(result)
            out_shapes = _matrix_shapes(out_leaves)
            # Flattened, (3, 2) and (2, 3) would pass lax.cond's own check: compare here.
            if out and (str(out_tree), out_shapes) != (str(out["tree"]), out["shapes"]):
                raise TypeError(
                    f"cond: the branches return different structures or matrix shapes: "
                    f"{out['tree']} {out['shapes']} and {out_tree} {out_shapes}"
                )
            out["tree"], out["shapes"] = out_tree, out_shapes
            return _flat(out_leaves, out_shapes)

        return flat_fn

    flat_out = jax.lax.cond(pred, branch(true_fn), branch(false_fn), *_flat(leaves, shapes))
    return jax.tree_util.tree_unflatten(out["tree"], _unflat(list(flat_out), out["shapes"]))


def apply_if_as_loop(pred: Any, fn: Callable[[Any], Any], state: Any) -> Any:
    """``fn(state)`` if ``pred`` else ``state``, as a loop that runs once or never.

    Besides the copies it saves (dense mass, dimension 100: eight of 40 KB per NUTS
    iteration), a loop also behaves better under ``vmap``:
    a conditional whose predicate differs between chains runs both branches for every chain
    (an adaptation window's end, with its Cholesky, triangular solve and step-size search,
    on every warmup iteration), where a loop runs only while some chain needs it.
    """
    leaves, tree = jax.tree_util.tree_flatten(state)
    shapes = _matrix_shapes(leaves)

    def once(carry: tuple[Any, list[Any]]) -> tuple[Any, list[Any]]:
        new_leaves, new_tree = jax.tree_util.tree_flatten(
            fn(jax.tree_util.tree_unflatten(tree, _unflat(carry[1], shapes)))
        )
        if str(new_tree) != str(tree):
            raise TypeError(f"apply_if: `fn` returned {new_tree}; it must keep the state's {tree}")
        return jnp.zeros((), dtype=bool), _flat(new_leaves, shapes)

    start = (jnp.asarray(pred, dtype=bool), _flat(leaves, shapes))
    _, flat = jax.lax.while_loop(lambda carry: carry[0], once, start)
    return jax.tree_util.tree_unflatten(tree, _unflat(list(flat), shapes))

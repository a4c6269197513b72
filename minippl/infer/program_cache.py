"""Compiled programs kept between runs, with the model's data passed in as arguments.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

A program is traced once per *layout* of the model's arguments: their tree structure, which
leaves are arrays (these become arguments of the program, so new data of the same shapes
reuses it) and the values of the other leaves (baked in as constants). A model that cannot
take traced data (it converts its data with NumPy, say) fails to trace; its data then
becomes constants too, keyed by content, and the program is built again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minippl.backend import current
from minippl.distributions.util import shape_of

__all__ = ["Merge", "ProgramCache", "is_array", "shape_key", "static_key"]

Merge = Callable[[list[Any]], tuple[tuple[Any, ...], dict[str, Any]]]
"""Inside a program: its array arguments -> the model's ``(args, kwargs)``."""


def is_array(x: Any) -> bool:
    """Array leaves of the model's arguments become arguments of the compiled program."""
    return hasattr(x, "shape") and hasattr(x, "dtype")


def static_key(leaves: Sequence[Any]) -> tuple[Any, ...]:
    """A hashable key for the model arguments baked into a program as constants.

    Arrays are keyed by content (shape, dtype and a digest of the bytes), so passing the same
    data again, even as a new array object, reuses the program.
    """
    out: list[Any] = []
    for leaf in leaves:
        if is_array(leaf):
            host = np.ascontiguousarray(current().to_numpy(leaf))
            digest = hashlib.blake2b(host.tobytes(), digest_size=16).hexdigest()
            out.append(("array", host.shape, str(host.dtype), digest))
            continue
        try:
            hash(leaf)
            out.append((type(leaf), leaf))
        except TypeError:
            out.append(("id", id(leaf)))
    return tuple(out)


def shape_key(tree: Any) -> tuple[Any, ...]:
    """What a trace of ``tree`` depends on: its structure, the shapes and dtypes of its
    arrays, and the values of everything else."""
    leaves, treedef = current().tree_flatten(tree)
    return (treedef,) + tuple(
        (shape_of(leaf), str(leaf.dtype)) if is_array(leaf) else static_key([leaf])
        for leaf in leaves
    )


def _merger(treedef: Any, dynamic: tuple[bool, ...], static_leaves: tuple[Any, ...]) -> Merge:
    """``dyn -> (args, kwargs)`` from a program's array arguments (``dyn``, where
    ``dynamic`` is true) and the leaves baked in as constants."""

    def merge(dyn: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        dyn_iter, static_iter = iter(dyn), iter(static_leaves)
        leaves = [next(dyn_iter) if d else next(static_iter) for d in dynamic]
        args, kwargs = current().tree_unflatten(treedef, leaves)
        return tuple(args), dict(kwargs)

    return merge


class ProgramCache:
    """Programs by tag and argument layout; one per :class:`~minippl.infer.MCMC`."""

    def __init__(self) -> None:
        self.programs: dict[Any, Any] = {}
        self.closed_args = False
        """Set once the model failed to trace with its data as arguments."""

    def run(
        self,
        tag: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        build: Callable[[Merge], Any],
        call: Callable[[Any, list[Any], Any], Any],
    ) -> Any:
        """Find (or ``build(merge)``) program ``tag`` for this data and ``call(program,
        dyn, key)`` it, where ``dyn`` are the data's array leaves and ``key`` the program's
        key in the cache."""
        for attempt in range(2):
            program, dyn_leaves, key = self.find(tag, args, kwargs, build)
            try:
                return call(program, dyn_leaves, key)
            except TypeError as err:
                name = type(err).__name__
                if attempt or self.closed_args or not ("Tracer" in name or "Concret" in name):
                    raise
                del self.programs[key]
                self.closed_args = True
        raise AssertionError("unreachable")

    # ``run``'s signature less ``call`` (``duplicates`` pairs the two): ``run`` calls this.
    def find(
        self,
        tag: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        build: Callable[[Merge], Any],
    ) -> tuple[Any, list[Any], Any]:
        """Program ``tag`` for this data's layout (built if new), the data's array leaves
        (its arguments) and its key in the cache; nothing is called."""
        leaves, treedef = current().tree_flatten((args, kwargs))
        dynamic = tuple(False if self.closed_args else is_array(leaf) for leaf in leaves)
        static_leaves = tuple(leaf for leaf, d in zip(leaves, dynamic, strict=True) if not d)
        dyn_leaves = [leaf for leaf, d in zip(leaves, dynamic, strict=True) if d]
        key = (tag, treedef, dynamic, static_key(static_leaves))
        program = self.programs.get(key)
        if program is None:
            program = self.programs[key] = build(_merger(treedef, dynamic, static_leaves))
        return program, dyn_leaves, key

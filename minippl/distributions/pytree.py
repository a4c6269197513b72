"""Distributions, constraints and transforms as pytrees, so ``jit`` and ``vmap`` take them.

A *pytree* is a container a backend's transformations look through to find arrays (on JAX,
``jax.tree_util``; on NumPy, ``backends/pytree.py``). A NumPyro user passes a distribution
into a compiled function, returns one from it, or maps over a batch of them; for that each
class says how to split an instance into its arrays (the *children*, which a transformation
traces or slices) and everything else (the *aux data*: shapes, flags, a support without
arrays), and how to rebuild it from the two.

The split is read off the instance, so every subclass, present or future, has it. An
attribute is a child if it is a parameter (:meth:`PytreeNode.parameter_names`: for a
distribution, the names in ``arg_constraints``, so the numbers of ``Normal(0.0, 1.0)`` are
traced, as NumPyro's are) or if it holds an array somewhere (a base distribution, a support
with array bounds). Rebuilding sets the attributes back without calling ``__init__``: a
traced parameter is not validated again, and nothing is recomputed. The shapes are aux
data, as in NumPyro: inside ``vmap`` a member of a batch keeps the batch's ``batch_shape``.

The core never imports JAX: each class is handed to a backend through its
``register_pytree_class``. Backends load lazily (``import minippl`` starts no JAX), so the
classes are handed to a backend when the first distribution is built under it, and a class
defined later is handed to the backends that already have the others.

>>> import minippl.distributions as dist
>>> d = dist.Normal(0.0, 1.0).expand((3,))
>>> children, aux = type(d).tree_flatten(d)
>>> rebuilt = type(d).tree_unflatten(aux, children)
>>> rebuilt.batch_shape, rebuilt.base_dist.scale
((3,), 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from backends import Backend

_CLASSES: list[type[PytreeNode]] = []
_BACKENDS: list[Backend] = []  # the backends that have been handed every class above


class PytreeNode:
    """A class whose instances a backend's transformations see through to their arrays."""

    pytree_data_fields: ClassVar[tuple[str, ...]] = ()
    """Attributes that are always children, even when they hold a Python number."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES.append(cls)
        for backend in _BACKENDS:
            backend.register_pytree_class(cls, cls.tree_flatten, cls.tree_unflatten)

    def parameter_names(self) -> tuple[str, ...]:
        return self.pytree_data_fields

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """``(children, aux)``: the values that are parameters or hold arrays, and the
        names of those values with the other attributes (as ``(name, value)`` pairs)."""
        params = self.parameter_names()
        names: list[str] = []
        children: list[Any] = []
        static: list[tuple[str, Any]] = []
        for name in sorted(vars(self)):
            value = vars(self)[name]
            if (name in params and value is not None) or holds_arrays(value):
                names.append(name)
                children.append(value)
            else:
                static.append((name, value))
        return tuple(children), (tuple(names), tuple(static))

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: Sequence[Any]) -> Any:
        """The instance :meth:`tree_flatten` split, rebuilt without ``__init__``."""
        names, static = aux
        obj = cls.__new__(cls)
        vars(obj).update(static)
        vars(obj).update(zip(names, children, strict=True))
        return obj


def holds_arrays(value: Any) -> bool:
    """Whether ``value`` is an array or contains one (in a container or a pytree node)."""
    if isinstance(value, PytreeNode):
        return bool(type(value).tree_flatten(value)[0])
    if isinstance(value, (list, tuple)):
        return any(holds_arrays(v) for v in value)
    if isinstance(value, dict):
        return any(holds_arrays(v) for v in value.values())
    return hasattr(value, "shape") and hasattr(value, "dtype")


def register_with(backend: Backend) -> None:
    """Hand every pytree class to ``backend``, once (a second call changes nothing)."""
    if any(b is backend for b in _BACKENDS):
        return
    _BACKENDS.append(backend)
    for cls in _CLASSES:
        backend.register_pytree_class(cls, cls.tree_flatten, cls.tree_unflatten)

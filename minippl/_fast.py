"""The core's speed devices, in one place, so the files a learner reads stay plain.

Each function here does what a one-line standard idiom does (its docstring names the idiom),
on a path that every site or every call of a wrapped model takes. Each stays because the
eager benchmark (``python -m benchmarks.eager``: ``trace(seed(model))`` on both backends)
shows the difference; a device it could not tell apart from the idiom is not here. The
walk a learner reads (``tests/test_reading_path.py``) calls these by name and reads as the
idiom. :func:`fusable` is measured by ``python -m benchmarks.numpy_backend`` instead (the
NumPy backend's gradient).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from minippl.backend import current

if TYPE_CHECKING:
    from minippl.messages import Message

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def copy_message(msg: Message) -> Message:
    """``dataclasses.replace(msg, kwargs=dict(msg.kwargs), ...)``, filling the slots directly.

    ``trace`` copies every message it records, and ``replace`` builds the copy through
    ``__init__`` with a keyword argument per field, then runs the default factories.
    A field added to :class:`~minippl.messages.Message` must be added here too (a test in
    ``tests/test_stack.py`` checks that every field is copied).
    """
    new = object.__new__(type(msg))
    new.type = msg.type
    new.name = msg.name
    new.fn = msg.fn
    new.args = msg.args
    new.kwargs = dict(msg.kwargs)
    new.value = msg.value
    new.scale = msg.scale
    new.is_observed = msg.is_observed
    new.intermediates = list(msg.intermediates)
    new.cond_indep_stack = list(msg.cond_indep_stack)
    new.infer = dict(msg.infer)
    new.mask = msg.mask
    new.stop = msg.stop
    new.interveners = msg.interveners
    return new


def shallow_copy(obj: T) -> T:
    """``copy.copy(obj)`` for a plain object: a new instance sharing every attribute.

    Stateful handlers make one on every call of a wrapped model (``seed(model, 0)()``), and
    ``copy.copy`` goes through the pickling protocol (``__reduce_ex__``).
    """
    fresh = object.__new__(type(obj))
    fresh.__dict__.update(obj.__dict__)
    return fresh


def split_in_two(backend: Any, key: Any) -> tuple[Any, Any]:
    """``first, second = backend.split(key)``, unpacked in the way that is cheap for the array.

    A JAX array unpacks in one dispatch, where two indexings would be two. A NumPy array
    unpacks through the sequence protocol, which fetches a third row to learn that there is
    none (raising ``IndexError`` inside), so two indexings are cheaper. ``seed`` splits
    once per site. (Core code may import NumPy; only this module asks which array it got.)
    """
    keys = backend.split(key)
    if type(keys) is np.ndarray:
        return keys[0], keys[1]
    first, second = keys
    return first, second


def draw(msg: Message) -> tuple[Any, list[Any]]:
    """``msg.fn(*msg.args, sample_intermediates=True, **msg.kwargs)`` for a sample message.

    The usual site (a distribution, no ``args``, the two keyword arguments ``sample``
    writes) calls ``sample_with_intermediates`` directly: ``Distribution.__call__`` packs and
    unpacks the keyword arguments twice on the way.
    """
    fn, kwargs = msg.fn, msg.kwargs
    result: tuple[Any, list[Any]]
    if not msg.args and kwargs.keys() == _DRAW_KWARGS and hasattr(fn, "sample_with_intermediates"):
        result = fn.sample_with_intermediates(kwargs["rng_key"], kwargs["sample_shape"])
    else:
        result = fn(*msg.args, sample_intermediates=True, **kwargs)
    return result


_DRAW_KWARGS = frozenset(("rng_key", "sample_shape"))
"""The keyword arguments of a sample message as ``sample`` builds it."""


def fusable(formula: F) -> F:
    """``formula`` itself, unless the backend has a fused version of it (same values).

    The plain idiom is calling the formula. A backend may hold ``fused``, a mapping from a
    formula's name to a function of the same arguments that computes the same values in one
    step: on NumPy, one autograd node with its derivative written out, where the formula
    would record a node for each operation (a gradient's cost is its number of nodes). The
    formulas marked are those potentials run most: the normal, Cauchy and Bernoulli log
    densities, ``softplus`` and the sigmoid's log slope, and the potential's running sum.
    On JAX, the mask that gives ``-inf`` outside a support: the same values, and a
    derivative that skips the mask (``backends/jax/fused.py``).
    """
    name = formula.__name__

    @functools.wraps(formula)
    def run(*args: Any) -> Any:
        fused = getattr(current(), "fused", _NO_FUSED).get(name)
        return formula(*args) if fused is None else fused(*args)

    return run  # type: ignore[return-value]


_NO_FUSED: dict[str, Callable[..., Any]] = {}
"""A backend without fused formulas."""

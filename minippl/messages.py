"""The message a primitive sends through the handler stack, and a trace's entries.

Tutorial: "What are effect handlers? / Message anatomy" and "Inspection: the full message of
one site" (``tutorial/s01_effect_handlers.py``, ``tutorial/s03_inspection.py``).

A :class:`Message` is a typed dataclass, but it also reads like NumPyro's dict
(``site["value"]``, ``site.get("is_observed", "N/A")``), so code written for NumPyro's traces
works unchanged. As in NumPyro, which keys a site *has* depends on its type: a deterministic
site has no ``is_observed``, so ``get`` returns the default for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class CondIndepStackFrame(NamedTuple):
    """One enclosing plate: its name, the batch dim it owns, and its (subsample) size."""

    name: str
    dim: int
    size: int


# The keys each message type exposes through the mapping interface, in display order.
# They follow NumPyro's message dicts, so ``get(key, default)`` answers the same.
_SAMPLE_KEYS = (
    "type", "name", "fn", "args", "kwargs", "value", "scale", "is_observed",
    "intermediates", "cond_indep_stack", "infer",
)  # fmt: skip
_KEYS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "sample": _SAMPLE_KEYS,
    "param": ("type", "name", "fn", "args", "kwargs", "value", "scale", "cond_indep_stack"),
    "deterministic": ("type", "name", "value", "cond_indep_stack"),
    "plate": ("type", "name", "fn", "args", "kwargs", "value", "scale", "cond_indep_stack"),
    "prng_key": ("type", "fn", "args", "kwargs", "value"),
    "subsample": ("type", "value", "kwargs"),
    "inspect": ("type", "fn", "args", "kwargs", "value", "mask"),
}


@dataclass(slots=True)
class Message:
    """What a primitive sends through the stack.

    Slotted: every site builds one message and ``trace`` copies it, and with ``__slots__``
    both (and every field read in the handlers) skip the per-instance ``__dict__``.

    Fields
    ------
    type: ``"sample"``, ``"param"``, ``"deterministic"``, ``"plate"``, ``"prng_key"``,
        ``"subsample"`` or ``"inspect"``.
    name: the site name (``None`` for unnamed messages such as ``prng_key``).
    fn: the distribution (sample), initialiser (param) or default function.
    args, kwargs: arguments for ``fn``; a sample's ``kwargs`` hold ``rng_key`` and
        ``sample_shape``.
    value: the result; a handler that fills it skips the default execution.
    scale: multiplier of the site's log density (``None`` means 1).
    is_observed: whether ``value`` is data rather than a draw.
    intermediates: auxiliary values a distribution returned with its draw.
    cond_indep_stack: the enclosing plates, innermost last.
    infer: free-form metadata for inference algorithms.
    mask: for ``inspect`` messages (``get_mask``): the active boolean mask.
    stop: set by a handler to keep the handlers above it from seeing the message.
    interveners: the ``do`` handlers that already forked this site (each forks it once).
    """

    type: str
    name: str | None
    fn: Any = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    scale: Any = None
    is_observed: bool = False
    intermediates: list[Any] = field(default_factory=list)
    cond_indep_stack: list[CondIndepStackFrame] = field(default_factory=list)
    infer: dict[str, Any] = field(default_factory=dict)
    mask: Any = None
    stop: bool = False
    interveners: tuple[object, ...] = ()

    # -- the dict-like view NumPyro code expects ---------------------------------------
    def keys(self) -> tuple[str, ...]:
        """The keys this type of message carries (NumPyro's, in its order)."""
        return _KEYS_BY_TYPE.get(self.type, ("type", "name", "fn", "args", "kwargs", "value"))

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(f"a {self.type!r} message has no key {key!r}; it has {self.keys()}")
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not hasattr(self, key):
            raise KeyError(f"Message has no field {key!r}")
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]`` if this type of message carries ``key``, else ``default``."""
        return getattr(self, key) if key in self.keys() else default

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((k, getattr(self, k)) for k in self.keys())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def copy(self) -> Message:
        """A copy whose containers (kwargs, infer, plates, intermediates) are its own.

        NumPyro copies shallowly, so a forked message shares its plate list with the
        original; under ``do`` inside a plate that doubles the plate frames. Copying the
        containers avoids that.
        """
        # ``trace`` copies every message, so this skips ``dataclasses.replace`` (which
        # re-runs ``__init__`` through keyword arguments) and fills the slots directly.
        new = object.__new__(Message)
        new.type = self.type
        new.name = self.name
        new.fn = self.fn
        new.args = self.args
        new.kwargs = dict(self.kwargs)
        new.value = self.value
        new.scale = self.scale
        new.is_observed = self.is_observed
        new.intermediates = list(self.intermediates)
        new.cond_indep_stack = list(self.cond_indep_stack)
        new.infer = dict(self.infer)
        new.mask = self.mask
        new.stop = self.stop
        new.interveners = self.interveners
        return new

    def __repr__(self) -> str:
        body = ",\n ".join(f"{k!r}: {_short(getattr(self, k))}" for k in self.keys())
        return "{" + body + "}"


def _short(value: Any) -> str:
    """A readable one-line rendering of a message field (arrays shown with shape)."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) > 0 and getattr(value, "size", 0) > 6:
        return f"<array shape={tuple(shape)} dtype={value.dtype}>"
    return repr(value)


Trace = dict[str, Message]
"""An execution trace: site name to the message recorded there, in execution order."""

Handler = Callable[[Message], None]

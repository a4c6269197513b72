"""The message a primitive sends through the handler stack, and a trace's entries.

Tutorial: "What are effect handlers? / Message anatomy" and "Inspection: the full message of
one site" (``tutorial/s01_effect_handlers.py``, ``tutorial/s03_inspection.py``).

A :class:`Message` is a typed dataclass, but it also reads like NumPyro's dict
(``site["value"]``, ``site.get("is_observed", "N/A")``), so code written for NumPyro's traces
works unchanged. As in NumPyro, which keys a site *has* depends on its type: a deterministic
site has no ``is_observed``, so ``get`` returns the default for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from minippl import _fast


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


class _NumPyroView:
    """The dict-like reading of a :class:`Message` that code written for NumPyro expects.

    ``msg["value"]``, ``msg.get("is_observed", "N/A")``, ``msg.keys()``, ``dict(msg.items())``.
    As in NumPyro, which keys a message *has* depends on its type: a deterministic site has
    no ``is_observed``, so ``get`` returns the default for it.
    """

    __slots__ = ()
    type: str

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

    def __repr__(self) -> str:
        body = ",\n ".join(f"{k!r}: {_short(getattr(self, k))}" for k in self.keys())
        return "{" + body + "}"


def _short(value: Any) -> str:
    """A readable one-line rendering of a message field (arrays shown with shape)."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) > 0 and getattr(value, "size", 0) > 6:
        return f"<array shape={tuple(shape)} dtype={value.dtype}>"
    return repr(value)


@dataclass(slots=True, repr=False)  # the repr is the view's, as NumPyro's dict shows
class Message(_NumPyroView):
    """What a primitive sends through the stack: a request for a value, then its answer.

    Slotted, as every site builds one and ``trace`` copies it. It also reads like NumPyro's
    message dict (``msg["value"]``, ``msg.get("is_observed")``): see :class:`_NumPyroView`.
    """

    type: str  # sample, param, deterministic, plate, prng_key, subsample or inspect
    name: str | None  # the site name; None for unnamed messages such as prng_key
    fn: Any = None  # the distribution (sample), initialiser (param) or default function
    args: tuple[Any, ...] = ()  # positional arguments of fn
    kwargs: dict[str, Any] = field(default_factory=dict)  # a sample's: rng_key, sample_shape
    value: Any = None  # the result; a handler that fills it skips the default execution
    scale: Any = None  # multiplier of the site's log density (None means 1)
    is_observed: bool = False  # whether value is data rather than a draw
    intermediates: list[Any] = field(default_factory=list)  # what the draw computed on the way
    cond_indep_stack: list[CondIndepStackFrame] = field(default_factory=list)  # plates, inner last
    infer: dict[str, Any] = field(default_factory=dict)  # metadata for inference algorithms
    mask: Any = None  # for inspect messages (get_mask): the active boolean mask
    stop: bool = False  # set by a handler to hide the message from the handlers above it
    interveners: tuple[object, ...] = ()  # the do handlers that forked this site already

    def copy(self) -> Message:
        """A copy with its own containers (kwargs, infer, plates, intermediates): NumPyro's
        shallow copy shares the plate list, which doubles plate frames under ``do``."""
        return _fast.copy_message(self)


Trace = dict[str, Message]
"""An execution trace: site name to the message recorded there, in execution order."""

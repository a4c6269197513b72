"""``seed`` and ``trace``: the two handlers everything else is built on.

Tutorial: "Inspection: seed and trace" (``tutorial/s03_inspection.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np

from minippl.backend import current
from minippl.messages import Message
from minippl.runtime import Messenger

_SEEDED_TYPES = ("sample", "prng_key", "plate", "control_flow")


def as_key(rng_seed: Any) -> Any:
    """A PRNG key of the active backend from an int seed (or a 0-d integer array) or a key."""
    backend = current()
    if isinstance(rng_seed, int):  # the usual case, first: every wrapped call builds a seed
        return backend.key(rng_seed)
    if backend.is_key(rng_seed):
        return rng_seed
    if getattr(rng_seed, "shape", None) == () and "int" in str(rng_seed.dtype):
        # A 0-d integer array; under jit a traced one, which jax.random.key accepts.
        return backend.key(int(rng_seed) if backend.is_concrete(rng_seed) else rng_seed)
    raise TypeError(
        f"rng_seed must be an int or a PRNG key of the {backend.name} backend, "
        f"got {type(rng_seed).__name__}"
    )


def _split_in_two(key: Any) -> tuple[Any, Any]:
    """The two halves of ``split(key)``, taken out in the way that is cheap for its array type.

    A JAX array unpacks in one eager dispatch, where ``keys[0], keys[1]`` would be two, each
    dearer than the split itself. A NumPy array unpacks through its generic iterator, which
    fetches a third row to learn that there is none (and raises ``IndexError`` inside); two
    indexings cost a third of that. ``seed`` splits once per site, so this shows.
    """
    keys = current().split(key)
    if type(keys) is np.ndarray:
        return keys[0], keys[1]
    first, second = keys
    return first, second


class seed(Messenger):
    """Give every sample, plate and ``prng_key`` message a fresh PRNG key.

    Acts in process_message on ``sample``, ``prng_key``, ``plate`` and ``control_flow``
    messages (minus ``hide_types``); reads ``kwargs["rng_key"]`` and ``value``, writes
    ``kwargs["rng_key"]``. A site that already has a key or a value (observed, or set by a
    handler inside this one) keeps it and costs no key. Otherwise ``self.rng_key`` is split:
    the site gets the second half and the handler keeps the first, exactly as NumPyro does,
    so draws agree bit for bit. With nested seeds the innermost wins (it processes first).

    Key stream, as in NumPyro: a wrapped model (``seed(model, 0)``) starts from ``rng_seed``
    on every call, on a fresh copy of the handler, so its draws repeat call after call (and
    calls from several threads do not share a stream); a handler used in ``with`` blocks keeps
    advancing from one block to the next. One difference: a key that entered concrete and
    advanced under ``jit`` (it is then a tracer) is reset on exit to the key it had on
    entry, so a handler used inside and then outside ``jit`` never leaks a tracer (NumPyro
    raises ``UnexpectedTracerError`` there). The price: a handler made outside ``jit`` and
    entered twice inside one jitted function starts both blocks from the same key.
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        rng_seed: Any = None,
        hide_types: list[str] | None = None,
    ) -> None:
        self.rng_key = None if rng_seed is None else as_key(rng_seed)
        self.hide_types = [] if hide_types is None else list(hide_types)
        self._keys_on_entry: list[Any] = []
        super().__init__(fn)

    def _for_one_call(self) -> Messenger:
        fresh = self._shallow_copy()  # starts from this handler's key, advances its own
        fresh._keys_on_entry = []
        return fresh

    def __enter__(self) -> Any:
        self._keys_on_entry.append(self.rng_key)
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        key_on_entry = self._keys_on_entry.pop()
        backend = current()
        if backend.is_tracer(self.rng_key) and not backend.is_tracer(key_on_entry):
            self.rng_key = key_on_entry  # a key split under jit must not outlive the trace
        super().__exit__(exc_type, exc, tb)

    def process_message(self, msg: Message) -> None:
        if msg.type in self.hide_types or msg.type not in _SEEDED_TYPES:
            return
        if msg.kwargs.get("rng_key") is not None or msg.value is not None:
            return
        if self.rng_key is None:
            return
        self.rng_key, msg.kwargs["rng_key"] = _split_in_two(self.rng_key)


class trace(Messenger):
    """Record every named message, in execution order, into ``self.trace``.

    Acts in postprocess_message on every message with a name (unnamed ones such as
    ``prng_key``, ``subsample`` and ``inspect`` are skipped); reads ``name`` and ``type``,
    writes nothing; stores a copy, so later handlers cannot change what was recorded. Two
    sample or deterministic sites with one name are an error; a repeated ``param``
    overwrites the earlier record, as in NumPyro.
    """

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        self.trace: OrderedDict[str, Message] = OrderedDict()
        super().__init__(fn)

    def __enter__(self) -> OrderedDict[str, Message]:
        super().__enter__()
        self.trace = OrderedDict()
        return self.trace

    def postprocess_message(self, msg: Message) -> None:
        if msg.name is None:
            return
        if msg.name in self.trace and msg.type in ("sample", "deterministic"):
            raise ValueError(
                f"two sites are named {msg.name!r}: site names must be unique. Rename one, "
                "or put the repeated component under handlers.scope(prefix=...)"
            )
        self.trace[msg.name] = msg.copy()

    def get_trace(self, *args: Any, **kwargs: Any) -> OrderedDict[str, Message]:
        """Run the wrapped model with these arguments and return its trace."""
        self(*args, **kwargs)
        return self.trace

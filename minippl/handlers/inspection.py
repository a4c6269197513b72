"""``seed`` and ``trace``: the two handlers everything else is built on.

Tutorial: "Inspection: seed and trace" (``tutorial/s03_inspection.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from minippl import _fast
from minippl.backend import current
from minippl.checks import check_seed
from minippl.messages import Message
from minippl.runtime import Messenger

_SEEDED_TYPES = ("sample", "prng_key", "plate", "control_flow")


def as_key(rng_seed: Any) -> Any:
    """A PRNG key of the active backend from an int seed (or a 0-d integer array) or a key."""
    backend = current()
    if isinstance(rng_seed, int):
        return backend.key(check_seed(rng_seed))
    if backend.is_key(rng_seed):
        return rng_seed
    if getattr(rng_seed, "shape", None) == () and "int" in str(rng_seed.dtype):  # traced too
        return backend.key(int(rng_seed) if backend.is_concrete(rng_seed) else rng_seed)
    raise TypeError(f"rng_seed must be an int or a PRNG key ({backend.name}), got {rng_seed!r}")


class seed(Messenger):
    """Give every sample, plate and ``prng_key`` message a fresh PRNG key.

    Acts in process_message on ``sample``, ``prng_key``, ``plate`` and ``control_flow``
    messages (minus ``hide_types``) that have neither ``kwargs["rng_key"]`` nor a ``value``;
    writes ``kwargs["rng_key"]``: ``self.rng_key`` is split, the site gets the second half and
    the handler keeps the first, as in NumPyro, so draws agree bit for bit. A wrapped model
    (``seed(model, 0)``) starts from ``rng_seed`` on every call; in ``with`` blocks it advances
    from block to block. A key split under ``jit`` is reset on exit to its key on entry, so no
    tracer leaks (NumPyro raises) and a handler entered twice in one jitted function repeats.

    >>> seeded = handlers.seed(lambda: minippl.sample("x", dist.Normal(0.0, 1.0)), rng_seed=0)
    >>> bool(seeded() == seeded())  # each call starts again from rng_seed
    True
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        rng_seed: Any = None,
        hide_types: Sequence[str] | None = None,
    ) -> None:
        self.rng_key = None if rng_seed is None else as_key(rng_seed)
        self.hide_types = list(hide_types or ())
        self._keys_on_entry: list[Any] = []
        super().__init__(fn)

    def _for_one_call(self) -> Messenger:
        fresh = _fast.shallow_copy(self)  # starts from this handler's key, advances its own
        fresh._keys_on_entry = []
        return fresh

    def __enter__(self) -> Any:
        self._keys_on_entry.append(self.rng_key)
        return super().__enter__()

    def __exit__(self, *exc_info: object) -> None:
        key_on_entry, is_tracer = self._keys_on_entry.pop(), current().is_tracer
        if is_tracer(self.rng_key) and not is_tracer(key_on_entry):
            self.rng_key = key_on_entry  # a key split under jit must not outlive the trace
        super().__exit__(*exc_info)

    def process_message(self, msg: Message) -> None:
        if msg.type in self.hide_types or msg.type not in _SEEDED_TYPES:
            return
        if msg.kwargs.get("rng_key") is None and msg.value is None and self.rng_key is not None:
            self.rng_key, msg.kwargs["rng_key"] = _fast.split_in_two(current(), self.rng_key)


class trace(Messenger):
    """Record every named message, in execution order, into ``self.trace``.

    Acts in postprocess_message on every message with a name (so not on ``prng_key``,
    ``subsample``, ``inspect``); writes nothing; stores a copy, so later handlers cannot
    change the record. Two sample or deterministic sites with one name are an error; a
    repeated ``param`` overwrites the earlier record, as in NumPyro.

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0), sample_shape=(3,))
    >>> tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
    >>> [(name, site["type"], site["value"].shape) for name, site in tr.items()]
    [('x', 'sample', (3,))]
    """

    def __enter__(self) -> OrderedDict[str, Message]:
        super().__enter__()
        self.trace: OrderedDict[str, Message] = OrderedDict()
        return self.trace

    def postprocess_message(self, msg: Message) -> None:
        if msg.name is None:
            return
        if msg.name in self.trace and msg.type in ("sample", "deterministic"):
            hint = "rename one, or put the repeated component under handlers.scope(prefix=...)"
            raise ValueError(f"two sites are named {msg.name!r}: {hint}")
        self.trace[msg.name] = msg.copy()

    def get_trace(self, *args: Any, **kwargs: Any) -> OrderedDict[str, Message]:
        """Run the wrapped model with these arguments and return its trace."""
        self(*args, **kwargs)
        return self.trace

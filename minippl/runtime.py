"""The handler stack and ``apply_stack``: the whole effect-handler machine.

Tutorial: "What are effect handlers?" (``tutorial/s01_effect_handlers.py``).

Stack words, defined once: handlers are pushed as they are entered, so the *bottom* of the
stack is the innermost handler (entered last) and the *top* is the outermost.
``apply_stack`` runs three phases:

1. ``process_message`` from the bottom upwards, until a handler sets ``msg.stop``;
2. the default execution, if no handler gave the message a value;
3. ``postprocess_message`` from the highest handler that processed the message back down to
   the bottom, so only handlers that saw phase 1 see phase 3.

The stack lives in a :class:`contextvars.ContextVar` holding an immutable tuple. Each thread
and each asyncio task therefore sees its own stack: two threads running models under different
handlers never see each other's handlers (NumPyro's module-level list cannot promise that).

A handler of your own subclasses :class:`Messenger` and overrides one phase or both:

>>> class announce(Messenger):
...     def process_message(self, msg):
...         print("phase 1:", msg.type, msg.name)
>>> announce(lambda: minippl.sample("x", dist.Normal(0.0, 1.0), obs=0.5))()
phase 1: sample x
0.5
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from minippl import _fast
from minippl.messages import Message

_STACK: ContextVar[tuple[Messenger, ...]] = ContextVar("minippl_handler_stack", default=())
"""The active handlers, outermost first: the last entry is the bottom of the stack."""


def stack() -> tuple[Messenger, ...]:
    """The handlers active in this context, outermost first."""
    return _STACK.get()


class Messenger:
    """Base class of every handler: a context manager that is also a function wrapper.

    ``with handler: model()``, ``handler(model)()`` and ``handler(**options)(model)()`` (the
    decorator form) are the same thing. Subclasses override :meth:`process_message` and/or
    :meth:`postprocess_message`. The stack is not kept on the handler, so a handler may be
    active in two threads at once.
    """

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        if fn is not None and not callable(fn):
            what = f"{type(fn).__name__}; options go by keyword, as in seed(rng_seed=0)"
            raise TypeError(f"{type(self).__name__}: the model must be callable, got {what}")
        self.fn = fn
        if fn is not None:
            functools.update_wrapper(self, fn, updated=())  # the model's name and signature

    def __enter__(self) -> Any:
        _STACK.set((*_STACK.get(), self))

    def __exit__(self, *exc_info: object) -> None:
        # Also drops handlers entered after this one and not exited (the body raised).
        handlers = _STACK.get()
        for index in range(len(handlers) - 1, -1, -1):
            if handlers[index] is self:
                _STACK.set(handlers[:index])
                return

    def process_message(self, msg: Message) -> None:
        """Phase 1, bottom to top: inspect or change the message before it runs."""

    def postprocess_message(self, msg: Message) -> None:
        """Phase 3, top to bottom: record or change the message after it ran."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:  # the decorator form, ``@reparam(config=...)``: wrap the model
            if len(args) != 1 or kwargs or not callable(args[0]):
                raise TypeError(f"{type(self).__name__} wraps no function: pass the model first")
            Messenger.__init__(self, args[0])
            return self
        with self._for_one_call():
            return self.fn(*args, **kwargs)

    def _for_one_call(self) -> Messenger:
        """The handler one call of the wrapped model runs under: ``self``, or a fresh copy in
        handlers that keep state while active, so that threads may share a wrapped model."""
        return self


def apply_stack(msg: Message) -> Message:
    """Send ``msg`` through the active handlers (the three phases above) and return it."""
    handlers = _STACK.get()
    watcher = _WATCHER.get()
    if watcher is not None:  # ``explain`` wraps each handler to see what it does
        handlers = watcher(handlers)
    # Phase 1: bottom (innermost, last in the tuple) to top, until a handler sets ``stop``.
    seen = 0  # how many handlers, counted from the bottom, processed the message
    for handler in reversed(handlers):
        handler.process_message(msg)
        seen += 1
        if msg.stop:
            break
    # Phase 2: the default behaviour, only if no handler supplied a value.
    if msg.value is None:
        default_process(msg)
    # Phase 3: from the highest handler that processed the message back down to the bottom.
    for handler in handlers[len(handlers) - seen :]:
        handler.postprocess_message(msg)
    return msg


def default_process(msg: Message) -> None:
    """Phase 2: a sample draws ``fn(*args, sample_intermediates=True, **kwargs)`` (a value and
    what the draw computed on the way); any other message with a function calls it."""
    if msg.type == "sample":
        if msg.kwargs.get("rng_key") is None:
            raise MissingKeyError(msg.name)
        msg.value, msg.intermediates = _fast.draw(msg)
    elif msg.fn is not None:
        msg.value = msg.fn(*msg.args, **msg.kwargs)


class MissingKeyError(RuntimeError):
    """A site needed a PRNG key and no ``seed`` handler supplied one."""

    def __init__(self, name: str | None, what: str = "sample site") -> None:
        hint = "wrap the model in handlers.seed(model, rng_seed=0), or pass rng_key= to sample"
        super().__init__(f"{what} {name!r} has no PRNG key to draw with: {hint}.")


# -- watching the stack (``explain``) ---------------------------------------------------

Watcher = Callable[[tuple[Messenger, ...]], tuple[Messenger, ...]]
"""Given the stack a message meets, the handlers it goes through instead; see ``explain``."""
_WATCHER: ContextVar[Watcher | None] = ContextVar("minippl_watcher", default=None)


def watching(watcher: Watcher) -> Token[Watcher | None]:
    """Install ``watcher`` for this context; returns the token to restore the previous one."""
    return _WATCHER.set(watcher)


def stop_watching(token: Token[Watcher | None]) -> None:
    _WATCHER.reset(token)

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
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ClassVar, Self

from minippl.distributions.distribution import Distribution
from minippl.messages import Message

_STACK: ContextVar[tuple[Messenger, ...]] = ContextVar("minippl_handler_stack", default=())

Watcher = Callable[[str, "Messenger", Message, Message], None]
"""Called as ``(phase, handler, before, after)`` around every handler call; see ``explain``."""
_WATCHER: ContextVar[Watcher | None] = ContextVar("minippl_watcher", default=None)
_EVER_WATCHED = False
"""Set by the first ``watching``: until then ``apply_stack`` skips reading ``_WATCHER`` (a
``ContextVar`` read on every message costs about as much as a handler call)."""


_WRAPPER_NAMES = ("__module__", "__name__", "__qualname__", "__doc__")


def _look_like(handler: Messenger, fn: Callable[..., Any]) -> None:
    """What ``functools.update_wrapper`` does for a handler (name, docstring, ``__wrapped__``
    for ``inspect.signature``), written straight into the instance's dict: a handler is made
    on every ``trace(seed(model))`` call, and the generic version was ~4% of that call."""
    own = handler.__dict__
    for name in _WRAPPER_NAMES:
        try:
            own[name] = getattr(fn, name)
        except AttributeError:
            pass
    own["__wrapped__"] = fn


class Messenger:
    """Base class of every handler: a context manager that is also a function wrapper.

    ``with handler: model()``, ``handler(model)()`` and ``handler(**options)(model)()`` (the
    decorator form) are the same thing. Subclasses override :meth:`process_message` and/or
    :meth:`postprocess_message`; both default to doing nothing.

    Entering pushes the handler on this context's stack; exiting removes it and anything
    entered after it that was not exited (as NumPyro does when the body raised), so the stack
    is never left dirty, also when the model raises. Nothing about the stack is stored on the
    handler, so one handler object may be active in several threads at once.
    """

    # Whether the class overrides each phase: ``apply_stack`` skips calling the base class's
    # do-nothing methods (``seed`` has no phase 3, ``trace`` no phase 1: two calls a site).
    _overrides_process: ClassVar[bool] = False
    _overrides_postprocess: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._overrides_process = cls.process_message is not Messenger.process_message
        cls._overrides_postprocess = cls.postprocess_message is not Messenger.postprocess_message

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(
                f"{type(self).__name__}: the first argument is the model to wrap and must be "
                f"callable, got {type(fn).__name__}. Pass options by keyword, e.g. "
                "seed(rng_seed=0) or condition(data={...})."
            )
        self.fn = fn
        if fn is not None:
            _look_like(self, fn)

    def __enter__(self) -> Any:
        _STACK.set((*_STACK.get(), self))
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        handlers = _STACK.get()
        if handlers and handlers[-1] is self:  # the usual case: handlers exit in order
            _STACK.set(handlers[:-1])
            return
        for index in range(len(handlers) - 1, -1, -1):
            if handlers[index] is self:
                _STACK.set(handlers[:index])
                return

    def process_message(self, msg: Message) -> None:
        """Phase 1, bottom to top: inspect or change the message before it runs."""

    def postprocess_message(self, msg: Message) -> None:
        """Phase 3, top to bottom: record or change the message after it ran."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            # The decorator form, ``@reparam(config=...)``: the one argument is the model.
            if len(args) == 1 and not kwargs and callable(args[0]):
                self.fn = args[0]
                _look_like(self, args[0])
                return self
            raise TypeError(
                f"{type(self).__name__} wraps no function: use it as a context manager, "
                f"or pass the model first, e.g. {type(self).__name__}(model, ...)"
            )
        with self._for_one_call():
            return self.fn(*args, **kwargs)

    def _for_one_call(self) -> Messenger:
        """The handler one call of the wrapped model runs under: ``self``, or, in handlers
        that keep state while active (``seed``, ``lift``, ``condition``...), a fresh copy
        (see :meth:`_shallow_copy`), so that a wrapped model can be called from several
        threads at once."""
        return self

    def _shallow_copy(self) -> Self:
        """A copy sharing every attribute with ``self``; the caller resets the state it keeps.

        Made on every call of a wrapped stateful handler, so it skips ``__init__`` (which
        checks its arguments and copies the model's name and docstring, a microsecond) and
        ``copy.copy`` (which goes through the pickling protocol).
        """
        fresh = object.__new__(type(self))
        fresh.__dict__.update(self.__dict__)
        return fresh


def stack() -> tuple[Messenger, ...]:
    """The handlers active in this context, outermost first."""
    return _STACK.get()


def apply_stack(msg: Message) -> Message:
    """Send ``msg`` through the active handlers (the three phases above) and return it."""
    handlers = _STACK.get()
    watcher = _WATCHER.get() if _EVER_WATCHED else None
    if watcher is not None:
        handlers = tuple(_Watched(handler, watcher) for handler in handlers)
    # Phase 1: bottom (innermost, last in the tuple) to top, stopping where a handler says.
    first_seen = len(handlers)  # ends as the index of the highest handler that saw it
    for handler in reversed(handlers):
        first_seen -= 1
        if handler._overrides_process:
            handler.process_message(msg)
        if msg.stop:
            break
    # Phase 2: the default behaviour, only if nobody supplied a value.
    if msg.value is None:
        default_process(msg)
    # Phase 3: from the highest handler that processed the message back to the bottom.
    for handler in handlers[first_seen:]:
        if handler._overrides_postprocess:
            handler.postprocess_message(msg)
    return msg


class _Watched(Messenger):
    """A handler seen through a watcher: each call is reported with the message before and
    after it (what ``explain`` prints)."""

    def __init__(self, handler: Messenger, watcher: Watcher) -> None:
        super().__init__()
        self.handler = handler
        self.watcher = watcher

    def process_message(self, msg: Message) -> None:
        before = msg.copy()
        self.handler.process_message(msg)
        self.watcher("process", self.handler, before, msg)

    def postprocess_message(self, msg: Message) -> None:
        before = msg.copy()
        self.handler.postprocess_message(msg)
        self.watcher("postprocess", self.handler, before, msg)


def default_process(msg: Message) -> None:
    """What a message does when no handler supplied its value."""
    if msg.type == "sample":
        kwargs = msg.kwargs
        rng_key = kwargs.get("rng_key")
        if rng_key is None:
            raise MissingKeyError(msg.name)
        fn = msg.fn
        if isinstance(fn, Distribution) and not msg.args and kwargs.keys() == _DRAW_KWARGS:
            # The usual site: the draw ``fn(rng_key=..., sample_shape=...,
            # sample_intermediates=True)`` makes, called directly. Going through
            # ``Distribution.__call__`` packs and unpacks the keyword arguments twice, which
            # costs a third of a scalar draw on the NumPy backend.
            draw = fn.sample_with_intermediates(rng_key, kwargs["sample_shape"])
        else:
            draw = fn(*msg.args, sample_intermediates=True, **kwargs)
        msg.value, msg.intermediates = draw
    elif msg.fn is not None:
        msg.value = msg.fn(*msg.args, **msg.kwargs)


_DRAW_KWARGS = frozenset(("rng_key", "sample_shape"))
"""The keyword arguments of a sample message as ``sample`` builds it."""


class MissingKeyError(RuntimeError):
    """A site needed a PRNG key and no ``seed`` handler supplied one."""

    def __init__(self, name: str | None, what: str = "sample site") -> None:
        super().__init__(
            f"{what} {name!r} has no PRNG key to draw with. Wrap the model in a seed "
            "handler, e.g. minippl.handlers.seed(model, rng_seed=0)(...), or pass "
            "rng_key= to sample."
        )


def watching(watcher: Watcher) -> Token[Watcher | None]:
    """Install ``watcher`` for this context; returns the token to restore the previous one."""
    global _EVER_WATCHED
    _EVER_WATCHED = True
    return _WATCHER.set(watcher)


def stop_watching(token: Token[Watcher | None]) -> None:
    _WATCHER.reset(token)

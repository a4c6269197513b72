"""``explain``: watch each message move through the handler stack, one handler at a time.

Tutorial: "Composing handlers: nesting and order" (``tutorial/s10_composing.py``), where it
shows why ``condition(substitute(...))`` and ``substitute(condition(...))`` differ, and the
summary (``tutorial/s12_summary.py``), whose handler table is measured with it.

NumPyro has no such tool. ``apply_stack`` lets an optional *watcher* stand between the
message and the stack (:func:`minippl.runtime.watching`). ``explain`` installs one that wraps
each handler so that every call is reported, compares the message before and after each call
and keeps the fields that changed. The result is one story per
message, in the order the messages were sent:

* the stack the message met, bottom (innermost, processed first) to top;
* phase 1, each handler's ``process_message`` and what it changed;
* phase 2, the default execution (the draw), when no handler supplied a value;
* phase 3, each ``postprocess_message``, top back down to the bottom.

Example:

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0))
    >>> record = explain(handlers.condition(handlers.seed(model, 0), data={"x": 1.0}))
    x  (sample)
      stack, bottom to top: seed -> condition(data: x)
      1 process      seed                kwargs.rng_key: None -> <PRNG key>
                     condition(data: x)  value: None -> 1.0
                                         is_observed: False -> True
      2 default      not run: the value was already set
      3 postprocess  condition(data: x) -> seed: no change
    >>> record["x"].changed_by("condition")
    ('value', 'is_observed')

Changes are found by comparing the message's fields: containers (``kwargs``, ``infer``) key
by key, arrays by value, everything else by identity or equality. Arrays are summarised by
their shape, PRNG keys as ``<PRNG key>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from minippl.backend import current
from minippl.messages import CondIndepStackFrame, Message
from minippl.runtime import Messenger, stack, stop_watching, watching

__all__ = ["Change", "Explanation", "MessageStory", "Step", "explain", "explaining", "summarise"]

_FIELDS = tuple(f.name for f in dataclasses.fields(Message))
_MAPPING_FIELDS = ("kwargs", "infer")


@dataclass(frozen=True)
class Change:
    """One field of the message changed by one step: ``field`` is ``"value"``,
    ``"kwargs.rng_key"``, ``"infer.was_observed"``..."""

    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {summarise(self.old)} -> {summarise(self.new)}"


@dataclass(frozen=True)
class Step:
    """What one handler call (or the default execution) did to the message.

    ``phase`` is ``"process"`` (phase 1), ``"default"`` (phase 2) or ``"postprocess"``
    (phase 3); ``handler`` is the handler's label, ``"-"`` for the default execution.
    """

    phase: str
    handler: str
    changes: tuple[Change, ...]
    note: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the changed fields, in message order."""
        return tuple(change.field for change in self.changes)

    def describe(self) -> str:
        if self.note:
            return self.note
        return "; ".join(str(change) for change in self.changes) if self.changes else "-"


@dataclass
class MessageStory:
    """Everything that happened to one message, in order."""

    name: str | None
    """The name the message ended with (``do`` renames its original to ``name__CF``)."""
    sent_as: str | None
    """The name the primitive sent it with."""
    type: str
    stack: tuple[str, ...]
    """Labels of the handlers active when it was sent, bottom (innermost) to top."""
    steps: list[Step] = field(default_factory=list)
    message: Message | None = None
    """The message object itself, as it ended."""

    @property
    def label(self) -> str:
        if self.name is None:
            return f"({self.type})"
        if self.sent_as is not None and self.sent_as != self.name:
            return f"{self.name}  (sent as {self.sent_as!r})"
        return self.name

    def changed_by(self, handler: str, phase: str | None = None) -> tuple[str, ...]:
        """The fields the handler whose label starts with ``handler`` changed (all phases,
        or only ``phase``)."""
        return tuple(
            name
            for step in self.steps
            if step.handler.split("(")[0] == handler and (phase is None or step.phase == phase)
            for name in step.fields
        )

    def handlers(self, phase: str) -> tuple[str, ...]:
        """The labels of the handlers that ran ``phase`` on this message, in order."""
        return tuple(step.handler for step in self.steps if step.phase == phase)

    def __str__(self) -> str:
        lines = [f"{self.label}  ({self.type})"]
        lines.append("  stack, bottom to top: " + (" -> ".join(self.stack) or "(none)"))
        width = max([len(step.handler) for step in self.steps] + [1])
        for number, phase in (("1", "process"), ("2", "default"), ("3", "postprocess")):
            steps = [step for step in self.steps if step.phase == phase]
            head = f"{number} {phase}"
            if phase == "default":
                for step in steps:
                    lines.append(f"  {head:<14s} {step.describe()}")
            elif steps and not any(step.changes for step in steps):
                # A phase in which no handler changed anything takes one line.
                order = " -> ".join(step.handler for step in steps)
                lines.append(f"  {head:<14s} {order}: no change")
            else:
                for step in steps:
                    # One change per line, so long stories stay readable.
                    texts = [str(change) for change in step.changes] or [step.describe()]
                    lines.append(f"  {head:<14s} {step.handler:<{width}s}  {texts[0]}")
                    lines.extend(f"  {'':<14s} {'':<{width}s}  {text}" for text in texts[1:])
                    head = ""
        return "\n".join(lines)


@dataclass
class Explanation:
    """The stories of all messages a model sent, in the order they were sent."""

    stories: list[MessageStory] = field(default_factory=list)
    result: Any = None
    """What the model returned."""

    def __iter__(self) -> Iterator[MessageStory]:
        return iter(self.stories)

    def __len__(self) -> int:
        return len(self.stories)

    def __getitem__(self, name: str) -> MessageStory:
        """The story of the site that ended (or was sent) with this name."""
        for story in self.stories:
            if story.name == name:
                return story
        for story in self.stories:
            if story.sent_as == name:
                return story
        names = [story.name for story in self.stories if story.name is not None]
        raise KeyError(f"no message named {name!r}; the named ones are {names}")

    @property
    def sites(self) -> list[MessageStory]:
        """The stories of named messages (sites), leaving out ``prng_key`` and the like."""
        return [story for story in self.stories if story.name is not None]

    def __str__(self) -> str:
        return "\n\n".join(str(story) for story in self.stories)


class explaining:
    """Record, without printing, what every handler does to every message sent inside.

    ``with explaining() as record: model()`` fills ``record`` (an :class:`Explanation`).
    While active it pushes one do-nothing handler of its own, so that messages go through
    ``apply_stack`` even when the model runs under no other handler; it never appears in
    the stories.
    """

    def __init__(self) -> None:
        self.record = Explanation()
        self._listener = _Listener()
        self._open: dict[int, _Open] = {}
        self._token: Any = None

    def __enter__(self) -> Explanation:
        self.record = Explanation()
        self._open = {}
        self._listener.__enter__()
        self._token = watching(self._through_watch)
        return self.record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stop_watching(self._token)
        self._listener.__exit__(exc_type, exc, tb)
        for opened in self._open.values():
            opened.story.name = opened.message.name
        self._open = {}

    def _through_watch(self, handlers: tuple[Messenger, ...]) -> tuple[Messenger, ...]:
        """The stack a message meets, each handler seen through :class:`_Watched`."""
        return tuple(_Watched(handler, self._watch) for handler in handlers)

    def _watch(self, phase: str, handler: Messenger, before: Message, after: Message) -> None:
        # Messages are told apart by identity; ``_Open`` keeps each alive, so no id is reused.
        opened = self._open.get(id(after))
        if opened is None:
            labels = tuple(_label(h) for h in reversed(stack()) if not isinstance(h, _Listener))
            story = MessageStory(
                name=before.name, sent_as=before.name, type=before.type, stack=labels
            )
            opened = self._open[id(after)] = _Open(story=story, message=after)
            self.record.stories.append(story)
        story = opened.story
        if phase == "postprocess" and not opened.postprocessing:
            opened.postprocessing = True
            story.steps.append(_default_step(opened.after_process, before))
        if phase == "process":
            opened.after_process = after.copy()
        story.name = after.name
        story.message = after
        if isinstance(handler, _Listener):
            return
        story.steps.append(Step(phase, _label(handler), tuple(diff(before, after))))


@dataclass
class _Open:
    story: MessageStory
    message: Message
    after_process: Message | None = None
    postprocessing: bool = False


class _Watched(Messenger):
    """A handler seen through ``watch``: each call is reported with a copy of the message
    from before it and the message after it."""

    def __init__(
        self, handler: Messenger, watch: Callable[[str, Messenger, Message, Message], None]
    ) -> None:
        super().__init__()
        self.handler = handler
        self.watch = watch

    def process_message(self, msg: Message) -> None:
        before = msg.copy()
        self.handler.process_message(msg)
        self.watch("process", self.handler, before, msg)

    def postprocess_message(self, msg: Message) -> None:
        before = msg.copy()
        self.handler.postprocess_message(msg)
        self.watch("postprocess", self.handler, before, msg)


class _Listener(Messenger):
    """Does nothing: it only makes the stack non-empty, so primitives call ``apply_stack``."""


def _default_step(after_process: Message | None, before_postprocess: Message) -> Step:
    """Phase 2, seen as the difference between the last process call and the first
    postprocess call."""
    if after_process is not None and after_process.value is not None:
        return Step("default", "-", (), note="not run: the value was already set")
    changes = tuple(diff(after_process, before_postprocess)) if after_process else ()
    verb = "drew" if before_postprocess.type == "sample" else "computed"
    return Step("default", "-", changes, note="" if changes else f"{verb} nothing new")


def explain(model: Callable[..., Any], *args: Any, **kwargs: Any) -> Explanation:
    """Run ``model(*args, **kwargs)``, print what each handler did to each message, and
    return the record (an :class:`Explanation`).

    ``model`` is usually a model wrapped in handlers, e.g.
    ``explain(handlers.condition(handlers.seed(model, 0), data={"x": 1.0}), x_data)``.
    Use :class:`explaining` to record without printing.
    """
    with explaining() as record:
        record.result = model(*args, **kwargs)
    print(record)
    return record


# -- comparing and summarising message fields ------------------------------------------


def diff(before: Message, after: Message) -> Iterator[Change]:
    """The fields of ``after`` that differ from ``before``, dicts compared key by key."""
    for name in _FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if name in _MAPPING_FIELDS and isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in [*old, *(k for k in new if k not in old)]:
                missing = _Missing()
                a, b = old.get(key, missing), new.get(key, missing)
                if not same(a, b):
                    yield Change(f"{name}.{key}", a, b)
        elif not same(old, new):
            yield Change(name, old, new)


def same(a: Any, b: Any) -> bool:
    """Whether a field kept its value: identity, then equality of plain data, then arrays
    compared element by element (anything that cannot be compared counts as changed)."""
    if a is b:
        return True
    if isinstance(a, _Missing) or isinstance(b, _Missing):
        return False
    plain = (bool, int, float, str, type(None), CondIndepStackFrame)
    if isinstance(a, plain) and isinstance(b, plain):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "shape") and hasattr(b, "shape"):
        backend = current()
        if backend.is_key(a) or backend.is_key(b) or a.shape != b.shape:
            return False
        try:
            return bool(backend.xp.array_equal(a, b))
        except Exception:  # tracers, and arrays of types that do not compare
            return False
    return False


class _Missing:
    """A key absent from one side of a dict comparison."""

    def __repr__(self) -> str:
        return "(absent)"


def summarise(value: Any) -> str:
    """A short, readable rendering of a message field: arrays by shape, keys as
    ``<PRNG key>``, distributions by name and batch shape."""
    if isinstance(value, _Missing):
        return "(absent)"
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, CondIndepStackFrame):
        return f"plate {value.name}(dim={value.dim}, size={value.size})"
    if isinstance(value, Messenger):
        return _label(value)
    if isinstance(value, list | tuple):
        inner = ", ".join(summarise(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {summarise(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "batch_shape") and hasattr(value, "event_shape"):
        return _distribution(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array(value)
    if callable(value):
        return f"<function {getattr(value, '__name__', type(value).__name__)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _array(value: Any) -> str:
    backend = current()
    if backend.is_key(value):
        # One key has the shape of ``key(0)``: () on JAX, (2,) for NumPy's raw keys.
        single = tuple(value.shape) == tuple(backend.key(0).shape)
        return "<PRNG key>" if single else f"<PRNG keys shape={tuple(value.shape)}>"
    shape = tuple(value.shape)
    if backend.is_concrete(value) and (shape == () or (len(shape) == 1 and shape[0] <= 4)):
        numbers = backend.to_numpy(value).tolist()
        if isinstance(numbers, list):
            return "[" + ", ".join(_number(x) for x in numbers) + "]"
        return _number(numbers)
    return f"array(shape={shape}, {value.dtype})"


def _number(x: Any) -> str:
    """Floats with six significant digits, keeping a ``.0`` so they still read as floats."""
    if not isinstance(x, float):
        return repr(x)
    text = f"{x:.6g}"
    return text if any(c in text for c in ".eninf") else f"{text}.0"


def _distribution(fn: Any) -> str:
    batch_shape = tuple(fn.batch_shape)
    names = []
    while True:
        names.append(type(fn).__name__.replace("Distribution", "") or type(fn).__name__)
        base = getattr(fn, "base_dist", None)
        if base is None:
            break
        fn = base
    text = "(".join(names) + ")" * (len(names) - 1)
    return text if not batch_shape else f"{text}[batch {batch_shape}]"


def _label(handler: Messenger) -> str:
    """A handler's class name with the one detail that tells it apart (its data's names,
    its scope prefix, its plate)."""
    kind = type(handler).__name__
    data = getattr(handler, "data", None)
    if isinstance(data, Mapping):
        return f"{kind}(data: {', '.join(str(k) for k in data)})"
    if kind == "plate":
        return f"plate({getattr(handler, 'name', '?')!r})"
    prefix = getattr(handler, "prefix", None)
    if isinstance(prefix, str):
        return f"{kind}(prefix={prefix!r})"
    return kind

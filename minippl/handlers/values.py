"""Handlers that set a site's value: ``condition``, ``substitute`` and ``replay``.

Tutorial: "Conditioning: condition vs substitute" (``tutorial/s04_conditioning.py``) and
"Composition: scope and replay" (``tutorial/s06_composition.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from minippl import _fast
from minippl.checks import check_one_of, check_trace
from minippl.messages import Message
from minippl.runtime import Messenger


class _NamesData(Messenger):
    """A handler that takes each site's value from ``data`` (or from ``value_fn(msg)``),
    and warns on exit about names in ``data`` that no site used."""

    data: Mapping[str, Any] | None
    value_fn: Callable[[Message], Any] | None = None

    def _for_one_call(self) -> Messenger:
        return _fast.shallow_copy(self)  # its own record of the names used

    def __enter__(self) -> Any:
        self._seen: set[str] = set()
        return super().__enter__()

    def _value_for(self, msg: Message) -> Any:
        """The value ``data`` (or ``value_fn``) gives this site, or ``None``; notes the name."""
        if msg.type == "control_flow" or "_control_flow_done" in msg.infer:
            return _in_control_flow(self, msg)
        if msg.name is not None:
            self._seen.add(msg.name)
        if self.value_fn is not None:
            return self.value_fn(msg)
        return None if self.data is None or msg.name is None else self.data.get(msg.name)

    def __exit__(self, exc_type: object = None, *exc_info: object) -> None:
        super().__exit__(exc_type, *exc_info)
        unused = [name for name in self.data or () if name not in self._seen]
        if exc_type is None and unused:
            text = f"{type(self).__name__}: data names {unused}, but the model has no such site"
            warnings.warn(f"{text} here; its sites are {sorted(self._seen)}", stacklevel=3)


def _in_control_flow(handler: _NamesData, msg: Message) -> None:
    """``scan`` and ``cond`` take ``handler`` into each of their steps: it leaves its data on
    their ``control_flow`` message, and the sites they send back after the steps (marked
    ``_control_flow_done``) were given their values inside, so it only notes their names."""
    if msg.type == "control_flow":
        given = handler.value_fn if handler.data is None else handler.data
        msg.kwargs["substitute_stack"].append((type(handler).__name__, given))
    elif msg.name is not None:
        handler._seen.add(msg.name)


class condition(_NamesData):
    """Observe sample sites: ``value = data[name]`` (or ``condition_fn(msg)``), ``is_observed``.

    Acts in process_message on ``sample`` messages; reads ``name`` (or whatever
    ``condition_fn`` reads), writes ``value`` and ``is_observed``. It overrides an ``obs=``
    given in the model; a ``None`` value leaves the site alone. On exit it warns about names
    in ``data`` that no sample site used (a typo, or a site hidden by an inner ``block``).

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0))
    >>> site = handlers.trace(handlers.condition(model, data={"x": 0.5})).get_trace()["x"]
    >>> site["value"], site["is_observed"]
    (0.5, True)
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        data: Mapping[str, Any] | None = None,
        condition_fn: Callable[[Message], Any] | None = None,
    ) -> None:
        check_one_of("condition", data=data, condition_fn=condition_fn)
        self.data, self.value_fn = data, condition_fn
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type in ("sample", "control_flow"):
            value = self._value_for(msg)
            if value is not None:
                msg.value = value
                msg.is_observed = True


# ``substitute`` has ``condition``'s shape (``duplicates`` pairs them) but not its logic: the
# lookup they share is ``_value_for``; what is left differs (the option's name, the message
# types, whether the site becomes observed), and each class stays whole to read alone.
class substitute(_NamesData):
    """Plug values into sites without changing whether they are observed.

    Acts in process_message on ``sample``, ``param``, ``plate`` and ``deterministic``
    messages; reads ``name`` (or whatever ``substitute_fn`` reads), writes ``value`` only
    (``is_observed`` is left as it was, also for observed sites, whose data it replaces).
    On a plate the value is the subsample indices. Give exactly one of ``data`` and
    ``substitute_fn``. On exit it warns about names in ``data`` that no site used.

    >>> def model():
    ...     return minippl.param("w", 1.0) * minippl.sample("x", dist.Normal(0.0, 1.0))
    >>> handlers.substitute(model, data={"w": 2.0, "x": 3.0})()
    6.0
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        data: Mapping[str, Any] | None = None,
        substitute_fn: Callable[[Message], Any] | None = None,
    ) -> None:
        check_one_of("substitute", data=data, substitute_fn=substitute_fn)
        self.data, self.value_fn = data, substitute_fn
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type in ("sample", "param", "plate", "deterministic", "control_flow"):
            value = self._value_for(msg)
            if value is not None:
                msg.value = value


class replay(Messenger):
    """Re-use the values of a recorded trace at sites of the same name.

    Acts in process_message on ``sample`` and ``plate`` messages found in ``trace``; reads
    ``name``, ``type`` and ``is_observed``, writes ``value`` and ``infer``. A plate takes the
    recorded indices; a latent sample takes the recorded ``value`` and a copy of its
    ``infer`` (``is_observed`` stays as it was); observed sites keep their data. A recorded
    site of the wrong kind is a ``RuntimeError``. A partial trace replays the sites it has
    and leaves the others to run as usual.

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0))
    >>> recorded = handlers.trace(handlers.seed(model, 0)).get_trace()
    >>> bool(handlers.replay(handlers.seed(model, 1), trace=recorded)() == recorded["x"]["value"])
    True
    """

    def __init__(
        self, fn: Callable[..., Any] | None = None, trace: Mapping[str, Message] | None = None
    ) -> None:
        self.trace = check_trace(trace, "replay")
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type not in ("sample", "plate") or msg.name is None or msg.name not in self.trace:
            return
        recorded = self.trace[msg.name]
        if msg.type == "plate":
            if recorded["type"] != "plate":
                raise RuntimeError(
                    f"replay: site {msg.name!r} is a plate in the model but a "
                    f"{recorded['type']} in the trace"
                )
            msg.value = recorded["value"]
            return
        if msg.is_observed:
            return
        if recorded["type"] != "sample" or recorded.get("is_observed", False):
            raise RuntimeError(
                f"replay: site {msg.name!r} must be a latent sample in the trace, found "
                f"type {recorded['type']!r} (observed={recorded.get('is_observed', False)})"
            )
        msg.value = recorded["value"]
        msg.infer = dict(recorded.get("infer", {}))

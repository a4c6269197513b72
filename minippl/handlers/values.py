"""Handlers that set a site's value: ``condition``, ``substitute`` and ``replay``.

Tutorial: "Conditioning: condition vs substitute" (``tutorial/s04_conditioning.py``) and
"Composition: scope and replay" (``tutorial/s06_composition.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from minippl.messages import Message
from minippl.runtime import Messenger


class _NamesData(Messenger):
    """A handler fed a dict of site values: warns on exit about names no site used."""

    data: Mapping[str, Any] | None

    def __init__(self, fn: Callable[..., Any] | None) -> None:
        self._seen: list[set[str]] = []
        super().__init__(fn)

    def _for_one_call(self) -> Messenger:
        fresh = self._shallow_copy()
        fresh._seen = []
        return fresh

    def __enter__(self) -> Any:
        self._seen.append(set())
        return super().__enter__()

    def _saw(self, name: str | None) -> None:
        if name is not None and self._seen:
            self._seen[-1].add(name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seen = self._seen.pop()
        super().__exit__(exc_type, exc, tb)
        if exc_type is None and self.data is not None:
            unused = [name for name in self.data if name not in seen]
            if unused:
                warnings.warn(
                    f"{type(self).__name__}: data names {unused} but the model has no such "
                    f"site here; its sites are {sorted(seen)}. Check the spelling, or drop "
                    "those keys.",
                    UserWarning,
                    stacklevel=3,
                )


class condition(_NamesData):
    """Observe sample sites: set ``value`` from ``data[name]`` (or ``condition_fn(msg)``)
    and mark them ``is_observed=True``.

    Acts in process_message on ``sample`` messages; reads ``name`` (or whatever
    ``condition_fn`` reads), writes ``value`` and ``is_observed``. It overrides an ``obs=``
    given in the model; a ``None`` in ``data`` leaves the site alone. Give exactly one of
    ``data`` and ``condition_fn``. On exit it warns about names in ``data`` that no sample
    site used (a typo, or a site hidden by a ``block`` inside it). On a ``control_flow``
    message (``scan``, ``cond``) it appends itself to ``kwargs["substitute_stack"]``, to be
    applied inside each step, and it leaves the sites sent back from there alone.
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        data: Mapping[str, Any] | None = None,
        condition_fn: Callable[[Message], Any] | None = None,
    ) -> None:
        if (data is None) == (condition_fn is None):
            raise ValueError("condition: give exactly one of data= or condition_fn=")
        self.data = data
        self.condition_fn = condition_fn
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type == "control_flow":  # scan/cond apply this handler inside each step
            given = self.data if self.data is not None else self.condition_fn
            msg.kwargs["substitute_stack"].append(("condition", given))
            return
        if msg.type != "sample":
            return
        self._saw(msg.name)
        if msg.infer.get("_control_flow_done", False):
            return
        if self.data is not None:
            value = self.data.get(msg.name) if msg.name is not None else None
        else:
            assert self.condition_fn is not None
            value = self.condition_fn(msg)
        if value is not None:
            msg.value = value
            msg.is_observed = True


class substitute(_NamesData):
    """Plug values into sites without changing whether they are observed.

    Acts in process_message on ``sample``, ``param``, ``plate`` and ``deterministic``
    messages; reads ``name`` (or whatever ``substitute_fn`` reads), writes ``value`` only
    (``is_observed`` is left as it was, also for observed sites, whose data it replaces).
    On a plate the value is the subsample indices. Give exactly one of ``data`` and
    ``substitute_fn``. On exit it warns about names in ``data`` that no site used. On a
    ``control_flow`` message it acts inside each step, as ``condition`` does.
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        data: Mapping[str, Any] | None = None,
        substitute_fn: Callable[[Message], Any] | None = None,
    ) -> None:
        if (data is None) == (substitute_fn is None):
            raise ValueError("substitute: give exactly one of data= or substitute_fn=")
        self.data = data
        self.substitute_fn = substitute_fn
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type == "control_flow":  # scan/cond apply this handler inside each step
            given = self.data if self.data is not None else self.substitute_fn
            msg.kwargs["substitute_stack"].append(("substitute", given))
            return
        if msg.type not in ("sample", "param", "plate", "deterministic"):
            return
        self._saw(msg.name)
        if msg.infer.get("_control_flow_done", False):
            return
        if self.data is not None:
            value = self.data.get(msg.name) if msg.name is not None else None
        else:
            assert self.substitute_fn is not None
            value = self.substitute_fn(msg)
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
    """

    def __init__(
        self, fn: Callable[..., Any] | None = None, trace: Mapping[str, Message] | None = None
    ) -> None:
        if trace is None:
            raise ValueError("replay: give the trace to replay, replay(model, trace=...)")
        self.trace = trace
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

"""``scope``: prefix site names so a component can be reused without name clashes.

Tutorial: "Composition: scope and replay" (``tutorial/s06_composition.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minippl.messages import CondIndepStackFrame, Message
from minippl.runtime import Messenger


class scope(Messenger):
    """Rename every named message to ``f"{prefix}{divider}{name}"``.

    Acts in process_message on every message with a name (minus ``hide_types``); writes
    ``name``, and renames the plate frames already in ``cond_indep_stack`` (those of plates
    inside the scope) unless ``"plate"`` is in ``hide_types``. Nested scopes compose from
    the inside out: ``scope(prefix="b")`` around ``scope(prefix="a")`` gives ``"b/a/x"``.

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0), obs=0.5)
    >>> list(handlers.trace(handlers.scope(model, prefix="a")).get_trace())
    ['a/x']
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        prefix: str = "",
        divider: str = "/",
        *,
        hide_types: Sequence[str] | None = None,
    ) -> None:
        self.prefix = prefix
        self.divider = divider
        self.hide_types = [] if hide_types is None else list(hide_types)
        super().__init__(fn)

    def _rename(self, name: str) -> str:
        return f"{self.prefix}{self.divider}{name}"

    def process_message(self, msg: Message) -> None:
        if msg.name and msg.type not in self.hide_types:
            msg.name = self._rename(msg.name)
        if msg.cond_indep_stack and "plate" not in self.hide_types:
            msg.cond_indep_stack = [
                CondIndepStackFrame(self._rename(f.name), f.dim, f.size)
                for f in msg.cond_indep_stack
            ]

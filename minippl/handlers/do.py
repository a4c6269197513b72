"""``do``: Pearl's intervention, as a single-world intervention graph (SWIG).

Tutorial: "Causal inference: do" (``tutorial/s08_causal_do.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from minippl.handlers.values import _NamesData
from minippl.messages import Message
from minippl.runtime import apply_stack


class do(_NamesData):
    """Intervene on sample sites: downstream code sees ``data[name]``.

    Acts in process_message on ``sample`` messages named in ``data``. It splits the site in
    two. First a fresh copy of the message is sent through the *whole* stack under the
    original name: a free draw that outer handlers (such as ``trace``) record. Then the
    original message is renamed ``name + "__CF"``, given the intervention as its value,
    marked observed, and stopped, so only handlers inside ``do`` see it. Writes ``name``,
    ``value``, ``is_observed``, ``stop`` and ``intervener``.

    The fresh copy starts from the message as the primitive built it (no plate frames, no
    scale), so plates and ``scale`` handlers inside ``do`` apply to it once. NumPyro copies
    the message as it stands, which records an inner plate twice in ``cond_indep_stack``.
    """

    def __init__(
        self, fn: Callable[..., Any] | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        if data is None:
            raise ValueError("do: give the interventions, do(model, data={'site': value})")
        self.data: Mapping[str, Any] = data
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type != "sample" or msg.intervener is self:
            return
        self._saw(msg.name)
        if msg.name is None or msg.name not in self.data:
            return
        if msg.intervener is not None:
            warnings.warn(
                f"do: site {msg.name!r} is intervened on twice; the outer intervention wins "
                "downstream, which is almost certainly not what you meant",
                RuntimeWarning,
                stacklevel=2,
            )
        msg.intervener = self
        fresh = msg.copy()
        fresh.cond_indep_stack = []
        fresh.scale = None
        apply_stack(fresh)
        msg.name = f"{msg.name}__CF"
        msg.value = self.data[fresh.name] if fresh.name is not None else None
        msg.is_observed = True
        msg.stop = True

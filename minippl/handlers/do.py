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
    two. First a copy of the message is sent through the *whole* stack under the original
    name: a free draw that outer handlers (such as ``trace``) record. Then the original
    message is renamed ``name + "__CF"``, given the intervention as its value, marked
    observed, and stopped, so only handlers inside ``do`` see it. Reads ``name``; writes
    ``name``, ``value``, ``is_observed``, ``stop`` and ``interveners`` (the ``do`` handlers
    that forked the site, so each forks it once; a second ``do`` on the same site warns).
    NumPyro recurses without end when two ``do`` handlers name the same site; here the
    inner intervention is what downstream code sees, and the trace outside both records
    one free draw.

    The copy keeps what the handlers inside ``do`` did to the message (its key, a
    conditioned value, its name) but not the plate frames and ``scale`` they added, because
    they see the copy again and add them again. NumPyro's copy shares its plate list with
    the original, which records an inner plate twice in ``cond_indep_stack`` and applies an
    inner ``scale`` twice; here the copy has each frame and factor once. A ``scope`` inside
    ``do`` prefixes the copy a second time (``"s/s/z"``), as NumPyro does.

    >>> def model():
    ...     x = minippl.sample("x", dist.Normal(0.0, 1.0))
    ...     return minippl.deterministic("y", 2 * x)
    >>> tr = handlers.trace(handlers.do(handlers.seed(model, 0), data={"x": 1.0})).get_trace()
    >>> list(tr), tr["y"]["value"]  # the free draw of x is recorded; y sees the intervention
    (['x', 'y'], 2.0)
    """

    def __init__(
        self, fn: Callable[..., Any] | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        if data is None:
            raise ValueError("do: give the interventions, do(model, data={'site': value})")
        self.data: Mapping[str, Any] = data
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type != "sample" or self in msg.interveners:
            return
        self._value_for(msg)  # notes the site's name as used
        if msg.name is None or msg.name not in self.data:
            return
        if msg.interveners:
            warnings.warn(
                f"do: site {msg.name!r} is intervened on twice; downstream code sees the "
                "inner intervention. Give each site to one do handler.",
                RuntimeWarning,
                stacklevel=2,
            )
        name = msg.name
        msg.interveners = (*msg.interveners, self)
        fresh = msg.copy()
        fresh.cond_indep_stack = []
        fresh.scale = None
        apply_stack(fresh)
        msg.name = f"{name}__CF"
        msg.value = self.data[name]
        msg.is_observed = True
        msg.stop = True

"""``scale`` and ``mask``: change how much a site's log density counts.

Tutorial: "Scaling and masking: scale and mask" (``tutorial/s07_scale_mask.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minippl.backend import current
from minippl.messages import Message
from minippl.runtime import Messenger


class scale(Messenger):
    """Multiply the log density of sample (and param, plate) sites by a positive factor.

    Acts in process_message on ``sample``, ``param`` and ``plate`` messages; reads and
    writes ``scale``: ``scale = factor * (scale or 1)``. A site outside any ``scale`` keeps
    ``scale=None``. A non-positive concrete factor is rejected at construction.

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0), obs=0.5)
    >>> handlers.trace(handlers.scale(model, scale=10.0)).get_trace()["x"]["scale"]
    10.0
    """

    def __init__(self, fn: Callable[..., Any] | None = None, scale: Any = 1.0) -> None:
        backend = current()
        # On the host: inside ``jit`` even a constant's comparison would be traced.
        if backend.is_concrete(scale) and (backend.to_numpy(scale) <= 0).any():
            raise ValueError(
                f"scale: the factor must be positive, got {scale!r}. To drop a site's "
                "log density use handlers.mask(mask=False) instead."
            )
        self.scale = scale
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type not in ("param", "sample", "plate"):
            return
        msg.scale = self.scale if msg.scale is None else self.scale * msg.scale


class mask(Messenger):
    """Zero the log density of sample sites where a boolean mask is False.

    Acts in process_message on ``sample`` messages, reading and writing ``fn``:
    ``fn = fn.mask(mask)`` (a ``MaskedDistribution``); and on ``inspect`` messages, where it
    reads and writes ``mask``, and-ing its own in, so that ``get_mask()`` can report it. A
    mask that is not boolean is a ``ValueError`` at construction.

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0), obs=0.5)
    >>> site = handlers.trace(handlers.mask(model, mask=False)).get_trace()["x"]
    >>> float(site["fn"].log_prob(site["value"]))
    0.0
    """

    def __init__(self, fn: Callable[..., Any] | None = None, mask: Any = True) -> None:
        xp = current().xp
        if not isinstance(mask, bool) and xp.asarray(mask).dtype != xp.bool_:
            raise ValueError(
                f"mask: the mask must be boolean (True keeps an element), got dtype "
                f"{xp.asarray(mask).dtype}; convert with mask.astype(bool)"
            )
        self.mask = mask
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type == "inspect":
            msg.mask = self.mask if msg.mask is None else (self.mask & msg.mask)
        elif msg.type == "sample":
            msg.fn = msg.fn.mask(self.mask)

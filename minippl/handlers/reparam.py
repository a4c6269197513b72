"""``reparam`` and ``infer_config``: rewrite a sample site before it runs.

Tutorial: "Reparameterization: reparam" (``tutorial/s09_reparam.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from minippl.messages import Message
from minippl.runtime import Messenger


class Reparam(Protocol):
    """A reparameterizer: ``(name, fn, obs) -> (new_fn, value)``.

    ``new_fn=None`` with a value turns the site into a deterministic one.
    """

    def __call__(self, name: str, fn: Any, obs: Any) -> tuple[Any, Any]: ...


class reparam(Messenger):
    """Replace sample sites by reparameterized ones (``config`` by name, or a function).

    Acts in process_message on ``sample`` messages that ``config`` names; reads ``name``,
    ``fn`` and ``value`` and calls ``reparameterizer(name, fn, value)``, which may add its
    own sites (e.g. ``theta_decentered``). If it returns only a value, the site becomes
    ``deterministic`` (writes ``type``, ``value``; the other fields drop out of its mapping
    view, as NumPyro deletes them); otherwise it writes ``fn`` and, if a value came back,
    ``value``, marking a latent site ``is_observed``. The reparameterizers are in
    :mod:`minippl.infer.reparam`.

    >>> from minippl.infer.reparam import LocScaleReparam
    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 2.0))
    >>> model = handlers.reparam(model, config={"x": LocScaleReparam(centered=0)})
    >>> tr = handlers.trace(handlers.seed(model, 0)).get_trace()
    >>> [(name, site["type"]) for name, site in tr.items()]
    [('x_decentered', 'sample'), ('x', 'deterministic')]
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        config: Mapping[str, Reparam] | Callable[[Message], Reparam | None] | None = None,
    ) -> None:
        if config is None:
            raise ValueError("reparam: give config={site name: reparameterizer} or a function")
        self.config = config
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type != "sample" or msg.name is None:
            return
        if isinstance(self.config, Mapping):
            reparameterizer = self.config.get(msg.name)
        else:
            reparameterizer = self.config(msg)
        if reparameterizer is None:
            return
        new_fn, value = reparameterizer(msg.name, msg.fn, msg.value)
        if value is not None:
            if new_fn is None:
                msg.type = "deterministic"
                msg.value = value
                msg.fn = None
                msg.is_observed = False
                return
            if msg.value is None:
                msg.is_observed = True
            msg.value = value
        msg.fn = new_fn


class infer_config(Messenger):
    """Add ``config_fn(msg)`` to the ``infer`` dict of every sample site.

    Acts in process_message on ``sample`` messages; writes ``infer``. Unlike NumPyro, it
    builds a new dict, so the dict passed to ``sample(..., infer=...)`` is never mutated.

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0), obs=0.5)
    >>> model = handlers.infer_config(model, config_fn=lambda msg: {"note": msg.name})
    >>> handlers.trace(model).get_trace()["x"]["infer"]
    {'note': 'x'}
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        config_fn: Callable[[Message], Mapping[str, Any]] | None = None,
    ) -> None:
        if config_fn is None:
            raise ValueError("infer_config: give config_fn=lambda msg: {...}")
        self.config_fn = config_fn
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type == "sample":
            msg.infer = {**msg.infer, **self.config_fn(msg)}

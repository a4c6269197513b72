"""Model surgery: ``block``, ``uncondition`` and ``lift``.

Tutorial: "Model surgery: block, uncondition, lift" (``tutorial/s05_model_surgery.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from minippl import _fast
from minippl.checks import check_prior
from minippl.distributions.distribution import Distribution
from minippl.messages import Message
from minippl.primitives import prng_key
from minippl.runtime import Messenger

_KEYED_TYPES = ("sample", "plate", "control_flow")


class block(Messenger):
    """Hide sites from the handlers outside this one (an outer ``trace`` does not see them).

    Acts in process_message on every message type except ``prng_key``; reads ``name`` or
    ``type`` (or whatever ``hide_fn`` reads), ``value`` and ``kwargs["rng_key"]``; writes
    ``stop`` and, for a hidden sample or plate without a value or a key, ``kwargs["rng_key"]``
    from ``prng_key()``, so keys are spent the same way whether ``seed`` is inside or outside
    the block. The hidden sites still run. Choose them with exactly one of ``hide_fn(msg)``,
    ``hide`` (names), ``expose`` (names to keep visible) or ``expose_types`` (message types
    to keep visible); with none, everything is hidden. NumPyro quietly ranks several given
    options (``hide_fn`` first); minippl refuses them with an error.

    >>> def model():
    ...     minippl.sample("a", dist.Normal(0.0, 1.0))
    ...     minippl.sample("b", dist.Normal(0.0, 1.0))
    >>> list(handlers.trace(handlers.block(handlers.seed(model, 0), hide=["a"])).get_trace())
    ['b']
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        hide_fn: Callable[[Message], bool] | None = None,
        hide: Sequence[str] | None = None,
        expose_types: Sequence[str] | None = None,
        expose: Sequence[str] | None = None,
    ) -> None:
        given = [
            name
            for name, arg in (
                ("hide_fn", hide_fn),
                ("hide", hide),
                ("expose_types", expose_types),
                ("expose", expose),
            )  # fmt: skip
            if arg is not None
        ]
        for option, names in (("hide", hide), ("expose", expose), ("expose_types", expose_types)):
            if isinstance(names, str):
                raise TypeError(f"block: {option} takes a list of names, e.g. {option}=[{names!r}]")
        if len(given) > 1:
            raise ValueError(
                f"block: got {' and '.join(given)}; give only one. hide lists the sites to "
                "hide, expose the only sites to keep visible."
            )
        if hide_fn is not None:
            self.hide_fn = hide_fn
        elif hide is not None:
            hidden = set(hide)
            self.hide_fn = lambda msg: msg.name in hidden
        elif expose_types is not None:
            kept_types = set(expose_types)
            self.hide_fn = lambda msg: msg.type not in kept_types
        elif expose is not None:
            kept = set(expose)
            self.hide_fn = lambda msg: msg.name not in kept
        else:
            self.hide_fn = lambda msg: True
        super().__init__(fn)

    def process_message(self, msg: Message) -> None:
        if msg.type == "prng_key" or not self.hide_fn(msg):
            return
        msg.stop = True
        if msg.type in _KEYED_TYPES and msg.value is None and msg.kwargs.get("rng_key") is None:
            msg.kwargs["rng_key"] = prng_key()


class uncondition(Messenger):
    """Turn observed sample sites back into draws from their distribution.

    Acts in process_message on observed ``sample`` messages: ``is_observed=False``,
    ``infer["was_observed"]=True``, ``infer["obs"]`` keeps the data, ``value=None``, and a key
    is requested with ``prng_key()`` if the site has none (``seed`` skips observed sites).

    >>> model = lambda: minippl.sample("x", dist.Normal(0.0, 1.0), obs=0.5)
    >>> site = handlers.trace(handlers.seed(handlers.uncondition(model), 0)).get_trace()["x"]
    >>> site["is_observed"], site["infer"]["obs"]
    (False, 0.5)
    """

    def process_message(self, msg: Message) -> None:
        if msg.type != "sample" or not msg.is_observed:
            return
        msg.is_observed = False
        msg.infer = {**msg.infer, "was_observed": True, "obs": msg.value}
        msg.value = None
        if msg.kwargs.get("rng_key") is None:
            msg.kwargs["rng_key"] = prng_key()


class lift(Messenger):
    """Turn ``param`` sites into ``sample`` sites drawn from a prior.

    Acts in process_message on ``param`` messages whose name has a prior (``prior`` is one
    distribution for all params, or a dict by name); reads ``name`` and ``kwargs``; writes
    ``type="sample"``, ``fn``, ``args=()``, ``kwargs`` (rng_key, sample_shape),
    ``intermediates`` and ``is_observed``. A second ``param`` with the same name reuses the
    first draw (``value``, ``is_observed=True``, ``stop``). The cache of draws is cleared on
    entry and exit, and each call of a wrapped model has its own.

    >>> lifted = handlers.lift(lambda: minippl.param("w", 0.5), prior=dist.Normal(0.0, 1.0))
    >>> handlers.trace(handlers.seed(lifted, 0)).get_trace()["w"]["type"]
    'sample'
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        prior: Distribution | Mapping[str, Distribution] | None = None,
    ) -> None:
        check_prior(prior, "lift")
        self.prior = prior
        self._drawn: dict[str, Message] = {}
        super().__init__(fn)

    def _for_one_call(self) -> Messenger:
        fresh = _fast.shallow_copy(self)
        fresh._drawn = {}
        return fresh

    def __enter__(self) -> Any:
        self._drawn = {}
        return super().__enter__()

    def __exit__(self, *exc_info: object) -> None:
        self._drawn = {}
        super().__exit__(*exc_info)

    def process_message(self, msg: Message) -> None:
        if msg.type != "param" or msg.name is None:
            return
        prior = self.prior.get(msg.name) if isinstance(self.prior, Mapping) else self.prior
        if not isinstance(prior, Distribution):
            return
        msg.type = "sample"
        msg.fn = prior
        msg.args = ()
        msg.kwargs = {
            "rng_key": msg.kwargs.get("rng_key"),
            "sample_shape": msg.kwargs.get("sample_shape", ()),
        }
        msg.intermediates = []
        if msg.name in self._drawn:
            msg.value = self._drawn[msg.name].value
            msg.is_observed = True
            msg.stop = True
        else:
            self._drawn[msg.name] = msg
            msg.is_observed = False

"""One step of a control-flow body, run under its own small stack of handlers.

Tutorial: "Effect handlers meet compiled control flow" (``tutorial/s13_control_flow.py``).

The handlers around a ``scan`` or ``cond`` cannot see inside it: on JAX the body is traced
once into a compiled program, and a handler that recorded a traced value, or split its key
inside the trace, would leak it out. So the body runs behind a ``block``, and inside the
block it gets the handlers it needs, rebuilt for the step:

* ``seed``, from the key the outer ``seed`` gave the control-flow message (split once per
  step by ``scan``);
* one ``condition`` or ``substitute`` per such handler outside, in the same order, each
  taking from the outer data only what belongs to this step (``value_for_step``);
* ``trace``, whose record leaves the body as arrays (see ``records``) and is sent through the
  outer stack once the loop is done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from minippl.handlers import block, condition, infer_config, seed, substitute, trace
from minippl.messages import Message

SubstituteEntry = tuple[str, Any]
"""``("condition" | "substitute", data dict or function)``, left on a control-flow message
by a handler outside it (see ``handlers/values.py``)."""

StepValue = Callable[[Any, Message], Any]
"""``(data dict or function, site) -> the value of this site at this step, or None``."""


def run_step(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    rng_key: Any,
    substitute_stack: Sequence[SubstituteEntry],
    value_for_step: StepValue,
    step: Any = None,
) -> tuple[Any, dict[str, Message]]:
    """``fn(*args)`` under the step's handlers; returns its result and its trace.

    The order matches NumPyro's, so draws agree: ``seed`` is innermost, so a site is given
    a key before any ``condition`` sets its value (a conditioned site inside a step still
    spends a key, unlike one conditioned by a handler inside an outer ``seed``).
    """
    # Entered outermost first: block, trace, the outer handlers' copies (the last one left on
    # the message outermost, as it was outside), seed, and the step's index innermost. They
    # are entered as context managers, not wrapped around ``fn``: a wrapped handler copies
    # itself at every call, and a scan runs this at every step.
    with block(), trace() as step_trace, ExitStack() as inside:
        for kind, data in reversed(substitute_stack):
            pick = _picker(value_for_step, data)
            if kind == "condition":
                inside.enter_context(condition(condition_fn=pick))
            elif kind == "substitute":
                inside.enter_context(substitute(substitute_fn=pick))
            else:
                raise NotImplementedError(f"control flow: cannot apply a {kind!r} handler inside")
        if rng_key is not None:
            inside.enter_context(seed(rng_seed=rng_key))
        if step is not None:
            # Tells a substitute_fn which slice of a whole series belongs to this step
            # (``infer.util`` reads it to transform one step's unconstrained values).
            inside.enter_context(infer_config(config_fn=lambda _: {"_scan_current_index": step}))
        out = fn(*args)
    return out, step_trace


def _picker(value_for_step: StepValue, data: Any) -> Callable[[Message], Any]:
    return lambda site: value_for_step(data, site)


def value_as_given(data: Any, site: Message) -> Any:
    """An outer handler's value for ``site``, unchanged (``cond``: one step, no time axis).

    A function given to ``substitute``/``condition`` is called under a ``seed`` with the
    site's key, so one that asks for ``prng_key()`` gets a key inside the body too.
    """
    if isinstance(data, Mapping):
        return data.get(site.name) if site.name is not None else None
    rng_key = site.kwargs.get("rng_key")
    if rng_key is not None and site.type == "sample":
        return seed(data, rng_seed=rng_key)(site)
    return data(site)

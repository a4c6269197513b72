"""``cond``: a two-way branch whose branches may sample, as NumPyro's ``control_flow.cond``.

Tutorial: "Effect handlers meet compiled control flow" (``tutorial/s13_control_flow.py``).

The same four moves as ``scan`` (read ``scan.py`` first), with one step and no time axis:
a ``control_flow`` message collects the key and the outer ``condition``/``substitute``
handlers; both branches run under the same rebuilt handlers (``lax.cond`` on JAX traces
both, the NumPy backend runs the one taken); the branch's sites are then sent up the stack
as if they had been sampled outside. Both branches must have the same sites, with
distributions of the same structure (NumPyro's rule: ``lax.cond`` needs one output type).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minippl.backend import current
from minippl.control_flow.records import describe, join_trace, split_trace
from minippl.control_flow.scan import send_recorded
from minippl.control_flow.steps import SubstituteEntry, run_step, value_as_given
from minippl.messages import Message
from minippl.runtime import apply_stack, stack


def cond(
    pred: Any, true_fun: Callable[[Any], Any], false_fun: Callable[[Any], Any], operand: Any
) -> Any:
    """``true_fun(operand)`` if ``pred`` else ``false_fun(operand)``; both may sample.

    >>> import minippl
    >>> import minippl.distributions as dist
    >>> from minippl import handlers
    >>> def model():
    ...     cluster = minippl.sample("cluster", dist.Normal(0.0, 1.0))
    ...     return cond(
    ...         cluster > 0,
    ...         lambda _: minippl.sample("x", dist.Normal(20.0, 1.0)),
    ...         lambda _: minippl.sample("x", dist.Normal(0.0, 1.0)),
    ...         None,
    ...     )
    >>> tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()
    >>> sorted(tr)
    ['cluster', 'x']
    """
    if not stack():
        value, _ = _cond_branches(pred, true_fun, false_fun, operand)
        return value
    msg = Message(
        type="control_flow",
        name=None,
        fn=_cond_branches,
        args=(pred, true_fun, false_fun, operand),
        kwargs={"rng_key": None, "substitute_stack": []},
    )
    value, sites = apply_stack(msg).value
    send_recorded(sites)
    return value


def _cond_branches(
    pred: Any,
    true_fun: Callable[[Any], Any],
    false_fun: Callable[[Any], Any],
    operand: Any,
    rng_key: Any = None,
    substitute_stack: Sequence[SubstituteEntry] = (),
) -> tuple[Any, list[Message]]:
    """The branch itself (the control-flow message's default): ``(value, sites)``."""
    backend = current()
    found: dict[bool, Any] = {}

    def branch(fn: Callable[[Any], Any], label: bool) -> Callable[[Any], Any]:
        def run(x: Any) -> Any:
            out, step_trace = run_step(fn, (x,), rng_key, substitute_stack, value_as_given)
            skeletons, leaves = split_trace(step_trace)
            found[label] = skeletons
            return out, [backend.xp.asarray(leaf) for leaf in leaves]

        return run

    value, leaves = backend.cond(pred, branch(true_fun, True), branch(false_fun, False), operand)
    if len(found) == 2 and describe(found[True]) != describe(found[False]):
        raise ValueError(
            "cond: both branches must have the same sites with distributions of the same "
            f"structure; got {describe(found[True])} and {describe(found[False])}"
        )
    # The structure of the branch taken when it is known; under a trace either will do.
    taken = bool(pred) if backend.is_concrete(pred) else True
    skeletons = found[taken] if taken in found else next(iter(found.values()))
    return value, join_trace(skeletons, leaves)

"""``scan``: a loop over time whose body may sample, as NumPyro's ``contrib.control_flow.scan``.

Tutorial: "Effect handlers meet compiled control flow" (``tutorial/s13_control_flow.py``).

The lesson in four moves:

1. ``scan`` sends one ``control_flow`` message up the stack before the loop runs. Handlers
   that give values cannot reach inside a compiled body, so instead they *leave an
   instruction on the message*: ``seed`` gives it a key, ``condition`` and ``substitute``
   append themselves to ``kwargs["substitute_stack"]``, ``block`` may hide it.
2. The message's default behaviour runs the loop (``lax.scan`` on JAX, a Python loop on
   NumPy, both through the backend's ``scan``). The key is carried through the loop and split
   once per step, ``key, step_key = split(key)``, and each step runs ``seed(body,
   step_key)`` (see ``steps.run_step``), so every step draws from keys of its own.
3. Each step's trace leaves the body as arrays, which the loop stacks along a leading time
   axis (``records``); each outer ``condition``/``substitute`` is rebuilt inside the step and
   takes the step's slice ``value[t]`` of a whole series (``value_at_step``).
4. After the loop each site is sent up the stack once, holding its whole series and a
   :class:`~minippl.control_flow.stacked.ScannedDistribution`, marked
   ``infer["_control_flow_done"]`` so that ``condition`` and ``substitute`` do not apply twice.
   An outer ``trace`` therefore records ``x`` once with shape ``(T,) + shape``; ``scale`` and
   ``mask`` outside weigh the whole series; ``log_density`` scores it.

Keys, values and the order of sites match NumPyro's scan, so on JAX the same seed gives the
same trace bit for bit. Not supported, as in NumPyro: ``scan`` under a ``plate`` (put the plate
inside the body), ``param`` sites and nested scans inside the body. Not built: NumPyro's
enumeration of discrete sites over time (its ``history`` argument). Unlike NumPyro, with
``reverse=True`` a series given to ``condition`` is read by position (step ``t`` takes
``value[t]``), the same way the trace stores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minippl.backend import current
from minippl.control_flow.records import describe, join_trace, split_trace
from minippl.control_flow.stacked import ScannedDistribution
from minippl.control_flow.steps import SubstituteEntry, run_step, value_as_given
from minippl.distributions.util import shape_of
from minippl.messages import Message
from minippl.primitives import plate
from minippl.runtime import apply_stack, stack


def scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any,
    length: int | None = None,
    reverse: bool = False,
    history: int = 1,
) -> tuple[Any, Any]:
    """``(carry, ys)`` of ``f`` scanned over the leading axis of ``xs``, as ``lax.scan``.

    ``f(carry, x) -> (carry, y)`` may call ``sample`` and ``deterministic``; each such site
    appears once in a trace, with a leading time axis of length ``length``. ``history`` is
    accepted and ignored, as NumPyro ignores it when it does not enumerate.

    >>> import minippl
    >>> import minippl.distributions as dist
    >>> from minippl import handlers
    >>> def walk(T):
    ...     def step(level, _):
    ...         level = minippl.sample("level", dist.Normal(level, 1.0))
    ...         return level, level
    ...     return scan(step, 0.0, None, length=T)
    >>> tr = handlers.trace(handlers.seed(walk, rng_seed=0)).get_trace(5)
    >>> tuple(tr["level"]["value"].shape), tr["level"]["fn"].batch_shape
    ((5,), (5,))
    """
    del history  # how many steps enumeration keeps in view; minippl does not enumerate
    if not stack():
        carry, ys, _ = _scan_steps(f, init, xs, length, reverse)
        return carry, ys
    if any(isinstance(handler, plate) for handler in stack()):
        raise NotImplementedError(
            "scan inside a plate: the time axis and the plate's dim cannot be aligned. Move "
            "the plate into the scanned function, as in NumPyro."
        )
    msg = Message(
        type="control_flow",
        name=None,
        fn=_scan_steps,
        args=(f, init, xs, length, reverse),
        kwargs={"rng_key": None, "substitute_stack": []},
    )
    carry, ys, sites = apply_stack(msg).value
    send_recorded(sites)
    return carry, ys


def send_recorded(sites: list[Message]) -> None:
    """Send the sites recorded inside a body through the outer stack, marked as done."""
    for site in sites:
        site.infer["_control_flow_done"] = True
        apply_stack(site)


def _scan_steps(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any,
    length: int | None,
    reverse: bool,
    rng_key: Any = None,
    substitute_stack: Sequence[SubstituteEntry] = (),
) -> tuple[Any, Any, list[Message]]:
    """The loop itself (the control-flow message's default): ``(carry, ys, sites)``."""
    backend = current()
    xp = backend.xp
    if length is None:
        leaves, _ = backend.tree_flatten(xs)
        if not leaves:
            raise ValueError("scan: give length= when xs is None or empty")
        length = int(shape_of(leaves[0])[0])
    total = length
    if reverse:
        xs = backend.tree_map(lambda a: xp.flip(a, 0), xs)
    found: dict[str, Any] = {}

    def body(wrapped: tuple[Any, Any, Any], x: Any) -> tuple[Any, Any]:
        i, key, carry = wrapped
        t = total - 1 - i if reverse else i  # the step's position in time
        step_key = None
        if key is not None:
            keys = backend.split(key)
            key, step_key = keys[0], keys[1]

        def value(data: Any, site: Message) -> Any:
            return value_at_step(data, site, t, total)

        (carry, y), step_trace = run_step(f, (carry, x), step_key, substitute_stack, value, t)
        skeletons, leaves = split_trace(step_trace)
        if "skeletons" in found and describe(found["skeletons"]) != describe(skeletons):
            raise ValueError(
                "scan: every step must have the same sites with the same distributions; "
                f"got {describe(found['skeletons'])} then {describe(skeletons)}"
            )
        found["skeletons"] = skeletons
        return (i + 1, key, carry), (y, [xp.asarray(leaf) for leaf in leaves])

    start = (xp.asarray(0), rng_key, init)
    (_, _, carry), (ys, stacked) = backend.scan(body, start, xs, length)
    if reverse:
        ys = backend.tree_map(lambda a: xp.flip(a, 0), ys)
        stacked = [xp.flip(leaf, 0) for leaf in stacked]
    sites = join_trace(found.get("skeletons", []), stacked, _series_maker(total))
    for site in sites:
        _align_series(site)
    return carry, ys, sites


def _series_maker(length: int) -> Callable[[Any, list[Any]], Any]:
    def make(skeleton: Any, leaves: list[Any]) -> Any:
        if skeleton is None:  # a deterministic site has no distribution
            return None
        return ScannedDistribution(skeleton, leaves, length)

    return make


def _align_series(site: Message) -> None:
    """Fit the parts of a series site that are not scored step by step to its time axis.

    A scale stacked to ``(T,)`` gets ones for the batch dims, so that it multiplies the
    ``(T,) + batch`` log density step by step. Intermediates are dropped: they are a
    shortcut for ``log_prob``, and the scanned distribution recomputes what it needs.
    """
    site.intermediates = []
    if site.fn is None or site.scale is None or not shape_of(site.scale):
        return
    batch_ndim = len(site.fn.batch_shape) - 1
    site.scale = current().xp.reshape(site.scale, shape_of(site.scale) + (1,) * batch_ndim)


def value_at_step(data: Any, site: Message, t: Any, length: int) -> Any:
    """What an outer ``condition``/``substitute`` gives ``site`` at step ``t``.

    A value shaped like one step (an init strategy's draw) is used as it is; a series (one
    more leading dim) gives its slice ``value[t]``; a series shorter than the scan gives its
    slice while it lasts and a fresh draw after, which is how a model fitted on ``T`` steps
    forecasts ``T + h`` (NumPyro's rule).
    """
    if site.type != "sample":
        return None
    value = value_as_given(data, site)
    if value is None:
        return None
    step_ndim = len(site.fn.shape(tuple(site.kwargs.get("sample_shape", ()))))
    shape = shape_of(value)
    if len(shape) == step_ndim:
        return value
    if len(shape) != step_ndim + 1:
        raise ValueError(
            f"scan: the value given for site {site.name!r} has shape {shape}; expected one "
            f"step ({step_ndim} dims) or a series with time first ({step_ndim + 1} dims)"
        )
    value = current().xp.asarray(value)  # a NumPy series cannot be indexed by a traced step
    if shape[0] == length:
        return value[t]
    if shape[0] > length:
        raise ValueError(
            f"scan: site {site.name!r} was given a series of length {shape[0]}, longer than "
            f"the scan's {length} steps"
        )
    return _given_then_drawn(value, site, t)


def _given_then_drawn(value: Any, site: Message, t: Any) -> Any:
    """``value[t]`` while the series lasts, then a draw with the site's own key."""
    rng_key = site.kwargs.get("rng_key")
    if rng_key is None:
        raise ValueError(
            f"scan: site {site.name!r} was given {shape_of(value)[0]} steps of a longer scan "
            "and needs a key to draw the rest: wrap the model in seed"
        )
    sample_shape = tuple(site.kwargs.get("sample_shape", ()))
    fn = site.fn
    return current().cond(
        t < shape_of(value)[0],
        lambda: value[t],
        lambda: fn(rng_key=rng_key, sample_shape=sample_shape),
    )


__all__ = ["scan", "send_recorded", "value_at_step"]

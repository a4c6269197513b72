"""The kernels' set-up of a model: :mod:`.starting_point`'s, with two speed-ups for compiled runs.

Both change how much work a run does, never what it computes: the potential, the starting
point and its keys are those of :func:`~minippl.infer.starting_point.initialize_model`.

* **Shapes only.** The set-up traces the model abstractly (``eval_shape``) where nothing it
  keeps depends on the trace's values: no ``param`` site, no subsampled plate, and transforms
  with no traced parameter. On JAX an eager trace runs every operation of the model as a
  program of its own, each to compile in a fresh process.
* **The tries in one loop.** Inside a compiled program (a key that is traced), every try for a
  starting point is the body of one loop, which starts from zeros shaped like a try's result:
  the model appears in the program once instead of twice (a first try, then the loop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from minippl.backend import current
from minippl.infer.initialization import InitStrategy, bound_strategy, init_to_uniform
from minippl.infer.starting_point import (
    Attempt,
    ModelSetup,
    ParamInfo,
    StartTrace,
    attempt_fn,
    build_setup,
    more_tries,
    trace_start,
)

__all__ = ["KernelSetup", "setup_model"]


class KernelSetup(ModelSetup):
    """A :class:`~minippl.infer.starting_point.ModelSetup` whose starting-point search, when
    traced, runs every try as the body of one loop."""

    __slots__ = ()

    def find_start(
        self, rng_key: Any, model_args: tuple[Any, ...], model_kwargs: Mapping[str, Any]
    ) -> tuple[ParamInfo, Any]:
        backend = current()
        if backend.is_concrete(rng_key):
            return super().find_start(rng_key, model_args, model_kwargs)
        xp = backend.xp
        attempt = attempt_fn(
            self.prepared, self.init_strategy, model_args, dict(model_kwargs), self.prototype
        )
        shapes = backend.eval_shape(attempt, Attempt(0, rng_key, {}, 0.0, {}, False))
        zeros = backend.tree_map(lambda x: xp.zeros(x.shape, x.dtype), shapes)
        # Not valid and no try made: the loop's first pass is the first try.
        first = zeros._replace(key=rng_key, is_valid=xp.asarray(False))
        last: Attempt = backend.while_loop(more_tries, attempt, first)
        return last.found()


def setup_model(
    rng_key: Any,
    model: Callable[..., Any],
    *,
    init_strategy: InitStrategy = init_to_uniform,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    dynamic_args: bool = False,
    shapes_only: bool = False,
    split_key: bool = False,
) -> KernelSetup:
    """Trace the model once and build its potential; no starting point yet.

    The arguments are :func:`~minippl.infer.starting_point.initialize_model`'s, plus two
    switches. The trace is eager, unless ``shapes_only`` and the set-up keeps no value of the trace
    (see the module notes): the trace is then abstract, the prototype is shapes, and
    ``model_trace`` is ``None``. ``split_key``: the trace is seeded with the second key of
    ``split(rng_key)`` (HMC's flow), split inside the abstract trace when there is one.
    """
    # The steps initialize_model takes, repeated (``duplicates`` pairs them) so that the
    # learner's file reads without this one; only how ``start`` is found differs.
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    strategy = bound_strategy(init_strategy)

    def traced() -> StartTrace:
        key = current().split(rng_key)[1] if split_key else rng_key
        return trace_start(model, key, strategy, model_args, kwargs)

    start = _shapes_of(traced) if shapes_only else None
    if start is None:
        start = traced()
    setup = build_setup(
        model,
        start,
        strategy,
        dynamic_args=dynamic_args,
        model_args=model_args,
        model_kwargs=kwargs,
    )
    return KernelSetup(*setup)


def _shapes_of(traced: Callable[[], StartTrace]) -> StartTrace | None:
    """``traced()`` run abstractly: its transforms, and its point as shapes, with no trace
    and nothing frozen; or ``None`` where the set-up needs the eager trace's values (or the
    model cannot be traced abstractly). Nothing of the abstract run that holds a traced
    value is kept."""
    backend = current()
    found: list[StartTrace] = []

    def shapes() -> dict[str, Any]:
        found.append(traced())
        return found[-1].params

    try:
        prototype = backend.eval_shape(shapes)
    except Exception:  # noqa: BLE001 - the eager trace runs it again and says what is wrong
        return None
    start = found[-1]
    if start.frozen or _holds_tracer(start.transforms):
        return None
    # In the model's order, not eval_shape's sorted one: the starting point draws its sites
    # one after another from successive keys (NumPyro's flow).
    ordered = {name: prototype[name] for name in start.params}
    return start._replace(model_trace=None, frozen={}, params=ordered)


def _holds_tracer(tree: Any, depth: int = 6) -> bool:
    """Whether a traced value hides in ``tree``: its containers and objects' attributes."""
    backend = current()
    if backend.is_tracer(tree):
        return True
    if depth == 0:
        return False
    if isinstance(tree, Mapping):
        return any(_holds_tracer(v, depth - 1) for v in tree.values())
    if isinstance(tree, list | tuple):
        return any(_holds_tracer(v, depth - 1) for v in tree)
    attributes = getattr(tree, "__dict__", None)
    if attributes is not None:
        return any(_holds_tracer(v, depth - 1) for v in attributes.values())
    return False

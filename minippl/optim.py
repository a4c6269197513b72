"""Optimizers for SVI, with NumPyro's names and its ``init / update / get_params`` API.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``).

An optimizer's state is ``(step, slots)``: ``step`` counts the updates made (a schedule
reads it), and ``slots`` is a tuple of pytrees shaped like the params, the first being the
params themselves (Adam keeps ``(params, m, v)``, SGD just ``(params,)``). Each rule is
written for one array; :class:`Optimizer` applies it leaf by leaf, so params may be any
pytree. Every rule is computed through the backend's array namespace, so it runs compiled
on JAX and eagerly on NumPy, and on JAX it does the arithmetic in the order
``jax.example_libraries.optimizers`` does, which is what NumPyro's optimizers wrap: the same
gradients give the same params to the last bit.

>>> from minippl import optim
>>> opt = optim.SGD(step_size=0.1)
>>> state = opt.init({"w": 1.0})
>>> round(float(opt.get_params(opt.update({"w": 2.0}, state))["w"]), 6)
0.8
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minippl.backend import current

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "ClippedAdam",
    "Momentum",
    "Optimizer",
    "RMSProp",
    "optax_to_minippl",
]

Schedule = Callable[[Any], Any]
"""A step size as a function of the step count (0 for the first update)."""

Slots = tuple[Any, ...]
"""One array's optimizer slots, its current value first."""

OptState = tuple[Any, tuple[Any, ...]]
"""``(step, slots)``: the step count and one pytree per slot, shaped like the params."""


def make_schedule(step_size: float | Schedule) -> Schedule:
    """A schedule from a number (a constant) or a schedule (returned as it is)."""
    if callable(step_size):
        return step_size
    value = step_size
    return lambda step: value


class Optimizer:
    """An optimizer: per-array ``init_leaf(x) -> slots`` and ``update_leaf(step, g, slots,
    value) -> slots`` applied over a pytree of params (NumPyro's ``_NumPyroOptim``).

    ``value`` is the loss at the current params; only rules that ask for it
    (``update_with_value=True``, e.g. an optax transformation) receive it.
    """

    def __init__(
        self,
        init_leaf: Callable[[Any], Slots],
        update_leaf: Callable[..., Slots],
        update_with_value: bool = False,
    ) -> None:
        self.init_leaf = init_leaf
        self.update_leaf = update_leaf
        self.update_with_value = update_with_value

    def init(self, params: Any) -> OptState:
        """The state before the first update: step 0 and the slots of every leaf."""
        backend = current()
        leaves, treedef = backend.tree_flatten(params)
        per_leaf = [self.init_leaf(backend.xp.asarray(x)) for x in leaves]
        return backend.xp.zeros((), dtype="int32"), self._regroup(per_leaf, treedef)

    def update(self, g: Any, state: OptState, value: Any = None) -> OptState:
        """One step from the gradients ``g`` (a pytree shaped like the params)."""
        backend = current()
        step, slots = state
        slot_leaves = [backend.tree_flatten(tree)[0] for tree in slots]
        grads, treedef = backend.tree_flatten(g)
        extra = {"value": value} if self.update_with_value else {}
        per_leaf = [
            self.update_leaf(step, grad, tuple(slot[i] for slot in slot_leaves), **extra)
            for i, grad in enumerate(grads)
        ]
        return step + 1, self._regroup(per_leaf, treedef)

    def get_params(self, state: OptState) -> Any:
        """The params the state holds (its first slot)."""
        return state[1][0]

    def eval_and_update(
        self, fn: Callable[[Any], tuple[Any, Any]], state: OptState
    ) -> tuple[tuple[Any, Any], OptState]:
        """Evaluate ``fn(params) -> (loss, aux)`` and take one step down its gradient."""
        (loss, aux), grads = current().value_and_grad(fn, has_aux=True)(self.get_params(state))
        return (loss, aux), self.update(grads, state, value=loss)

    def eval_and_stable_update(
        self, fn: Callable[[Any], tuple[Any, Any]], state: OptState
    ) -> tuple[tuple[Any, Any], OptState]:
        """As :meth:`eval_and_update`, but a step whose loss or gradient is not finite is
        not taken: the state is returned unchanged and the loss reported as NaN."""
        backend = current()
        xp = backend.xp
        (loss, aux), grads = backend.value_and_grad(fn, has_aux=True)(self.get_params(state))
        finite = xp.isfinite(loss) & xp.all(xp.isfinite(backend.ravel_pytree(grads)[0]))
        result: tuple[tuple[Any, Any], OptState] = backend.cond(
            finite,
            lambda: ((loss, aux), self.update(grads, state, value=loss)),
            lambda: ((xp.full_like(loss, xp.nan), aux), state),
        )
        return result

    @staticmethod
    def _regroup(per_leaf: list[Slots], treedef: Any) -> tuple[Any, ...]:
        """Leaf-major slots ``[(x, m, v), ...]`` to slot-major pytrees ``(xs, ms, vs)``."""
        backend = current()
        num_slots = len(per_leaf[0]) if per_leaf else 1
        return tuple(
            backend.tree_unflatten(treedef, [slots[k] for slots in per_leaf])
            for k in range(num_slots)
        )


_NumPyroOptim = Optimizer
"""NumPyro's name for the base class, for code that checks ``isinstance`` against it."""


class SGD(Optimizer):
    """Plain gradient descent: ``x -= step_size(step) * g``."""

    def __init__(self, step_size: float | Schedule) -> None:
        schedule = make_schedule(step_size)

        def update(step: Any, g: Any, slots: Slots) -> Slots:
            (x,) = slots
            return (x - schedule(step) * g,)

        super().__init__(lambda x: (x,), update)


class Momentum(Optimizer):
    """Gradient descent with heavy-ball momentum: ``v = mass * v + g; x -= step_size * v``."""

    def __init__(self, step_size: float | Schedule, mass: float) -> None:
        schedule = make_schedule(step_size)

        def update(step: Any, g: Any, slots: Slots) -> Slots:
            x, velocity = slots
            velocity = mass * velocity + g
            return x - schedule(step) * velocity, velocity

        super().__init__(lambda x: (x, current().xp.zeros_like(x)), update)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011) with momentum on the normalised gradient, as in
    ``jax.example_libraries``: ``G += g**2; m = (1-momentum) g / sqrt(G) + momentum m``."""

    def __init__(self, step_size: float | Schedule, momentum: float = 0.9) -> None:
        schedule = make_schedule(step_size)

        def update(step: Any, g: Any, slots: Slots) -> Slots:
            xp = current().xp
            x, g_sq, m = slots
            g_sq = g_sq + xp.square(g)
            # A coordinate that has seen only zero gradients gets no step (not 0/0).
            safe = xp.where(g_sq > 0, g_sq, 1.0)
            g_sq_inv_sqrt = xp.where(g_sq > 0, 1.0 / xp.sqrt(safe), 0.0)
            m = (1.0 - momentum) * (g * g_sq_inv_sqrt) + momentum * m
            return x - schedule(step) * m, g_sq, m

        def init(x: Any) -> Slots:
            xp = current().xp
            return x, xp.zeros_like(x), xp.zeros_like(x)

        super().__init__(init, update)


class RMSProp(Optimizer):
    """RMSProp (Tieleman and Hinton 2012): divide by a running root mean square of ``g``."""

    def __init__(self, step_size: float | Schedule, gamma: float = 0.9, eps: float = 1e-8) -> None:
        schedule = make_schedule(step_size)

        def update(step: Any, g: Any, slots: Slots) -> Slots:
            xp = current().xp
            x, avg_sq_grad = slots
            avg_sq_grad = avg_sq_grad * gamma + xp.square(g) * (1.0 - gamma)
            return x - schedule(step) * g / xp.sqrt(avg_sq_grad + eps), avg_sq_grad

        super().__init__(lambda x: (x, current().xp.zeros_like(x)), update)


def _adam_update(schedule: Schedule, b1: float, b2: float, eps: float) -> Callable[..., Slots]:
    """Adam's rule (Kingma and Ba 2015, Algorithm 1): running moments of ``g`` and ``g**2``,
    each divided by ``1 - beta**t`` so the zero start does not bias the early steps."""

    def update(step: Any, g: Any, slots: Slots) -> Slots:
        xp = current().xp
        x, m, v = slots
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * xp.square(g) + b2 * v
        mhat = m / (1 - xp.asarray(b1, dtype=m.dtype) ** (step + 1))
        vhat = v / (1 - xp.asarray(b2, dtype=m.dtype) ** (step + 1))
        return x - schedule(step) * mhat / (xp.sqrt(vhat) + eps), m, v

    return update


def _adam_init(x: Any) -> Slots:
    xp = current().xp
    return x, xp.zeros_like(x), xp.zeros_like(x)


class Adam(Optimizer):
    """Adam: ``step_size``, ``b1=0.9``, ``b2=0.999``, ``eps=1e-8`` as in NumPyro."""

    def __init__(
        self, step_size: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(_adam_init, _adam_update(make_schedule(step_size), b1, b2, eps))


class ClippedAdam(Optimizer):
    """Adam on gradients clipped elementwise to ``[-clip_norm, clip_norm]`` (NumPyro's
    ``ClippedAdam``, whose clip is per element despite the name)."""

    def __init__(
        self,
        step_size: float | Schedule,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
        clip_norm: float = 10.0,
    ) -> None:
        self.clip_norm = clip_norm
        adam = _adam_update(make_schedule(step_size), b1, b2, eps)

        def update(step: Any, g: Any, slots: Slots) -> Slots:
            return adam(step, current().xp.clip(g, -clip_norm, clip_norm), slots)

        super().__init__(_adam_init, update)


def optax_to_minippl(transformation: Any) -> Optimizer:
    """An :class:`Optimizer` from an optax ``GradientTransformation`` (JAX backend only).

    The optax state is one pytree over all params, not one per leaf, so this optimizer
    treats the whole params pytree as its single "leaf": ``init`` and ``update`` see it whole.
    The loss is passed to transformations that take extra arguments (as NumPyro does), e.g.
    ``optax.contrib.reduce_on_plateau``.
    """
    import optax  # type: ignore[import-untyped]

    with_extra = optax.with_extra_args_support(transformation)

    class _Optax(Optimizer):
        def init(self, params: Any) -> OptState:
            xp = current().xp
            return xp.zeros((), dtype="int32"), (params, transformation.init(params))

        def update(self, g: Any, state: OptState, value: Any = None) -> OptState:
            step, (params, opt_state) = state
            updates, opt_state = with_extra.update(g, opt_state, params, value=value)
            return step + 1, (optax.apply_updates(params, updates), opt_state)

    return _Optax(lambda x: (x,), lambda step, g, slots: slots, update_with_value=True)

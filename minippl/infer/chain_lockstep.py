"""Chains in lockstep: "vectorized" chains on a backend whose ``vmap`` is a Python loop.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

On NumPy, ``vmap`` runs its function once per element of the batch, so chains "vectorized"
that way would cost as much as "sequential" ones. Most of an eager NUTS step is the gradient
of the potential energy: the model run through the handler stack under autograd, then the
backward pass, a cost made mostly of Python's overhead per operation, nearly the same for
four chains' arrays as for one chain's. That is what the chains share here:

* each chain runs the one-chain program of "sequential" (the tree, the adaptation and the
  loop a learner steps through, unchanged) on a host thread of its own;
* every potential energy it asks for (:func:`~minippl.infer.potential.potential_energy`,
  through ``potential_route``) waits at a :class:`Lockstep` until each chain still running
  has asked for one; then one model run gives them all their answers: the chains' points
  stacked along an outer plate (the model sees one more batch dim, to the left of its own
  plates), the potential summed per chain, and the gradient of the chains' sum taken once,
  which is every chain's own gradient, since chain ``i``'s term depends on row ``i`` alone;
* a chain that has finished its iterations stops asking, and the others go on without it.

Why not one batched tree with per-chain masks, as JAX's ``vmap`` of the tree runs it: the
tree would have to be written for a batch (per-chain branches as selects, per-chain indices
into the checkpoints), which is not the code a learner reads. The tree's bookkeeping, the
smaller part of a step, therefore stays per chain here, and bounds what lockstep saves
(``benchmarks/README.md``, "Chains in lockstep").

Determinism: a chain only ever sees its own inputs and its own row. A batch holds, in chain
order, the next request of every chain still running, so which chains share a batch depends
on the chains' own computations, never on the threads' timing: the same seed gives the same
draws, bit for bit. Row ``i`` of a batched run is computed with the same elementwise
operations and per-row reductions as chain ``i`` alone, so the draws agree with
"sequential" to rounding (``tests/test_numpy_vectorized_chains.py`` says how closely).

A model that cannot run with the extra batch dim (it gives a latent value an explicit
shape, ``expand([n])`` of a distribution whose parameter is a latent scalar, a matrix
product with a latent vector, an index into a latent array, a sum over all axes) is found
before the chains start (:func:`cannot_batch`: the batched answers checked against each
chain's own): a warning says so once, and the chains run one after another, as
"sequential" runs them. A kernel that does not say what its potential is gets the same
check at the first batch, and after a failed one each chain evaluates its own potential.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from minippl.backend import current
from minippl.distributions.util import shape_of
from minippl.handlers import substitute, trace
from minippl.infer.potential import (
    _site_log_prob,
    potential_energy,
    potential_route,
    unconstrained_substitute_fn,
)
from minippl.messages import Message
from minippl.primitives import plate
from minippl.runtime import Messenger

__all__ = ["Lockstep", "batched_potential", "cannot_batch"]

CHAIN_PLATE = "_lockstep_chains"
"""The outer plate that stacks the chains' points."""

Point = dict[str, Any]
Answer = tuple[Any, Point]
"""A chain's potential energy and its gradient (a dict like the point)."""


class _Request(NamedTuple):
    model: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    point: Point


class Lockstep:
    """Where the potential evaluations of ``chains`` (their ids) meet.

    Each chain's thread runs inside :meth:`chain`; the batch is evaluated by the thread whose
    request completes it. ``warn(reason)`` is called once if the model cannot be batched.
    """

    def __init__(self, chains: list[int], warn: Callable[[str], None]) -> None:
        self._cond = threading.Condition()
        self._live = set(chains)
        self._pending: dict[int, _Request] = {}
        self._answers: dict[int, Answer | BaseException] = {}
        self._batched: bool | None = None  # None until the first batch is checked
        self._layout: _Layout | None = None
        self._warn = warn
        self.batches = 0
        """How many batches were evaluated (one model run each, when batched)."""

    @contextmanager
    def chain(self, ids: Any) -> Iterator[None]:
        """Run chain ``ids[0]``'s program in here: its potential goes to the batch."""
        chain = int(np.asarray(ids)[0])
        token = potential_route.set(lambda *request: self._evaluate(chain, *request))
        try:
            yield
        finally:
            potential_route.reset(token)
            self._retire(chain)

    def _evaluate(
        self,
        chain: int,
        model: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        params: Mapping[str, Any],
    ) -> Any:
        """Chain ``chain``'s potential at ``params`` (which may carry autograd's trace)."""
        if self._batched is False:  # set once, at the first batch, which every chain awaits
            return on_its_own(potential_energy, model, args, kwargs, params)
        backend = current()
        xp = backend.xp
        point = {k: np.asarray(backend.to_numpy(v)) for k, v in params.items()}
        value, grad = self._ask(chain, _Request(model, args, kwargs, point))
        # The batch's value, and the batch's gradient to whatever differentiates it:
        # ``linear - stop_gradient(linear)`` is zero, and its derivative is grad.
        linear: Any = 0.0
        for name, v in params.items():
            g = grad[name]
            linear = linear + (xp.dot(g, v) if np.ndim(g) <= 1 else xp.sum(g * v))
        if np.isfinite(backend.to_numpy(linear)):
            return value + (linear - backend.stop_gradient(linear))
        # An overflow, or a gradient that is not finite: each term zero on its own, so that
        # the value stays the batch's unless the gradient is not finite (NaN then, as the
        # leapfrog step's momentum will be: that leaf diverges either way).
        with np.errstate(invalid="ignore"):
            for name, v in params.items():
                value = value + xp.sum(grad[name] * (v - backend.stop_gradient(v)))
        return value

    def _ask(self, chain: int, request: _Request) -> Answer:
        with self._cond:
            self._pending[chain] = request
            if len(self._pending) == len(self._live):
                self._answer_all()
            while chain not in self._answers:
                self._cond.wait()
            answer = self._answers.pop(chain)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _retire(self, chain: int) -> None:
        with self._cond:
            self._live.discard(chain)
            if self._pending and len(self._pending) == len(self._live):
                self._answer_all()

    def _answer_all(self) -> None:
        """Answer every pending request (the lock is held; the others wait)."""
        chains = sorted(self._pending)
        requests = [self._pending.pop(c) for c in chains]
        answers: list[Answer | BaseException]
        try:
            answers = list(self._compute(requests))
        except Exception as err:  # every waiting chain raises it, so none waits forever
            answers = [err] * len(chains)
        self._answers.update(zip(chains, answers, strict=True))
        self.batches += 1
        self._cond.notify_all()

    def _compute(self, requests: list[_Request]) -> list[Answer]:
        """One batched run for all ``requests``, once it is known to agree with each
        chain's own evaluation; else one evaluation per request."""
        model, args, kwargs = requests[0].model, requests[0].args, requests[0].kwargs
        points = [r.point for r in requests]
        if self._batched is False or any(r.model is not model for r in requests):
            return [one_potential(r.model, r.args, r.kwargs, r.point) for r in requests]
        if self._batched is None:
            self._batched, reason = _agrees(model, args, kwargs, points)
            if not self._batched:
                self._warn(reason)
                return self._compute(requests)
        if self._layout is None:
            self._layout = layout_of(model, args, kwargs, points[0])
        return batched_potential(model, args, kwargs, points, self._layout)


def cannot_batch(kernel: Any, z: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """Why ``kernel``'s potential cannot run batched for the chains' points ``z`` (a dict
    with a leading chain axis), or ``""`` when it can, or when the kernel does not say what
    its potential is (the first batch then checks it).

    The check is made at the chains' points, each moved by a different small step, so that
    chains started at one point still tell a model that mixes them (a mean over all axes).
    """
    get_potential_fn = getattr(kernel, "get_potential_fn", None)
    if get_potential_fn is None or not isinstance(z, dict):
        return ""
    chains = shape_of(next(iter(z.values())))[0] if z else 0
    points = [
        {k: np.asarray(current().to_numpy(v[c])) + 1e-3 * c for k, v in z.items()}
        for c in range(chains)
    ]
    requests: list[tuple[Any, ...]] = []

    def record(*request: Any) -> float:
        requests.append(request[:3])
        return 0.0

    token = potential_route.set(record)
    try:
        get_potential_fn(args, kwargs)(points[0])
    finally:
        potential_route.reset(token)
    if len(requests) != 1:
        return "" if not requests else "the potential runs the model more than once"
    model, model_args, model_kwargs = requests[0]
    return _agrees(model, model_args, model_kwargs, points)[1]


def on_its_own(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with the potential evaluated here, not sent to a batch."""
    token = potential_route.set(None)
    try:
        return fn(*args)
    finally:
        potential_route.reset(token)


def one_potential(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], point: Point
) -> Answer:
    """The potential energy and gradient at one chain's ``point``, evaluated on its own."""
    value_and_grad = current().value_and_grad(lambda p: potential_energy(model, args, kwargs, p))
    answer: Answer = on_its_own(value_and_grad, point)
    return answer


def _agrees(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], points: list[Point]
) -> tuple[bool, str]:
    """Whether the batched run gives each chain its own answers, and if not, why."""
    try:
        batched = batched_potential(model, args, kwargs, points)
    except Exception as err:
        return False, f"{type(err).__name__}: {err}"
    for chain, (point, (value, grad)) in enumerate(zip(points, batched, strict=True)):
        own_value, own_grad = one_potential(model, args, kwargs, point)
        same = np.allclose(value, own_value, rtol=1e-9, atol=0.0, equal_nan=True) and all(
            np.allclose(grad[k], own_grad[k], rtol=1e-9, atol=1e-12, equal_nan=True)
            for k in own_grad
        )
        if not same:
            return False, f"the batched potential differs from chain {chain}'s own"
    return True, ""


class _Layout(NamedTuple):
    """Where the chains' dim goes: left of the model's ``depth`` batch dims."""

    depth: int
    batch_ndims: dict[str, int]
    """Each latent site's number of batch dims."""


def layout_of(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], point: Point
) -> _Layout:
    """The model's batch dims, from one run at one chain's ``point``."""
    run = substitute(model, substitute_fn=unconstrained_substitute_fn(point))
    depth = 0
    batch_ndims: dict[str, int] = {}
    for name, site in trace(run).get_trace(*args, **kwargs).items():
        dims = [-frame.dim for frame in site.cond_indep_stack]
        if site.type == "sample":
            dims.append(len(site.fn.batch_shape))
            if name in point:
                batch_ndims[name] = len(site.fn.batch_shape)
        depth = max([depth, *dims])
    return _Layout(depth, batch_ndims)


class _per_chain_log_joint(Messenger):
    """Add up ``scale * log_prob`` of every sample site, per chain (the chains' plate is
    the first of ``depth + 1`` batch dims of every site's log density)."""

    def __init__(self, fn: Callable[..., Any], chains: int, depth: int) -> None:
        self.total: Any = 0.0
        self.chains = chains
        self.depth = depth
        super().__init__(fn)

    def postprocess_message(self, msg: Message) -> None:
        if msg.type != "sample":
            return
        xp = current().xp
        log_prob = _site_log_prob(msg)
        shape = shape_of(log_prob)
        if shape[:1] != (self.chains,) or len(shape) != self.depth + 1:
            raise ValueError(
                f"site {msg.name!r}: log density of shape {shape}, expected "
                f"{self.depth + 1} dims, the first the {self.chains} chains"
            )
        # Row by row as one chain's xp.sum would add it up (a contiguous row each).
        self.total = self.total + xp.sum(xp.reshape(log_prob, (self.chains, -1)), axis=1)


def _chain_potentials(
    model: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    stacked: Point,
    chains: int,
    layout: _Layout,
) -> Any:
    """The potential energy of each of ``chains`` chains (a vector) at its row of ``stacked``."""
    xp = current().xp
    aligned = {
        name: xp.reshape(u, (chains,) + (1,) * (layout.depth - layout.batch_ndims[name])
                         + shape_of(u)[1:])
        for name, u in stacked.items()
    }  # fmt: skip

    def in_chain_plate(*a: Any, **kw: Any) -> Any:
        with plate(CHAIN_PLATE, chains, dim=-(layout.depth + 1)):
            return model(*a, **kw)

    run = substitute(in_chain_plate, substitute_fn=unconstrained_substitute_fn(aligned))
    joint = _per_chain_log_joint(run, chains, layout.depth)
    joint(*args, **kwargs)
    if not shape_of(joint.total):  # no sample site: a zero for every chain
        return -(joint.total + xp.zeros(chains))
    return -joint.total


def batched_potential(
    model: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    points: list[Point],
    layout: _Layout | None = None,
) -> list[Answer]:
    """Each point's potential energy and gradient, from one model run over all of them
    (``layout``: the model's :func:`layout_of`, found here if not given).

    >>> import minippl as numpyro, minippl.distributions as dist
    >>> from minippl.infer.potential import potential_energy
    >>> def model():
    ...     with numpyro.plate("J", 3):
    ...         numpyro.sample("x", dist.Normal(0.0, 1.0))
    >>> points = [{"x": current().xp.asarray([0.0, 1.0, 2.0]) * c} for c in (1.0, 2.0)]
    >>> [float(value) for value, _ in batched_potential(model, (), {}, points)] == [
    ...     float(potential_energy(model, (), {}, p)) for p in points]
    True
    """
    backend = current()
    xp = backend.xp
    layout = layout or layout_of(model, args, kwargs, points[0])
    stacked = {k: xp.stack([xp.asarray(p[k]) for p in points]) for k in points[0]}

    def total(s: Point) -> tuple[Any, Any]:
        values = _chain_potentials(model, args, kwargs, s, len(points), layout)
        return xp.sum(values), values

    (_, values), grads = backend.value_and_grad(total, has_aux=True)(stacked)
    return [(values[i], {k: g[i] for k, g in grads.items()}) for i in range(len(points))]

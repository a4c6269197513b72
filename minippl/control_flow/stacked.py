"""The distribution of a site inside ``scan``: one distribution per step, stacked in time.

Tutorial: "Effect handlers meet compiled control flow" (``tutorial/s13_control_flow.py``).

After ``scan``, a site ``x`` drawn at every step appears once in the trace, with a value of
shape ``(T,) + shape``. Its distribution must score that whole series, so it is the step's
distribution with every parameter stacked along a leading time axis. NumPyro gets it by
reshaping each parameter so that the time axis lines up with the batch dims, which needs to
know, for each distribution, how its parameters broadcast. Here each step's distribution is
rebuilt from its slice of the stacked parameters and asked about its own step (``vmap`` on
JAX, a loop on NumPy): the same answer, for any distribution, with no shape rules to learn.

One case needs no rule either, and ``log_prob`` takes it: a step distribution with no batch
dims whose attributes are its parameters, each one event's worth (its constraint's event
dims), and its shapes, nothing else (``Normal(level, q)``, ``Gamma``, ``MultivariateNormal``,
``factor``'s ``Unit``; not ``HalfNormal``, which holds a ``Normal``, nor ``Uniform``, which
keeps its support, nor ``Poisson``, which keeps a flag). A distribution is written for
parameters of shape ``batch_shape + their event shape``, so the stacked parameters make it
the whole series' distribution, time as its batch axis, and one call scores every step (on
NumPy one call instead of a loop of ``T``, which is most of a scanned model's gradient).
"""

from __future__ import annotations

from typing import Any

from minippl.backend import current
from minippl.control_flow.records import LEAF, _Opened, flatten, unflatten
from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import Shape, shape_of


class ScannedDistribution(Distribution):
    """``T`` distributions of one structure, as one with batch shape ``(T,) + batch_shape``.

    Parameters
    ----------
    skeleton : the step distribution with its arrays taken out (see ``records.flatten``).
    leaves : its arrays, each with a leading axis of length ``T``.
    length : ``T``.
    """

    def __init__(self, skeleton: Any, leaves: list[Any], length: int) -> None:
        self.skeleton = skeleton
        self.leaves = leaves
        self.length = length
        first = self.step(0)
        self.first_step = first
        super().__init__((length, *first.batch_shape), first.event_shape, validate_args=False)
        self.is_discrete = first.is_discrete
        self.has_enumerate_support = False
        self.reparametrized_params = first.reparametrized_params
        whole = unflatten(skeleton, leaves)  # the step's object holding the stacked arrays
        self.support = _stacked_support(whole.support, self.event_dim + len(self.batch_shape))

    def step(self, t: int) -> Distribution:
        """The distribution of step ``t``."""
        step: Distribution = unflatten(self.skeleton, [leaf[t] for leaf in self.leaves])
        return step

    def _per_step(self, method: Any, *mapped: Any) -> Any:
        """``method(step_distribution, *args_of_that_step)``, for every step, stacked."""
        if not self.leaves and not mapped:  # the same distribution at every step
            once = current().xp.asarray(method(self.first_step))
            return current().xp.broadcast_to(once, (self.length, *shape_of(once)))

        def one(leaves: list[Any], *args: Any) -> Any:
            return method(unflatten(self.skeleton, leaves), *args)

        return current().vmap(one)(self.leaves, *mapped)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        keys = current().split(key, self.length)
        draws = self._per_step(lambda d, k: d.sample(k, sample_shape), keys)
        return _time_after_sample_dims(draws, len(tuple(sample_shape)))

    def log_prob(self, value: Any) -> Any:
        """The log density of a series, time first (as the trace holds it): one per step."""
        whole = self._whole_series(value)
        if whole is not None:
            return whole.log_prob(value)
        return self._per_step(lambda d, v: d.log_prob(v), value)

    def _whole_series(self, value: Any) -> Distribution | None:
        """The step distribution holding every step's parameters, time as its batch axis,
        where it scores ``value`` as the steps would one by one (see the module); else None.
        """
        first = self.first_step
        if first.batch_shape or not isinstance(self.skeleton, _Opened):
            return None
        if len(shape_of(value)) != 1 + first.event_dim:  # sample dims inside each step
            return None
        attributes = self.skeleton.attributes
        if not set(attributes) <= {*first.arg_constraints, *_SHAPE_ATTRIBUTES}:
            return None
        params = [name for name, part in attributes.items() if part is LEAF]
        if len(params) != len(self.leaves):  # an array inside a parameter's structure
            return None
        for name, leaf in zip(params, self.leaves, strict=True):
            if len(shape_of(leaf)) != 1 + first.arg_constraints[name].event_dim:
                return None
        whole: Distribution = unflatten(self.skeleton, self.leaves)
        whole._batch_shape = self.batch_shape
        return whole

    @property
    def mean(self) -> Any:
        return self._per_step(lambda d: d.mean)

    @property
    def variance(self) -> Any:
        return self._per_step(lambda d: d.variance)


_SHAPE_ATTRIBUTES = ("_batch_shape", "_event_shape", "_validate_args")
"""What :class:`~minippl.distributions.distribution.Distribution` itself stores."""


def _time_after_sample_dims(x: Any, n_sample_dims: int) -> Any:
    """Move the leading time axis behind ``n_sample_dims`` sample dims."""
    if n_sample_dims == 0:
        return x
    return current().xp.moveaxis(x, 0, n_sample_dims)


def _stacked_support(support: Constraint, value_ndim: int) -> Constraint:
    """The step's support for the whole series.

    A support holding no array (``real``, ``positive``, ``simplex``, ...) is the same at every
    step. One with arrays (``interval(low, high)``) had them stacked; each array is given
    ones after the time axis, so that it lines up with the series value from the right, as
    a bound lines up with the value it bounds.
    """
    skeleton, leaves = flatten(support)
    if not isinstance(skeleton, _Opened):
        return support
    xp = current().xp
    aligned = []
    for leaf in leaves:
        shape = shape_of(leaf)
        missing = value_ndim - len(shape)
        if missing > 0:
            leaf = xp.reshape(leaf, shape[:1] + (1,) * missing + shape[1:])
        aligned.append(leaf)
    stacked: Constraint = unflatten(skeleton, aligned)
    return stacked

"""The distribution base class and the wrappers every distribution gets for free.

Shapes follow NumPyro (and PyTorch): a draw has shape ``sample_shape + batch_shape +
event_shape``; ``log_prob`` sums over the event dims and returns ``sample_shape +
batch_shape``. ``expand`` grows the batch shape, ``to_event`` moves batch dims into the event,
``mask`` zeroes the log density where a boolean mask is False.

Bad input: with validation on (:func:`enable_validation`), a parameter outside its constraint
raises a ``ValueError`` naming the distribution, the parameter and the constraint, and
``log_prob`` of a value outside the support warns. With or without validation, ``log_prob``
outside the support is ``-inf``, never an exception and never NaN.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.pytree import PytreeNode, register_with
from minippl.distributions.util import (
    Shape,
    broadcast_shapes,
    float_type_of,
    minus_inf_outside,
    shape_of,
    sum_rightmost,
)

_VALIDATION = False
_REGISTERED_WITH: list[Any] = [None]  # the last backend given the pytree classes


def enable_validation(is_validate: bool = True) -> None:
    """Check parameters on construction and values in ``log_prob`` (off by default, as NumPyro)."""
    global _VALIDATION
    _VALIDATION = bool(is_validate)


class validation_enabled:  # noqa: N801 - NumPyro's name, used as a function
    """Whether validation is on, and, as a context manager, validation on (or off) inside.

    ``if validation_enabled():`` asks; ``with validation_enabled():`` (or
    ``validation_enabled(False)``) switches it for the block and restores it after, as
    NumPyro's context manager does.
    """

    def __init__(self, is_validate: bool = True) -> None:
        self.is_validate = is_validate
        self._asked = _VALIDATION  # the answer to the query: the state when called
        self._previous: list[bool] = []

    def __bool__(self) -> bool:
        return self._asked

    def __enter__(self) -> None:
        self._previous.append(_VALIDATION)
        enable_validation(self.is_validate)

    def __exit__(self, *exc: object) -> None:
        enable_validation(self._previous.pop())


def check_param(owner: object, name: str, constraint: Constraint, value: Any) -> None:
    """Raise ``ValueError`` naming ``owner``'s class, ``name`` and ``constraint`` if a concrete
    ``value`` breaks the constraint; traced values (under ``jit``) are not checked."""
    backend = current()
    if value is None or not backend.is_concrete(value):
        return
    # Evaluated at once: inside ``jit`` even a constant's comparison would be traced, and
    # the check could not decide (NumPyro checks the same way).
    with backend.eager():
        ok = constraint(backend.xp.asarray(value))
        broken = backend.is_concrete(ok) and not bool(backend.xp.all(ok))
    if broken:
        raise ValueError(
            f"{type(owner).__name__}: parameter {name!r} must satisfy the constraint "
            f"{constraint!r}, got {value!r}"
        )


def check_bounds(
    owner: object,
    low: Any,
    high: Any,
    each: Constraint = constraints.real,
    above: Callable[[Any], Constraint] = constraints.greater_than,
) -> None:
    """Check the parameters ``low`` and ``high`` of a bounded distribution: each satisfies
    ``each``, and ``high`` satisfies ``above(low)`` (``greater_than``: a non-empty interval)."""
    check_param(owner, "low", each, low)
    check_param(owner, "high", each, high)
    check_param(owner, "high", above(low), high)


class Distribution(PytreeNode):
    """Base class: subclasses set the shapes in ``__init__`` and implement ``sample`` and
    ``_log_prob`` (the density on the support; the base class handles the rest).

    A distribution is a pytree (``minippl/distributions/pytree.py``): its parameters and
    arrays are the leaves, so it passes into and out of ``jit`` and through ``vmap``.
    """

    arg_constraints: dict[str, Constraint] = {}
    support: Constraint = constraints.real
    is_discrete = False
    has_enumerate_support = False
    reparametrized_params: tuple[str, ...] = ()

    def __init__(
        self, batch_shape: Shape = (), event_shape: Shape = (), *, validate_args: bool | None = None
    ) -> None:
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)
        self._validate_args = _VALIDATION if validate_args is None else validate_args
        if self._validate_args:
            self._validate_params()
        # The backend loads on first use, and jit and vmap see distributions once their
        # classes are registered with it: here, cheaply, when it is not the last one seen.
        backend = current()
        if backend is not _REGISTERED_WITH[0]:
            register_with(backend)
            _REGISTERED_WITH[0] = backend

    def parameter_names(self) -> tuple[str, ...]:
        """The parameters, which ``jit`` traces even when given as Python numbers: those of
        this class and of the classes it derives from (``Chi2``'s ``df`` and ``Gamma``'s
        ``concentration``)."""
        return _parameter_names(type(self))

    # -- shapes ---------------------------------------------------------------------------
    @property
    def batch_shape(self) -> Shape:
        return self._batch_shape

    @property
    def event_shape(self) -> Shape:
        return self._event_shape

    @property
    def event_dim(self) -> int:
        return len(self._event_shape)

    def shape(self, sample_shape: Shape = ()) -> Shape:
        return tuple(sample_shape) + self.batch_shape + self.event_shape

    # -- drawing ----------------------------------------------------------------------------
    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        raise NotImplementedError(f"{type(self).__name__} cannot be sampled")

    def sample_with_intermediates(
        self, key: Any, sample_shape: Shape = ()
    ) -> tuple[Any, list[Any]]:
        return self.sample(key, sample_shape), []

    def enumerate_support(self, expand: bool = True) -> Any:
        """Every value of a finite discrete support, along a new leftmost dim."""
        raise NotImplementedError(f"{type(self).__name__} cannot enumerate its support")

    def __call__(
        self, *args: Any, rng_key: Any, sample_intermediates: bool = False, **kwargs: Any
    ) -> Any:
        if sample_intermediates:
            return self.sample_with_intermediates(rng_key, *args, **kwargs)
        return self.sample(rng_key, *args, **kwargs)

    # -- densities --------------------------------------------------------------------------
    def _log_prob(self, value: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no log density")

    def log_prob(self, value: Any) -> Any:
        """Log density at ``value``; ``-inf`` outside the support (warned under validation)."""
        xp = current().xp
        # Outside the support the formula may take logs of negatives; NumPy would warn about
        # it, though the result is replaced by -inf below.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lp = self._log_prob(value)
            inside = self.support(value)
        if self._validate_args and current().is_concrete(inside) and not bool(xp.all(inside)):
            warnings.warn(
                f"{type(self).__name__}.log_prob: value outside the support {self.support!r}; "
                "its log density is -inf",
                stacklevel=2,
            )
        return minus_inf_outside(inside, lp)

    @property
    def mean(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define a mean")

    @property
    def variance(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define a variance")

    def entropy(self) -> Any:
        """The entropy ``-E[log p(X)]``, one per batch element, where it has a closed form."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy")

    @property
    def has_rsample(self) -> bool:
        """Whether a draw is differentiable in the parameters (reparameterized): as in
        NumPyro, every parameter is one of ``reparametrized_params``."""
        return set(self.reparametrized_params) == set(self.arg_constraints)

    def rsample(self, key: Any, sample_shape: Shape = ()) -> Any:
        """A draw through which gradients flow to the parameters (see :attr:`has_rsample`)."""
        if not self.has_rsample:
            raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler")
        return self.sample(key, sample_shape)

    @classmethod
    def infer_shapes(cls, *args: Shape, **kwargs: Shape) -> tuple[Shape, Shape]:
        """``(batch_shape, event_shape)`` of the distribution built from parameters of the
        given shapes (positional in ``__init__``'s order, or by name), without building it.

        The rule (:meth:`_infer_shapes`) is for a distribution with scalar events: each
        parameter's batch part (its shape less its constraint's event dims) broadcast
        together. A family with events overrides it; one whose support has event dims and
        does not raises ``NotImplementedError``, as NumPyro does.

        >>> import minippl.distributions as dist
        >>> dist.Normal.infer_shapes((3, 1), (4,))
        ((3, 4), ())
        >>> dist.MultivariateNormal.infer_shapes((2,), scale_tril=(5, 2, 2))
        ((5,), (2,))
        """
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        kwargs.update(zip(names, args, strict=False))
        return cls._infer_shapes({k: tuple(v) for k, v in kwargs.items() if v is not None})

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        """:meth:`infer_shapes` from the shapes of the parameters given, by name."""
        if cls.support.event_dim > 0:
            raise NotImplementedError(f"{cls.__name__}.infer_shapes: its events are not scalars")
        batch_shapes = []
        for name, shape in shapes.items():
            event_dim = cls.arg_constraints.get(name, constraints.real).event_dim
            batch_shapes.append(shape[: len(shape) - event_dim])
        return broadcast_shapes(*batch_shapes), ()

    def cdf(self, value: Any) -> Any:
        """The cumulative distribution function (univariate distributions only)."""
        raise NotImplementedError(f"{type(self).__name__} does not define a cdf")

    def icdf(self, q: Any) -> Any:
        """The inverse of :meth:`cdf`, the quantile function."""
        raise NotImplementedError(f"{type(self).__name__} does not define an icdf")

    # -- wrappers ---------------------------------------------------------------------------
    def expand(self, batch_shape: Shape) -> Distribution:
        """The same distribution repeated (broadcast) to ``batch_shape``."""
        batch_shape = tuple(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        return ExpandedDistribution(self, batch_shape)

    def expand_by(self, sample_shape: Shape) -> Distribution:
        return self.expand(tuple(sample_shape) + self.batch_shape)

    def to_event(self, reinterpreted_batch_ndims: int | None = None) -> Distribution:
        """Treat the rightmost batch dims as event dims (default: all of them)."""
        n = reinterpreted_batch_ndims
        if n is None:
            n = len(self.batch_shape)
        return self if n == 0 else Independent(self, n)

    def mask(self, mask: Any) -> Distribution:
        """Zero the log density where ``mask`` is False (``True`` leaves it unchanged)."""
        if mask is True:
            return self
        return MaskedDistribution(self, mask)

    # -- validation -------------------------------------------------------------------------
    def _validate_params(self) -> None:
        """Raise ``ValueError`` if a parameter given to ``__init__`` breaks its constraint.

        Only parameters stored on the instance are checked (a form computed lazily from
        another, like ``logits`` from ``probs``, is not), and only concrete values: under
        ``jit`` the check is skipped, so validation never breaks tracing.
        """
        for param, constraint in self.arg_constraints.items():
            if param not in self.__dict__ or isinstance(constraint, constraints._Dependent):
                continue
            check_param(self, param, constraint, self.__dict__[param])

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} with batch shape {self.batch_shape} "
            f"and event shape {self.event_shape}>"
        )


_PARAMETER_NAMES: dict[type, tuple[str, ...]] = {}


def _parameter_names(cls: type) -> tuple[str, ...]:
    """The names in the ``arg_constraints`` and ``pytree_data_fields`` of ``cls`` and its
    bases (once per class: flattening is on the path of every ``jit`` call)."""
    if cls not in _PARAMETER_NAMES:
        names: dict[str, None] = {}
        for base in reversed(cls.__mro__):
            if issubclass(base, Distribution):
                names.update(dict.fromkeys(vars(base).get("arg_constraints", {})))
                names.update(dict.fromkeys(vars(base).get("pytree_data_fields", ())))
        _PARAMETER_NAMES[cls] = tuple(names)
    return _PARAMETER_NAMES[cls]


class ExpandedDistribution(Distribution):
    """``base`` broadcast to a larger batch shape.

    New leading dims and size-1 dims that grow are drawn as extra sample dims of ``base``
    and moved into place, which gives the same numbers as NumPyro for the same key.
    """

    base_dist: Distribution

    def __init__(self, base: Distribution, batch_shape: Shape) -> None:
        if isinstance(base, ExpandedDistribution):
            # Expanding an expansion expands its base, once the outer shape is checked
            # against the inner one (the base's alone would let (2,) grow into (3,)).
            _expansion(base.batch_shape, tuple(batch_shape))
            base = base.base_dist
        self.base_dist = base
        new_shape, self._expanded, self._interstitial = _expansion(base.batch_shape, batch_shape)
        # The extra sample dims drawn from ``base``: new leading dims, then grown ones.
        self._extra_sample_shape = tuple(size for _, size in self._expanded + self._interstitial)
        super().__init__(new_shape, base.event_shape, validate_args=False)
        self.support = base.support
        self.is_discrete = base.is_discrete
        self.has_enumerate_support = base.has_enumerate_support
        self.reparametrized_params = base.reparametrized_params

    def enumerate_support(self, expand: bool = True) -> Any:
        xp = current().xp
        values = self.base_dist.enumerate_support(expand=False)
        values = xp.reshape(values, values.shape[:1] + (1,) * len(self.batch_shape))
        if expand:
            values = xp.broadcast_to(values, values.shape[:1] + self.batch_shape)
        return values

    def sample_with_intermediates(
        self, key: Any, sample_shape: Shape = ()
    ) -> tuple[Any, list[Any]]:
        xp = current().xp
        sample_shape = tuple(sample_shape)
        value, inter = self.base_dist.sample_with_intermediates(
            key, sample_shape + self._extra_sample_shape
        )
        if not self._interstitial:
            return value, inter
        # Swap each grown size-1 dim of the base with the extra sample dim drawn for it.
        batch_ndim = xp.ndim(value) - len(self.event_shape)
        perm = list(range(batch_ndim))
        start = len(sample_shape) + len(self._expanded)
        for offset, (dim, _) in enumerate(self._interstitial):
            a, b = batch_ndim + dim, start + offset
            perm[a], perm[b] = perm[b], perm[a]
        event = tuple(range(batch_ndim, xp.ndim(value)))
        value = xp.transpose(value, perm + list(event))
        return xp.reshape(value, sample_shape + self.batch_shape + self.event_shape), inter

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return self.sample_with_intermediates(key, sample_shape)[0]

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        lp = self.base_dist.log_prob(value)
        shape = broadcast_shapes(shape_of(lp), self.batch_shape)
        return xp.broadcast_to(lp, shape)

    def log_prob(self, value: Any) -> Any:
        return self._log_prob(value)

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    def entropy(self) -> Any:
        return current().xp.broadcast_to(self.base_dist.entropy(), self.batch_shape)

    @property
    def mean(self) -> Any:
        xp = current().xp
        return xp.broadcast_to(self.base_dist.mean, self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        return xp.broadcast_to(self.base_dist.variance, self.batch_shape + self.event_shape)


def _expansion(
    old: Shape, new: Shape
) -> tuple[Shape, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Broadcast ``old`` to ``new``; also return the new leading dims and grown size-1 dims."""
    if len(new) < len(old):
        raise ValueError(f"cannot expand a distribution of batch shape {old} to {new}")
    out = list(old)
    expanded: list[tuple[int, int]] = []
    interstitial: list[tuple[int, int]] = []
    for i in range(1, len(new) + 1):
        size = new[-i]
        if i > len(old):
            out.insert(0, size)
            expanded.insert(0, (-i, size))
        elif old[-i] == 1 and size != 1:
            out[-i] = size
            interstitial.append((-i, size))
        elif old[-i] != size:
            raise ValueError(f"cannot expand a distribution of batch shape {old} to {new}")
    return tuple(out), tuple(expanded), tuple(interstitial)


class _Wrapper(Distribution):
    """A distribution around ``base_dist`` that draws as it does and has its moments; only its
    shapes, support or log density differ (:class:`Independent`, :class:`MaskedDistribution`)."""

    base_dist: Distribution

    def sample_with_intermediates(
        self, key: Any, sample_shape: Shape = ()
    ) -> tuple[Any, list[Any]]:
        return self.base_dist.sample_with_intermediates(key, sample_shape)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return self.base_dist.sample(key, sample_shape)

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @property
    def mean(self) -> Any:
        return self.base_dist.mean

    @property
    def variance(self) -> Any:
        return self.base_dist.variance


class Independent(_Wrapper):
    """``base`` with its rightmost ``reinterpreted_batch_ndims`` batch dims made event dims."""

    def __init__(self, base: Distribution, reinterpreted_batch_ndims: int) -> None:
        n = reinterpreted_batch_ndims
        if n > len(base.batch_shape):
            raise ValueError(
                f"to_event({n}) needs at least {n} batch dims; {base!r} has {len(base.batch_shape)}"
            )
        self.base_dist = base
        self.reinterpreted_batch_ndims = n
        cut = len(base.batch_shape) - n
        super().__init__(
            base.batch_shape[:cut], base.batch_shape[cut:] + base.event_shape, validate_args=False
        )
        self.support = constraints.independent(base.support, n)
        self.is_discrete = base.is_discrete

    def log_prob(self, value: Any) -> Any:
        return sum_rightmost(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self) -> Any:
        return sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def expand(self, batch_shape: Shape) -> Distribution:
        """Expand the base (its reinterpreted dims kept on the right) and reinterpret again,
        as NumPyro does: a plate over a ``to_event`` site then sees the base's own shapes
        in its trace, not an :class:`ExpandedDistribution` around this one."""
        batch_shape = tuple(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        kept = self.event_shape[: self.reinterpreted_batch_ndims]
        return self.base_dist.expand(batch_shape + kept).to_event(self.reinterpreted_batch_ndims)


class MaskedDistribution(_Wrapper):
    """``base`` whose log density is zero where ``mask`` is False (missing or held-out data)."""

    def __init__(self, base: Distribution, mask: Any) -> None:
        xp = current().xp
        if isinstance(mask, bool):
            shape: Shape = base.batch_shape
        else:
            mask = xp.asarray(mask)
            if mask.dtype != xp.bool_:
                raise TypeError(f"mask must be a boolean array, got dtype {mask.dtype}")
            shape = broadcast_shapes(base.batch_shape, shape_of(mask), what="mask and batch shapes")
            # A mask bigger than the batch grows the distribution, as in NumPyro.
            base = base.expand(shape)
        self.base_dist = base
        self._mask = mask
        super().__init__(shape, base.event_shape, validate_args=False)
        self.support = base.support
        self.is_discrete = base.is_discrete
        self.has_enumerate_support = base.has_enumerate_support

    def enumerate_support(self, expand: bool = True) -> Any:
        return self.base_dist.enumerate_support(expand)

    def log_prob(self, value: Any) -> Any:
        xp = current().xp
        if self._mask is False:
            shape = shape_of(value)[: len(shape_of(value)) - self.event_dim]
            return xp.zeros(broadcast_shapes(shape, self.batch_shape))
        if self._mask is True:
            return self.base_dist.log_prob(value)
        # Masked-out entries may hold anything (NaN for missing data): evaluate the base at a
        # point of its support there, so neither the value nor its gradient is NaN.
        try:
            stand_in = self.base_dist.support.feasible_like(value)
        except (NotImplementedError, ValueError):
            stand_in = None
        if stand_in is not None:
            keep = xp.reshape(self._mask, shape_of(self._mask) + (1,) * self.event_dim)
            value = xp.where(keep, value, stand_in)
        lp = self.base_dist.log_prob(value)
        return xp.where(self._mask, lp, xp.zeros((), dtype=xp.result_type(lp)))


class Delta(Distribution):
    """All mass at ``v`` (with an optional ``log_density`` added to its log probability)."""

    def __init__(self, v: Any = 0.0, log_density: Any = 0.0, event_dim: int = 0) -> None:
        shape = shape_of(v)
        if event_dim > len(shape):
            raise ValueError(f"Delta: event_dim {event_dim} exceeds the dims of v, shape {shape}")
        cut = len(shape) - event_dim
        self.v = v
        self.log_density = log_density
        super().__init__(shape[:cut], shape[cut:], validate_args=False)
        if event_dim:
            self.support = constraints.independent(constraints.real, event_dim)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        xp = current().xp
        return xp.broadcast_to(self.v, self.shape(sample_shape))

    def log_prob(self, value: Any) -> Any:
        xp = current().xp
        zero = xp.zeros((), dtype=current().float_dtype())
        lp = xp.where(xp.asarray(value == self.v), zero, -xp.inf)
        return sum_rightmost(lp, self.event_dim) + self.log_density

    @property
    def mean(self) -> Any:
        return self.v

    @property
    def variance(self) -> Any:
        return current().xp.zeros_like(current().xp.asarray(self.v))

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        raise NotImplementedError("Delta.infer_shapes: the event dims are a number, not a shape")

    def entropy(self) -> Any:
        """``-log_density``: a point mass has no spread, only its weight."""
        return -current().xp.broadcast_to(self.log_density, self.batch_shape)


class Unit(Distribution):
    """The trivial distribution whose log probability is ``log_factor``: what ``factor`` uses."""

    arg_constraints: dict[str, Constraint] = {"log_factor": constraints.real}

    def __init__(self, log_factor: Any) -> None:
        self.log_factor = log_factor
        super().__init__(shape_of(log_factor), (0,), validate_args=False)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return current().xp.empty(self.shape(sample_shape))

    def log_prob(self, value: Any) -> Any:
        xp = current().xp
        shape = broadcast_shapes(shape_of(value)[:-1], self.batch_shape)
        return xp.broadcast_to(self.log_factor, shape)


class ImproperUniform(Distribution):
    """A flat (improper) density over ``support``: ``log_prob`` is 0 inside, ``-inf`` outside.

    It has no sampler (there is no uniform distribution on an unbounded set); it exists so a
    model can put a flat prior on any support, e.g. ``ImproperUniform(constraints.positive,
    (), ())``. Init strategies start such sites from points drawn in unconstrained space and
    mapped through ``biject_to(support)``.
    """

    arg_constraints: dict[str, Constraint] = {}

    def __init__(
        self,
        support: Constraint,
        batch_shape: Shape,
        event_shape: Shape,
        *,
        validate_args: bool | None = None,
    ) -> None:
        extra = len(event_shape) - support.event_dim
        if extra < 0:
            raise ValueError(
                f"ImproperUniform: event_shape {tuple(event_shape)} has fewer dims than the "
                f"support {support!r} needs ({support.event_dim})"
            )
        self.support = constraints.independent(support, extra) if extra else support
        self.is_discrete = support.is_discrete
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        raise NotImplementedError(
            "ImproperUniform has no sampler; give the site a value, or let an init strategy "
            "draw it in unconstrained space"
        )

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        shape = shape_of(value)
        batch = broadcast_shapes(shape[: len(shape) - self.event_dim], self.batch_shape)
        return xp.zeros(batch, dtype=float_type_of(value))

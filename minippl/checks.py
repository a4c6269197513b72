"""Checks of what a user passes in, made once where it enters, each with an error to act on.

Every check raises a ``TypeError`` (wrong kind of thing) or a ``ValueError`` (right kind,
wrong value) that names where it happened, the argument, what it got and what it takes, so
the message points at the line the user wrote rather than at an array library's internals.

>>> check_count(3, "size", "plate 'N'")
3
>>> check_count("3", "size", "plate 'N'")
Traceback (most recent call last):
    ...
TypeError: plate 'N': size must be an int >= 1, got '3' (str)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

SEED_RANGE = (-(2**63), 2**63)
"""Integer seeds a PRNG key is made from: a 64-bit signed integer."""


def _got(value: Any) -> str:
    """``value`` as an error message shows it: its repr (cut short) and its type."""
    text = repr(value)
    text = text if len(text) <= 60 else f"{text[:60]}..."
    return f"{text} ({type(value).__name__})"


def _as_int(value: Any) -> int | None:
    """``value`` as a Python int when it is an integer (NumPy's too), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_count(value: Any, argument: str, where: str, minimum: int = 1) -> int:
    """An integer ``>= minimum``: a plate's size, ``num_samples``, ...; returned as an int."""
    number = _as_int(value)
    if number is None:
        raise TypeError(f"{where}: {argument} must be an int >= {minimum}, got {_got(value)}")
    if number < minimum:
        raise ValueError(f"{where}: {argument} must be an int >= {minimum}, got {number}")
    return number


def check_between(value: Any, argument: str, where: str, low: float, high: float) -> float:
    """A real number strictly between ``low`` and ``high`` (``step_size``, a probability)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # a 0-d array
        except (TypeError, ValueError):
            raise TypeError(f"{where}: {argument} must be a number, got {_got(value)}") from None
    if not low < value < high:
        raise ValueError(f"{where}: {argument} must be in ({low}, {high}), got {value}")
    return float(value)


def check_plate(
    name: Any, size: Any, subsample_size: Any, dim: Any
) -> tuple[int, int | None, int | None]:
    """A plate's name, ``size >= 1``, ``1 <= subsample_size <= size`` and ``dim < 0``."""
    if not isinstance(name, str):
        raise TypeError(f"plate: the name must be a str, got {_got(name)}")
    where = f"plate {name!r}"
    size = check_count(size, "size", where)
    if subsample_size is not None:
        subsample_size = check_count(subsample_size, "subsample_size", where)
        if subsample_size > size:
            raise ValueError(
                f"{where}: subsample_size must be <= size ({size}), got {subsample_size}"
            )
    if dim is not None:
        number = _as_int(dim)
        if number is None or number >= 0:
            raise (TypeError if number is None else ValueError)(
                f"{where}: dim must be a negative int (counted from the right), got {_got(dim)}"
            )
        dim = number
    return size, subsample_size, dim


def check_shape(value: Any, argument: str, where: str) -> tuple[int, ...]:
    """A shape: a tuple (or list) of ints >= 0, e.g. ``sample_shape=(2,)``."""
    if not isinstance(value, tuple | list):
        hint = f"; for {value} draws write ({value},)" if _as_int(value) is not None else ""
        raise TypeError(f"{where}: {argument} must be a tuple of ints, got {_got(value)}{hint}")
    dims = [_as_int(dim) for dim in value]
    if any(dim is None for dim in dims):
        raise TypeError(f"{where}: {argument} must be a tuple of ints, got {value!r}")
    if any(dim < 0 for dim in dims if dim is not None):
        raise ValueError(f"{where}: {argument} must hold sizes >= 0, got {tuple(value)!r}")
    return tuple(dim for dim in dims if dim is not None)


def check_seed(value: int) -> int:
    """An int seed that fits in 64 bits, as a key is made from; returned as it is."""
    low, high = SEED_RANGE
    if not low <= value < high:
        raise ValueError(
            f"seed: rng_seed must be an int in [-2**63, 2**63) or a PRNG key, got {value}"
        )
    return value


def check_key(value: Any, where: str) -> None:
    """A PRNG key of the active backend (or a batch of them), not an int seed."""
    from minippl.backend import current

    backend = current()
    if backend.is_key(value):
        return
    hint = ""
    if _as_int(value) is not None:
        hint = f"; make one with minippl.backend.current().key({value})"
    raise TypeError(
        f"{where}: rng_key must be a PRNG key ({backend.name}), got {_got(value)}{hint}"
    )


def check_mapping(value: Any, argument: str, where: str) -> None:
    """A mapping from site names (a dict), e.g. ``condition(data=...)``."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{where}: {argument} must be a dict of site names, got {_got(value)}")


def check_trace(value: Mapping[str, T] | None, where: str) -> Mapping[str, T]:
    """A recorded trace: a mapping from names to sites (``trace(model).get_trace()``)."""
    from minippl.messages import Message

    if value is None:
        raise ValueError(f"{where}: give the trace to replay, replay(model, trace=...)")
    check_mapping(value, "trace", where)
    for name, site in value.items():
        if not (isinstance(site, Message) or isinstance(site, Mapping) and "type" in site):
            raise TypeError(
                f"{where}: trace must map names to recorded sites (handlers.trace(model)"
                f".get_trace()), got {_got(site)} at {name!r}; to plug in values use "
                "substitute(data=...)"
            )
    return value


def check_one_of(where: str, **options: Any) -> None:
    """Exactly one of two options is given: a ``data`` dict, or a function of the message."""
    (data_name, data), (fn_name, fn) = options.items()
    if (data is None) == (fn is None):
        raise ValueError(f"{where}: give exactly one of {data_name}= or {fn_name}=")
    check_mapping(data, data_name, where)
    if fn is not None:
        check_callable(fn, fn_name, where)


def check_sample(name: Any, fn: Any, sample_shape: Any) -> None:
    """``sample``'s arguments: a name, a minippl distribution, a shape."""
    from minippl.distributions.distribution import Distribution

    if not isinstance(name, str):
        raise TypeError(f"sample: the site's name must be a str, got {_got(name)}")
    if not isinstance(fn, Distribution):
        what = type(fn).__name__
        raise TypeError(f"sample site {name!r}: fn must be a minippl distribution, got {what}")
    if sample_shape != ():  # the usual case costs one comparison
        check_shape(sample_shape, "sample_shape", f"sample site {name!r}")


def check_prior(value: Any, where: str) -> None:
    """A distribution, or a dict of them by name (``lift(prior=...)``)."""
    from minippl.distributions.distribution import Distribution

    priors = value.values() if isinstance(value, Mapping) else [value]
    for prior in priors:
        if not isinstance(prior, Distribution):
            raise TypeError(
                f"{where}: prior must be a distribution or a dict of them by name, "
                f"got {_got(prior)}"
            )


def check_callable(value: Any, argument: str, where: str) -> None:
    """A function (a model, a ``condition_fn``, a ``postprocess_fn``)."""
    if not callable(value):
        raise TypeError(f"{where}: {argument} must be callable, got {_got(value)}")


def check_names(
    given: Iterable[str], known: Iterable[str], argument: str, where: str, every: bool = False
) -> None:
    """Every name in ``given`` is one of the model's sites ``known`` (and, with ``every``,
    every one of them is given)."""
    known, given = sorted(known), sorted(given)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(
            f"{where}: {argument} names {unknown}, which the model does not have; "
            f"its sites are {known}"
        )
    missing = sorted(set(known) - set(given))
    if every and missing:
        raise ValueError(f"{where}: {argument} has no value for the sites {missing}")


def check_finite(values: Mapping[str, Any], argument: str, where: str) -> None:
    """Every concrete value in ``values`` is finite (traced values are left alone)."""
    import numpy as np

    for name, value in values.items():
        try:
            array = np.asarray(value, dtype=float)
        except Exception:  # a tracer, or not numbers: nothing to judge here
            continue
        if not np.all(np.isfinite(array)):
            raise ValueError(
                f"{where}: {argument}[{name!r}] is not finite ({array.ravel()[:4]}...): site "
                f"{name!r} needs a finite starting value"
            )


def site_context(name: str | None, fn: Any, value: Any, frames: Any) -> str:
    """Where a site's error happened, e.g. ``site 'obs' in plates ['N' of size 3]: Normal (expanded
    by the plates) of batch shape (3,) and event shape (), value of shape (5,)``."""
    from minippl.distributions.util import shape_of

    plates = ", ".join(f"{frame.name!r} of size {frame.size}" for frame in frames)
    where = f" in plates [{plates}]" if plates else ""
    family = type(fn).__name__
    if family == "ExpandedDistribution":  # expanded by the plates: the user wrote the base
        family = f"{type(fn.base_dist).__name__} (expanded by the plates)"
    batch = tuple(getattr(fn, "batch_shape", ()))
    event = tuple(getattr(fn, "event_shape", ()))
    return (
        f"site {name!r}{where}: {family} of batch shape {batch} and event shape "
        f"{event}, value of shape {shape_of(value)}"
    )


def with_site(err: Exception, name: str | None, fn: Any, value: Any, frames: Any) -> Exception:
    """``err`` again, of the same kind where it can be, with the site's context in front."""
    kind: Callable[[str], Exception] = TypeError if isinstance(err, TypeError) else ValueError
    return kind(f"{site_context(name, fn, value, frames)}: {err}")


# -- variational inference (minippl.infer.svi) ---------------------------------------------------


def check_num_steps(value: Any, where: str) -> int:
    """``SVI.run``'s ``num_steps``: a positive int (NumPy's too), returned as an int."""
    number = _as_int(value)
    if number is None or number < 1:
        raise ValueError(f"{where}: num_steps must be a positive integer, got {value!r}")
    return number


def check_reverse_mode(forward_mode_differentiation: bool, where: str) -> None:
    """NumPyro's ``forward_mode_differentiation`` switch, of which only ``False`` is
    available: the backend protocol has one gradient, reverse mode."""
    if forward_mode_differentiation:
        raise NotImplementedError(
            f"{where}: forward_mode_differentiation=True is not supported; gradients are taken "
            "in reverse mode (the backend's value_and_grad)"
        )


def check_optimizer(value: Any, where: str) -> None:
    """A :mod:`minippl.optim` optimizer, or an optax ``GradientTransformation`` (which
    :func:`minippl.optim.optax_to_minippl` adapts; optax is only imported to tell)."""
    from minippl.optim import Optimizer

    if isinstance(value, Optimizer):
        return
    try:
        import optax  # type: ignore[import-untyped]
    except ImportError:
        optax = None
    if optax is None or not isinstance(value, optax.GradientTransformation):
        raise TypeError(
            f"{where}: optim must be a minippl.optim optimizer (e.g. Adam(1e-3)) or an optax "
            f"GradientTransformation, got {type(value).__name__}"
        )


def check_hashable(value: T, where: str) -> T:
    """The arguments of a model that are not arrays, which a compiled step fixes into its
    program (as ``static_argnums`` would) and so keys it by: they must hash."""
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"{where}: arguments of the model that are not arrays must be hashable (ints, "
            "strings, None, tuples), since they are fixed into the compiled step; pass data "
            "as arrays"
        ) from None
    return value


def check_param_init(name: str, value: Any, constraint: Any) -> None:
    """A ``param`` site's initial value lies inside its constraint (a traced value, whose
    numbers are not known yet, is left alone)."""
    import numpy as np

    from minippl.backend import current

    backend = current()
    if backend.is_concrete(value) and not bool(backend.xp.all(constraint(value))):
        text = np.array2string(np.asarray(backend.to_numpy(value)), threshold=6).replace("\n", " ")
        raise ValueError(
            f"param {name!r}: its initial value {text} is outside its "
            f"constraint {constraint!r}; give an init_value inside it"
        )

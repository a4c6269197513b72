"""From a model to its log density and its potential energy in unconstrained space.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

Everything here is built from two handlers. ``substitute`` plugs values into sites, ``trace``
records the run:

* :func:`log_density` runs the model with ``substitute(data=params)`` under ``trace`` and adds
  ``scale * fn.log_prob(value)`` over every sample site (observed or latent; ``mask`` acts
  through the masked distribution, ``scale`` and subsampling plates through ``site.scale``).
* :func:`potential_energy` is ``-log_density`` in *unconstrained* coordinates: each latent site
  takes ``t(u)`` with ``t = biject_to(site.fn.support)``, and ``log|det dt/du|`` enters as a
  ``factor`` site emitted at the latent site, so it sits under the same plates, scale and mask
  as the site it belongs to (NumPyro's construction).
* :func:`get_potential_fn` closes the potential over a model and its data, with the map back
  to constrained values (``deterministic`` sites included) that a sampler reports.

Where a sampler starts is the next file, :mod:`.starting_point`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from minippl._fast import fusable
from minippl.backend import current
from minippl.checks import with_site
from minippl.distributions import constraints
from minippl.distributions.distribution import Delta
from minippl.distributions.util import shape_of, sum_rightmost
from minippl.handlers import substitute, trace
from minippl.infer.initialization import bijection_of
from minippl.messages import Message, Trace
from minippl.primitives import factor
from minippl.runtime import Messenger

__all__ = [
    "compute_log_probs",
    "constrain_fn",
    "get_potential_fn",
    "get_transforms",
    "log_density",
    "potential_energy",
    "transform_fn",
    "unconstrain_fn",
]

Params = dict[str, Any]


# -- log densities ---------------------------------------------------------------------------


def _site_log_prob(site: Message) -> Any:
    """``scale * fn.log_prob(value)`` of one sample site, not summed.

    A shape or value error from ``log_prob`` comes back naming the site, its plates and both
    shapes (the original chained), instead of only the array library's broadcasting message.
    """
    try:
        # The draw's intermediates are not passed back (NumPyro's TransformedDistribution
        # takes them): every log_prob here inverts its transforms, which a compiled program
        # simplifies away (``log(exp(x))`` is ``x``), and takes the value alone.
        log_prob = site.fn.log_prob(site.value)
    except (ValueError, TypeError) as err:
        raise with_site(err, site.name, site.fn, site.value, site.cond_indep_stack) from err
    if site.scale is not None and not (isinstance(site.scale, int | float) and site.scale == 1):
        log_prob = site.scale * log_prob
    return log_prob


def compute_log_probs(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
    sum_log_prob: bool = True,
) -> tuple[dict[str, Any], Trace]:
    """The log density of each sample site with ``params`` substituted, and the trace.

    ``sum_log_prob=False`` keeps each site's batch dims (pointwise values).
    """
    xp = current().xp
    run = substitute(model, data=dict(params)) if params else model
    model_trace = trace(run).get_trace(*model_args, **model_kwargs)
    log_probs: dict[str, Any] = {}
    for name, site in model_trace.items():
        if site.type == "sample":
            log_prob = _site_log_prob(site)
            log_probs[name] = xp.sum(log_prob) if sum_log_prob else log_prob
    return log_probs, model_trace


def log_density(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> tuple[Any, Trace]:
    """The log joint density of the model at constrained ``params``, and the trace.

    Latent sites not in ``params`` must get their values some other way (a ``seed`` handler,
    or ``substitute``); observed sites use their data.
    """
    log_probs, model_trace = compute_log_probs(model, model_args, model_kwargs, params)
    # Start from a float so that a model without sample sites still has a float density.
    return sum(log_probs.values(), start=0.0), model_trace


# -- unconstrained coordinates -----------------------------------------------------------------


def _is_real(support: Any) -> bool:
    """Supports whose bijection is the identity (no Jacobian term to add)."""
    if support is constraints.real:
        return True
    base = getattr(support, "base_constraint", None)
    return isinstance(support, constraints.independent) and base is constraints.real


def unconstrained_substitute_fn(params: Mapping[str, Any]) -> Callable[[Message], Any]:
    """A ``substitute_fn`` mapping unconstrained ``params`` to each latent site's support.

    The log-Jacobian goes in as a ``factor`` named ``_{name}_log_det``, summed over the
    site's event dims only, so plates, ``scale`` and ``mask`` weigh it like the site itself.
    """

    def substitute_fn(site: Message) -> Any:
        if site.name is None or site.name not in params:
            return None
        u = params[site.name]
        if site.type != "sample":
            return u
        u = _at_scan_step(site, u)
        support = site.fn.support
        if _is_real(support):
            return u
        transform = bijection_of(site)
        value = transform(u)
        log_det = transform.log_abs_det_jacobian(u, value)
        extra = len(shape_of(log_det)) - len(shape_of(value)) + len(site.fn.event_shape)
        factor(f"_{site.name}_log_det", sum_rightmost(log_det, extra))
        return value

    return substitute_fn


def _at_scan_step(site: Message, u: Any) -> Any:
    """Inside ``scan`` a site is one step but ``params`` hold its whole series, time first:
    take the step's slice before transforming, so each step's log-Jacobian counts once."""
    step = site.infer.get("_scan_current_index")
    if step is None:
        return u
    sample_shape = tuple(site.kwargs.get("sample_shape", ()))
    step_ndim = len(bijection_of(site).inverse_shape(site.fn.shape(sample_shape)))
    return u[step] if len(shape_of(u)) > step_ndim else u


class _log_joint(Messenger):
    """Add up ``scale * log_prob`` of every sample site as the model runs.

    Acts in postprocess_message on ``sample`` messages; reads ``fn``, ``value``,
    ``intermediates`` and ``scale``. It is :func:`log_density` without the trace: the
    potential is evaluated at every leapfrog step, so copying every message into a trace
    would be pure overhead.
    """

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        self.total: Any = 0.0
        super().__init__(fn)

    def postprocess_message(self, msg: Message) -> None:
        if msg.type == "sample":
            self.total = add_up(self.total, _site_log_prob(msg))


@fusable
def add_up(total: Any, log_prob: Any) -> Any:
    """``total + sum(log_prob)``: one site's share added to the running log density."""
    return total + current().xp.sum(log_prob)


def potential_energy(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> Any:
    """``-log p(x, data)`` at unconstrained ``params``, including the change-of-variables term."""
    # The handlers as context managers around this one call, not wrappers of the model: a
    # wrapper copies the model's name and signature onto itself when made, and ``substitute``
    # copies itself for each call it wraps, at every evaluation of the potential.
    accumulate = _log_joint()
    with accumulate, substitute(substitute_fn=unconstrained_substitute_fn(params)):
        model(*model_args, **model_kwargs)
    return -accumulate.total


def transform_fn(
    transforms: Mapping[str, Any], params: Mapping[str, Any], invert: bool = False
) -> Params:
    """Apply ``transforms[name]`` (or its inverse) to each value of ``params`` that has one."""
    if invert:
        return {k: transforms[k].inv(v) if k in transforms else v for k, v in params.items()}
    return {k: transforms[k](v) if k in transforms else v for k, v in params.items()}


def batched(fn: Callable[..., Any], batch_ndims: int) -> Callable[..., Any]:
    """``fn`` mapped over ``batch_ndims`` leading axes (``vmap`` on JAX, a loop on NumPy)."""
    if batch_ndims < 0:
        raise ValueError(f"batch_ndims must be >= 0, got {batch_ndims}")
    for _ in range(batch_ndims):
        fn = current().vmap(fn)
    return fn


def _param_bijection(site: Message) -> Any:
    """The bijection onto a ``param`` site's constraint (real when it has none)."""
    from minippl.distributions.transforms import biject_to

    return biject_to(site.kwargs.get("constraint", constraints.real))


def constrain_fn(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
    return_deterministic: bool = False,
    batch_ndims: int = 0,
) -> Params:
    """Constrained values of the latent sites from unconstrained ``params``.

    Runs the model (so a support may depend on other sites) and, with
    ``return_deterministic=True``, also returns every ``deterministic`` site, recomputed.
    ``batch_ndims`` leading axes of ``params`` are mapped over.
    """

    def single(position: Params) -> Params:
        def substitute_fn(site: Message) -> Any:
            if site.name is None or site.name not in position:
                return None
            if site.type == "sample":
                return bijection_of(site)(position[site.name])
            if site.type == "param":
                return _param_bijection(site)(position[site.name])
            return position[site.name]

        run = substitute(model, substitute_fn=substitute_fn)
        model_trace = trace(run).get_trace(*model_args, **model_kwargs)
        return {
            name: site.value
            for name, site in model_trace.items()
            if name in position or (return_deterministic and site.type == "deterministic")
        }

    out: Params = batched(single, batch_ndims)(dict(params))
    return out


def _check_continuous(name: str, site: Message) -> None:
    """A latent site HMC can move: continuous, and not a ``Delta`` standing for a value."""
    if getattr(site.fn.support, "is_discrete", False) or getattr(site.fn, "is_discrete", False):
        raise ValueError(
            f"site {name!r} is a discrete latent variable ({type(site.fn).__name__}); "
            "NUTS and HMC move in continuous space only. Marginalise it out by hand "
            "(e.g. with logsumexp in a factor), or observe it."
        )
    if isinstance(site.fn, Delta):
        raise ValueError(
            f"site {name!r} is a latent sample from a Delta distribution; record a "
            "computed value with minippl.deterministic instead"
        )


def latent_transforms(model_trace: Trace) -> tuple[dict[str, Any], bool]:
    """The bijection of every continuous latent site, and whether postprocessing must replay
    the model (it has deterministic sites, or a support that depends on other values)."""
    transforms: dict[str, Any] = {}
    replay_model = False
    for name, site in model_trace.items():
        if site.type == "sample" and not site.is_observed:
            _check_continuous(name, site)
            support = site.fn.support
            transforms[name] = bijection_of(site)
            for bound in ("lower_bound", "upper_bound"):
                if not isinstance(getattr(support, bound, 0.0), int | float):
                    replay_model = True
        elif site.type == "param":
            transforms[name] = _param_bijection(site)
        elif site.type == "deterministic":
            replay_model = True
    return transforms, replay_model


# NumPyro's argument order, as log_density and the rest of this file take it (``duplicates``
# pairs their signatures).
def get_transforms(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """The bijection to each latent site's support (values in ``params`` only fix the trace)."""
    run = substitute(model, data=dict(params))
    return latent_transforms(trace(run).get_trace(*model_args, **model_kwargs))[0]


def unconstrain_fn(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> Params:
    """Unconstrained coordinates of constrained ``params`` (the inverse of constrain_fn)."""
    transforms = get_transforms(model, model_args, model_kwargs, params)
    return transform_fn(transforms, params, invert=True)


# -- building the potential ------------------------------------------------------------------


class _default_key(Messenger):
    """Give ``prng_key()`` calls a fixed key when nothing else does (so a potential built from
    a model that asks for keys, e.g. a lazily initialised param, can still be evaluated)."""

    def process_message(self, msg: Message) -> None:
        if msg.type == "prng_key" and msg.value is None and msg.kwargs.get("rng_key") is None:
            msg.value = current().key(0)


def is_frozen(site: Message) -> bool:
    """A param, or a plate whose indices are drawn (a whole plate's are ``arange(size)``
    every time): its value in the set-up's trace is kept for the potential."""
    if site.type == "param":
        return True
    if site.type != "plate":
        return False
    size, subsample_size = site.args
    return subsample_size is not None and subsample_size != size


def prepare_model(model: Callable[..., Any], frozen: Params) -> Callable[..., Any]:
    """The model a potential runs: ``frozen`` values (see :func:`is_frozen`) substituted.

    A subsampled plate keeps the indices of the initial trace, so the potential is a fixed
    function of the latent values; its likelihood terms are still scaled by
    ``size / subsample_size``.
    """
    return _default_key(substitute(model, data=frozen) if frozen else model)


def get_potential_fn(
    model: Callable[..., Any],
    transforms: Mapping[str, Any],
    *,
    replay_model: bool = False,
    dynamic_args: bool = False,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(potential_fn, postprocess_fn)`` for a prepared model.

    ``postprocess_fn`` maps unconstrained values to constrained ones; with ``replay_model`` it
    runs the model, so deterministic sites come back recomputed. With ``dynamic_args=True``
    both are factories: ``potential_fn(*args, **kwargs)`` returns the potential for that data,
    which lets a compiled program take the data as an argument instead of a constant.
    """
    if dynamic_args:
        # Module-level functions under partial, so the factories (and the kernels holding
        # them) pickle whenever the model does.
        potential_factory = functools.partial(_bind_data, potential_energy, model)
        if replay_model:
            postprocess_factory = functools.partial(_bind_data, _constrain_all, model)
        else:
            postprocess_factory = functools.partial(
                _ignore_data, functools.partial(transform_fn, dict(transforms))
            )
        return potential_factory, postprocess_factory
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    potential = functools.partial(potential_energy, model, model_args, kwargs)
    if replay_model:
        post = functools.partial(constrain_fn, model, model_args, kwargs, return_deterministic=True)
    else:
        post = functools.partial(transform_fn, dict(transforms))
    return potential, post


def _bind_data(
    fn: Callable[..., Any], model: Callable[..., Any], *args: Any, **kwargs: Any
) -> Callable[[Params], Any]:
    """``fn(model, args, kwargs, params)`` as a function of ``params`` alone."""
    return functools.partial(fn, model, args, kwargs)


def _ignore_data(fn: Callable[[Params], Any], *args: Any, **kwargs: Any) -> Callable[[Params], Any]:
    return fn


def _constrain_all(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> Params:
    return constrain_fn(model, model_args, model_kwargs, params, return_deterministic=True)

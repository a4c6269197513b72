"""From a model to the functions a sampler needs: log density, potential energy, initial point.

Tutorial: "Practical recipe: posterior predictive" (``tutorial/s11_predictive.py``).

Everything here is built from three handlers. ``substitute`` plugs values into sites,
``trace`` records the run, ``seed`` supplies keys where draws are needed:

* :func:`log_density` runs the model with ``substitute(data=params)`` under ``trace`` and adds
  ``scale * fn.log_prob(value)`` over every sample site (observed or latent; ``mask`` acts
  through the masked distribution, ``scale`` and subsampling plates through ``site.scale``).
* :func:`potential_energy` is ``-log_density`` in *unconstrained* coordinates: each latent site
  takes ``t(u)`` with ``t = biject_to(site.fn.support)``, and ``log|det dt/du|`` enters as a
  ``factor`` site emitted at the latent site, so it sits under the same plates, scale and mask
  as the site it belongs to (NumPyro's construction).
* :func:`initialize_model` finds a starting point whose potential energy and gradient are
  finite, and returns the potential and the map back to constrained values (including
  ``deterministic`` sites) that a kernel samples with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.distribution import Delta
from minippl.distributions.util import shape_of, sum_rightmost
from minippl.handlers import seed, substitute, trace
from minippl.infer.initialization import (
    InitStrategy,
    bijection_of,
    init_to_uniform,
    init_to_value,
    strategy_parts,
)
from minippl.messages import Message
from minippl.primitives import factor
from minippl.runtime import Messenger

__all__ = [
    "MAX_INIT_TRIES",
    "InitError",
    "ModelInfo",
    "ParamInfo",
    "compute_log_probs",
    "constrain_fn",
    "find_valid_initial_params",
    "get_potential_fn",
    "get_transforms",
    "initialize_model",
    "log_density",
    "log_likelihood",
    "potential_energy",
    "transform_fn",
    "unconstrain_fn",
]

Trace = dict[str, Message]
Params = dict[str, Any]

MAX_INIT_TRIES = 100
"""How many starting points :func:`find_valid_initial_params` tries (NumPyro's number)."""


class ParamInfo(NamedTuple):
    """A point in unconstrained space, with its potential energy and gradient."""

    z: Params
    potential_energy: Any
    z_grad: Params


class ModelInfo(NamedTuple):
    """What :func:`initialize_model` returns; a kernel needs nothing else from the model."""

    param_info: ParamInfo
    potential_fn: Callable[..., Any]
    postprocess_fn: Callable[..., Any]
    model_trace: Trace


class InitError(RuntimeError):
    """No starting point with a finite potential energy and gradient was found."""


# -- log densities ---------------------------------------------------------------------------


def _site_log_prob(site: Message) -> Any:
    """``scale * fn.log_prob(value)`` of one sample site, not summed."""
    if site.intermediates:
        log_prob = site.fn.log_prob(site.value, site.intermediates)
    else:
        log_prob = site.fn.log_prob(site.value)
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


def _unconstrained_substitute_fn(params: Mapping[str, Any]) -> Callable[[Message], Any]:
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
    potential is evaluated at every leapfrog step (and, on NumPy, ``4 * dim`` times per
    gradient), so copying every message into a trace would be pure overhead.
    """

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        self.total: Any = 0.0
        super().__init__(fn)

    def postprocess_message(self, msg: Message) -> None:
        if msg.type == "sample":
            self.total = self.total + current().xp.sum(_site_log_prob(msg))


def potential_energy(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> Any:
    """``-log p(x, data)`` at unconstrained ``params``, including the change-of-variables term."""
    accumulate = _log_joint(substitute(model, substitute_fn=_unconstrained_substitute_fn(params)))
    accumulate(*model_args, **model_kwargs)
    return -accumulate.total


def transform_fn(
    transforms: Mapping[str, Any], params: Mapping[str, Any], invert: bool = False
) -> Params:
    """Apply ``transforms[name]`` (or its inverse) to each value of ``params`` that has one."""
    if invert:
        return {k: transforms[k].inv(v) if k in transforms else v for k, v in params.items()}
    return {k: transforms[k](v) if k in transforms else v for k, v in params.items()}


def _batched(fn: Callable[..., Any], batch_ndims: int) -> Callable[..., Any]:
    """``fn`` mapped over ``batch_ndims`` leading axes (``vmap`` on JAX, a loop on NumPy)."""
    if batch_ndims < 0:
        raise ValueError(f"batch_ndims must be >= 0, got {batch_ndims}")
    for _ in range(batch_ndims):
        fn = current().vmap(fn)
    return fn


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
                from minippl.distributions.transforms import biject_to

                return biject_to(site.kwargs.get("constraint", constraints.real))(
                    position[site.name]
                )
            return position[site.name]

        run = substitute(model, substitute_fn=substitute_fn)
        model_trace = trace(run).get_trace(*model_args, **model_kwargs)
        return {
            name: site.value
            for name, site in model_trace.items()
            if name in position or (return_deterministic and site.type == "deterministic")
        }

    out: Params = _batched(single, batch_ndims)(dict(params))
    return out


def _latent_transforms(model_trace: Trace) -> tuple[dict[str, Any], bool]:
    """The bijection of every continuous latent site, and whether postprocessing must replay
    the model (it has deterministic sites, or a support that depends on other values)."""
    transforms: dict[str, Any] = {}
    replay_model = False
    for name, site in model_trace.items():
        if site.type == "sample" and not site.is_observed:
            if getattr(site.fn.support, "is_discrete", False) or getattr(
                site.fn, "is_discrete", False
            ):
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
            support = site.fn.support
            transforms[name] = bijection_of(site)
            for bound in ("lower_bound", "upper_bound"):
                if not isinstance(getattr(support, bound, 0.0), int | float):
                    replay_model = True
        elif site.type == "param":
            from minippl.distributions.transforms import biject_to

            transforms[name] = biject_to(site.kwargs.get("constraint", constraints.real))
        elif site.type == "deterministic":
            replay_model = True
    return transforms, replay_model


def get_transforms(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """The bijection to each latent site's support (values in ``params`` only fix the trace)."""
    run = substitute(model, data=dict(params))
    return _latent_transforms(trace(run).get_trace(*model_args, **model_kwargs))[0]


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


def _prepare_model(model: Callable[..., Any], model_trace: Trace) -> Callable[..., Any]:
    """Freeze what a potential must not redraw: params and plate indices from the trace.

    A subsampled plate keeps the indices of the initial trace, so the potential is a fixed
    function of the latent values; its likelihood terms are still scaled by
    ``size / subsample_size``.
    """
    frozen = {name: site.value for name, site in model_trace.items() if _is_frozen(site)}
    return _default_key(substitute(model, data=frozen) if frozen else model)


def _is_frozen(site: Message) -> bool:
    """A param, or a plate whose indices are drawn (a whole plate's are ``arange(size)``
    every time): its value in the set-up's trace is kept for the potential."""
    if site.type == "param":
        return True
    if site.type != "plate":
        return False
    size, subsample_size = site.args
    return subsample_size is not None and subsample_size != size


def _latent_values(model_trace: Trace) -> Params:
    """The values of the trace's latent (unobserved) sample sites, in the model's order."""
    return {
        name: site.value
        for name, site in model_trace.items()
        if site.type == "sample" and not site.is_observed
    }


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


def _init_to_unconstrained_value(
    site: Message | None = None, values: Mapping[str, Any] | None = None
) -> Any:
    """``init_to_value`` with values already in unconstrained space (an internal fast path)."""
    if site is None:
        return functools.partial(_init_to_unconstrained_value, values=values or {})
    values = {} if values is None else values
    name = site.name
    if site.type == "sample" and not site.is_observed and name is not None and name in values:
        return bijection_of(site)(values[name])
    return init_to_uniform(site)


class _Attempt(NamedTuple):
    tries: Any
    key: Any
    params: Params
    potential_energy: Any
    z_grad: Params
    is_valid: Any


def find_valid_initial_params(
    rng_key: Any,
    model: Callable[..., Any],
    *,
    init_strategy: InitStrategy = init_to_uniform,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    prototype_params: Params | None = None,
) -> tuple[ParamInfo, Any]:
    """Try up to :data:`MAX_INIT_TRIES` starting points; return the first valid one.

    A point is valid when the potential energy and every gradient entry are finite. Returns
    ``(ParamInfo, is_valid)``; the caller decides what an invalid result means.

    The keys follow NumPyro's flow, so on JAX the same key gives the same starting point:
    each try splits the key, and ``init_to_uniform`` (with ``prototype_params`` known) draws
    each site's box uniform from successive splits without running the model.
    """
    backend = current()
    xp = backend.xp
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    func, options = strategy_parts(init_strategy)
    radius: float | None
    if func is init_to_uniform:
        radius, fixed = float(options.get("radius", 2.0)), {}
    elif func is _init_to_unconstrained_value:
        radius, fixed = 2.0, dict(options.get("values", {}))
    else:
        radius, fixed = None, {}
    strategy = init_strategy if isinstance(init_strategy, functools.partial) else init_strategy()
    potential = functools.partial(potential_energy, model, model_args, kwargs)
    value_and_grad = backend.value_and_grad(potential)

    def attempt(state: _Attempt) -> _Attempt:
        keys = backend.split(state.key)
        key, subkey = keys[0], keys[1]
        if radius is None or prototype_params is None:
            seeded = substitute(seed(model, subkey), substitute_fn=strategy)
            model_trace = trace(seeded).get_trace(*model_args, **kwargs)
            transforms, _ = _latent_transforms(model_trace)
            constrained = _latent_values(model_trace)
            params = transform_fn(transforms, constrained, invert=True)
        else:
            params = {}
            for name, proto in prototype_params.items():
                if name in fixed:
                    params[name] = fixed[name]
                else:
                    params[name] = backend.uniform(
                        subkey, shape_of(proto), minval=-radius, maxval=radius
                    )
                    keys = backend.split(key)
                    key, subkey = keys[0], keys[1]
        pe, grad = value_and_grad(params)
        flat_grad, _ = backend.ravel_pytree(grad)
        is_valid = xp.isfinite(pe) & xp.all(xp.isfinite(flat_grad))
        return _Attempt(state.tries + 1, key, params, pe, grad, is_valid)

    def more(s: _Attempt) -> Any:
        return (s.tries < MAX_INIT_TRIES) & ~s.is_valid

    first = _Attempt(0, rng_key, {}, 0.0, {}, False)
    if backend.is_concrete(rng_key):
        # Eagerly, the first try is usually all it takes; only when it fails do the other
        # tries run as a loop, which JAX compiles once instead of dispatching every
        # operation of every try.
        state = attempt(first)
        if not bool(state.is_valid):
            state = backend.while_loop(
                more,
                attempt,
                state._replace(tries=xp.asarray(state.tries), is_valid=xp.asarray(False)),
            )
    else:
        # Traced (compiled for many chains at once), every try is the loop's body: one copy
        # of the model in the program instead of two. The loop starts from zeros shaped
        # like a try's result.
        shapes = backend.eval_shape(attempt, first)
        zeros = backend.tree_map(lambda x: xp.zeros(x.shape, x.dtype), shapes)
        start = zeros._replace(key=rng_key, is_valid=xp.asarray(False))
        state = backend.while_loop(more, attempt, start)
    return ParamInfo(state.params, state.potential_energy, state.z_grad), state.is_valid


def _explain_invalid(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    info: ParamInfo,
) -> str:
    """Name the sites whose log density (or gradient) is not finite at the last point tried."""
    xp = current().xp
    run = substitute(model, substitute_fn=_unconstrained_substitute_fn(info.z))
    bad_density: list[str] = []
    try:
        log_probs, _ = compute_log_probs(run, model_args, model_kwargs, {})
    except Exception as err:  # noqa: BLE001 - the model itself fails: report that instead
        return f"the model raised {type(err).__name__}: {err}"
    for name, value in log_probs.items():
        if not bool(xp.isfinite(value)):
            if name.startswith("_") and name.endswith("_log_det"):
                bad_density.append(f"{name[1:-8]} (log-Jacobian)")
            else:
                bad_density.append(name)
    bad_grad = [
        name for name, g in info.z_grad.items() if not bool(xp.all(xp.isfinite(xp.asarray(g))))
    ]
    parts = []
    if bad_density:
        parts.append(f"the log density is not finite at site(s) {bad_density}")
    if bad_grad:
        parts.append(f"the gradient is not finite for latent site(s) {bad_grad}")
    if not parts:
        parts.append("the potential energy was not finite")
    return "; ".join(parts)


class ModelSetup(NamedTuple):
    """What one trace of a model tells a sampler: everything but the starting point.

    :meth:`find_start` is then a pure function of a key and the data, so a driver can
    compile it and map it over chains.
    """

    potential_fn: Callable[..., Any]
    postprocess_fn: Callable[..., Any]
    model_trace: Trace | None
    """The eager trace (``None`` when the set-up traced shapes only)."""
    prepared: Callable[..., Any]
    """The model with params and plate indices frozen (what the potential runs)."""
    init_strategy: InitStrategy
    prototype: Params
    """Unconstrained latent values of the trace: the shapes a starting point must have."""

    def find_start(
        self, rng_key: Any, model_args: tuple[Any, ...], model_kwargs: Mapping[str, Any]
    ) -> tuple[ParamInfo, Any]:
        """``(ParamInfo, is_valid)`` for this key and data (see find_valid_initial_params)."""
        return find_valid_initial_params(
            rng_key,
            self.prepared,
            init_strategy=self.init_strategy,
            model_args=model_args,
            model_kwargs=model_kwargs,
            prototype_params=self.prototype,
        )

    def check_start(
        self,
        info: ParamInfo,
        is_valid: Any,
        model_args: tuple[Any, ...],
        model_kwargs: Mapping[str, Any],
    ) -> None:
        """Raise :class:`InitError`, naming the sites at fault, when ``is_valid`` is a
        known ``False`` (under a trace nothing is known yet, and nothing is raised)."""
        backend = current()
        if backend.is_concrete(is_valid) and not bool(backend.xp.all(is_valid)):
            reason = _explain_invalid(self.prepared, model_args, model_kwargs, info)
            raise InitError(
                f"Cannot find valid initial parameters after {MAX_INIT_TRIES} tries: {reason}. "
                "Check the model's parameters and data at those sites (e.g. a scale that can be "
                "zero or negative, data outside a distribution's support), or start from known "
                "good values with init_strategy=init_to_value(values={...})."
            )


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
) -> ModelSetup:
    """Trace the model once and build its potential; no starting point yet.

    The trace is eager, unless ``shapes_only`` and what the set-up keeps depends on no value
    of the trace (no ``param`` site, no subsampled plate, transforms with no traced
    parameter): the trace is then abstract (``eval_shape``), the prototype is shapes, and
    ``model_trace`` is ``None``. On JAX an eager trace runs every operation of the model as
    a program of its own, to compile in a fresh process (eight schools: about nine, 0.35 s).
    ``split_key``: the trace is seeded with the second key of ``split(rng_key)`` (HMC's
    flow), split inside the abstract trace when there is one.
    """
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    strategy = init_strategy if isinstance(init_strategy, functools.partial) else init_strategy()
    abstract = None
    if shapes_only:
        abstract = _shapes_of_setup(rng_key, split_key, model, strategy, model_args, kwargs)
    model_trace: Trace | None = None
    if abstract is None:
        key = current().split(rng_key)[1] if split_key else rng_key
        seeded = substitute(seed(model, key), substitute_fn=strategy)
        model_trace = trace(seeded).get_trace(*model_args, **kwargs)
        transforms, replay_model = _latent_transforms(model_trace)
        prepared = _prepare_model(model, model_trace)
    else:
        transforms, replay_model, prototype = abstract
        prepared = _default_key(model)  # nothing to freeze: no param, no subsampled plate
    potential_fn, postprocess_fn = get_potential_fn(
        prepared,
        transforms,
        replay_model=replay_model,
        dynamic_args=dynamic_args,
        model_args=model_args,
        model_kwargs=kwargs,
    )
    func, options = strategy_parts(strategy)
    if func is init_to_value and not replay_model:
        values = dict(options.get("values", {}))
        strategy = _init_to_unconstrained_value(
            values=transform_fn(transforms, values, invert=True)
        )
    if model_trace is not None:
        constrained = _latent_values(model_trace)
        prototype = transform_fn(transforms, constrained, invert=True)
    return ModelSetup(potential_fn, postprocess_fn, model_trace, prepared, strategy, prototype)


def _shapes_of_setup(
    rng_key: Any,
    split_key: bool,
    model: Callable[..., Any],
    strategy: InitStrategy,
    model_args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], bool, Params] | None:
    """``(transforms, replay_model, prototype shapes)`` from an abstract trace of the
    set-up, or ``None`` where the set-up needs the eager trace's values (or the model cannot
    be traced abstractly): nothing of the abstract trace that holds a traced value is kept."""
    backend = current()
    found: dict[str, Any] = {}

    def shapes() -> Params:
        key = backend.split(rng_key)[1] if split_key else rng_key
        seeded = substitute(seed(model, key), substitute_fn=strategy)
        model_trace = trace(seeded).get_trace(*model_args, **kwargs)
        transforms, replay_model = _latent_transforms(model_trace)
        found.update(
            transforms=transforms,
            replay_model=replay_model,
            needs_values=any(_is_frozen(site) for site in model_trace.values()),
        )
        constrained = _latent_values(model_trace)
        found["order"] = list(constrained)
        return transform_fn(transforms, constrained, invert=True)

    try:
        prototype = backend.eval_shape(shapes)
    except Exception:  # noqa: BLE001 - the eager trace runs it again and says what is wrong
        return None
    if found["needs_values"] or _holds_tracer(found["transforms"]):
        return None
    # In the model's order, not eval_shape's sorted one: the starting point draws its sites
    # one after another from successive keys (NumPyro's flow).
    ordered = {name: prototype[name] for name in found["order"]}
    return found["transforms"], found["replay_model"], ordered


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


def initialize_model(
    rng_key: Any,
    model: Callable[..., Any],
    *,
    init_strategy: InitStrategy = init_to_uniform,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    dynamic_args: bool = False,
) -> ModelInfo:
    """Trace the model, build its potential and find a valid starting point.

    Parameters
    ----------
    rng_key : key for the initial trace and the starting point.
    model : a function that calls minippl primitives.
    init_strategy : per-site strategy from :mod:`minippl.infer.initialization`.
    model_args, model_kwargs : the model's arguments (the data).
    dynamic_args : return ``potential_fn`` and ``postprocess_fn`` as factories of the data,
        ``potential_fn(*args, **kwargs)(z)``, so a compiled sampler takes data as arguments.

    Raises
    ------
    InitError
        when none of :data:`MAX_INIT_TRIES` starting points has a finite potential energy and
        gradient; the message names the sites whose log density is not finite.
    """
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    setup = setup_model(
        rng_key,
        model,
        init_strategy=init_strategy,
        model_args=model_args,
        model_kwargs=kwargs,
        dynamic_args=dynamic_args,
    )
    info, is_valid = setup.find_start(rng_key, model_args, kwargs)
    setup.check_start(info, is_valid, model_args, kwargs)
    assert setup.model_trace is not None  # traced eagerly
    return ModelInfo(info, setup.potential_fn, setup.postprocess_fn, setup.model_trace)


# -- pointwise log likelihood ------------------------------------------------------------------


def _batch_shape(samples: Mapping[str, Any], batch_ndims: int) -> tuple[int, ...] | None:
    """The common leading ``batch_ndims`` dims of every value, checked to agree."""
    found: tuple[int, ...] | None = None
    first = ""
    for name, value in samples.items():
        shape = shape_of(value)[:batch_ndims]
        if found is None:
            found, first = shape, name
        elif shape != found:
            raise ValueError(
                f"batch shapes disagree: site {name!r} has {shape} but {first!r} has {found} "
                f"(batch_ndims={batch_ndims})"
            )
    return found


def log_likelihood(
    model: Callable[..., Any],
    posterior_samples: Mapping[str, Any],
    *args: Any,
    batch_ndims: int = 1,
    **kwargs: Any,
) -> dict[str, Any]:
    """Pointwise log likelihood of every observed site, for each posterior sample.

    Returns ``{site: array of shape batch_shape + site batch shape}`` (mask applied, scale
    not), the input of WAIC and PSIS-LOO. ``batch_ndims=2`` takes samples grouped by chain.
    """
    xp = current().xp

    def single(samples: Params) -> dict[str, Any]:
        run = substitute(model, data=samples) if samples else model
        model_trace = trace(run).get_trace(*args, **kwargs)
        return {
            name: site.fn.log_prob(site.value)
            for name, site in model_trace.items()
            if site.type == "sample"
            and site.is_observed
            and not site.infer.get("is_auxiliary", False)
        }

    samples = dict(posterior_samples)
    batch_shape = _batch_shape(samples, batch_ndims)
    if batch_shape is None:
        one = single({})
        return {k: xp.broadcast_to(v, (1,) * batch_ndims + shape_of(v)) for k, v in one.items()}
    out: dict[str, Any] = _batched(single, batch_ndims)(samples)
    return out

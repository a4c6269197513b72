"""Automatic guides: a guide built from the model's own trace, with NumPyro's names.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``).

An autoguide is a callable object used as ``SVI(model, AutoNormal(model), ...)``. On its
first call it runs the model once, under ``block`` so that no handler outside sees that
run, through :func:`~minippl.infer.util.initialize_model`: the trace says which latent sites
there are, their shapes, supports and plates, and the init strategy gives their starting
points (in unconstrained space). From then on each call samples every latent site of the
model from a distribution whose parameters are ``param`` sites:

- :class:`AutoNormal`: an independent Normal per site in unconstrained space, params
  ``{site}_auto_loc`` and ``{site}_auto_scale``, inside the site's plates (so local
  latent variables may be subsampled).
- :class:`AutoDelta`: a point mass per site (MAP), param ``{site}_auto_loc``, constrained.
- :class:`AutoMultivariateNormal`, :class:`AutoLowRankMultivariateNormal`,
  :class:`AutoLaplaceApproximation`: one joint Gaussian over all latent sites flattened
  into one vector (an auxiliary site ``_auto_latent``), params ``auto_loc`` and
  ``auto_scale_tril`` / ``auto_cov_factor`` and ``auto_scale``.

``sample_posterior``, ``median`` and ``quantiles`` read a fitted guide's params and return
constrained values by site name (deterministic sites recomputed where the model has them).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import minippl.distributions as dist
from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.lowrank import LowRankMultivariateNormal
from minippl.distributions.softplus import scaled_unit_lower_cholesky, softplus_positive
from minippl.distributions.transforms import LowerCholeskyAffine, Transform, biject_to
from minippl.distributions.util import sum_rightmost
from minippl.handlers import block, seed, substitute
from minippl.infer.elbo import Trace_ELBO
from minippl.infer.initialization import init_to_median, init_to_uniform
from minippl.infer.util import initialize_model
from minippl.messages import CondIndepStackFrame, Message
from minippl.primitives import get_mask, param, plate, prng_key, sample

__all__ = [
    "AutoContinuous",
    "AutoDelta",
    "AutoGuide",
    "AutoLaplaceApproximation",
    "AutoLowRankMultivariateNormal",
    "AutoMultivariateNormal",
    "AutoNormal",
]

Params = dict[str, Any]


def _bijection(site: Message) -> Transform:
    try:
        return biject_to(site.fn.support)
    except NotImplementedError:
        raise ValueError(
            f"site {site.name!r}: an autoguide needs a bijection from the reals to its support "
            f"{site.fn.support!r}, and none is registered; discrete latent sites cannot be "
            "fitted by these guides (marginalise them out, or write the guide by hand)"
        ) from None


def _is_real(support: Any) -> bool:
    base = getattr(support, "base_constraint", None)
    return support is constraints.real or (
        isinstance(support, constraints.independent) and base is constraints.real
    )


def periodic_repeat(x: Any, size: int, dim: int) -> Any:
    """``x`` repeated along ``dim`` until it is ``size`` long (a subsampled init to full)."""
    xp = current().xp
    reps = [1] * x.ndim
    reps[dim] = -(-size // x.shape[dim])
    return xp.take(xp.tile(x, reps), xp.arange(size), axis=dim)


class AutoGuide:
    """Base class: the prototype trace, the plates, and the API every autoguide shares.

    Parameters
    ----------
    model : the model to fit.
    prefix : the prefix of the param names (``auto`` gives ``{site}_auto_loc``).
    init_loc_fn : an init strategy of :mod:`minippl.infer.initialization`.
    create_plates : a function of the model's arguments returning plates (or one) to use
        instead of fresh ones, e.g. to subsample with the model's own indices.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_uniform,
        create_plates: Callable[..., Any] | None = None,
    ) -> None:
        self.model = model
        self.prefix = prefix
        self.init_loc_fn = init_loc_fn
        self.create_plates = create_plates
        self.prototype_trace: dict[str, Message] | None = None
        self._init_locs: Params = {}
        self._prototype_frames: dict[str, CondIndepStackFrame] = {}
        self._prototype_frame_full_sizes: dict[str, int] = {}
        self._postprocess_fn: Callable[[Params], Params] = lambda x: x

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        """Run the model once, hidden by ``block``, to learn its latent sites and starting
        points (NumPyro's key flow: one ``prng_key()`` from the guide's seed)."""
        rng_key = prng_key()
        with block():
            info = initialize_model(
                rng_key,
                self.model,
                init_strategy=self.init_loc_fn,
                dynamic_args=True,
                model_args=args,
                model_kwargs=kwargs,
            )
        self.prototype_trace = info.model_trace
        # A fixed seed, in case the postprocessing draws subsample indices: it only
        # recomputes deterministic sites, which do not depend on them.
        self._postprocess_fn = seed(info.postprocess_fn(*args, **kwargs), rng_seed=0)
        self._init_locs = dict(info.param_info.z)
        for name, site in self.prototype_trace.items():
            if site.type == "plate":
                self._prototype_frame_full_sizes[name] = site.args[0]
            if site.type != "sample" or site.is_observed:
                continue
            if getattr(site.fn, "is_discrete", False):
                _bijection(site)
            for frame in site.cond_indep_stack:
                known = self._prototype_frames.setdefault(frame.name, frame)
                if known != frame:
                    raise ValueError(
                        f"plate {frame.name!r} has a different dim or size at site {name!r} "
                        f"({frame}) than elsewhere in the model ({known})"
                    )

    def _create_plates(self, *args: Any, **kwargs: Any) -> dict[str, plate]:
        plates: dict[str, plate] = {}
        if self.create_plates is not None:
            made = self.create_plates(*args, **kwargs)
            made = [made] if isinstance(made, plate) else list(made)
            plates = {p.name: p for p in made}
        for name, frame in sorted(self._prototype_frames.items()):
            if name not in plates:
                full_size = self._prototype_frame_full_sizes[name]
                plates[name] = plate(name, full_size, dim=frame.dim, subsample_size=frame.size)
        return plates

    def _latent_sites(self) -> list[tuple[str, Message]]:
        assert self.prototype_trace is not None
        return [
            (name, site)
            for name, site in self.prototype_trace.items()
            if site.type == "sample" and not site.is_observed
        ]

    def _repeat_to_full(self, name: str, site: Message, event_dim: int) -> None:
        """A site in a subsampled plate gets an init for every index, repeated."""
        for frame in site.cond_indep_stack:
            full_size = self._prototype_frame_full_sizes[frame.name]
            if full_size != frame.size:
                dim = frame.dim - event_dim
                self._init_locs[name] = periodic_repeat(self._init_locs[name], full_size, dim)

    def _constrain(self, latent: Params) -> Params:
        """Unconstrained values (with leading sample dims) to constrained ones, deterministic
        sites included."""
        name = next(iter(latent))
        ndim = len(current().xp.shape(self._init_locs[name]))
        sample_shape = tuple(latent[name].shape[: latent[name].ndim - ndim])
        return _map_over(self._postprocess_fn, latent, sample_shape)

    def __call__(self, *args: Any, **kwargs: Any) -> Params:
        raise NotImplementedError

    def sample_posterior(
        self, rng_key: Any, params: Params, *args: Any, sample_shape: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Params:  # fmt: skip
        """Draws of every latent (and deterministic) site from the fitted guide."""
        raise NotImplementedError

    def median(self, params: Params) -> Params:
        """The posterior median of each latent site."""
        raise NotImplementedError

    def quantiles(self, params: Params, quantiles: Sequence[float] | float) -> Params:
        """The posterior quantiles of each latent site, along a new leading dim."""
        raise NotImplementedError


def _map_over(
    fn: Callable[[Params], Params], values: Params, sample_shape: tuple[int, ...]
) -> Params:
    """``fn`` on each draw of ``values``, whose leading ``sample_shape`` dims index draws."""
    backend = current()
    xp = backend.xp
    if not sample_shape:
        return fn(values)
    n = math.prod(sample_shape)
    flat = {k: xp.reshape(v, (n, *v.shape[len(sample_shape) :])) for k, v in values.items()}
    out = backend.vmap(fn)(flat)
    return {k: xp.reshape(v, (*sample_shape, *v.shape[1:])) for k, v in out.items()}


class AutoNormal(AutoGuide):
    """An independent Normal for each latent site, in its unconstrained space.

    Params ``{site}_{prefix}_loc`` (from ``init_loc_fn``) and ``{site}_{prefix}_scale``
    (``init_scale``, kept positive through softplus), each inside the site's plates; a
    constrained site is sampled as its Normal pushed through ``biject_to(support)``.
    """

    scale_constraint = softplus_positive

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_uniform,
        init_scale: float = 0.1,
        create_plates: Callable[..., Any] | None = None,
    ) -> None:
        if init_scale <= 0:
            raise ValueError(f"AutoNormal: init_scale must be > 0, got {init_scale}")
        self._init_scale = init_scale
        self._event_dims: dict[str, int] = {}
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn, create_plates=create_plates)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        xp = current().xp
        for name, site in self._latent_sites():
            # The unconstrained value may have more dims than the site (a simplex loses
            # one): the event dims are counted on the unconstrained side.
            event_dim = site.fn.event_dim + xp.ndim(self._init_locs[name]) - xp.ndim(site.value)
            self._event_dims[name] = event_dim
            self._repeat_to_full(name, site, event_dim)

    def __call__(self, *args: Any, **kwargs: Any) -> Params:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        xp = current().xp
        plates = self._create_plates(*args, **kwargs)
        result: Params = {}
        for name, site in self._latent_sites():
            event_dim = self._event_dims[name]
            init_loc = self._init_locs[name]
            with ExitStack() as stack:
                for frame in site.cond_indep_stack:
                    stack.enter_context(plates[frame.name])
                loc = param(f"{name}_{self.prefix}_loc", init_loc, event_dim=event_dim)
                scale = param(
                    f"{name}_{self.prefix}_scale",
                    xp.full(xp.shape(init_loc), self._init_scale),
                    constraint=self.scale_constraint,
                    event_dim=event_dim,
                )
                normal = dist.Normal(loc, scale).to_event(event_dim)
                if _is_real(site.fn.support):
                    result[name] = sample(name, normal)
                else:
                    pushed = dist.TransformedDistribution(normal, _bijection(site))
                    result[name] = sample(name, pushed)
        return result

    def _locs_and_scales(self, params: Params) -> tuple[Params, Params]:
        locs = {k: params[f"{k}_{self.prefix}_loc"] for k in self._init_locs}
        scales = {k: params[f"{k}_{self.prefix}_scale"] for k in self._init_locs}
        return locs, scales

    def sample_posterior(
        self, rng_key: Any, params: Params, *args: Any, sample_shape: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Params:  # fmt: skip
        locs, scales = self._locs_and_scales(params)
        latent: Params = {}
        with seed(rng_seed=rng_key):
            for k in locs:
                normal = dist.Normal(locs[k], scales[k]).expand_by(sample_shape)
                latent[k] = sample(k, normal)
        return self._constrain(latent)

    def median(self, params: Params) -> Params:
        return self._constrain(self._locs_and_scales(params)[0])

    def quantiles(self, params: Params, quantiles: Sequence[float] | float) -> Params:
        xp = current().xp
        q = xp.asarray(quantiles)
        locs, scales = self._locs_and_scales(params)
        latent = {
            k: dist.Normal(locs[k], scales[k]).icdf(xp.reshape(q, (-1,) + (1,) * xp.ndim(locs[k])))
            for k in locs
        }
        return self._constrain(latent)


class AutoDelta(AutoGuide):
    """A point mass at each latent site (MAP estimation), in constrained space.

    Param ``{site}_{prefix}_loc`` with the site's support as its constraint, started at
    ``init_loc_fn`` (default: the median of prior draws, as in NumPyro).
    """

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_median,
        create_plates: Callable[..., Any] | None = None,
    ) -> None:
        self._event_dims: dict[str, int] = {}
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn, create_plates=create_plates)

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        with block():
            constrained = self._postprocess_fn(self._init_locs)
        self._init_locs = {k: v for k, v in constrained.items() if k in self._init_locs}
        for name, site in self._latent_sites():
            self._event_dims[name] = site.fn.event_dim
            self._repeat_to_full(name, site, site.fn.event_dim)

    def __call__(self, *args: Any, **kwargs: Any) -> Params:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result: Params = {}
        for name, site in self._latent_sites():
            event_dim = self._event_dims[name]
            with ExitStack() as stack:
                for frame in site.cond_indep_stack:
                    stack.enter_context(plates[frame.name])
                loc = param(
                    f"{name}_{self.prefix}_loc",
                    self._init_locs[name],
                    constraint=site.fn.support,
                    event_dim=event_dim,
                )
                result[name] = sample(name, dist.Delta(loc).to_event(event_dim))
        return result

    def sample_posterior(
        self, rng_key: Any, params: Params, *args: Any, sample_shape: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Params:  # fmt: skip
        xp = current().xp
        locs = self.median(params)
        draws = {k: xp.broadcast_to(v, (*sample_shape, *xp.shape(v))) for k, v in locs.items()}
        assert self.prototype_trace is not None
        if not any(s.type == "deterministic" for s in self.prototype_trace.values()):
            return draws
        unconstrained = {
            k: biject_to(self.prototype_trace[k].fn.support).inv(v) for k, v in draws.items()
        }
        return {**draws, **_map_over(self._postprocess_fn, unconstrained, sample_shape)}

    def median(self, params: Params) -> Params:
        return {k: params[f"{k}_{self.prefix}_loc"] for k in self._init_locs}


class AutoContinuous(AutoGuide):
    """One joint distribution over all latent sites, flattened into one unconstrained
    vector (Kucukelbir et al. 2017, ADVI). The draw is an auxiliary site
    ``_{prefix}_latent``; each model site then gets its slice, pushed to its support, as a
    ``Delta`` whose log density is the change of variables. No local (subsampled) sites.
    """

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        xp = current().xp
        self._shapes = {k: tuple(xp.shape(v)) for k, v in self._init_locs.items()}
        self._init_latent = xp.concatenate([xp.reshape(v, (-1,)) for v in self._init_locs.values()])
        self.latent_dim = int(self._init_latent.shape[0])
        if self.latent_dim == 0:
            raise RuntimeError(f"{type(self).__name__} found no latent variables in the model")
        for name, site in self._latent_sites():
            for frame in site.cond_indep_stack:
                if frame.size != self._prototype_frame_full_sizes[frame.name]:
                    raise ValueError(
                        f"{type(self).__name__}: site {name!r} is in the subsampled plate "
                        f"{frame.name!r}; use AutoNormal for local latent variables"
                    )

    def _unpack(self, latent: Any) -> Params:
        """The flat vector (with leading batch dims) to one value per site."""
        xp = current().xp
        out: Params = {}
        start = 0
        batch = tuple(latent.shape[:-1])
        for name, shape in self._shapes.items():
            size = math.prod(shape)
            out[name] = xp.reshape(latent[..., start : start + size], batch + shape)
            start += size
        return out

    def _get_posterior(self) -> dist.Distribution:
        raise NotImplementedError

    def _sample_latent(self, sample_shape: tuple[int, ...] = ()) -> Any:
        posterior = self._get_posterior()
        return sample(
            f"_{self.prefix}_latent",
            posterior.expand_by(sample_shape),
            infer={"is_auxiliary": True},
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Params:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        xp = current().xp
        assert self.prototype_trace is not None
        latent = self._sample_latent()
        result: Params = {}
        for name, unconstrained in self._unpack(latent).items():
            site = self.prototype_trace[name]
            transform = _bijection(site)
            value = transform(unconstrained)
            event_dim = site.fn.event_dim
            if get_mask() is False:
                log_density: Any = 0.0
            else:
                log_density = -transform.log_abs_det_jacobian(unconstrained, value)
                extra = xp.ndim(log_density) - xp.ndim(value) + event_dim
                log_density = sum_rightmost(log_density, extra)
            delta = dist.Delta(value, log_density=log_density, event_dim=event_dim)
            result[name] = sample(name, delta)
        return result

    def _unpack_and_constrain(self, latent: Any, params: Params) -> Params:
        """Flat draws (leading dims index draws) to constrained values by site."""
        assert self.prototype_trace is not None
        trace_ = self.prototype_trace
        model_params = {
            k: v for k, v in params.items() if k in trace_ and trace_[k].type == "param"
        }

        def one(values: Params) -> Params:
            out = self._postprocess_fn({**values, **model_params})
            return {k: v for k, v in out.items() if k in trace_ and trace_[k].type != "param"}

        return _map_over(one, self._unpack(latent), tuple(latent.shape[:-1]))

    def get_posterior(self, params: Params) -> dist.Distribution:
        """The fitted joint distribution of the unconstrained latent vector."""
        return substitute(self._get_posterior, data=params)()  # type: ignore[no-any-return]

    def sample_posterior(
        self, rng_key: Any, params: Params, *args: Any, sample_shape: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Params:  # fmt: skip
        # Drawn at the guide's own auxiliary site under ``seed``, as NumPyro does, so the
        # same key gives the same draws.
        draw = substitute(seed(self._sample_latent, rng_key), data=params)
        return self._unpack_and_constrain(draw(sample_shape=sample_shape), params)

    def median(self, params: Params) -> Params:
        return self._unpack_and_constrain(params[f"{self.prefix}_loc"], params)

    def _marginal_scale(self, params: Params) -> Any:
        raise NotImplementedError

    def quantiles(self, params: Params, quantiles: Sequence[float] | float) -> Params:
        xp = current().xp
        q = xp.asarray(quantiles)[..., None]
        loc = params[f"{self.prefix}_loc"]
        latent = dist.Normal(loc, self._marginal_scale(params)).icdf(q)
        return self._unpack_and_constrain(latent, params)


class AutoMultivariateNormal(AutoContinuous):
    """A full-covariance Gaussian over the flattened latent vector: params ``auto_loc`` and
    ``auto_scale_tril`` (a Cholesky factor, started at ``init_scale * I``)."""

    scale_tril_constraint = scaled_unit_lower_cholesky

    # Each autoguide writes out NumPyro's signature for it (``duplicates`` pairs them by
    # shape), so that ``help`` and keyword checks show each guide's own options.
    def __init__(
        self,
        model: Callable[..., Any],
        *,
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_uniform,
        init_scale: float = 0.1,
    ) -> None:
        if init_scale <= 0:
            raise ValueError(f"{type(self).__name__}: init_scale must be > 0, got {init_scale}")
        self._init_scale = init_scale
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)

    def _get_posterior(self) -> dist.Distribution:
        xp = current().xp
        loc = param(f"{self.prefix}_loc", self._init_latent)
        scale_tril = param(
            f"{self.prefix}_scale_tril",
            xp.eye(self.latent_dim) * self._init_scale,
            constraint=self.scale_tril_constraint,
        )
        return dist.MultivariateNormal(loc, scale_tril=scale_tril)

    def get_transform(self, params: Params) -> Transform:
        """``z = loc + scale_tril @ eps`` for standard normal ``eps``."""
        return LowerCholeskyAffine(
            params[f"{self.prefix}_loc"], params[f"{self.prefix}_scale_tril"]
        )

    def _marginal_scale(self, params: Params) -> Any:
        xp = current().xp
        return xp.linalg.norm(params[f"{self.prefix}_scale_tril"], axis=-1)


class AutoLowRankMultivariateNormal(AutoContinuous):
    """A Gaussian with covariance ``W W^T + D`` (``rank`` columns in ``W``, default
    ``round(sqrt(dim))``), scaled per coordinate: params ``auto_loc``, ``auto_cov_factor``
    and ``auto_scale``."""

    scale_constraint = softplus_positive

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_uniform,
        init_scale: float = 0.1,
        rank: int | None = None,
    ) -> None:
        if init_scale <= 0:
            raise ValueError(f"{type(self).__name__}: init_scale must be > 0, got {init_scale}")
        self._init_scale = init_scale
        self.rank = rank
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)

    def _get_posterior(self) -> dist.Distribution:
        xp = current().xp
        rank = int(round(self.latent_dim**0.5)) if self.rank is None else self.rank
        loc = param(f"{self.prefix}_loc", self._init_latent)
        cov_factor = param(f"{self.prefix}_cov_factor", xp.zeros((self.latent_dim, rank)))
        scale = param(
            f"{self.prefix}_scale",
            xp.full((self.latent_dim,), self._init_scale),
            constraint=self.scale_constraint,
        )
        return LowRankMultivariateNormal(loc, cov_factor * scale[..., None], scale * scale)

    def _marginal_scale(self, params: Params) -> Any:
        xp = current().xp
        cov_factor = params[f"{self.prefix}_cov_factor"]
        scale = params[f"{self.prefix}_scale"]
        return scale * xp.sqrt(xp.sum(xp.square(cov_factor), axis=-1) + 1)


class AutoLaplaceApproximation(AutoContinuous):
    """The Laplace approximation: fit the MAP point in unconstrained space (a ``Delta``
    guide, param ``auto_loc``), then take as covariance the inverse Hessian of ``-log p``
    there. ``hessian_fn(f, x)`` may replace the Hessian (e.g. to add jitter)."""

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        prefix: str = "auto",
        init_loc_fn: Callable[..., Any] = init_to_uniform,
        create_plates: Callable[..., Any] | None = None,
        hessian_fn: Callable[[Callable[[Any], Any], Any], Any] | None = None,
    ) -> None:
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn, create_plates=create_plates)
        self._hessian_fn = hessian_fn if hessian_fn is not None else _hessian
        self._args: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_prototype(*args, **kwargs)
        self._args = (args, dict(kwargs))

    def _get_posterior(self) -> dist.Distribution:
        return dist.Delta(param(f"{self.prefix}_loc", self._init_latent), event_dim=1)

    def get_transform(self, params: Params) -> Transform:
        """``loc + L @ eps`` with ``L L^T`` the inverse Hessian of ``-ELBO`` at ``loc`` (for a
        Delta guide that is ``-log p`` in unconstrained space)."""
        backend = current()
        xp = backend.xp
        args, kwargs = self._args
        loc_name = f"{self.prefix}_loc"

        def loss_fn(z: Any) -> Any:
            at = {**params, loc_name: z}
            return Trace_ELBO().loss(backend.key(0), at, self.model, self, *args, **kwargs)

        precision = self._hessian_fn(loss_fn, params[loc_name])
        scale_tril = _cholesky_of_inverse(precision)
        if backend.is_concrete(scale_tril) and bool(xp.any(xp.isnan(scale_tril))):
            warnings.warn(
                "AutoLaplaceApproximation: the Hessian at the MAP point is singular; the "
                "posterior draws are the MAP point itself. Consider AutoNormal.",
                UserWarning,
                stacklevel=2,
            )
        scale_tril = xp.where(xp.isnan(scale_tril), 0.0, scale_tril)
        return LowerCholeskyAffine(params[loc_name], scale_tril)

    def get_posterior(self, params: Params) -> dist.Distribution:
        transform = self.get_transform(params)
        assert isinstance(transform, LowerCholeskyAffine)
        return dist.MultivariateNormal(
            transform.loc, scale_tril=transform.scale_tril, validate_args=False
        )

    def sample_posterior(
        self, rng_key: Any, params: Params, *args: Any, sample_shape: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Params:  # fmt: skip
        latent = self.get_posterior(params).sample(rng_key, sample_shape)
        return self._unpack_and_constrain(latent, params)

    def _marginal_scale(self, params: Params) -> Any:
        transform = self.get_transform(params)
        assert isinstance(transform, LowerCholeskyAffine)
        return current().xp.linalg.norm(transform.scale_tril, axis=-1)


def _hessian(fn: Callable[[Any], Any], x: Any) -> Any:
    """The Hessian of scalar ``fn`` at vector ``x``: each row the gradient of one coordinate
    of the gradient (reverse over reverse). A backend whose gradients do not nest gets the
    central differences of the gradient instead (step ``1e-4 * max(1, |x_i|)``)."""
    backend = current()
    xp = backend.xp
    gradient = backend.grad(fn)

    def row(direction: Any) -> Any:
        return backend.grad(lambda z: xp.sum(gradient(z) * direction))(x)

    try:
        return backend.vmap(row)(xp.eye(x.shape[0], dtype=x.dtype))
    except (TypeError, ValueError):
        steps = 1e-4 * xp.maximum(1.0, xp.abs(x))
        rows = []
        for i in range(x.shape[0]):
            shift = xp.zeros_like(x)
            shift = backend.index_update(shift, i, steps[i])
            rows.append((gradient(x + shift) - gradient(x - shift)) / (2 * steps[i]))
        hess = xp.stack(rows)
        return 0.5 * (hess + hess.T)


def _cholesky_of_inverse(precision: Any) -> Any:
    """A lower Cholesky factor of ``precision^-1`` (NaN where ``precision`` is not PD)."""
    backend = current()
    xp = backend.xp
    try:
        return backend.cholesky(xp.linalg.inv(precision))
    except Exception:  # noqa: BLE001 - NumPy raises where JAX returns NaN
        return xp.full(precision.shape, xp.nan)

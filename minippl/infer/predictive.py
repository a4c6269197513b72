"""Predictive distributions: run the model forward from prior or posterior draws, and the
pointwise log likelihood of posterior draws.

Tutorial: "Predictions: Predictive" (``tutorial/s11_predictive.py``).

``Predictive(model, posterior_samples)(key, *args)`` runs the model once per draw, with the
draw's latent values substituted and everything else drawn fresh: observed sites are
*predicted* (drawn from their likelihood, not echoed back from the data passed in), and
deterministic sites are *recomputed* from the draw (so they follow new data rather than
repeating values stored with the samples). With ``num_samples`` and no samples it draws
from the prior predictive. Runs are vectorised with ``vmap`` (on JAX, one batched pass
over all draws; on NumPy, a loop).

Keys follow NumPyro: the key is split into one key per draw (only when there are several),
and draw ``j`` runs ``seed(model, keys[j])``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from minippl.backend import current
from minippl.checks import (
    check_callable,
    check_count,
    check_key,
    check_mapping,
    check_names,
    with_site,
)
from minippl.distributions.util import shape_of
from minippl.handlers import seed, substitute, trace
from minippl.infer.compile_cache import enable_compile_cache
from minippl.infer.potential import batched
from minippl.messages import Message
from minippl.runtime import Messenger

__all__ = ["Predictive", "log_likelihood"]


class _predict_observed(Messenger):
    """Turn observed sample sites into draws, so they are predicted, not echoed.

    Acts in process_message on observed ``sample`` messages (except ``factor`` sites, which
    carry no data): ``value=None``, ``is_observed=False``; the data stays in
    ``infer["obs"]``. An outer ``seed`` then gives the site a key, exactly where it would
    give one to the same site with ``obs=None``, so draws match a model called without data.
    """

    def process_message(self, msg: Message) -> None:
        if msg.type != "sample" or not msg.is_observed or msg.infer.get("is_auxiliary", False):
            return
        msg.infer = {**msg.infer, "was_observed": True, "obs": msg.value}
        msg.value = None
        msg.is_observed = False


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


def _predictive(
    rng_key: Any,
    model: Callable[..., Any],
    samples: Mapping[str, Any],
    batch_shape: tuple[int, ...],
    return_sites: Sequence[str] | str | None,
    exclude_deterministic: bool,
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    check_sites: bool = False,
) -> dict[str, Any]:
    """One model run per entry of ``batch_shape``, mapped over the leading dims of ``samples``."""
    backend = current()
    samples = dict(samples)

    def single(key: Any, draw: dict[str, Any]) -> dict[str, Any]:
        if exclude_deterministic:

            def substitute_fn(msg: Message) -> Any:
                if msg.type == "deterministic" or msg.name is None:
                    return None
                return draw.get(msg.name)

            run = substitute(_predict_observed(model), substitute_fn=substitute_fn)
        else:
            run = substitute(_predict_observed(model), data=draw)
        model_trace = trace(seed(run, key)).get_trace(*model_args, **model_kwargs)
        if check_sites:
            check_names(draw, model_trace, "posterior_samples", "Predictive")
        if return_sites is None:
            sites = {
                name
                for name, site in model_trace.items()
                if (
                    site.type == "sample"
                    and name not in draw
                    and not site.infer.get("is_auxiliary", False)
                )
                or site.type == "deterministic"
            }
        elif return_sites == "":
            sites = {name for name, site in model_trace.items() if site.type != "plate"}
        else:
            sites = set(return_sites)
        return {name: site.value for name, site in model_trace.items() if name in sites}

    total = math.prod(batch_shape)
    keys = backend.split(rng_key, total) if total > 1 else rng_key
    keys = keys.reshape(batch_shape + shape_of(rng_key))
    if not batch_shape:
        return single(keys, samples)
    mapped: dict[str, Any] = batched(single, len(batch_shape))(keys, samples)
    return mapped


class Predictive:
    """Draws from the prior or posterior predictive distribution of ``model``.

    Parameters
    ----------
    model : the model.
    posterior_samples : draws of latent sites, e.g. ``mcmc.get_samples()``; their leading
        ``batch_ndims`` dims index the draws.
    guide, params : a guide (with its ``params``) to draw the latent sites from instead.
    num_samples : number of draws when there are no posterior samples (prior predictive).
    return_sites : names to return; default: sample sites not in ``posterior_samples``
        (observed sites included, predicted) and all deterministic sites. ``""`` returns every
        site.
    batch_ndims : leading dims of ``posterior_samples`` that index draws (2 for samples
        grouped by chain). Default 1, or 0 with a guide.
    exclude_deterministic : recompute deterministic sites rather than substituting values
        stored in ``posterior_samples`` (default). ``condition_deterministic`` is NumPyro
        0.22's name for the opposite switch.
    parallel : accepted for NumPyro compatibility; draws are always vectorised.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        posterior_samples: Mapping[str, Any] | None = None,
        *,
        guide: Callable[..., Any] | None = None,
        params: Mapping[str, Any] | None = None,
        num_samples: int | None = None,
        return_sites: Sequence[str] | None = None,
        infer_discrete: bool = False,
        parallel: bool = True,
        batch_ndims: int | None = None,
        exclude_deterministic: bool = True,
        condition_deterministic: bool | None = None,
    ) -> None:
        check_callable(model, "model", "Predictive")
        check_mapping(posterior_samples, "posterior_samples", "Predictive")
        if num_samples is not None:
            num_samples = check_count(num_samples, "num_samples", "Predictive")
        if infer_discrete:
            raise NotImplementedError("Predictive(infer_discrete=True) is not supported")
        if condition_deterministic is not None:
            exclude_deterministic = not condition_deterministic
        if posterior_samples is None and num_samples is None:
            raise ValueError("give posterior_samples or num_samples")
        if posterior_samples is not None and guide is not None:
            raise ValueError("give posterior_samples or a guide, not both")
        if return_sites is not None and not isinstance(return_sites, list | tuple | set | str):
            raise TypeError(f"return_sites must be a list of names, got {type(return_sites)}")
        ndims = batch_ndims if batch_ndims is not None else (1 if guide is None else 0)
        samples = dict(posterior_samples or {})
        found = _batch_shape(samples, ndims)
        if found is not None:
            size = math.prod(found)
            if num_samples is not None and num_samples != size:
                warnings.warn(
                    f"posterior_samples hold {size} draws but num_samples={num_samples}; "
                    f"using {size}",
                    UserWarning,
                    stacklevel=2,
                )
            num_samples = size
            batch_shape = found
        else:
            assert num_samples is not None
            # NumPyro's shape: with a guide (batch_ndims 0) still one draw per sample.
            batch_shape = (1,) * (ndims - 1) + (num_samples,)
        self.model = model
        self.posterior_samples = samples
        self.guide = guide
        self.params = dict(params or {})
        self.num_samples = num_samples
        self.return_sites = return_sites
        self.parallel = parallel
        self.batch_ndims = ndims
        self.exclude_deterministic = exclude_deterministic
        self._batch_shape = batch_shape

    def __call__(self, rng_key: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Draw from the predictive distribution, with ``args`` and ``kwargs`` for the model."""
        backend = current()
        check_key(rng_key, "Predictive")
        enable_compile_cache()
        samples = self.posterior_samples
        if self.guide is not None:
            keys = backend.split(rng_key)
            rng_key, guide_key = keys[0], keys[1]
            guide = _with_params(self.guide, self.params)
            samples = _predictive(
                guide_key, guide, samples, self._batch_shape, "", self.exclude_deterministic,
                args, kwargs,
            )  # fmt: skip
        model = _with_params(self.model, self.params)
        return _predictive(
            rng_key, model, samples, self._batch_shape, self.return_sites,
            self.exclude_deterministic, args, kwargs, check_sites=self.guide is None,
        )  # fmt: skip


def _pointwise_log_prob(site: Message) -> Any:
    """``fn.log_prob(value)`` of an observed site; a shape error names the site."""
    try:
        return site.fn.log_prob(site.value)
    except (ValueError, TypeError) as err:
        raise with_site(err, site.name, site.fn, site.value, site.cond_indep_stack) from err


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

    def single(samples: dict[str, Any]) -> dict[str, Any]:
        run = substitute(model, data=samples) if samples else model
        model_trace = trace(run).get_trace(*args, **kwargs)
        return {
            name: _pointwise_log_prob(site)
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
    out: dict[str, Any] = batched(single, batch_ndims)(samples)
    return out


def _with_params(fn: Callable[..., Any], params: Mapping[str, Any]) -> Callable[..., Any]:
    """``fn`` with ``params`` at its sites of those names; by ``substitute_fn``, since the
    guide's params are not in the model (nor the model's in the guide), and ``data=`` would
    warn about each of them."""
    if not params:
        return fn
    return substitute(fn, substitute_fn=lambda msg: params.get(msg.name) if msg.name else None)

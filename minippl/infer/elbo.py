"""The evidence lower bound (ELBO): what SVI maximises, built from four handlers.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``).

For a model ``p(x, z)`` and a guide ``q(z; phi)`` (a program with ``param`` sites ``phi``
and the model's latent sites), Jensen's inequality gives

    log p(x) >= E_q[log p(x, z) - log q(z)] = ELBO(phi),

with equality exactly when ``q`` is the posterior. One Monte Carlo "particle" of the ELBO is
four handlers around two program runs:

1. ``substitute(seed(guide), data=params)``: ``seed`` gives the guide's sample sites keys,
   ``substitute`` puts the current ``params`` at its ``param`` sites; ``trace`` records the
   draws ``z ~ q`` and where each came from.
2. ``replay(seed(model), guide_trace)``: ``replay`` makes each latent site of the model take
   the value the guide drew there, so both programs are evaluated at the same ``z``;
   ``substitute`` and ``trace`` as before.
3. ``sum log p - sum log q`` over the two traces (each site's ``scale`` applied: a plate that
   subsamples scales the model's and the guide's terms alike).

The draws are ``z = loc + scale * eps`` (reparameterized), so the gradient of the particle
with respect to ``params`` is an unbiased estimate of the ELBO's gradient, taken by the
backend's ``value_and_grad``. ``block`` appears one level up: an autoguide runs the model
once under ``block`` to learn its sites without showing that run to the handlers outside.

Non-reparameterizable latent sites (discrete ones) are treated as NumPyro 0.22's
``Trace_ELBO`` treats them: no score-function term is added, so their gradient is biased,
and ``SVI.init`` warns about discrete latent sites.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from minippl.backend import current
from minippl.distributions.kl import kl_divergence
from minippl.handlers import replay, seed, substitute, trace
from minippl.messages import Message

Trace = dict[str, Message]


def site_log_prob(site: Message) -> Any:
    """``scale * log q(value)`` of one sample site, summed over all its dims.

    A ``mask`` handler has already wrapped the site's distribution, so masked elements
    count zero here. A transformed draw's density is computed from its value (through the
    inverse transform); NumPyro reuses the pre-image kept in ``intermediates``, which
    differs only by float rounding.
    """
    xp = current().xp
    log_prob = site.fn.log_prob(site.value)
    if site.scale is not None:
        log_prob = site.scale * log_prob
    return xp.sum(log_prob)


def run_guide_and_model(
    rng_key: Any,
    params: Mapping[str, Any],
    model: Callable[..., Any],
    guide: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> tuple[Trace, Trace]:
    """Steps 1 and 2 above: the guide's trace and the model's trace replayed against it.

    The key splits as NumPyro's ``Trace_ELBO`` splits it (model first, then guide), so the
    same key gives the same draws.
    """
    keys = current().split(rng_key)
    model_key, guide_key = keys[0], keys[1]
    # ``substitute_fn`` rather than ``data=``: the guide's params are not in the model (nor
    # the model's in the guide), and ``data=`` would warn about every name a program lacks.
    at_params = _values_from(params)
    guide_run = substitute(seed(guide, guide_key), substitute_fn=at_params)
    guide_trace = trace(guide_run).get_trace(*args, **kwargs)
    model_run = substitute(
        replay(seed(model, model_key), trace=guide_trace), substitute_fn=at_params
    )
    model_trace = trace(model_run).get_trace(*args, **kwargs)
    check_model_guide_match(model_trace, guide_trace)
    return guide_trace, model_trace


def _values_from(params: Mapping[str, Any]) -> Callable[[Message], Any]:
    return lambda msg: params.get(msg.name) if msg.name is not None else None


def _latent_names(tr: Trace) -> list[str]:
    return [name for name, site in tr.items() if site.type == "sample" and not site.is_observed]


def _is_auxiliary(site: Message) -> bool:
    return bool(site.infer.get("is_auxiliary", False))


def check_model_guide_match(model_trace: Trace, guide_trace: Trace) -> None:
    """Raise ``ValueError`` naming the sites where model and guide disagree.

    Every latent site of the model must be sampled by the guide (else the model would draw
    it from its prior and the ELBO would not be the ELBO); every sample site of the guide
    must be a latent site of the model, unless marked ``infer={"is_auxiliary": True}``.
    NumPyro only warns about these; here they are errors, since the loss is wrong.
    """
    guide_samples = [n for n, s in guide_trace.items() if s.type == "sample"]
    model_latent = set(_latent_names(model_trace))
    missing = [name for name in _latent_names(model_trace) if name not in guide_trace]
    if missing:
        raise ValueError(
            f"the guide has no sample site for the model's latent site(s) {missing}: the "
            "guide must sample every latent site of the model (or condition the model on it)"
        )
    for name in guide_samples:
        site = guide_trace[name]
        if _is_auxiliary(site) or name in model_latent:
            continue
        if site.is_observed:
            raise ValueError(
                f"site {name!r} is observed in the guide: a guide only samples latent sites; "
                "observe data in the model (or mark the site infer={'is_auxiliary': True})"
            )
        where = "observed in the model" if name in model_trace else "absent from the model"
        raise ValueError(
            f"the guide samples site {name!r}, which is {where}. Rename it to a latent "
            "site of the model, or mark it infer={'is_auxiliary': True}"
        )


class ELBO:
    """Base class: ``loss(rng_key, params, model, guide, *args, **kwargs)`` is ``-ELBO``,
    averaged over ``num_particles`` independent particles.

    ``vectorize_particles=True`` evaluates the particles with ``vmap`` (one batched run on
    JAX); ``False`` runs them one after another. The keys are ``split(rng_key,
    num_particles)`` as in NumPyro (one particle uses ``rng_key`` itself).
    """

    can_infer_discrete = False

    def __init__(self, num_particles: int = 1, vectorize_particles: bool = True) -> None:
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        self.num_particles = num_particles
        self.vectorize_particles = vectorize_particles

    # Each ELBO below overrides this method with the same signature (``duplicates`` pairs
    # them by shape): the signature is the interface, the bodies differ.
    def particle(
        self,
        rng_key: Any,
        params: Mapping[str, Any],
        model: Callable[..., Any],
        guide: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """One Monte Carlo estimate of the ELBO (not its negative)."""
        raise NotImplementedError

    def loss(
        self,
        rng_key: Any,
        params: Mapping[str, Any],
        model: Callable[..., Any],
        guide: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``-ELBO``: minimise it to fit the guide."""
        backend = current()
        xp = backend.xp

        def one(key: Any) -> Any:
            return self.particle(key, params, model, guide, args, kwargs)

        if self.num_particles == 1:
            return -one(rng_key)
        keys = backend.split(rng_key, self.num_particles)
        if self.vectorize_particles:
            elbos = backend.vmap(one)(keys)
        else:
            elbos = xp.stack([one(keys[i]) for i in range(self.num_particles)])
        return -xp.mean(elbos)


class Trace_ELBO(ELBO):
    """The ELBO from whole traces: ``sum log p(x, z) - sum log q(z)`` at a draw ``z ~ q``.

    No restriction on how model and guide depend on each other; the estimator is the
    pathwise (reparameterization) one, as NumPyro's (see the module docstring for
    non-reparameterizable sites).

    >>> import minippl as numpyro, minippl.distributions as dist
    >>> model = lambda: numpyro.sample("z", dist.Normal(0.0, 1.0))
    >>> guide = lambda: numpyro.sample("z", dist.Normal(numpyro.param("m", 0.0), 1.0))
    >>> from minippl.handlers.inspection import as_key
    >>> float(Trace_ELBO().loss(as_key(0), {"m": 0.0}, model, guide)) == 0.0  # q = p
    True
    """

    def particle(
        self,
        rng_key: Any,
        params: Mapping[str, Any],
        model: Callable[..., Any],
        guide: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        guide_trace, model_trace = run_guide_and_model(rng_key, params, model, guide, args, kwargs)
        # Observed sites count in the model only; auxiliary guide sites in the guide only.
        elbo: Any = 0.0
        for site in model_trace.values():
            if site.type == "sample":
                elbo = elbo + site_log_prob(site)
        for site in guide_trace.values():
            if site.type == "sample":
                elbo = elbo - site_log_prob(site)
        return elbo


class TraceMeanField_ELBO(ELBO):
    """The ELBO with each latent site's ``E_q[log p(z) - log q(z)]`` replaced by
    ``-KL(q || p)`` where the pair has a closed form (``minippl.distributions.kl``), and
    sampled where it has not. Lower variance, but exact only when the guide's site does not
    depend on model sites downstream of it (the mean-field condition; NumPyro's caveat).
    """

    def particle(
        self,
        rng_key: Any,
        params: Mapping[str, Any],
        model: Callable[..., Any],
        guide: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        xp = current().xp
        guide_trace, model_trace = run_guide_and_model(rng_key, params, model, guide, args, kwargs)
        elbo: Any = 0.0
        for name, site in model_trace.items():
            if site.type != "sample":
                continue
            if site.is_observed:
                elbo = elbo + site_log_prob(site)
                continue
            guide_site = guide_trace[name]
            try:
                kl = kl_divergence(guide_site.fn, site.fn)
            except NotImplementedError:
                elbo = elbo + site_log_prob(site) - site_log_prob(guide_site)
                continue
            if guide_site.scale is not None:
                kl = guide_site.scale * kl
            elbo = elbo - xp.sum(kl)
        for name, site in guide_trace.items():
            if site.type == "sample" and name not in model_trace:
                elbo = elbo - site_log_prob(site)  # auxiliary guide sites
        return elbo

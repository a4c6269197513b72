"""ArviZ interoperability: ``minippl.to_arviz(mcmc)`` gives an ``arviz.InferenceData``.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

Groups filled from a finished :class:`~minippl.infer.MCMC` run:

* ``posterior``: every collected site (latent and deterministic), ``(chain, draw, ...)``;
* ``sample_stats``: ``diverging`` always, and, when they were collected as extra fields,
  ``energy``, ``n_steps`` (with ``tree_depth`` derived from it), ``acceptance_rate``,
  ``step_size`` and ``lp`` (minus the potential energy, i.e. the unnormalised log density in
  unconstrained space);
* ``observed_data``: the values of the model's observed sites in the run's data;
* ``log_likelihood`` (``log_likelihood=True``): pointwise, per observed site, for
  ``az.loo`` and ``az.waic``;
* ``prior``, ``posterior_predictive``: dicts of draws you pass in (e.g. from ``Predictive``).

ArviZ is an optional dependency (``pip install minippl[plots]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from minippl.backend import current
from minippl.handlers import seed, substitute, trace

__all__ = ["to_arviz"]

# Our extra-field names -> ArviZ's sample_stats names.
_STAT_NAMES = {
    "diverging": "diverging",
    "energy": "energy",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "adapt_state.step_size": "step_size",
}


def _host(tree: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    return {k: np.asarray(current().to_numpy(v)) for k, v in tree.items()}


def _model_of(mcmc: Any) -> Any:
    kernel = mcmc.sampler
    model = getattr(kernel, "model", None) or getattr(kernel, "_model", None)
    return model


def _observed(mcmc: Any, draws: Mapping[str, Any]) -> dict[str, Any]:
    """The observed sites' values, from one run of the model at the first draw."""
    model = _model_of(mcmc)
    if model is None:
        return {}
    args, kwargs = mcmc.run_args
    first = {k: np.asarray(v)[0, 0] for k, v in draws.items()}
    run = seed(substitute(model, data=first), rng_seed=0)
    model_trace = trace(run).get_trace(*args, **kwargs)
    return {
        name: np.asarray(current().to_numpy(site.value))
        for name, site in model_trace.items()
        if site.type == "sample" and site.is_observed and not site.infer.get("is_auxiliary")
    }


def to_arviz(
    mcmc: Any,
    *,
    log_likelihood: bool = False,
    prior: Mapping[str, Any] | None = None,
    posterior_predictive: Mapping[str, Any] | None = None,
    coords: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
) -> Any:
    """An ``arviz.InferenceData`` from a finished MCMC run (see the module docstring).

    Parameters
    ----------
    mcmc : an :class:`~minippl.infer.MCMC` after ``run``.
    log_likelihood : add the pointwise ``log_likelihood`` group (one model pass per draw).
    prior, posterior_predictive : draws to add as those groups; arrays with a leading draw
        axis (prior) or ``(chain, draw, ...)`` / ``(draws, ...)`` (posterior predictive).
    coords, dims : passed to ArviZ to name the dims of array sites.
    """
    try:
        import arviz as az
    except ImportError as err:  # pragma: no cover - exercised only without ArviZ
        raise ImportError("to_arviz needs ArviZ: pip install arviz (or minippl[plots])") from err
    from minippl.infer.util import log_likelihood as pointwise

    draws = _host(mcmc.get_samples(group_by_chain=True))
    extra = _host(mcmc.get_extra_fields(group_by_chain=True))
    stats = {_STAT_NAMES[k]: v for k, v in extra.items() if k in _STAT_NAMES}
    if "potential_energy" in extra:
        stats["lp"] = -extra["potential_energy"]
    if "n_steps" in stats:
        stats["tree_depth"] = np.floor(np.log2(np.maximum(stats["n_steps"], 1))).astype(int) + 1

    groups: dict[str, Any] = {"posterior": draws, "sample_stats": stats}
    observed = _observed(mcmc, draws)
    if observed:
        groups["observed_data"] = observed
    if log_likelihood:
        model = _model_of(mcmc)
        if model is None:
            raise ValueError("log_likelihood=True needs a kernel built from a model")
        args, kwargs = mcmc.run_args
        groups["log_likelihood"] = _host(
            pointwise(model, mcmc.get_samples(group_by_chain=True), *args, batch_ndims=2, **kwargs)
        )
    if prior is not None:
        groups["prior"] = {k: np.asarray(v)[None] for k, v in _host(prior).items()}
    if posterior_predictive is not None:
        chains = mcmc.num_chains
        predictive = _host(posterior_predictive)
        groups["posterior_predictive"] = {
            k: v if v.shape[:1] == (chains,) and v.ndim > 1 and _grouped(v, draws)
            else v.reshape((chains, -1) + v.shape[1:])
            for k, v in predictive.items()
        }  # fmt: skip
    return az.from_dict(**groups, coords=coords, dims=dims)


def _grouped(value: np.ndarray[Any, Any], draws: Mapping[str, np.ndarray[Any, Any]]) -> bool:
    """Whether ``value`` already has the posterior's ``(chain, draw)`` leading dims."""
    reference = next(iter(draws.values()))
    return bool(value.shape[:2] == reference.shape[:2])

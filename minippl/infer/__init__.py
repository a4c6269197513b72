"""Inference: MCMC with HMC and NUTS, SVI with ELBOs, predictive distributions, and the
model utilities they are built from (``from minippl.infer import MCMC, NUTS, Predictive``)."""

from minippl.infer import inspect as inspect  # NumPyro's numpyro.infer.inspect, by attribute too
from minippl.infer.elbo import ELBO, Trace_ELBO, TraceMeanField_ELBO
from minippl.infer.hmc.kernels import HMC, NUTS, HMCState
from minippl.infer.initialization import (
    init_to_feasible,
    init_to_mean,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from minippl.infer.mcmc import MCMC, MCMCWarning
from minippl.infer.potential import constrain_fn, log_density, potential_energy, transform_fn
from minippl.infer.predictive import Predictive, log_likelihood
from minippl.infer.starting_point import initialize_model
from minippl.infer.svi import SVI, SVIRunResult, SVIState

__all__ = [
    "ELBO",
    "HMC",
    "MCMC",
    "NUTS",
    "HMCState",
    "MCMCWarning",
    "SVI",
    "Predictive",
    "SVIRunResult",
    "SVIState",
    "TraceMeanField_ELBO",
    "Trace_ELBO",
    "constrain_fn",
    "init_to_feasible",
    "init_to_mean",
    "init_to_median",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
    "initialize_model",
    "log_density",
    "log_likelihood",
    "potential_energy",
    "transform_fn",
]

"""Distributions with NumPyro's names, shapes and semantics (``import minippl.distributions as dist``)."""

from minippl.distributions import constraints
from minippl.distributions.continuous import (
    Beta,
    Cauchy,
    Dirichlet,
    Exponential,
    HalfCauchy,
    HalfNormal,
    Normal,
)
from minippl.distributions.discrete import Bernoulli
from minippl.distributions.distribution import (
    Delta,
    Distribution,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
    Unit,
    enable_validation,
)

__all__ = [
    "Bernoulli",
    "Beta",
    "Cauchy",
    "Delta",
    "Dirichlet",
    "Distribution",
    "ExpandedDistribution",
    "Exponential",
    "HalfCauchy",
    "HalfNormal",
    "Independent",
    "MaskedDistribution",
    "Normal",
    "Unit",
    "constraints",
    "enable_validation",
]

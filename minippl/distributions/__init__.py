"""Distributions with NumPyro's names, shapes and semantics.

``import minippl.distributions as dist``, then ``dist.Normal(0.0, 1.0)``; constraints live
in ``dist.constraints``, bijections in ``dist.transforms`` (``dist.biject_to``).
"""

from minippl.distributions import constraints, transforms
from minippl.distributions.continuous import (
    Beta,
    Cauchy,
    Chi2,
    Exponential,
    Gamma,
    Gumbel,
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    Laplace,
    Logistic,
    LogNormal,
    Normal,
    StudentT,
    Uniform,
    Weibull,
)
from minippl.distributions.directional import VonMises
from minippl.distributions.discrete import (
    Bernoulli,
    BernoulliLogits,
    BernoulliProbs,
    BetaBinomial,
    Binomial,
    BinomialLogits,
    BinomialProbs,
    Categorical,
    CategoricalLogits,
    CategoricalProbs,
    DiscreteUniform,
    GammaPoisson,
    Geometric,
    GeometricLogits,
    GeometricProbs,
    NegativeBinomial,
    NegativeBinomial2,
    NegativeBinomialLogits,
    NegativeBinomialProbs,
    Poisson,
)
from minippl.distributions.distribution import (
    Delta,
    Distribution,
    ExpandedDistribution,
    ImproperUniform,
    Independent,
    MaskedDistribution,
    Unit,
    enable_validation,
    validation_enabled,
)
from minippl.distributions.kl import kl_divergence
from minippl.distributions.lowrank import LowRankMultivariateNormal
from minippl.distributions.mixtures import MixtureSameFamily
from minippl.distributions.more_multivariate import (
    Multinomial,
    MultinomialLogits,
    MultinomialProbs,
    ZeroSumNormal,
)
from minippl.distributions.multivariate import LKJ, Dirichlet, LKJCholesky, MultivariateNormal
from minippl.distributions.transformed import FoldedDistribution, TransformedDistribution
from minippl.distributions.transforms import biject_to
from minippl.distributions.truncated import (
    LeftTruncatedDistribution,
    RightTruncatedDistribution,
    TruncatedCauchy,
    TruncatedDistribution,
    TruncatedNormal,
    TwoSidedTruncatedDistribution,
)
from minippl.distributions.wishart import Wishart, WishartCholesky

# The public names, listed once more (``duplicates`` pairs this list with each module's): the
# package's own literal list is what readers, ``from ... import *`` and type checkers read.
__all__ = [
    "LKJ",
    "Bernoulli",
    "BernoulliLogits",
    "BernoulliProbs",
    "Beta",
    "BetaBinomial",
    "Binomial",
    "BinomialLogits",
    "BinomialProbs",
    "Categorical",
    "CategoricalLogits",
    "CategoricalProbs",
    "Cauchy",
    "Chi2",
    "Delta",
    "Dirichlet",
    "DiscreteUniform",
    "Distribution",
    "ExpandedDistribution",
    "Exponential",
    "FoldedDistribution",
    "Gamma",
    "GammaPoisson",
    "Geometric",
    "GeometricLogits",
    "GeometricProbs",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "ImproperUniform",
    "Independent",
    "InverseGamma",
    "LKJCholesky",
    "Laplace",
    "LeftTruncatedDistribution",
    "LogNormal",
    "Logistic",
    "MaskedDistribution",
    "MultivariateNormal",
    "NegativeBinomial",
    "NegativeBinomial2",
    "NegativeBinomialLogits",
    "NegativeBinomialProbs",
    "Normal",
    "Poisson",
    "RightTruncatedDistribution",
    "StudentT",
    "TransformedDistribution",
    "TruncatedCauchy",
    "TruncatedDistribution",
    "TruncatedNormal",
    "TwoSidedTruncatedDistribution",
    "Uniform",
    "Unit",
    "Weibull",
    "biject_to",
    "constraints",
    "enable_validation",
    "transforms",
    "validation_enabled",
]
__all__ += [
    "LowRankMultivariateNormal",
    "MixtureSameFamily",
    "Multinomial",
    "MultinomialLogits",
    "MultinomialProbs",
    "VonMises",
    "Wishart",
    "WishartCholesky",
    "ZeroSumNormal",
    "kl_divergence",
]

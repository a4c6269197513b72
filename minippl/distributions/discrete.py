"""Discrete distributions, each with the probs and logits forms NumPyro offers."""

from __future__ import annotations

from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import Shape, shape_of


class Bernoulli(Distribution):
    """A coin with ``probs`` of heads, or the same coin given as ``logits``."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    is_discrete = True
    has_enumerate_support = True

    def __init__(
        self, probs: Any = None, logits: Any = None, *, validate_args: bool | None = None
    ) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Bernoulli: give exactly one of probs= or logits=")
        sp = current().special
        self.probs = sp.expit(logits) if probs is None else probs
        self.logits = sp.logit(probs) if logits is None else logits
        super().__init__(shape_of(self.probs), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        xp = current().xp
        draws = current().bernoulli(key, self.probs, tuple(sample_shape) + self.batch_shape)
        return draws.astype(xp.result_type(draws, int))

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        # -softplus(-logits) for value 1, -softplus(logits) for value 0, stable at the ends.
        return -(xp.logaddexp(0.0, self.logits) - value * self.logits)

    @property
    def mean(self) -> Any:
        return self.probs

    @property
    def variance(self) -> Any:
        return self.probs * (1 - self.probs)

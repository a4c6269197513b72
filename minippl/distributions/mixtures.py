"""``MixtureSameFamily``: a finite mixture whose components are one batched distribution.

The density sums the components' densities weighted by the mixing probabilities, done in log
space: ``logsumexp(log w_k + log p_k(x))`` over the component dim (the rightmost batch dim of
``component_distribution``), so a component far from ``x`` never underflows the sum.
"""

from __future__ import annotations

from typing import Any

from minippl.backend import current
from minippl.distributions.discrete import Categorical
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import Shape, broadcast_shapes

__all__ = ["MixtureSameFamily"]


class MixtureSameFamily(Distribution):
    """Pick component ``k ~ mixing_distribution``, then draw from component ``k``.

    Parameters
    ----------
    mixing_distribution : a :class:`Categorical` over ``K`` components.
    component_distribution : a distribution whose rightmost batch dim has size ``K``.

    >>> import numpy as np
    >>> import minippl.distributions as dist
    >>> mix = dist.MixtureSameFamily(
    ...     dist.Categorical(probs=np.array([0.3, 0.7])),
    ...     dist.Normal(np.array([-1.0, 1.0]), 0.5),
    ... )
    >>> mix.batch_shape, round(float(mix.mean), 4)
    ((), 0.4)
    """

    def __init__(
        self,
        mixing_distribution: Categorical,
        component_distribution: Distribution,
        *,
        validate_args: bool | None = None,
    ) -> None:
        if not isinstance(mixing_distribution, Categorical):
            raise TypeError("MixtureSameFamily: mixing_distribution must be a Categorical")
        components = component_distribution.batch_shape
        if not components:
            raise ValueError("MixtureSameFamily: the components need a batch dim (the last)")
        k = mixing_distribution.probs.shape[-1]
        if components[-1] != k:
            raise ValueError(
                f"MixtureSameFamily: {k} mixing probabilities but {components[-1]} components "
                f"(component batch shape {components})"
            )
        self.mixing_distribution = mixing_distribution
        self.component_distribution = component_distribution
        batch = broadcast_shapes(
            mixing_distribution.batch_shape, components[:-1], what="MixtureSameFamily"
        )
        super().__init__(batch, component_distribution.event_shape, validate_args=validate_args)
        self.support = component_distribution.support
        self.is_discrete = component_distribution.is_discrete

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        raise NotImplementedError("MixtureSameFamily.infer_shapes: its arguments are distributions")

    @property
    def has_rsample(self) -> bool:
        return False  # the component index is a discrete draw, as in NumPyro

    @property
    def mixture_size(self) -> int:
        return int(self.component_distribution.batch_shape[-1])

    @property
    def mixture_dim(self) -> int:
        """Where the component axis sits in a component draw (from the right)."""
        return -self.event_dim - 1

    def log_prob(self, value: Any) -> Any:
        backend = current()
        xp = backend.xp
        # Put a component axis into the value, so every component scores it.
        value = xp.expand_dims(value, self.mixture_dim)
        component_lp = self.component_distribution.log_prob(value)
        logits = self.mixing_distribution.logits
        log_weights = logits - backend.special.logsumexp(logits, axis=-1, keepdims=True)
        return backend.special.logsumexp(component_lp + log_weights, axis=-1)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        keys = backend.split(key)
        shape = tuple(sample_shape) + self.batch_shape
        draws = self.component_distribution.expand(shape + (self.mixture_size,)).sample(keys[0])
        which = self.mixing_distribution.expand(shape).sample(keys[1])
        index = xp.reshape(which, shape + (1,) + (1,) * self.event_dim)
        picked = xp.take_along_axis(draws, index, axis=self.mixture_dim)
        return xp.squeeze(picked, axis=self.mixture_dim)

    def _weighted(self, x: Any) -> Any:
        """The mixing-weighted sum over components of ``x`` (shape batch + (K,) + event)."""
        xp = current().xp
        probs = self.mixing_distribution.probs
        weights = xp.reshape(probs, probs.shape + (1,) * self.event_dim)
        return xp.sum(x * weights, axis=self.mixture_dim)

    @property
    def mean(self) -> Any:
        return self._weighted(self.component_distribution.mean)

    @property
    def variance(self) -> Any:
        """Law of total variance: mean of the variances plus variance of the means."""
        means = self.component_distribution.mean
        mean = self._weighted(means)
        spread = (means - current().xp.expand_dims(mean, self.mixture_dim)) ** 2
        return self._weighted(self.component_distribution.variance) + self._weighted(spread)

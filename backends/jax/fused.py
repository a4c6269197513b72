"""Formulas of the core that the JAX backend computes its own way: the same values, with a
cheaper derivative (``minippl._fast.fusable`` says how the core asks for them).

``minus_inf_outside(inside, log_density)`` is how every ``Distribution.log_prob`` gives
``-inf`` outside the support: ``where(inside, log_density, -inf)``. Forward, the select
costs nothing visible; XLA fuses it into the density's own kernel. Its derivative, as JAX
writes it, is a second select over the same values in the backward pass (of an SVI step or
a leapfrog step), which XLA keeps as a pass of its own. Where ``inside`` holds, the
derivative is the density's; where it does not, the log density is ``-inf`` and no gradient
means anything. So the tangent passes through unmasked: an SVI step on eight schools takes
about 4% less time (``benchmarks/README.md``, SVI), and every value is the same.

Outside a trace (no gradient can flow) it is the plain ``where``: one dispatch, not a
custom rule's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["FUSED", "minus_inf_outside"]


@jax.custom_jvp
def _masked(inside: Any, log_density: Any) -> Any:
    return jnp.where(inside, log_density, -jnp.inf)


@_masked.defjvp
def _masked_jvp(primals: Any, tangents: Any) -> tuple[Any, Any]:
    inside, log_density = primals
    out = _masked(inside, log_density)
    return out, jnp.broadcast_to(tangents[1], jnp.shape(out)).astype(out.dtype)


def minus_inf_outside(inside: Any, log_density: Any) -> Any:
    """``where(inside, log_density, -inf)``; its derivative is the density's, unmasked."""
    traced = isinstance(log_density, jax.core.Tracer)
    if traced and jnp.issubdtype(jnp.result_type(log_density), jnp.floating):
        return _masked(inside, log_density)
    return jnp.where(inside, log_density, -jnp.inf)


FUSED: dict[str, Callable[..., Any]] = {"minus_inf_outside": minus_inf_outside}
"""The formulas above, by the name of the core's function they stand in for."""

"""minippl: a small, typed, readable probabilistic programming library.

NumPyro's effect-handler system rebuilt from scratch: ``import minippl as numpyro`` and
``from minippl import handlers`` run NumPyro code on JAX (bit for bit) or on NumPy.
"""

from minippl import distributions, handlers, optim
from minippl.arviz import to_arviz
from minippl.backend import enable_x64, set_backend, set_host_device_count
from minippl.distributions.distribution import enable_validation, validation_enabled
from minippl.explain import explain
from minippl.messages import CondIndepStackFrame, Message
from minippl.plate_stack import plate_stack
from minippl.primitives import (
    deterministic,
    factor,
    get_mask,
    param,
    plate,
    prng_key,
    sample,
    subsample,
)
from minippl.render import render_model
from minippl.runtime import apply_stack

__all__ = [
    "CondIndepStackFrame",
    "Message",
    "apply_stack",
    "deterministic",
    "distributions",
    "enable_validation",
    "enable_x64",
    "explain",
    "factor",
    "get_mask",
    "handlers",
    "optim",
    "param",
    "plate",
    "plate_stack",
    "prng_key",
    "render_model",
    "sample",
    "set_backend",
    "set_host_device_count",
    "subsample",
    "to_arviz",
    "validation_enabled",
]

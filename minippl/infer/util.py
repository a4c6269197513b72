"""NumPyro's ``numpyro.infer.util``: the model utilities under the names its users import.

The code lives where a reader finds it by what it does: :mod:`.potential` (log density,
potential energy, transforms), :mod:`.starting_point` (from a model to a kernel's inputs),
:mod:`.fast_setup` (the kernels' set-up, with its speed-ups) and :mod:`.predictive`
(``log_likelihood``, and ``Predictive``, which NumPyro exports from here too).
"""

from minippl.infer.fast_setup import KernelSetup, setup_model
from minippl.infer.potential import (
    compute_log_probs,
    constrain_fn,
    get_potential_fn,
    get_transforms,
    log_density,
    potential_energy,
    transform_fn,
    unconstrain_fn,
)
from minippl.infer.predictive import Predictive, log_likelihood
from minippl.infer.starting_point import (
    MAX_INIT_TRIES,
    InitError,
    ModelInfo,
    ModelSetup,
    ParamInfo,
    find_valid_initial_params,
    initialize_model,
)

__all__ = [
    "MAX_INIT_TRIES",
    "InitError",
    "KernelSetup",
    "ModelInfo",
    "ModelSetup",
    "ParamInfo",
    "Predictive",
    "compute_log_probs",
    "constrain_fn",
    "find_valid_initial_params",
    "get_potential_fn",
    "get_transforms",
    "initialize_model",
    "log_density",
    "log_likelihood",
    "potential_energy",
    "setup_model",
    "transform_fn",
    "unconstrain_fn",
]

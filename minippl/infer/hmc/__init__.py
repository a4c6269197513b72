"""Hamiltonian Monte Carlo and the No-U-Turn Sampler, from small pure parts.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

========================  ==========================================================
``integrator``            velocity Verlet on flat vectors
``metrics``               block-diagonal Euclidean metric: kinetic energy, momentum,
                          velocity and the U-turn test
``proposal``              uniform and biased progressive multinomial sampling
``trajectory``            the iterative NUTS tree (checkpoints, Stan's extra checks)
                          and HMC's fixed trajectory
``adaptation``            dual averaging, step-size search, Stan's windows, Welford,
                          regularisation and dense shrinkage
``kernels``               :class:`HMC` and :class:`NUTS` with NumPyro's interface
``constants``             every tuning constant, with its source
========================  ==========================================================
"""

from minippl.infer.hmc.adaptation import HMCAdaptState
from minippl.infer.hmc.kernels import HMC, NUTS, HMCState

__all__ = ["HMC", "NUTS", "HMCAdaptState", "HMCState"]

"""minippl against NumPyro and BlackJAX, side by side in one run, with the physical floor.

``python -m benchmarks`` runs the suite (``--quick`` for CI); ``benchmarks/README.md`` says
what every figure means and shows the latest table.  The parts, one concept a file:

- ``models.py``: each model written once, as a function of ``(ppl, dist)``, with its data.
- ``samplers.py``: one runner per sampler (minippl on JAX and NumPy, NumPyro, BlackJAX).
- ``metrics.py``: compile clocks, ESS, the timed compiled gradient (the physical floor).
- ``fresh_process.py``: wall time to a first posterior in a new Python process.
- ``eager.py``: microseconds per site of ``trace(seed(model))``.
- ``scaling.py``: time per gradient and sampling time against rows and dimension.
- ``suite.py``: the interleaved runs, the ratios and the targets.
- ``report.py``: the JSON file, the Markdown table and the PNG plots.
- ``profiling.py``: fixed cost and cost per leapfrog step of one sampler, and a profile.
- ``combine.py``: one report from a suite run in parts.
"""

import os

# One BLAS thread for every library measured (set before NumPy, SciPy or JAX load BLAS):
# on a small, busy machine a multithreaded OpenBLAS makes each small LAPACK call (the mass
# matrix's Cholesky factor at a window end, say) cost milliseconds of thread hand-offs
# instead of microseconds, in minippl and NumPyro alike. Set it yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# One XLA setting for every library measured: importing ``backends.jax`` adds it to XLA_FLAGS
# (backends/jax/xla_flags.py: small loops compiled as one function). Importing it here, before
# any library starts JAX, makes NumPyro and BlackJAX run under the same XLA as minippl.
import backends.jax  # noqa: E402, F401

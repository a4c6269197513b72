"""The JAX backend, and the engineering that makes its programs start and run fast.

Read in this order: ``backend.py`` (the :class:`~backends.protocol.Backend`: arrays, draws,
gradients, loops), ``control_flow.py`` (its ``cond`` and ``apply_if``), ``compiler.py``
(the :class:`~backends.protocol.Compiler`), and behind the compiler ``stored_programs.py``,
``program_keys.py`` and ``prefetch.py``; ``xla_flags.py`` holds the one setting below.

One process-wide setting, made when this package is imported
    XLA's CPU compiler turns a whole ``while`` loop into one function, with no dispatch per
    operation, only for loops that touch less than a threshold of bytes (1 KiB by default):
    NUTS's loops on small models are larger. ``xla_flags.py`` raises the threshold to 1 MiB
    in ``XLA_FLAGS``. XLA reads its flags once, when JAX starts its CPU client, and JAX 0.10
    has no per-program option for this one, so it is set here: ``import minippl`` imports
    this package (through ``backends.prepare``) without importing JAX. It is never set once
    JAX has started, nor over a threshold the user chose; ``MINIPPL_XLA_FLAGS=0`` turns it
    off. It applies to every JAX program of the process, other libraries' too.

    What it buys (``benchmarks/xla_flag.py``; one CPU, 4 chains one after another, time
    per leapfrog step inside the compiled loop, median of alternating runs):
    MEASUREMENT-PLACEHOLDER
"""

from __future__ import annotations

from backends.jax.xla_flags import apply_small_loop_flags

apply_small_loop_flags()

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

    What it buys, measured by ``python -m benchmarks.xla_flag --repeats 3`` (NUTS, 4 chains
    one after another on one CPU, sampling time per leapfrog step, median of fresh
    processes taking turns with and without the flag; JAX 0.10.2 on a shared 2-core
    machine): eight schools (non-centred) 2.6 us with it, 23.7 us without; the linear
    regression 2.5 us and 20.8 us; about nine times faster. Models whose loops touch more
    than 1 MiB are not affected.
"""

from __future__ import annotations

from backends.jax.xla_flags import apply_small_loop_flags

apply_small_loop_flags()

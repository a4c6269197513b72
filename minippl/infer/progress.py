"""The MCMC progress bar: tqdm on the host, one bar per chain.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

The sampling loop is one compiled program, so Python never sees an iteration. With a bar,
:class:`~minippl.infer.MCMC` runs that same program in chunks of about 1% of the iterations
(``fori_loop`` bounds are arguments, so no chunk compiles anything) and updates the bars
between chunks with a few numbers per chain: the phase, the step size, the mean acceptance
probability and the divergences so far.

Why chunks and not a host callback from inside the loop: JAX never writes a program that
contains a host callback to its persistent compilation cache, so a bar fed by callbacks
would make every fresh process recompile the sampler. Chunks keep one program, with or
without a bar, so the bar can never change the draws, and a run can be interrupted
(Ctrl-C) between chunks. A chunk boundary costs a dispatch and a wait, a fraction of a
millisecond, which matters only for very fast models: once a program's speed is known (its
second run), chunks are made at least 0.1 s long, tqdm's own redraw interval.

The bar is shown only when standard error is a terminal (so logs, CI and notebooks piped to
files stay clean), and never when ``progress_bar=False``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["ProgressHub", "stderr_is_terminal"]

UPDATES_PER_RUN = 100
"""At most this many updates per run (a chunk is ~1% of the iterations)."""

MIN_SECONDS_BETWEEN_REPORTS = 0.1
"""tqdm redraws at most every 0.1 s, so shorter chunks show nothing new but still cost a
dispatch each; once a program's speed is known, chunks last at least this long."""


def stderr_is_terminal() -> bool:
    """Whether a progress bar would be seen (standard error is an interactive terminal)."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def report_every(num_iterations: int, seconds_per_iteration: float | None = None) -> int:
    """Iterations per chunk: about 1% of the run, and, when the speed of an earlier run of
    the same program is known, enough for at least 0.1 s."""
    every = max(1, num_iterations // UPDATES_PER_RUN)
    if seconds_per_iteration:
        every = max(every, math.ceil(MIN_SECONDS_BETWEEN_REPORTS / seconds_per_iteration))
    return every


class ProgressHub:
    """The bars of one MCMC object: opened by each run, fed between chunks, closed after."""

    def __init__(self) -> None:
        self._bars: dict[int, Any] = {}
        self._num_warmup = 0

    def start(self, num_chains: int, total: int, num_warmup: int, desc: str) -> None:
        """Open one bar per chain for a run of ``total`` iterations; the phase shown follows
        the kernel's own iteration count ``state.i`` (so it is right when resuming)."""
        from tqdm.auto import tqdm

        self.close()
        self._num_warmup = num_warmup
        for chain in range(num_chains):
            label = f"{desc} chain {chain}" if num_chains > 1 else desc
            self._bars[chain] = tqdm(
                total=total, position=chain, desc=label, leave=True, dynamic_ncols=True
            )

    def report(self, rows: Any) -> None:
        """Update the bars from one row per chain: ``[chain, iterations done - 1, state.i,
        step size, mean acceptance probability, divergences]``."""
        for row in rows:
            chain, iteration, state_i, step_size, accept_prob, divergences = (float(v) for v in row)
            bar = self._bars.get(int(chain))
            if bar is None:
                continue
            phase = "warmup" if int(state_i) <= self._num_warmup else "sample"
            if len(self._bars) > 1:
                phase = f"{phase} chain {int(chain)}"
            bar.set_description(phase, refresh=False)
            bar.set_postfix_str(
                f"step size {step_size:.2e}, acc. prob {accept_prob:.2f}, "
                f"divergences {int(divergences)}",
                refresh=False,
            )
            bar.update(int(iteration) + 1 - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars = {}

"""The MCMC progress bar: tqdm on the host, fed from inside the compiled loop.

Tutorial: "Inference with MCMC / Watching it run" (``tutorial/s10_mcmc.py``).

The sampling loop is one compiled program, so Python never sees an iteration. About every
1% of the iterations the loop calls back to the host (``backend.callback`` under a ``cond``)
with a handful of scalars: the chain, the iteration, the phase, the step size, the mean
acceptance probability and the divergences so far. The host side draws one bar per chain.
The callback returns nothing, so the bar can never change what the chain computes. A host
call costs a fraction of a millisecond, which matters for fast models, so once the speed of
a program is known (its second run), reports are spaced at least 0.1 s apart (tqdm's own
redraw interval): the bar looks the same and costs next to nothing.

The bar is shown only when standard error is a terminal (so logs, CI and notebooks piped to
files stay clean), and never when ``progress_bar=False``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["ProgressHub", "stderr_is_terminal"]

UPDATES_PER_RUN = 100
"""At most this many reports per run (every ~1% of the iterations)."""

MIN_SECONDS_BETWEEN_REPORTS = 0.1
"""tqdm redraws at most every 0.1 s, so reporting more often shows nothing new but still
costs a host call each time; once a run's speed is known, reports are spaced this far."""


def stderr_is_terminal() -> bool:
    """Whether a progress bar would be seen (standard error is an interactive terminal)."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def report_every(num_iterations: int, seconds_per_iteration: float | None = None) -> int:
    """Iterations between two reports: about 1% of the run, and, when the speed of an
    earlier run of the same program is known, no more often than every 0.1 s."""
    every = max(1, num_iterations // UPDATES_PER_RUN)
    if seconds_per_iteration:
        every = max(every, math.ceil(MIN_SECONDS_BETWEEN_REPORTS / seconds_per_iteration))
    return every


class ProgressHub:
    """Routes the compiled loop's reports to this run's bars.

    A compiled program keeps the Python function it calls back, so that function must
    outlive one run: it is :meth:`report` of a hub that lives as long as the MCMC object,
    and each run attaches fresh bars to it.
    """

    def __init__(self) -> None:
        self._bars: dict[int, Any] = {}
        self._num_warmup = 0
        self._offset = 0

    def start(self, num_chains: int, total: int, num_warmup: int, offset: int, desc: str) -> None:
        """Open one bar per chain for a run of ``total`` iterations.

        ``offset`` is the kernel's iteration count at the start (non-zero when resuming), so
        the phase shown follows the kernel's own ``state.i``.
        """
        from tqdm.auto import tqdm

        self.close()
        self._num_warmup = num_warmup
        self._offset = offset
        for chain in range(num_chains):
            label = f"{desc} chain {chain}" if num_chains > 1 else desc
            self._bars[chain] = tqdm(
                total=total, position=chain, desc=label, leave=True, dynamic_ncols=True
            )

    def report(self, rows: Any) -> None:
        """Called from the compiled loop with one row per chain: ``[chain, iteration,
        state.i, step size, mean acceptance probability, divergences]``."""
        for row in rows:
            chain, iteration, state_i, step_size, accept_prob, divergences = (
                float(v) for v in row
            )
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

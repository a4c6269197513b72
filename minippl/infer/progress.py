"""The MCMC progress bar: tqdm on the host, one bar per chain.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

The sampling loop is one compiled program, so Python never sees an iteration. With a bar,
:class:`~minippl.infer.MCMC` runs that same program in chunks (``fori_loop`` bounds are
arguments, so no chunk compiles anything) and updates the bars between chunks with a few
numbers per chain: the phase, the step size, the mean acceptance probability and the
divergences so far.

Why chunks and not a host callback from inside the loop: JAX never writes a program that
contains a host callback to its persistent compilation cache, so a bar fed by callbacks
would make every fresh process recompile the sampler. Chunks keep one program, with or
without a bar, so the bar can never change the draws, and a run can be interrupted
(Ctrl-C) between chunks.

How long a chunk is (:class:`ChunkPlan`). A chunk boundary costs a dispatch, a wait for the
device and a redraw, about a millisecond, so chunks of a fixed 1% of the iterations (100
chunks) would add a third to a 0.3 s run of a small model. The plan times every chunk: with no
earlier measurement it starts with one iteration (which also absorbs compiling) and grows
chunks at most fourfold, towards about 0.2 s of work (tqdm redraws at most every 0.1 s);
once the rest of the run is predicted to take under 0.5 s, the rest is one chunk. A first
run of 0.3 s thus takes about seven chunks (1, 4, 16, 64, ... iterations), a second one a
single chunk, a long run one chunk per ~0.2 s, and a slow model one chunk per iteration.

The bar is shown only when standard error is a terminal (so logs, CI and notebooks piped to
files stay clean), and never when ``progress_bar=False``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["ChunkPlan", "ProgressHub", "stderr_is_terminal"]

SECONDS_PER_CHUNK = 0.2
"""The work a :class:`ChunkPlan` puts in one chunk once it knows the speed."""

ONE_CHUNK_BELOW_SECONDS = 0.5
"""When the rest of a run is predicted to take less than this, it runs as one chunk."""

CHUNK_GROWTH = 4
"""A chunk is at most this many times the previous one, so a speed measured on a few fast
early iterations cannot put a long stretch of slow ones into a single chunk at once."""


def stderr_is_terminal() -> bool:
    """Whether a progress bar would be seen (standard error is an interactive terminal)."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class ChunkPlan:
    """Where the chunks of a run end, chosen as the run goes from the time each chunk took.

    Parameters
    ----------
    num_iterations : iterations of the run (per block of chains).
    seconds_per_iteration : the speed measured on an earlier run of the same program, if
        any; the plan then sizes its first chunk from it.
    every : a fixed number of iterations per chunk (``MCMC(progress_rate=...)``), which
        turns the timing off.

    ``chunks()`` yields ``(lo, hi)`` bounds covering ``[0, num_iterations)``, at least one
    pair even for an empty run; it is called once per block of chains (``"sequential"``
    runs one block per chain) and keeps what it measured from one block to the next. The
    time between two yields is the chunk's cost, so the caller must wait for each chunk
    (reading the bar's numbers does) before asking for the next.
    """

    def __init__(
        self,
        num_iterations: int,
        seconds_per_iteration: float | None = None,
        every: int | None = None,
    ) -> None:
        self.num_iterations = max(int(num_iterations), 0)
        self.seconds_per_iteration = seconds_per_iteration or None
        self.every = every
        self._largest = 0  # the longest chunk timed so far (0: none yet)

    def next_size(self, remaining: int) -> int:
        """Iterations in the next chunk, with ``remaining`` iterations still to run."""
        if remaining <= 0:
            return 0
        if self.every:
            return min(max(int(self.every), 1), remaining)
        speed = self.seconds_per_iteration
        if speed is None:
            return 1  # nothing known yet: a first chunk that measures (and compiles)
        if remaining * speed <= ONE_CHUNK_BELOW_SECONDS:
            size = remaining
        else:
            size = max(1, round(SECONDS_PER_CHUNK / speed))
        if self._largest:
            size = min(size, CHUNK_GROWTH * self._largest)
        return min(size, remaining)

    def chunks(self) -> Iterator[tuple[int, int]]:
        """The bounds of each chunk of one block of chains, timing the chunks as they run."""
        done, total = 0, self.num_iterations
        while True:
            size = self.next_size(total - done)
            start = time.perf_counter()
            yield done, done + size
            if size:
                self._largest = max(self._largest, size)
                self.seconds_per_iteration = (time.perf_counter() - start) / size
            done += size
            if done >= total:
                return


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

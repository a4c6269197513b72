"""The progress bar's chunking: how many iterations run between two updates of the bars.

A chunk boundary costs a dispatch and a wait, so the plan must keep short runs to a handful
of chunks and long runs to about one chunk per ``SECONDS_PER_CHUNK``. The clock is replaced
by one that advances by a fixed time per iteration, so every test is exact.
"""

from __future__ import annotations

import pytest

import minippl.infer.progress as progress
from minippl.infer.progress import ChunkPlan


class Clock:
    """``time.perf_counter`` for a program that takes ``per_iteration`` seconds an
    iteration, plus ``first_call`` once (compiling)."""

    def __init__(self, per_iteration: float, first_call: float = 0.0) -> None:
        self.now = 0.0
        self.per_iteration = per_iteration
        self.first_call = first_call

    def __call__(self) -> float:
        return self.now

    def run(self, lo: int, hi: int) -> None:
        self.now += (hi - lo) * self.per_iteration + self.first_call
        self.first_call = 0.0


def drive(plan: ChunkPlan, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run one block through ``plan``; the sizes of its chunks."""
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    sizes = []
    for lo, hi in plan.chunks():
        clock.run(lo, hi)
        sizes.append(hi - lo)
    return sizes


def test_chunks_cover_the_run_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds = []
    monkeypatch.setattr(progress.time, "perf_counter", Clock(1e-3))
    for lo, hi in ChunkPlan(2000).chunks():
        bounds.append((lo, hi))
    assert bounds[0][0] == 0 and bounds[-1][1] == 2000
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


def test_an_empty_run_still_calls_the_program_once() -> None:
    assert list(ChunkPlan(0).chunks()) == [(0, 0)]
    assert list(ChunkPlan(0, every=1).chunks()) == [(0, 0)]


def test_a_short_first_run_takes_a_handful_of_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2000 iterations in 0.34 s, after 5 s of compiling in the first chunk.
    sizes = drive(ChunkPlan(2000), Clock(0.34 / 2000, first_call=5.0), monkeypatch)
    assert sizes[:3] == [1, 1, 4]  # the first chunk measured compiling, the second the speed
    assert len(sizes) <= 8 and sum(sizes) == 2000


def test_a_short_run_of_known_speed_is_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = ChunkPlan(2000, seconds_per_iteration=0.34 / 2000)
    assert drive(plan, Clock(0.34 / 2000), monkeypatch) == [2000]


def test_a_long_run_updates_about_every_fifth_of_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    per_iteration = 0.01  # 2000 iterations: 20 s
    sizes = drive(ChunkPlan(2000, seconds_per_iteration=per_iteration), Clock(per_iteration),
                  monkeypatch)  # fmt: skip
    steady = round(progress.SECONDS_PER_CHUNK / per_iteration)
    assert set(sizes[:-3]) == {steady}
    # The last half second runs as one chunk.
    assert sizes[-1] * per_iteration <= progress.ONE_CHUNK_BELOW_SECONDS


def test_a_slow_model_updates_every_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert drive(ChunkPlan(5), Clock(2.0), monkeypatch) == [1, 1, 1, 1, 1]


def test_chunks_grow_at_most_fourfold(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = drive(ChunkPlan(100_000), Clock(1e-6), monkeypatch)
    assert all(b <= progress.CHUNK_GROWTH * max(sizes[: i + 1])
               for i, b in enumerate(sizes[1:]))  # fmt: skip


def test_later_blocks_start_from_what_the_first_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "sequential" runs one block per chain through the same plan.
    plan = ChunkPlan(2000)
    clock = Clock(0.34 / 2000)
    first = drive(plan, clock, monkeypatch)
    second = drive(plan, clock, monkeypatch)
    assert len(first) > 1 and second == [2000]


def test_a_fixed_rate_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = drive(ChunkPlan(25, seconds_per_iteration=1e-6, every=10), Clock(1e-6), monkeypatch)
    assert sizes == [10, 10, 5]

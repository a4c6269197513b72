"""``chain_method="parallel"`` on one device: the one-chain programs of "sequential" run side
by side as the backend's host jobs (``Backend.run_side_by_side``: threads on JAX, forked
processes on NumPy), with the same draws, the same errors, the same progress bars, and the
chains' final states back in the caller for the next run.

The chains are made to run side by side (``concurrent_programs`` set to 2) whatever the
machine's cores, so that these tests check the same thing on any machine that can fork.
"""

from __future__ import annotations

import doctest
import multiprocessing
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chain_faults import fail_chain_one
from test_mcmc_stand_in import RWM, normal_model

import minippl
import minippl.distributions as dist
from backends import Backend, numpy_processes
from backends.numpy_processes import run_in_processes
from minippl.infer import MCMC, NUTS
from minippl.infer.progress import ProgressHub

pytestmark = [
    pytest.mark.usefixtures("x64"),  # float64 on JAX (NumPy always is)
    # JAX (imported by the other tests of this process) warns at every fork; the forked
    # children run NumPy only.
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
]

needs_fork = pytest.mark.skipif(not numpy_processes.can_fork(), reason="no fork on this system")


def data(backend: Backend) -> Any:
    return backend.xp.asarray(np.random.default_rng(0).normal(1.0, 2.0, size=20))


def chains(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, method: str, kernel: Any = None, **kw: Any
) -> MCMC:
    """Three chains of ``method``, two at a time where "parallel" (as on a 2-core CPU)."""
    monkeypatch.setattr(backend, "concurrent_programs", lambda: 2)
    settings: dict[str, Any] = dict(num_warmup=15, num_samples=20, num_chains=3,
                                    progress_bar=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "parallel" has nothing to warn about here
        return MCMC(kernel or RWM(normal_model), chain_method=method, **{**settings, **kw})


def assert_same_draws(a: MCMC, b: MCMC) -> None:
    for name, value in a.get_samples(group_by_chain=True).items():
        other = b.get_samples(group_by_chain=True)[name]
        np.testing.assert_array_equal(np.asarray(other), np.asarray(value), err_msg=name)
    for name, value in a.get_extra_fields(group_by_chain=True).items():
        other = b.get_extra_fields(group_by_chain=True)[name]
        np.testing.assert_array_equal(np.asarray(other), np.asarray(value), err_msg=name)


# -- the same draws ------------------------------------------------------------------------------


def test_parallel_nuts_draws_are_sequential_draws(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NUTS, three chains two at a time: chain ``i``'s draws and statistics bit for bit."""
    runs = {}
    for method in ("sequential", "parallel"):
        mcmc = chains(backend, monkeypatch, method, NUTS(normal_model), num_warmup=30)
        mcmc.run(backend.key(5), data(backend), extra_fields=("num_steps", "energy"))
        runs[method] = mcmc
    assert runs["parallel"]._plan.workers == 2
    assert_same_draws(runs["sequential"], runs["parallel"])
    for name, counts in runs["sequential"].run_stats.items():
        np.testing.assert_array_equal(runs["parallel"].run_stats[name], counts, err_msg=name)


def test_warmup_then_run_and_resume_give_sequential_draws(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chains' final states come back to the caller: ``warmup()`` then ``run()``, and a
    run resumed from ``last_state``, continue where each chain stopped."""
    runs = {}
    for method in ("sequential", "parallel"):
        mcmc = chains(backend, monkeypatch, method)
        mcmc.warmup(backend.key(0), data(backend))
        assert np.asarray(mcmc.post_warmup_state.i).tolist() == [15, 15, 15]
        mcmc.run(backend.key(1), data(backend))
        first = np.asarray(mcmc.get_samples(group_by_chain=True)["mu"])
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(backend.key(2), data(backend))
        assert np.asarray(mcmc.last_state.i).tolist() == [55, 55, 55]
        runs[method] = (first, mcmc)
    np.testing.assert_array_equal(runs["parallel"][0], runs["sequential"][0])
    assert_same_draws(runs["sequential"][1], runs["parallel"][1])


def test_progress_bars_are_fed_and_change_no_draw(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With bars, chunks of 7 iterations: each chain's rows reach the bars of this process
    (on NumPy, sent by the child between its chunks), up to its last iteration."""
    monkeypatch.setattr("minippl.infer.mcmc.stderr_is_terminal", lambda: True)
    reported: list[np.ndarray] = []
    real_report = ProgressHub.report

    def report(hub: ProgressHub, rows: Any) -> None:
        reported.append(np.array(rows, dtype=float))
        real_report(hub, rows)

    monkeypatch.setattr(ProgressHub, "report", report)
    quiet = chains(backend, monkeypatch, "parallel")
    quiet.run(backend.key(3), data(backend))
    assert reported == []
    shown = chains(backend, monkeypatch, "parallel", progress_bar=True, progress_rate=7)
    shown.run(backend.key(3), data(backend))
    assert_same_draws(quiet, shown)
    rows = np.concatenate(reported)
    last = {int(c): int(rows[rows[:, 0] == c, 1].max()) for c in np.unique(rows[:, 0])}
    assert last == {0: 34, 1: 34, 2: 34}  # iterations done - 1, of 15 + 20


# -- errors --------------------------------------------------------------------------------------


def failing_model(y: Any = None) -> None:
    """Normal(0, 1) for ``x``, whose observed child refuses values of ``x`` above 1.5: met by
    every chain within its first iterations, never at the starting points (drawn in
    (-1.5, 1.5) by ``init_to_uniform(radius=1.5)``)."""
    x = minippl.sample("x", dist.Normal(0.0, 1.0))
    minippl.sample("y", Refusing(x), obs=0.0)


class Refusing(dist.Normal):
    """A normal whose ``log_prob`` raises a ``ValueError`` when its location is above 1.5
    (eagerly: this model runs on NumPy)."""

    def __init__(self, loc: Any) -> None:
        super().__init__(loc, 1.0)

    def log_prob(self, value: Any) -> Any:
        if float(np.asarray(minippl.backend.current().to_numpy(self.loc))) > 1.5:
            raise ValueError("location above 1.5")
        return super().log_prob(value)


def test_an_error_in_a_chain_is_raised_with_its_type_and_site(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On NumPy, where the model runs in the chains' processes: the error of a chain is
    raised by ``run`` with its type and the site named, as with "sequential"."""
    from minippl.infer.initialization import init_to_uniform

    backend = minippl.set_backend("numpy")
    kernel = RWM(failing_model, step_size=2.0, init_strategy=init_to_uniform(radius=1.5))
    notes = {}
    for method in ("sequential", "parallel"):
        mcmc = chains(backend, monkeypatch, method, kernel, num_warmup=200)
        with pytest.raises(ValueError, match="site 'y'.*location above 1.5") as caught:
            mcmc.run(backend.key(0))
        notes[method] = "".join(getattr(caught.value, "__notes__", []))
    assert notes["sequential"] == "" and "raised in process" in notes["parallel"]
    assert multiprocessing.active_children() == []


def test_an_error_in_one_chain_stops_the_others(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chain 1 fails at its first chunk while chain 0 would run on: ``run`` raises chain 1's
    error, and no chain's process is left (ended and waited for)."""
    mcmc = chains(backend, monkeypatch, "parallel", num_chains=2, progress_bar=True,
                  progress_rate=1)  # fmt: skip
    monkeypatch.setattr("minippl.infer.mcmc.stderr_is_terminal", lambda: True)
    fail_chain_one(monkeypatch, mcmc, KeyError("chain 1 failed"))
    with pytest.raises(KeyError, match="chain 1 failed"):
        mcmc.run(backend.key(1), data(backend))
    assert multiprocessing.active_children() == []


# -- NumPy: processes ----------------------------------------------------------------------------


@needs_fork
def test_numpy_chains_run_in_processes_of_their_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each chain's model runs in a child process (its pid written to a file), two at a
    time, and the draws are those of chains run here."""
    backend = minippl.set_backend("numpy")
    pids = tmp_path / "pids"

    def model(y: Any) -> None:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        normal_model(y)

    runs = {}
    for method in ("sequential", "parallel"):
        pids.write_text("")
        mcmc = chains(backend, monkeypatch, method, RWM(model), num_warmup=2, num_samples=3)
        mcmc.run(backend.key(0), data(backend))
        runs[method] = {int(p) for p in pids.read_text().split()}
    assert runs["sequential"] == {os.getpid()}
    children = runs["parallel"] - {os.getpid()}
    assert len(children) == 3  # one process per chain
    assert multiprocessing.active_children() == []


@needs_fork
def test_numpy_runs_as_many_chains_at_once_as_it_has_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = minippl.set_backend("numpy")
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere all the cores
    cores = len(affinity(0)) if affinity is not None else os.cpu_count()
    assert backend.concurrent_programs() == cores
    monkeypatch.setattr(numpy_processes, "usable_cores", lambda: 1)
    assert backend.concurrent_programs() == 1
    monkeypatch.setattr(numpy_processes, "usable_cores", lambda: 8)
    monkeypatch.setattr(numpy_processes, "can_fork", lambda: False)
    assert backend.concurrent_programs() == 1
    with pytest.warns(UserWarning, match="cannot fork.*will run one after another"):
        mcmc = MCMC(RWM(normal_model), num_warmup=5, num_samples=5, num_chains=2)
    assert mcmc._plan == ("sequential", 1, 1)


@needs_fork
def test_a_failing_job_ends_the_others_and_leaves_no_process(tmp_path: Path) -> None:
    """Job 0 would sleep 20 s; job 1 fails once job 0 has started: the error is raised, and
    job 0's process is ended (it never finishes) and reaped (its pid is gone, no zombie)."""
    started, finished = tmp_path / "started", tmp_path / "finished"

    def sleeper(report: Any) -> None:
        started.write_text(str(os.getpid()))
        time.sleep(20)
        finished.touch()

    def failing(report: Any) -> None:
        while not started.exists():
            time.sleep(0.01)
        raise KeyError("job 1 failed")

    with pytest.raises(KeyError, match="job 1 failed") as caught:
        run_in_processes([sleeper, failing], 2, print)
    pid = int(started.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # a zombie would still be found
    assert not finished.exists()
    assert any("raised in process" in note for note in caught.value.__notes__)


@needs_fork
def test_ctrl_c_in_the_caller_ends_the_children(tmp_path: Path) -> None:
    """A ``KeyboardInterrupt`` raised where the rows are reported (Ctrl-C) ends the jobs,
    which leave Ctrl-C to the caller (they ignore SIGINT, which the terminal sends them too)."""
    rows: list[tuple[int, bool]] = []
    finished = tmp_path / "finished"

    def endless(report: Any) -> None:
        for _ in range(1000):
            report((os.getpid(), signal.getsignal(signal.SIGINT) == signal.SIG_IGN))
            time.sleep(0.01)
        finished.touch()

    def interrupt(row: tuple[int, bool]) -> None:
        rows.append(row)
        if len(set(rows)) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_in_processes([endless, endless], 2, interrupt)
    assert {ignored for _, ignored in rows} == {True}
    for pid, _ in set(rows):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ended and reaped: a zombie would still be found
    assert not finished.exists()


@needs_fork
def test_jobs_results_come_back_in_order_with_their_warnings() -> None:
    """Four jobs, two at a time: results in the jobs' order; a warning raised in a child is
    raised again here; an error that cannot be pickled comes back as a ``RuntimeError``."""

    def job(i: int) -> Any:
        def run(report: Any) -> int:
            report(i)
            if i == 2:
                warnings.warn("from job 2", UserWarning, stacklevel=1)
            return i * i

        return run

    reported: list[int] = []
    with pytest.warns(UserWarning, match="from job 2"):
        assert run_in_processes([job(i) for i in range(4)], 2, reported.append) == [0, 1, 4, 9]
    assert sorted(reported) == [0, 1, 2, 3]

    class UnpicklableError(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a} and {b}")

    def failing(report: Any) -> None:
        raise UnpicklableError(1, 2)

    with pytest.raises(RuntimeError, match="UnpicklableError: 1 and 2"):
        run_in_processes([failing], 1, print)


@needs_fork
def test_the_module_example_runs() -> None:
    result = doctest.testmod(numpy_processes, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted == 2 and result.failed == 0

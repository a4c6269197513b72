"""The MCMC driver: collection, thinning, warmup and resuming, keys, compile-once, progress,
warnings, chain methods and devices.

Most tests drive the random-walk stand-in kernel (``test_mcmc_stand_in.py``), which has
NUTS's interface and compiles in a second, on both backends. The tests that are about NUTS
itself share one compiled NUTS program (module fixture).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chain_faults import fail_chain_one
from compile_counter import CompileCounter
from test_mcmc_stand_in import RWM, normal_model

import minippl
import minippl.distributions as dist
import minippl.infer.mcmc as mcmc_module
from backends import Backend
from minippl.infer import MCMC, NUTS, MCMCWarning
from minippl.infer.chain_programs import ChainPrograms
from minippl.infer.compile_cache import cache_dir

pytestmark = pytest.mark.usefixtures("x64")  # float64 on JAX (NumPy always is)

REPO = Path(__file__).resolve().parents[1]


def data(backend: Backend) -> Any:
    return backend.xp.asarray(np.random.default_rng(0).normal(1.0, 2.0, size=20))


def quiet_mcmc(kernel: Any, **kwargs: Any) -> MCMC:
    """An MCMC without the one-device warning for "parallel"."""
    kwargs.setdefault("progress_bar", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return MCMC(kernel, **kwargs)


# -- what is collected -----------------------------------------------------------------------


def test_samples_fields_and_shapes(backend: Backend) -> None:
    mcmc = quiet_mcmc(RWM(normal_model), num_warmup=20, num_samples=30, num_chains=2)
    mcmc.run(backend.key(0), data(backend), extra_fields=("accept_prob", "adapt_state.step_size"))
    flat = mcmc.get_samples()
    grouped = mcmc.get_samples(group_by_chain=True)
    assert set(flat) == {"mu", "sigma", "twice_mu"}
    assert tuple(flat["mu"].shape) == (60,) and tuple(grouped["mu"].shape) == (2, 30)
    np.testing.assert_allclose(np.asarray(flat["twice_mu"]), 2 * np.asarray(flat["mu"]))
    assert np.all(np.asarray(flat["sigma"]) > 0)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    assert set(extra) == {"diverging", "accept_prob", "adapt_state.step_size"}
    assert tuple(extra["accept_prob"].shape) == (2, 30)
    assert int(np.asarray(mcmc.last_state.i)[0]) == 50
    mcmc.run(backend.key(0), data(backend), extra_fields=("~z.twice_mu",))
    assert set(mcmc.get_samples()) == {"mu", "sigma"}


def test_thinning_keeps_the_last_draw_of_each_block(backend: Backend) -> None:
    """NumPyro's thinning: of 10 draws with thinning 3, draws 3, 6 and 9 (0-based) are kept."""
    full = quiet_mcmc(RWM(normal_model), num_warmup=5, num_samples=10)
    full.run(backend.key(2), data(backend))
    thin = quiet_mcmc(RWM(normal_model), num_warmup=5, num_samples=10, thinning=3)
    thin.run(backend.key(2), data(backend))
    kept = np.asarray(thin.get_samples()["mu"])
    np.testing.assert_array_equal(kept, np.asarray(full.get_samples()["mu"])[3::3])


def test_same_seed_same_samples_bit_for_bit(backend: Backend) -> None:
    for method in ("sequential", "vectorized"):
        mcmc = quiet_mcmc(
            RWM(normal_model), num_warmup=10, num_samples=20, num_chains=2, chain_method=method
        )
        mcmc.run(backend.key(4), data(backend))
        first = np.asarray(mcmc.get_samples()["mu"])
        mcmc.run(backend.key(4), data(backend))
        np.testing.assert_array_equal(first, np.asarray(mcmc.get_samples()["mu"]))


def test_chain_i_sees_the_same_keys_whatever_the_method(jax_backend: Backend) -> None:
    """The key of every chain at every iteration is the same under each chain method."""
    import jax

    keys = {}
    samples = {}
    for method in ("sequential", "vectorized", "parallel"):
        mcmc = quiet_mcmc(
            RWM(normal_model), num_warmup=10, num_samples=40, num_chains=3, chain_method=method
        )
        mcmc.run(jax.random.key(7), data(jax_backend), extra_fields=("rng_key",))
        keys[method] = np.asarray(jax.random.key_data(mcmc.get_extra_fields()["rng_key"]))
        samples[method] = np.asarray(mcmc.get_samples()["mu"])
    np.testing.assert_array_equal(keys["sequential"], keys["vectorized"])
    np.testing.assert_array_equal(keys["sequential"], keys["parallel"])
    # Chain 1 of three runs from split(key, 3)[1] (NumPyro's flow): a one-chain run from
    # that key sees the same keys.
    alone = quiet_mcmc(RWM(normal_model), num_warmup=10, num_samples=40)
    alone.run(
        jax.random.split(jax.random.key(7), 3)[1], data(jax_backend), extra_fields=("rng_key",)
    )
    alone_keys = np.asarray(jax.random.key_data(alone.get_extra_fields()["rng_key"]))
    np.testing.assert_array_equal(alone_keys, keys["sequential"][40:80])
    # Same keys, so the same draws up to rounding.
    np.testing.assert_allclose(samples["sequential"], samples["vectorized"], rtol=1e-9)


# -- warmup, resuming, pickling ----------------------------------------------------------------


def test_warmup_then_run_and_resume(backend: Backend) -> None:
    mcmc = quiet_mcmc(RWM(normal_model), num_warmup=15, num_samples=10, num_chains=2)
    mcmc.warmup(backend.key(0), data(backend))
    assert tuple(mcmc.get_samples()["mu"].shape) == (0,)
    assert np.asarray(mcmc.post_warmup_state.i).tolist() == [15, 15]
    mcmc.run(backend.key(1), data(backend))
    assert np.asarray(mcmc.last_state.i).tolist() == [25, 25]
    assert tuple(mcmc.get_samples()["mu"].shape) == (20,)
    # Resume from the end of the last run, with no new warmup.
    mcmc.post_warmup_state = mcmc.last_state
    mcmc.run(backend.key(2), data(backend))
    assert np.asarray(mcmc.last_state.i).tolist() == [35, 35]
    collected = quiet_mcmc(RWM(normal_model), num_warmup=15, num_samples=10)
    collected.warmup(backend.key(0), data(backend), collect_warmup=True)
    assert tuple(collected.get_samples()["mu"].shape) == (15,)


def test_state_pickles_and_resumes_identically(backend: Backend) -> None:
    mcmc = quiet_mcmc(RWM(normal_model), num_warmup=10, num_samples=10)
    mcmc.run(backend.key(0), data(backend))
    state = pickle.loads(pickle.dumps(mcmc.last_state))
    mcmc.post_warmup_state = mcmc.last_state
    mcmc.run(backend.key(3), data(backend))
    direct = np.asarray(mcmc.get_samples()["mu"])
    mcmc.post_warmup_state = state
    mcmc.run(backend.key(3), data(backend))
    np.testing.assert_array_equal(direct, np.asarray(mcmc.get_samples()["mu"]))
    again = pickle.loads(pickle.dumps(mcmc))
    np.testing.assert_array_equal(direct, np.asarray(again.get_samples()["mu"]))


# -- compile once ------------------------------------------------------------------------------


def test_second_run_compiles_nothing(jax_backend: Backend, compile_counter: CompileCounter) -> None:
    import jax

    y = data(jax_backend)
    mcmc = quiet_mcmc(RWM(normal_model), num_warmup=10, num_samples=10, num_chains=2,
                      chain_method="vectorized")  # fmt: skip
    mcmc.run(jax.random.key(0), y)
    assert mcmc.num_traces == 1
    other = y + 1.0
    keys = [jax.random.key(i) for i in range(4)]
    with compile_counter.counting():
        mcmc.run(keys[1], y)
        mcmc.run(keys[1], other)  # new data, same shapes
        mcmc.warmup(keys[2], y)  # warmup and sampling share the program
        mcmc.run(keys[3], y)
    assert compile_counter.count == 0
    assert mcmc.num_traces == 1
    mcmc.post_warmup_state = None  # start afresh (a new warmup) with data of a new shape
    mcmc.run(jax.random.key(1), jax_backend.xp.concatenate([y, y]))  # one more trace
    assert mcmc.num_traces == 2


def test_a_nuts_set_up_compiles_nothing_and_is_kept_for_its_data_layout(
    jax_backend: Backend, compile_counter: CompileCounter
) -> None:
    """The set-up of a model whose set-up needs no values traces shapes only: on JAX no
    operation runs eagerly (each would be a program to compile), and a second set-up for
    data of the same layout reuses the first; new shapes set up again."""

    def odd_shapes(y: Any) -> None:  # shapes no other test compiles eagerly
        loc = minippl.sample("loc", dist.Normal(0.0, 1.0).expand([13]).to_event(1))
        scale = minippl.sample("scale", dist.HalfNormal(1.0).expand([13]).to_event(1))
        minippl.sample("y", dist.Normal(loc, scale).to_event(1), obs=y)

    kernel = NUTS(odd_shapes)
    key = jax_backend.key(0)
    y = jax_backend.xp.linspace(-1.0, 1.0, 13)
    other = y + 1.0
    with compile_counter.counting():
        kernel.chain_initializer(key, 10, None, (y,), {})
        compiled = compile_counter.count
        kernel.chain_initializer(key, 10, None, (other,), {})
        again = compile_counter.count - compiled
    assert compiled == 1  # the abstract trace (a trace event), nothing compiled
    assert again == 0
    assert len(kernel._setups) == 1
    kernel.chain_initializer(key, 10, None, (jax_backend.xp.ones((2, 13)),), {})
    assert len(kernel._setups) == 2


def test_model_that_needs_concrete_data_still_runs(jax_backend: Backend) -> None:
    """A model converting its data with NumPy cannot take traced data; it gets constants."""
    import jax

    def model(y: Any) -> None:
        y = np.asarray(y, dtype=float)
        mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
        minippl.sample("y", dist.Normal(mu, 1.0), obs=y)

    mcmc = quiet_mcmc(RWM(model), num_warmup=5, num_samples=5)
    y = np.ones(3)
    mcmc.run(jax.random.key(0), y)
    mcmc.run(jax.random.key(0), np.ones(3))  # same content: the program is reused
    assert mcmc.num_traces == 2  # the failed traced attempt, then the constant-data program


def test_persistent_cache_folder_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MINIPPL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "minippl" / "jax"
    monkeypatch.setenv("MINIPPL_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("MINIPPL_COMPILE_CACHE", "0")
    assert cache_dir() is None


@pytest.mark.slow
def test_fresh_process_loads_the_compiled_sampler(tmp_path: Path) -> None:
    """The second process finds the sampler in the persistent cache and compiles nothing."""
    script = textwrap.dedent(
        """
        import sys, jax, numpy as np
        sys.path.insert(0, "tests")
        jax.config.update("jax_enable_x64", True)
        hits, compiles = [], []
        def listen(event, *args, **kwargs):
            if event == "/jax/compilation_cache/cache_hits": hits.append(1)
        def timed(event, duration, **kwargs):
            if event == "/jax/core/compile/backend_compile_duration": compiles.append(duration)
        jax.monitoring.register_event_listener(listen)
        jax.monitoring.register_event_duration_secs_listener(timed)
        from test_mcmc_stand_in import RWM, normal_model
        from minippl.infer import MCMC
        mcmc = MCMC(RWM(normal_model), num_warmup=10, num_samples=10, progress_bar=False)
        mcmc.run(jax.random.key(0), np.ones(5))
        print("HITS", len(hits), "COMPILES", len(compiles))
        """
    )
    env = {**os.environ, "MINIPPL_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MINIPPL_COMPILE_CACHE", None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
            check=True, timeout=300,
        ).stdout
        for _ in range(2)
    ]  # fmt: skip
    first, second = ([line for line in out.splitlines() if line.startswith("HITS")][0].split()
                     for out in runs)  # fmt: skip
    assert any((tmp_path / "cache").iterdir())
    # Every program of the second process came out of the cache (a hit is still reported
    # as a compile event, with the time it took to load).
    assert int(first[1]) < int(first[3])
    assert int(second[1]) == int(second[3]) > 0


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "not-stored"])
@pytest.mark.parametrize("method", ["sequential", "vectorized"])
def test_a_first_run_compiles_its_chain_program_ahead(
    backend: Backend, method: str, stored: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On JAX a first NUTS run traces its chain program once, on a thread of its own, while
    the starting points are searched for, and draws what a compile after the search draws; a
    program that comes from disk is not compiled ahead. NumPy compiles nothing, so nothing
    happens ahead there."""
    monkeypatch.setenv("MINIPPL_STORED_PROGRAMS", "1" if stored else "0")
    traced_on: list[str] = []
    count_trace = ChainPrograms.count_trace

    def count(self: ChainPrograms) -> None:
        traced_on.append(threading.current_thread().name)
        count_trace(self)

    monkeypatch.setattr(ChainPrograms, "count_trace", count)

    def draws(folder: str) -> Any:
        monkeypatch.setenv("MINIPPL_CACHE_DIR", str(tmp_path / folder))
        traced_on.clear()
        mcmc = quiet_mcmc(NUTS(normal_model), num_warmup=10, num_samples=10, num_chains=2,
                          chain_method=method)  # fmt: skip
        mcmc.run(backend.key(1), data(backend))
        return np.asarray(mcmc.get_samples(group_by_chain=True)["mu"])

    ahead = draws("a")
    ahead_threads = list(traced_on)
    again = draws("a")  # a new MCMC: its programs are on disk when stored
    again_threads = list(traced_on)
    monkeypatch.setattr(type(backend.compiler()), "ahead", lambda self, program, args: lambda: None)
    after = draws("b")
    np.testing.assert_array_equal(ahead, after)
    np.testing.assert_array_equal(again, after)
    if backend.name == "numpy":
        assert set(ahead_threads) == set(traced_on) == {"MainThread"}
        return
    assert ahead_threads == ["minippl-compile-ahead"]
    assert again_threads == ["MainThread" if stored else "minippl-compile-ahead"]
    assert traced_on == ["MainThread"]


# -- progress bar ------------------------------------------------------------------------------


def test_progress_bar_shows_phases_and_never_changes_results(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    y = data(backend)
    results = {}
    for shown in (False, True):
        monkeypatch.setattr(mcmc_module, "stderr_is_terminal", lambda: True)
        mcmc = quiet_mcmc(RWM(normal_model), num_warmup=50, num_samples=50, num_chains=2,
                          chain_method="vectorized", progress_bar=shown)  # fmt: skip
        mcmc.run(backend.key(0), y)
        results[shown] = np.asarray(mcmc.get_samples()["mu"])
    err = capsys.readouterr().err
    assert "sample chain 1" in err and "step size" in err and "divergences 0" in err
    np.testing.assert_array_equal(results[False], results[True])


def test_progress_bar_is_off_when_not_on_a_terminal(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    mcmc = MCMC(RWM(normal_model), num_warmup=5, num_samples=5, progress_bar=True)
    mcmc.run(backend.key(0), data(backend))  # pytest's captured stderr is not a terminal
    assert "step size" not in capsys.readouterr().err


# -- warnings after a run ----------------------------------------------------------------------


def test_warning_states_divergences_and_tree_depth(backend: Backend) -> None:
    xp = backend.xp

    def model() -> None:
        x = minippl.sample("x", dist.Normal(0.0, 1.0))
        minippl.factor("hole", xp.where(x > 0.5, xp.nan, 0.0))

    kernel = RWM(model, step_size=1.0, max_tree_depth=(1, 1))
    mcmc = quiet_mcmc(kernel, num_warmup=10, num_samples=200)
    with pytest.warns(MCMCWarning) as record:
        mcmc.run(backend.key(0))
    message = str(record[0].message)
    assert "transitions after warmup were divergent" in message
    assert "100.0% of transitions after warmup (200) hit max_tree_depth=1" in message
    stats = mcmc.run_stats
    assert int(stats["divergences"][0]) == int(
        np.asarray(mcmc.get_extra_fields()["diverging"]).sum()
    )
    assert np.all(np.asarray(mcmc.get_samples()["x"]) <= 0.5)


def test_warning_states_nonfinite_gradients(jax_backend: Backend) -> None:
    """A log density that is finite where its gradient is NaN (the where/sqrt trap)."""
    import jax

    xp = jax_backend.xp

    def model() -> None:
        x = minippl.sample("x", dist.Normal(0.0, 1.0))
        minippl.factor("trap", xp.where(x < 0, 0.0, xp.sqrt(x)))

    mcmc = quiet_mcmc(RWM(model, step_size=1.0), num_warmup=0, num_samples=100)
    with pytest.warns(MCMCWarning, match="non-finite potential energy or gradient"):
        mcmc.run(jax.random.key(0))


# -- chain methods and devices -----------------------------------------------------------------


def test_parallel_with_too_few_devices_says_what_it_does(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One device that runs one program at a time (a GPU; NumPy): one chain after another."""
    assert backend.device_count() == 1
    monkeypatch.setattr(backend, "concurrent_programs", lambda: 1)
    with pytest.warns(UserWarning, match="will run one after another"):
        mcmc = MCMC(RWM(normal_model), num_warmup=5, num_samples=5, num_chains=2,
                    progress_bar=False)  # fmt: skip
    assert mcmc._plan == ("sequential", 1, 1)


@pytest.mark.parametrize("progress", [False, True], ids=["one-call", "chunks"])
def test_parallel_on_one_device_runs_chains_side_by_side(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, progress: bool
) -> None:
    """One device whose cores each run a program (a CPU): "parallel" runs the one-chain
    programs of "sequential" on host threads, without a warning, and draws the same."""
    monkeypatch.setattr(backend, "concurrent_programs", lambda: 2)
    if progress:  # chunks of 7 iterations, each thread reporting to the bars between them
        monkeypatch.setattr("minippl.infer.mcmc.stderr_is_terminal", lambda: True)
    out = {}
    for method in ("sequential", "parallel"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "parallel" has nothing to warn about here
            mcmc = MCMC(RWM(normal_model), num_warmup=15, num_samples=20, num_chains=3,
                        chain_method=method, progress_bar=progress, progress_rate=7)  # fmt: skip
        mcmc.run(backend.key(3), data(backend), extra_fields=("accept_prob",))
        out[method] = mcmc
    assert out["parallel"]._plan == ("sequential", 1, 2)
    assert out["sequential"]._plan == ("sequential", 1, 1)
    for name, value in out["sequential"].get_samples(group_by_chain=True).items():
        parallel = out["parallel"].get_samples(group_by_chain=True)[name]
        np.testing.assert_array_equal(np.asarray(parallel), np.asarray(value), err_msg=name)
    np.testing.assert_array_equal(
        np.asarray(out["parallel"].get_extra_fields()["accept_prob"]),
        np.asarray(out["sequential"].get_extra_fields()["accept_prob"]),
    )


def side_by_side(backend: Backend, monkeypatch: pytest.MonkeyPatch, workers: int) -> MCMC:
    """An MCMC of ``workers`` chains that run on threads, as on a CPU with that many cores."""
    monkeypatch.setattr(backend, "concurrent_programs", lambda: workers)
    return MCMC(RWM(normal_model), num_warmup=10, num_samples=10, num_chains=workers,
                progress_bar=False)  # fmt: skip


def test_chains_side_by_side_build_their_program_once(
    jax_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call is made alone, so the threads find the program compiled."""
    mcmc = side_by_side(jax_backend, monkeypatch, 4)
    mcmc.run(jax_backend.key(0), data(jax_backend))
    mcmc.run(jax_backend.key(1), data(jax_backend))
    assert mcmc._plan.workers == 4 and mcmc.num_traces == 1


def test_an_error_in_a_chains_thread_reaches_the_caller(
    jax_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chains side by side on threads (JAX): an error raised in one chain's thread is raised
    by ``run``. NumPy's chains run in processes: tests/test_parallel_chains.py."""
    backend = jax_backend
    mcmc = side_by_side(backend, monkeypatch, 2)
    mcmc.run(backend.key(0), data(backend))
    calls: list[str] = []
    fail_chain_one(monkeypatch, mcmc, RuntimeError("chain 1 failed"), calls)
    with pytest.raises(RuntimeError, match="chain 1 failed"):
        mcmc.run(backend.key(1), data(backend))
    assert any(name.startswith("minippl-chains") for name in calls)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="chain_method"):
        MCMC(RWM(normal_model), num_warmup=1, num_samples=1, chain_method="threads")
    with pytest.raises(ValueError, match="num_samples"):
        MCMC(RWM(normal_model), num_warmup=1, num_samples=2, thinning=3)
    mcmc = MCMC(RWM(normal_model), num_warmup=1, num_samples=1, progress_bar=False)
    with pytest.raises(RuntimeError, match="call run"):
        mcmc.get_samples()


@pytest.mark.slow
def test_parallel_chains_spread_over_host_devices() -> None:
    """Four chains on two CPU devices: two per device, same keys as sequential chains; two
    chains: one per device, run by the one-chain program; NUTS, started on the devices."""
    script = textwrap.dedent(
        """
        import sys, warnings
        sys.path.insert(0, "tests")
        import minippl
        minippl.set_host_device_count(2)
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        from test_mcmc_stand_in import RWM, normal_model
        from minippl.infer import MCMC
        y = np.random.default_rng(0).normal(1.0, 2.0, size=20)
        out = {}
        for method in ("parallel", "sequential"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                mcmc = MCMC(RWM(normal_model), num_warmup=20, num_samples=30, num_chains=4,
                            chain_method=method, progress_bar=False)
            mcmc.run(jax.random.key(0), y, extra_fields=("rng_key",))
            keys = jax.random.key_data(mcmc.get_extra_fields(group_by_chain=True)["rng_key"])
            out[method] = (np.asarray(keys), mcmc.get_samples(group_by_chain=True)["mu"])
            if method == "parallel":
                print("DEVICES", jax.device_count(), len(out[method][1].sharding.device_set))
                print("WARNED", " ".join(str(w.message) for w in caught))
        assert (out["parallel"][0] == out["sequential"][0]).all()
        np.testing.assert_allclose(out["parallel"][1], out["sequential"][1], rtol=1e-9)
        # One chain per device: each device runs the one-chain program (no vmap).
        two = {}
        for method in ("parallel", "sequential"):
            mcmc = MCMC(RWM(normal_model), num_warmup=20, num_samples=30, num_chains=2,
                        chain_method=method, progress_bar=False)
            assert mcmc._plan.one_chain_blocks(2)
            mcmc.run(jax.random.key(1), y)
            two[method] = mcmc.get_samples(group_by_chain=True)["mu"]
        print("ONE PER DEVICE", len(two["parallel"].sharding.device_set))
        np.testing.assert_allclose(two["parallel"], two["sequential"], rtol=1e-9)
        # NUTS: its chains' starting points are found on the devices they run on.
        from minippl.infer import NUTS
        nuts = {}
        for method in ("parallel", "sequential"):
            mcmc = MCMC(NUTS(normal_model), num_warmup=30, num_samples=30, num_chains=2,
                        chain_method=method, progress_bar=False)
            mcmc.run(jax.random.key(2), y)
            nuts[method] = mcmc.get_samples(group_by_chain=True)["mu"]
            if method == "parallel":
                keys = jax.random.split(jax.random.key(2), 2)
                states = mcmc._programs.init_states(keys, None, (y,), {})
                placed = {len(x.sharding.device_set) for x in jax.tree_util.tree_leaves(states)}
                print("NUTS STARTS ON DEVICES", placed)
        np.testing.assert_allclose(nuts["parallel"], nuts["sequential"], rtol=1e-9)
        print("OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "DEVICES 2 2" in result.stdout
    assert "2 devices, 2 vectorized chains per device" in result.stdout
    assert "ONE PER DEVICE 2" in result.stdout
    assert "NUTS STARTS ON DEVICES {2}" in result.stdout
    assert "OK" in result.stdout


# -- NUTS through the driver ---------------------------------------------------------------------


def test_one_unbatched_chain_on_a_cpu_gets_its_own_leaf_loop_and_the_same_draws(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """NUTS's trajectory hands a leaf's bookkeeping to the compiler's ``own_loop``; only a
    chain program of one unbatched chain compiled for a CPU (JAX) runs it as a loop of its
    own; either way the draws and step counts are the same."""
    monkeypatch.setenv("MINIPPL_CACHE_DIR", str(tmp_path))  # traced here, not loaded
    compiler = type(backend.compiler())
    asked: list[str] = []
    looped: list[str] = []
    method = ""
    own_loop = compiler.own_loop

    def noted_own_loop(self: Any, fn: Any, x: Any, n: Any) -> Any:
        asked.append(method)
        return own_loop(self, fn, x, n)

    monkeypatch.setattr(compiler, "own_loop", noted_own_loop)
    if backend.name == "jax":
        import backends.jax.compiler as jax_compiler

        one_trip_loop = jax_compiler.one_trip_loop

        def noted_loop(fn: Any, x: Any, n: Any) -> Any:
            looped.append(method)
            return one_trip_loop(fn, x, n)

        monkeypatch.setattr(jax_compiler, "one_trip_loop", noted_loop)
    draws, steps = {}, {}
    for method in ("sequential", "vectorized"):
        mcmc = quiet_mcmc(NUTS(normal_model), num_warmup=30, num_samples=30, num_chains=2,
                          chain_method=method)  # fmt: skip
        mcmc.run(backend.key(4), data(backend), extra_fields=("num_steps",))
        draws[method] = np.asarray(mcmc.get_samples()["mu"])
        steps[method] = np.asarray(mcmc.get_extra_fields()["num_steps"])
    np.testing.assert_array_equal(steps["sequential"], steps["vectorized"])
    np.testing.assert_allclose(draws["sequential"], draws["vectorized"], rtol=1e-9)
    on_cpu = backend.name == "jax" and backend.xp.zeros(()).device.platform == "cpu"
    assert set(looped) == ({"sequential"} if on_cpu else set())
    assert set(asked) == {"sequential", "vectorized"}


def holey_model() -> None:
    """A standard normal whose log density is NaN for x > 1.5 (a region the model rejects)."""
    x = minippl.sample("x", dist.Normal(0.0, 1.0))
    xp = minippl.backend.current().xp
    minippl.factor("hole", xp.where(x > 1.5, xp.nan, 0.0))


@pytest.fixture(scope="module")
def nuts_run() -> Iterator[MCMC]:
    """One compiled NUTS program, shared by the NUTS tests of this module."""
    import jax

    previous = minippl.backend.current().name
    minippl.set_backend("jax")
    x64 = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    mcmc = MCMC(NUTS(holey_model), num_warmup=300, num_samples=500, num_chains=2,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        mcmc.run(jax.random.key(0), extra_fields=("num_steps", "energy"))
    yield mcmc
    jax.config.update("jax_enable_x64", x64)
    minippl.set_backend(previous)


def test_nuts_counts_divergences_in_a_nan_region_and_keeps_sampling(nuts_run: MCMC) -> None:
    x = np.asarray(nuts_run.get_samples()["x"])
    diverging = np.asarray(nuts_run.get_extra_fields()["diverging"])
    assert x.shape == (1000,) and np.all(np.isfinite(x)) and np.all(x <= 1.5)
    assert diverging.sum() > 0
    assert np.unique(x).size > 500  # it kept moving
    # The truncated normal's mean.
    from scipy.stats import truncnorm

    assert x.mean() == pytest.approx(truncnorm.mean(-np.inf, 1.5), abs=0.15)


def test_nuts_second_run_compiles_nothing(nuts_run: MCMC, compile_counter: CompileCounter) -> None:
    import jax

    traces = nuts_run.num_traces
    with compile_counter.counting(), warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        nuts_run.run(jax.random.key(1), extra_fields=("num_steps", "energy"))
    assert compile_counter.count == 0 and nuts_run.num_traces == traces


def test_print_summary_is_numpyros_table(
    nuts_run: MCMC, capsys: pytest.CaptureFixture[str]
) -> None:
    nuts_run.print_summary()
    out = capsys.readouterr().out.splitlines()
    header = [line for line in out if "mean" in line][0].split()
    assert header == ["mean", "std", "median", "5.0%", "95.0%", "n_eff", "r_hat"]
    assert any(line.split()[0] == "x" for line in out if line.strip())
    divergences = int(np.asarray(nuts_run.get_extra_fields()["diverging"]).sum())
    assert out[-1] == f"Number of divergences: {divergences}"


def test_nuts_state_pickles_and_resumes_without_warmup(nuts_run: MCMC) -> None:
    """The NUTS state is a plain pytree of arrays: pickled, it resumes exactly."""
    import jax

    state = nuts_run.last_state
    restored = pickle.loads(pickle.dumps(state))
    assert isinstance(restored, type(state))
    runs = []
    for start in (state, restored):
        nuts_run.post_warmup_state = start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCMCWarning)
            nuts_run.run(jax.random.key(5), extra_fields=("num_steps", "energy"))
        runs.append(np.asarray(nuts_run.get_samples()["x"]))
    nuts_run.post_warmup_state = None
    np.testing.assert_array_equal(runs[0], runs[1])
    # No new warmup: the step size stayed where warmup left it.
    step = np.asarray(nuts_run.last_state.adapt_state.step_size)
    np.testing.assert_array_equal(step, np.asarray(state.adapt_state.step_size))

"""How the benchmark suite turns figures into ratios against NumPyro (no timing is run).

The chain methods that run chains at once ("parallel": threads or CPU devices) count for what
a user waits for (ESS per second, a first posterior) and not for the overhead ratio, whose
floor is one gradient at a time; NumPyro's parallel chains need devices a plain install does
not have, so the fresh-process ratios are given with and without them.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import suite
from benchmarks.__main__ import parse
from benchmarks.combine import combine
from benchmarks.fresh_process import fresh_ratios


def _cell(sampler: str, ess_per_s: float, overhead: float) -> dict[str, Any]:
    return {
        "model": "linreg",
        "sampler": sampler,
        "ess_per_s": ess_per_s,
        "overhead_ratio": overhead,
    }


def test_parallel_methods_count_for_ess_per_second_not_for_overhead() -> None:
    cells = [
        _cell("minippl-sequential", 100.0, 10.0),
        _cell("minippl-parallel", 180.0, 5.0),
        _cell("numpyro-sequential", 50.0, 40.0),
        _cell("numpyro-parallel", 90.0, 20.0),
    ]
    (row,) = suite.ratios(cells)
    assert row["ess_per_s"]["minippl_sampler"] == "minippl-parallel"
    assert row["ess_per_s"]["numpyro_sampler"] == "numpyro-parallel"
    assert row["ess_per_s"]["ratio"] == pytest.approx(2.0)
    assert row["overhead_ratio"]["minippl_sampler"] == "minippl-sequential"
    assert row["overhead_ratio"]["numpyro_sampler"] == "numpyro-sequential"
    assert row["overhead_ratio"]["ratio"] == pytest.approx(0.25)


def _fresh(sampler: str, variant: str, seconds: float) -> dict[str, Any]:
    return {"model": "linreg", "sampler": sampler, "variant": variant, "first_posterior_s": seconds}


def test_fresh_ratios_with_and_without_numpyros_parallel_chains() -> None:
    rows = [
        _fresh("minippl-parallel", "cold", 3.0),
        _fresh("minippl-parallel", "warm", 1.0),
        _fresh("minippl-sequential", "cold", 3.3),
        _fresh("minippl-sequential", "warm", 0.9),
        _fresh("numpyro-vectorized", "default", 6.0),
        _fresh("numpyro-sequential", "default", 9.0),
        _fresh("numpyro-parallel", "default", 4.0),
        _fresh("numpyro-vectorized", "jax-cache warm", 2.0),
    ]
    (row,) = fresh_ratios(rows)
    assert row["numpyro_best_sampler"] == "numpyro-parallel"
    assert row["cold_ratio"] == pytest.approx(3.0 / 4.0)
    assert row["warm_ratio"] == pytest.approx(0.9 / 4.0)
    assert row["numpyro_as_installed_s"] == 6.0
    assert row["cold_ratio_as_installed"] == pytest.approx(0.5)
    assert row["warm_ratio_as_installed"] == pytest.approx(0.15)
    assert row["warm_vs_numpyro_jax_cache"] == pytest.approx(0.45)


def test_numpyros_parallel_chains_need_host_devices_in_the_cells() -> None:
    with pytest.raises(SystemExit):
        parse(["--samplers", "numpyro-parallel,minippl-parallel"])
    args = parse(["--samplers", "numpyro-parallel", "--host-devices", "4"])
    assert args.samplers == ["numpyro-parallel"]
    plain = parse([])  # the whole suite: NumPyro's parallel chains in their own processes
    assert "numpyro-parallel" not in plain.samplers
    assert "numpyro-parallel" in plain.fresh_samplers and "blackjax" not in plain.fresh_samplers


def test_combined_parts_say_a_note_once_and_recompute_fresh_ratios() -> None:
    def part(note: str, fresh: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "date": "2026-11-26",
            "command": "python -m benchmarks",
            "machine": {},
            "config": {},
            "notes": [note],
            "cells": [],
            "fresh_process": fresh,
            "fresh_process_ratios": [{"stale": True}],
        }

    first = part("same note", [])
    second = part("same note", [_fresh("minippl-sequential", "cold", 2.0),
                                _fresh("minippl-sequential", "warm", 1.0),
                                _fresh("numpyro-sequential", "default", 8.0)])  # fmt: skip
    merged = combine([first, second], "both")
    assert merged["notes"].count("same note") == 1
    (row,) = merged["fresh_process_ratios"]
    assert row["cold_ratio"] == pytest.approx(0.25) and "stale" not in row


def test_a_run_says_where_the_email_data_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Without the CSV the email model runs on a synthetic stand-in: the result file must
    say so, or its figures pass for the real data's (they differ by a fifth in ESS)."""
    monkeypatch.setenv("MINIPPL_DATA_DIR", str(tmp_path))
    (note,) = suite.data_notes(["linreg", "email", "email"])
    assert note.startswith("email: ") and "synthetic stand-in" in note
    columns = "payments,email,opened,agreement,credit_limit,risk_score"
    (tmp_path / "collections_email.csv").write_text(f"{columns}\n500,1,1,0,1200,0.4\n")
    (note,) = suite.data_notes(["email"])
    assert note == f"email: collections_email.csv from {tmp_path}."
    assert suite.data_notes(["linreg", "eight_schools_c"]) == []

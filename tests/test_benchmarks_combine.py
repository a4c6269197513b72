"""``benchmarks.combine`` merges the sections of separate runs and recomputes the targets."""

from __future__ import annotations

from typing import Any

from benchmarks.combine import combine


def cell(model: str, sampler: str, ess_per_s: float, overhead: float) -> dict[str, Any]:
    return {"model": model, "sampler": sampler, "ess_per_s": ess_per_s, "overhead_ratio": overhead}


def part(command: str, **sections: Any) -> dict[str, Any]:
    return {"date": "2026-11-26", "command": command, "machine": {"host": "h"}, "config": {},
            "elapsed_s": 10.0, "notes": [], **sections}  # fmt: skip


def test_sections_are_merged_and_ratios_recomputed() -> None:
    small = part("run a", cells=[cell("linreg", "minippl-vectorized", 30.0, 10.0),
                                 cell("linreg", "numpyro-vectorized", 20.0, 20.0)],
                 eager=[{"model": "linreg", "library": "numpyro", "us_per_call": 1.0}])  # fmt: skip
    large = part("run b", cells=[cell("hier", "minippl-sequential", 2.0, 1.5),
                                 cell("hier", "numpyro-sequential", 4.0, 1.1)])  # fmt: skip
    merged = combine([small, large], "both")
    assert [c["model"] for c in merged["cells"]] == ["linreg", "linreg", "hier", "hier"]
    assert merged["eager"] == small["eager"] and merged["elapsed_s"] == 20.0
    ratios = {r["model"]: r["ess_per_s"]["ratio"] for r in merged["ratios"]}
    assert ratios == {"linreg": 1.5, "hier": 0.5}
    met = {t["target"]: t["met"] for t in merged["targets"]}
    assert met["ESS/s vs NumPyro best, linreg"] and not met["ESS/s vs NumPyro best, hier"]
    assert "`run a`; `run b`" in merged["notes"][-1]


def test_a_model_measured_again_takes_all_its_cells_from_the_later_run() -> None:
    a = part("run a", cells=[cell("linreg", "minippl-vectorized", 1.0, 1.0),
                             cell("linreg", "numpyro-vectorized", 1.0, 1.0),
                             cell("hier", "numpyro-vectorized", 1.0, 1.0)])  # fmt: skip
    b = part("run b", cells=[cell("linreg", "minippl-vectorized", 3.0, 1.0),
                             cell("linreg", "numpyro-vectorized", 2.0, 1.0)])  # fmt: skip
    merged = combine([a, b], "x")
    linreg = [c["ess_per_s"] for c in merged["cells"] if c["model"] == "linreg"]
    assert linreg == [3.0, 2.0] and len(merged["cells"]) == 3
    assert "linreg" in merged["notes"][-1]


def test_a_section_measured_again_is_taken_from_the_later_run() -> None:
    first = [{"model": "linreg", "library": "numpyro", "us_per_call": 1.0}]
    again = [{"model": "linreg", "library": "numpyro", "us_per_call": 2.0}]
    merged = combine([part("a", eager=first), part("b"), part("c", eager=again)], "x")
    assert merged["eager"] == again


def test_a_combined_result_is_dated_by_its_latest_part() -> None:
    later = {**part("b"), "date": "2026-11-27"}
    assert combine([part("a"), later, part("c")], "x")["date"] == "2026-11-27"

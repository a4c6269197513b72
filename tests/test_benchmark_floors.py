"""``python -m benchmarks.floors`` runs at a small size and writes every floor it reports.

No time is asserted (these machines are noisy): the test checks that each section is there
for each model asked for, that measured times and counts are finite and positive, that
derived figures (a fit of fixed and per-step cost, which noise can push below zero) are
finite, that the cold floor is start-up plus the chain's compile, and that the timeline of
a cold process holds the compile of minippl's chain program, on its compile-ahead thread.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpyro")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def floors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("floors")
    argv = [sys.executable, "-m", "benchmarks.floors", "--step-models", "linreg,gauss100_dense"]
    argv += ["--iteration-models", "eight_schools_nc", "--libraries", "minippl"]
    argv += ["--fresh-models", "linreg"]
    argv += ["--repeats", "1", "--warmup", "50", "--samples", "50", "--split-samples", "100"]
    argv += ["--tag", "test", "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    (path,) = out.glob("*-floors-test.json")
    assert path.with_suffix(".md").exists()
    if importlib.util.find_spec("matplotlib"):
        assert path.with_name(path.stem + "-timeline.png").stat().st_size > 0
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _positive(row: dict[str, Any], *names: str) -> None:
    for name in names:
        value = row[name]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (name, value)


def test_step_floors(floors: dict[str, Any]) -> None:
    rows = {r["model"]: r for r in floors["steps"]}
    assert set(rows) == {"linreg", "gauss100_dense"}
    for row in rows.values():
        _positive(row, "grad_s", "value_and_grad_s", "value_and_grad_over_grad")
    # Only a dense-mass model pays for a mass matrix product.
    assert "value_grad_and_mass_product_s" not in rows["linreg"]
    _positive(rows["gauss100_dense"], "value_grad_and_mass_product_over_grad")
    assert rows["gauss100_dense"]["dim"] == 100


def test_iteration_split(floors: dict[str, Any]) -> None:
    rows = floors["iterations"]
    assert [(r["model"], r["library"]) for r in rows] == [("eight_schools_nc", "minippl")]
    for row in rows:
        _positive(row, "grad_s", "default_sampling_s", "default_steps", "steps_per_iteration")
        _positive(row, "overhead")
        for name in ("fixed_per_iteration_s", "per_step_s", "fixed_share"):
            assert math.isfinite(row[name]), (name, row[name])
        assert row["iterations"] == 150
        # Depth 1 is one leapfrog step an iteration; depth 2 at most three.
        assert row["steps"]["depth 1"] == [150.0]
        assert 150 < row["steps"]["depth 2"][0] <= 450


def test_fresh_floor(floors: dict[str, Any]) -> None:
    (row,) = floors["fresh"]
    assert row["model"] == "linreg"
    assert {row["method"], row["warm_method"]} <= {"sequential", "parallel"}
    _positive(row, "numpyro_parallel_s", "cold_s", "warm_s", "startup_import_s", "sampling_s")
    _positive(row, "chain_compile_s", "import_jax_s", "cold_budget_s", "warm_budget_s")
    floor = row["startup_import_s"] + row["chain_compile_s"] + row["sampling_s"]
    assert row["cold_floor_s"] == pytest.approx(floor)
    assert row["warm_floor_s"] == pytest.approx(row["import_jax_s"] + row["warm_sampling_s"])
    assert row["cold_budget_s"] == pytest.approx(0.5 * row["numpyro_parallel_s"])
    assert set(row["runs"]) == {
        "numpyro", "sequential cold", "sequential warm", "parallel cold", "parallel warm"
    }
    compiles = [s for s in row["timeline"] if s[0] == "backend_compile_duration"]
    longest = max(compiles, key=lambda s: s[2])
    assert longest[2] == pytest.approx(row["chain_compile_s"])
    assert longest[3] == "minippl-compile-ahead"

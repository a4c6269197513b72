"""``python -m benchmarks --quick`` runs and writes a well-formed result file.

The test asserts no timing (these machines are shared and noisy): only that every section
is there, with the fields the README documents, and that every figure is finite and
positive, or non-negative where zero is a legitimate value (divergences; the compile time
of the NumPy backend, which compiles nothing).  It runs the quick suite once (a few
minutes on two cores) and is marked slow.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpyro")
pytest.importorskip("blackjax")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]

CELL_POSITIVE = (
    "first_call_s",
    "sampling_s",
    "grad_evals",
    "min_ess_bulk",
    "ess_per_s",
    "ess_per_1k_grad",
    "grad_time_s",
    "overhead_ratio",
)
CELL_NON_NEGATIVE = ("compile_s", "divergences")  # zero is legitimate for these


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float), f"{where}: {value!r} is not a number"
    assert math.isfinite(value) and value > 0, f"{where}: {value!r} is not finite and positive"


def _non_negative(value: Any, where: str) -> None:
    assert isinstance(value, int | float), f"{where}: {value!r} is not a number"
    assert math.isfinite(value) and value >= 0, f"{where}: {value!r} is not finite and >= 0"


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text()), out


@pytest.mark.slow
def test_schema(quick: tuple[dict[str, Any], Path]) -> None:
    results, out = quick
    assert results["schema"] == "minippl-benchmarks/1"
    for key in ("date", "command", "machine", "config", "cells", "ratios", "fresh_process"):
        assert key in results, key
    for key in ("svi", "eager", "progress_bar", "scaling", "targets", "notes", "elapsed_s"):
        assert key in results, key
    assert "files" in results
    for key in ("host", "cpu", "cores", "jax_backend", "devices", "versions"):
        assert key in results["machine"], key
    assert results["config"]["quick"] is True
    # The suite's own process runs JAX's CPU dispatch synchronously, so that no execution
    # hides under a compile and is subtracted with it (benchmarks/metrics.py).
    assert results["synchronous_dispatch"] is True
    assert Path(results["files"]["markdown"]).exists()
    assert results["files"]["png"] and all(Path(p).exists() for p in results["files"]["png"])
    md = Path(results["files"]["markdown"]).read_text()
    assert "| model | sampler |" in md and results["machine"]["host"] in md
    assert "## SVI" in md and "minippl-run" in md
    samplers = {c["sampler"] for c in results["cells"]}
    assert {"numpyro-vectorized", "blackjax"} <= samplers
    for target in results["targets"]:
        assert set(target) >= {"target", "value", "bound", "kind", "met"}
    targets = {t["target"] for t in results["targets"]}
    assert "SVI steps/s vs NumPyro best, eight_schools_nc" in targets


@pytest.mark.slow
def test_every_figure_finite(quick: tuple[dict[str, Any], Path]) -> None:
    results, _ = quick
    assert results["cells"]
    for cell in results["cells"]:
        where = f"{cell['model']}/{cell['sampler']}"
        for key in CELL_POSITIVE:
            _positive(cell[key], f"{where} {key}")
        for key in CELL_NON_NEGATIVE:
            _non_negative(cell[key], f"{where} {key}")
        assert cell["repeats"], where
    for row in results["fresh_process"]:
        for key in ("first_posterior_s", "startup_import_s", "run_s"):
            _positive(row[key], f"fresh {row['sampler']} {row['variant']} {key}")
    variants = {row["variant"] for row in results["svi"]["throughput"]}
    assert variants == {"minippl-run", "numpyro-run", "numpyro-jit-scan"}
    for row in results["svi"]["throughput"]:
        _positive(row["steps_per_s"], f"svi {row['model']} {row['variant']}")
        assert row["minippl_backend"] == "jax"  # the NUTS cells may leave NumPy selected
    for row in results["svi"]["ratios"]:
        _positive(row["steps_per_s_ratio"], f"svi ratio {row['model']}")
    for row in results["eager"]:
        _positive(row["us_per_call"], f"eager {row['library']}")
        _positive(row["us_per_site"], f"eager {row['library']}")
    for row in results["progress_bar"]:
        for key in ("off_s", "on_s", "cost_ratio"):
            _positive(row[key], f"progress bar {row['sampler']} {key}")
    for axis in ("rows", "dims"):
        assert results["scaling"][axis], axis
        for row in results["scaling"][axis]:
            for key in ("grad_time_s", "sampling_s", "grad_evals", "overhead_ratio"):
                _positive(row[key], f"scaling {axis} {row['rows']}x{row['dim']} {key}")
    for row in results["ratios"]:
        for section in ("ess_per_s", "overhead_ratio"):
            if section in row:
                _positive(row[section]["ratio"], f"ratio {row['model']} {section}")
    for target in results["targets"]:
        # A progress-bar cost (on / off - 1) may come out a little below zero in the noise.
        assert math.isfinite(target["value"]), target

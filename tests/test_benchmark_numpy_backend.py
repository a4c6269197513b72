"""``python -m benchmarks.numpy_backend`` in small: every method times a gradient, the ratios
follow from the times, and the table has a row per model."""

from __future__ import annotations

import math

from benchmarks.numpy_backend import markdown, run_gradients


def test_a_small_run_times_both_gradients_and_reports_their_ratio() -> None:
    rows = run_gradients(["linreg"], rounds=1, budget_s=0.01, with_jax=False, log=lambda s: None)
    (row,) = rows
    assert row["model"] == "linreg"
    for key in ("us_autograd", "us_finite_differences"):
        assert math.isfinite(row[key]) and row[key] > 0
    assert row["fd_over_autograd"] == row["us_finite_differences"] / row["us_autograd"]
    table = markdown(rows)
    assert table.splitlines()[0].startswith("| model | autograd (us)")
    assert "| linreg |" in table and "JAX" not in table

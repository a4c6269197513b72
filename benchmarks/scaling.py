"""How time per gradient and sampling time grow with rows and with dimension.

The model is the logistic regression of ``models.py``: rows from 1e3 to 1e6 at 10
features, then features (the dimension) from 10 to 1000 at 1,000 rows.  At each size the
compiled gradient of each library's potential is timed, and each sampler runs one chain
(``RunConfig`` of the scaling run) once, in one call whose compile time is taken out of
its sampling time.  Drawn on
log-log axes by ``report.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.metrics import release_compiled
from benchmarks.models import MODELS, ModelSpec, logistic_data
from benchmarks.samplers import RunConfig, make_runner

__all__ = ["run_scaling"]


def _spec(rows: int, features: int) -> ModelSpec:
    base = MODELS["logistic"]
    return ModelSpec(
        name=f"logistic_{rows}x{features}",
        description=f"logistic regression, {rows} rows x {features} features",
        build=base.build,
        data=lambda: logistic_data(rows, features),
        small=False,
    )


def run_scaling(
    rows: Sequence[int],
    dims: Sequence[int],
    samplers: Sequence[str],
    cfg: RunConfig,
    log: Callable[[str], None] = print,
) -> dict[str, list[dict[str, Any]]]:
    """``{"rows": [...], "dims": [...]}``: one record per (size, sampler)."""
    out: dict[str, list[dict[str, Any]]] = {"rows": [], "dims": []}
    plan = [("rows", n, 10) for n in rows] + [("dims", 1000, d) for d in dims]
    done: dict[tuple[int, int, str], dict[str, Any]] = {}
    for axis, n, d in plan:
        spec = _spec(n, d)
        for name in samplers:
            if (n, d, name) in done:  # the point where the two axes meet is run once
                out[axis].append(done[n, d, name])
                continue
            runner = make_runner(name)
            runner.setup(spec, cfg)
            log(f"  scaling {axis}: {n} rows x {d} features / {name}")
            run = runner.run(0)  # one call: its compile time is taken out of the sampling time
            grad = runner.gradient_time()
            sampling = run.clock.execute_s
            done[n, d, name] = {
                "rows": n,
                "dim": d + 1,
                "sampler": name,
                "grad_time_s": grad,
                "sampling_s": sampling,
                "compile_s": run.clock.compile_s,
                "grad_evals": run.grad_evals,
                "sampling_per_grad_s": sampling / run.grad_evals,
                "overhead_ratio": sampling / (run.grad_evals * grad),
            }
            out[axis].append(done[n, d, name])
            del runner
            release_compiled()
    return out

"""Write a run's results: the JSON file, the Markdown tables and the PNG plots.

Files go to ``OUT/<host>-<date>.json``, ``.md`` beside it, and ``<host>-<date>-*.png``
(PNGs are ignored by git).  ``machine()`` describes where the run happened.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["machine", "markdown", "plots", "table", "write"]

SCHEMA = "minippl-benchmarks/1"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Host, CPU, cores, load, JAX's devices and the library versions."""
    import blackjax
    import jax
    import numpyro

    import minippl

    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_average_at_start": load,
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "versions": {
            "jax": jax.__version__,
            "numpyro": numpyro.__version__,
            "blackjax": blackjax.__version__,
            "minippl": getattr(minippl, "__version__", "0.1.0"),
        },
    }


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, int | float) and not isinstance(x, bool):
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}"
    return str(x)


def table(header: list[str], rows: Iterable[list[Any]]) -> str:
    """A Markdown table; numbers to three significant figures (thousands separated)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The whole run as Markdown: machine, configuration, then one table per section."""
    m, c = results["machine"], results["config"]
    out = [
        f"# minippl benchmarks: {m['host']}, {results['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, JAX {m['versions']['jax']} on "
        f"{m['jax_backend']} ({', '.join(m['devices'])}); load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}. NumPyro "
        f"{m['versions']['numpyro']}, BlackJAX {m['versions']['blackjax']}, Python {m['python']}.",
        "",
        f"Run: `{results['command']}`: {c['chains']} chains, {c['warmup']} warmup + "
        f"{c['samples']} samples, {c['repeats']} interleaved repeats (medians); "
        f"took {results['elapsed_s'] / 60:.1f} min. JAX's CPU dispatch: "
        + (
            "synchronous for the NUTS cells and scaling (no execution overlaps a compile, so wall "
            "less compile is execution); JAX's default for the eager and progress-bar sections "
            "and the fresh processes (each in its own process)."
            if results.get("synchronous_dispatch")
            else "asynchronous (sampling times of libraries that compile during a run are short)."
        )
        + (
            f" JAX split the host into {c['host_devices']} CPU devices (--host-devices) for "
            "the NUTS cells, as numpyro-parallel needs; minippl-parallel then runs one chain "
            "per device too."
            if c.get("host_devices", 1) > 1
            else ""
        ),
        "",
        "## NUTS side by side (compiled: sampling time excludes compilation)",
        "",
    ]
    cell_rows = [
        [
            x["model"],
            x["sampler"],
            x["first_call_s"],
            x["compile_s"],
            x["sampling_s"],
            x["grad_evals"],
            x["min_ess_bulk"],
            x["ess_per_s"],
            x["ess_per_1k_grad"],
            x["divergences"],
            x["grad_time_s"] * 1e6,
            x["overhead_ratio"],
        ]
        for x in results.get("cells", [])
    ]
    out.append(
        table(
            [
                "model",
                "sampler",
                "first call s",
                "compile s",
                "sampling s",
                "grad evals",
                "min bulk ESS",
                "ESS/s",
                "ESS/1k grads",
                "div.",
                "grad us",
                "overhead",
            ],
            cell_rows,
        )
    )
    keys = ("chains", "warmup", "samples", "repeats")
    reduced = [x for x in results.get("cells", []) if any(x["config"][k] != c[k] for k in keys)]
    if reduced:
        cfgs = {
            f"{x['model']} / {x['sampler']}: {x['config']['chains']} chains x "
            f"({x['config']['warmup']} + {x['config']['samples']}), "
            f"{x['config']['repeats']} repeat(s)"
            for x in reduced
        }
        out += ["", "Cells run with other settings: " + "; ".join(sorted(cfgs)) + "."]
    if results.get("ratios"):
        out += [
            "",
            "## Against NumPyro (same run; minippl's best chain method vs NumPyro's best)",
            "",
        ]
        rows = []
        for r in results["ratios"]:
            e, o = r.get("ess_per_s"), r.get("overhead_ratio")
            rows.append(
                [
                    r["model"],
                    e["ratio"] if e else "",
                    f"{e['minippl_sampler']} / {e['numpyro_sampler']}" if e else "",
                    o["minippl"] if o else "",
                    o["numpyro"] if o else "",
                    o["ratio"] if o else "",
                ]
            )
        out.append(
            table(
                [
                    "model",
                    "ESS/s ratio",
                    "best of each",
                    "overhead minippl",
                    "overhead NumPyro",
                    "overhead ratio",
                ],
                rows,
            )
        )
    if results.get("svi"):
        from benchmarks.svi import markdown as svi_markdown

        out += [
            "",
            "## SVI (AutoNormal, Adam(0.01), Trace_ELBO; steps/s after compile, first step "
            "in a fresh process)",
            "",
            svi_markdown(results["svi"]["throughput"], results["svi"]["fresh"]),
        ]
    if results.get("fresh_process"):
        out += ["", "## Wall time to a first posterior in a fresh process (s)", ""]
        rows = [
            [
                r["model"],
                r["sampler"],
                r["variant"],
                r["first_posterior_s"],
                r["startup_import_s"],
                r["run_s"],
            ]
            for r in results["fresh_process"]
        ]
        out.append(
            table(
                ["model", "sampler", "cache", "first posterior", "start + imports", "MCMC.run"],
                rows,
            )
        )
    if results.get("fresh_process_ratios"):
        out += [
            "",
            "Against NumPyro with no persistent cache: its best chain method (the targets), and "
            "NumPyro as installed (vectorized or sequential: its parallel chains need "
            "`set_host_device_count`).",
            "",
        ]
        nan = float("nan")
        rows = [
            [
                r["model"],
                f"{r.get('numpyro_best_sampler', 'numpyro')} {r['numpyro_best_s']:.2f} s",
                r["cold_ratio"],
                r["warm_ratio"],
                r.get("numpyro_as_installed_s", nan),
                r.get("cold_ratio_as_installed", nan),
                r.get("warm_ratio_as_installed", nan),
            ]
            for r in results["fresh_process_ratios"]
        ]
        header = ["model", "NumPyro best", "cold / best", "warm / best", "as installed s"]
        out.append(table(header + ["cold / installed", "warm / installed"], rows))
    if results.get("eager"):
        out += ["", "## Eager `trace(seed(model))`", ""]
        rows = [
            [r["model"], r["library"], r["sites"], r["us_per_call"], r["us_per_site"]]
            for r in results["eager"]
        ]
        out.append(table(["model", "library", "sites", "us / call", "us / site"], rows))
    if results.get("progress_bar"):
        out += ["", "## Progress bar (sampling time, bar on / off)", ""]
        rows = [
            [r["model"], r["sampler"], r["off_s"], r["on_s"], r["cost_ratio"]]
            for r in results["progress_bar"]
        ]
        out.append(table(["model", "sampler", "off s", "on s", "on / off"], rows))
    for axis in ("rows", "dims"):
        data = results.get("scaling", {}).get(axis)
        if data:
            out += ["", f"## Scaling with {axis} (logistic regression, one chain)", ""]
            rows = [
                [
                    r["rows"],
                    r["dim"],
                    r["sampler"],
                    r["grad_time_s"] * 1e6,
                    r["sampling_s"],
                    r["grad_evals"],
                    r["overhead_ratio"],
                ]
                for r in data
            ]
            out.append(
                table(
                    ["rows", "dim", "sampler", "grad us", "sampling s", "grad evals", "overhead"],
                    rows,
                )
            )
    if results.get("targets"):
        out += ["", "## Targets", ""]
        rows = [
            [
                t["target"],
                t["value"],
                f"{t['kind']} {_fmt(t['bound'])}",
                "met" if t["met"] else "MISSED",
            ]
            for t in results["targets"]
        ]
        out.append(table(["target", "measured", "bound", ""], rows))
    if results.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(out) + "\n"


def plots(results: dict[str, Any], stem: Path) -> list[str]:
    """Bar charts of ESS/s and overhead per model, and the log-log scaling plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    cells = results.get("cells", [])
    models = list(dict.fromkeys(c["model"] for c in cells))
    samplers = list(dict.fromkeys(c["sampler"] for c in cells))
    for key, label in (
        ("ess_per_s", "min bulk ESS per second"),
        ("overhead_ratio", "overhead ratio (1 = floor)"),
    ):
        if not cells:
            break
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(models)), 4))
        width = 0.8 / max(1, len(samplers))
        for i, s in enumerate(samplers):
            xs, ys = [], []
            for j, mname in enumerate(models):
                hit = [c[key] for c in cells if c["model"] == mname and c["sampler"] == s]
                if hit and hit[0] > 0:
                    xs.append(j + i * width)
                    ys.append(hit[0])
            ax.bar(xs, ys, width, label=s)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models, rotation=20)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = stem.parent / f"{stem.name}-{key}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    scaling = results.get("scaling", {})
    if scaling.get("rows") or scaling.get("dims"):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7))
        for col, (axis, xkey) in enumerate((("rows", "rows"), ("dims", "dim"))):
            data = scaling.get(axis, [])
            for row, (ykey, ylabel) in enumerate(
                (("grad_time_s", "time per gradient (s)"), ("sampling_s", "sampling time (s)"))
            ):
                ax = axes[row][col]
                for s in dict.fromkeys(r["sampler"] for r in data):
                    pts = sorted(
                        (r[xkey], r[ykey]) for r in data if r["sampler"] == s and r[ykey] > 0
                    )
                    if pts:
                        ax.loglog(*zip(*pts, strict=True), marker="o", label=s)
                ax.set_xlabel(xkey)
                ax.set_ylabel(ylabel)
                ax.grid(True, which="both", alpha=0.3)
                if data:
                    ax.legend(fontsize=7)
        fig.tight_layout()
        path = stem.parent / f"{stem.name}-scaling.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    return written


def write(results: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write JSON, Markdown and PNGs into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"-{results['tag']}" if results.get("tag") else ""
    stem = out_dir / f"{results['machine']['host']}-{results['date']}{tag}"
    results["schema"] = SCHEMA
    results["files"] = {"json": f"{stem}.json", "markdown": f"{stem}.md"}
    results["files"]["png"] = plots(results, stem)
    Path(f"{stem}.md").write_text(markdown(results))
    Path(f"{stem}.json").write_text(json.dumps(results, indent=1, default=float))
    return results["files"]

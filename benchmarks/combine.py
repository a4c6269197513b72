"""``python -m benchmarks.combine A.json B.json ... --tag combined``: one report from several runs.

A full suite takes hours on two cores, so it is usually run in parts (small models with the
fresh-process section, large models with the scaling section). This merges the parts'
sections into one result, recomputes the ratios and the targets from the merged cells, and
writes the JSON, Markdown and PNGs beside the first file. Every ratio still compares figures
of one run: a model's cells all come from the same part.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report, suite
from benchmarks.fresh_process import fresh_ratios

__all__ = ["combine", "main"]

_ONE_PART = (
    "fresh_process",
    "fresh_process_ratios",
    "eager",
    "progress_bar",
    "scaling",
    "scaling_config",
)
"""Sections taken whole from the last part that has them (a section measured again in a
later part replaces the earlier one rather than being listed twice)."""


def combine(parts: Sequence[dict[str, Any]], tag: str) -> dict[str, Any]:
    """The parts' sections in one result. A model measured again in a later part (with more
    repeats, say) takes all its cells from that part, so its ratios stay within one run."""
    source = {cell["model"]: i for i, part in enumerate(parts) for cell in part.get("cells", [])}
    cells = [(i, cell) for i, part in enumerate(parts) for cell in part.get("cells", [])]
    replaced = sorted({cell["model"] for i, cell in cells if source[cell["model"]] != i})
    merged: dict[str, Any] = {
        "date": max(part["date"] for part in parts),  # the day the last part was measured
        "tag": tag,
        "command": " ; ".join(part["command"] for part in parts),
        "machine": parts[0]["machine"],
        "config": parts[0]["config"],
        "synchronous_dispatch": all(part.get("synchronous_dispatch", False) for part in parts),
        "elapsed_s": sum(part.get("elapsed_s", 0.0) for part in parts),
        "notes": list(dict.fromkeys(note for part in parts for note in part.get("notes", []))),
    }
    merged["cells"] = [cell for i, cell in cells if source[cell["model"]] == i]
    for part in parts:
        merged.update({key: part[key] for key in _ONE_PART if key in part})
    merged["notes"].append(
        "Combined from separate runs (one process each): "
        + "; ".join(f"`{part['command']}`" for part in parts)
    )
    if replaced:
        merged["notes"].append(
            f"Cells of {', '.join(replaced)} come from the last part that measured them."
        )
    if "fresh_process" in merged:  # ratios as this code computes them, whatever the part's age
        merged["fresh_process_ratios"] = fresh_ratios(merged["fresh_process"])
    merged["ratios"] = suite.ratios(merged["cells"])
    merged["targets"] = suite.targets(merged)
    return merged


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.combine", description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--tag", default="combined")
    args = p.parse_args(argv)
    parts = [json.loads(path.read_text()) for path in args.files]
    files = report.write(combine(parts, args.tag), args.files[0].parent)
    print("\n".join(f"wrote {path}" for path in [files["json"], files["markdown"]]))


if __name__ == "__main__":
    main()

"""The README's "Reading order" table tells the truth about the files it lists.

Each row names files, and the number of lines they hold together; the test fails when a
file is missing or its length drifts more than ``SLACK`` from the figure, so the table is
updated with the code. Every function in those files stays under ``LONGEST`` lines (the
README's "about 60"), and the core never reaches for a speed device the table keeps off
the path.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONGEST = 62
"""The README says "about 60": a docstring's last line or two may run over."""
SLACK = 0.1
"""How far a file's length may drift from the table's figure before the table is stale."""


def _rows() -> list[tuple[list[Path], int]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Reading order", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].isdigit():
            continue
        names = re.findall(r"`([^`]+\.py)`", cells[1])
        folder = Path(names[0]).parent
        # "`a/b/x.py`, `y.py`": a bare name lives in the folder of the first one.
        files = [ROOT / (n if "/" in n else folder / n) for n in names]
        rows.append((files, int(cells[3])))
    return rows


ROWS = _rows()


def test_the_table_lists_the_path_in_order() -> None:
    assert len(ROWS) >= 15
    first = [files[0].relative_to(ROOT).as_posix() for files, _ in ROWS]
    assert first[0] == "minippl/messages.py"
    assert first[1] == "minippl/runtime.py"
    assert first.index("minippl/infer/potential.py") < first.index("minippl/infer/mcmc.py")
    assert first.index("minippl/infer/mcmc.py") < first.index("backends/protocol.py")


@pytest.mark.parametrize("files, lines", ROWS, ids=[r[0][0].name for r in ROWS])
def test_each_row_counts_its_lines(files: list[Path], lines: int) -> None:
    for path in files:
        assert path.is_file(), f"README's reading order names {path}, which does not exist"
    actual = sum(len(path.read_text().splitlines()) for path in files)
    assert abs(actual - lines) <= max(5, SLACK * lines), (
        f"{[p.name for p in files]} hold {actual} lines; the README says {lines}"
    )


@pytest.mark.parametrize("files, lines", ROWS, ids=[r[0][0].name for r in ROWS])
def test_no_function_on_the_path_is_long(files: list[Path], lines: int) -> None:
    long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > LONGEST:
                    long.append(f"{path.name}:{node.name} ({size} lines)")
    assert not long, f"functions on the reading path over {LONGEST} lines: {long}"

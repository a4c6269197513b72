"""The README's table of NumPyro's API ("NumPyro's API in minippl") is true: every name it
lists as covered imports from minippl under the module it names, and no name it lists as
left out on purpose does (a name added later moves to the covered column)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import NamedTuple

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## NumPyro's API in minippl"


class Row(NamedTuple):
    numpyro_module: str
    minippl_module: str
    covered: list[str]
    left_out: list[str]


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def api_table() -> list[Row]:
    """The table's rows, read from the README."""
    text = README.read_text()
    assert HEADING in text, f"README.md has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = []
    for line in lines[2:]:  # past the header and its rule
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 5, f"a row of the table has {len(cells)} cells: {line}"
        numpyro_module, minippl_module = (_names(c)[0] if _names(c) else "" for c in cells[:2])
        rows.append(Row(numpyro_module, minippl_module, _names(cells[2]), _names(cells[3])))
    return rows


ROWS = api_table()


def test_the_table_lists_the_modules_numpyro_users_import() -> None:
    listed = {row.numpyro_module for row in ROWS}
    assert {"numpyro", "numpyro.infer", "numpyro.handlers", "numpyro.distributions"} <= listed
    assert sum(len(row.covered) for row in ROWS) > 150


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.minippl_module], ids=lambda r: r.numpyro_module
)
def test_covered_names_import_and_left_out_names_do_not(row: Row) -> None:
    module = importlib.import_module(row.minippl_module)
    missing = [name for name in row.covered if not hasattr(module, name)]
    assert not missing, f"{row.minippl_module} lacks {missing}, which README.md lists as covered"
    present = [name for name in row.left_out if hasattr(module, name)]
    assert not present, f"{row.minippl_module} has {present}: move them to the covered column"


def test_a_row_without_a_minippl_module_covers_nothing() -> None:
    for row in ROWS:
        if not row.minippl_module:
            assert not row.covered, row

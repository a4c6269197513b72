"""The README's table of NumPyro's API names NumPyro's own names: every name in it, covered
or left out, is there in the NumPyro module the row names."""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("numpyro")

from tests.test_readme_api_table import ROWS, Row  # noqa: E402

pytestmark = pytest.mark.reference


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.covered or r.left_out], ids=lambda r: r.numpyro_module
)
def test_every_name_in_the_table_is_numpyros(row: Row) -> None:
    module = importlib.import_module(row.numpyro_module)
    unknown = [name for name in row.covered + row.left_out if not hasattr(module, name)]
    assert not unknown, f"{row.numpyro_module} has no {unknown}"

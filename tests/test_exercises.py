"""Every exercise notebook runs: each gap raises its NotImplementedError and nothing else fails."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
STUB = re.compile(r'raise NotImplementedError\(\s*"Exercise: ')


def execute_exercise(path: Path) -> nbformat.NotebookNode:
    """Run an exercise notebook top to bottom in a fresh kernel, errors allowed."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


@pytest.mark.skipif(not EXERCISES, reason="no exercise notebooks generated yet")
@pytest.mark.parametrize("path", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_exercise_fails_only_with_exercise_not_implemented_errors(path: Path):
    nb = execute_exercise(path)
    errors = [
        (i, out)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    unexpected = [
        f"cell {i + 1}: {out.ename}: {out.evalue}"
        for i, out in errors
        if out.ename != "NotImplementedError" or not out.evalue.startswith("Exercise: ")
    ]
    assert not unexpected, f"{path.name}: errors other than the exercise gaps: {unexpected}"
    gap_cells = sum(bool(STUB.search(c.source)) for c in nb.cells if c.cell_type == "code")
    assert gap_cells >= 1, f"{path.name}: expected at least one exercise gap, found none"
    assert len(errors) >= gap_cells, (
        f"{path.name}: {gap_cells} cells hold gaps but only {len(errors)} cells raised; "
        "a gap whose check never runs is not checked"
    )

"""Stored notebooks are small, declare their kernel, open on Colab and match their sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("notebooks", "solutions", "exercises")
STORED = sorted(p for d in FOLDERS for p in (ROOT / d).glob("*.ipynb"))
IDS = [f"{p.parent.name}/{p.stem}" for p in STORED]
MAX_BYTES = 2 * 1024 * 1024
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_URL = "https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/"

needs_notebooks = pytest.mark.skipif(not STORED, reason="no stored notebooks yet")


@needs_notebooks
@pytest.mark.parametrize("path", STORED, ids=IDS)
def test_stored_notebook_is_under_two_megabytes(path: Path):
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size / 1e6:.2f} MB, limit {MAX_BYTES / 1e6:.2f} MB"


@needs_notebooks
@pytest.mark.parametrize("path", STORED, ids=IDS)
def test_stored_notebook_declares_python3_kernel(path: Path):
    nb = nbformat.read(path, as_version=4)
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3", f"expected kernelspec python3, got {spec!r}"
    assert spec.get("language") == "python"


@needs_notebooks
@pytest.mark.parametrize("path", STORED, ids=IDS)
def test_first_cell_has_colab_badge_for_this_notebook(path: Path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown", "expected the first cell to be markdown"
    url = f"{COLAB_URL}{path.parent.name}/{path.name}"
    assert BADGE_IMAGE in first.source, "expected the Open-in-Colab badge in the first cell"
    assert url in first.source, f"expected the badge to open {url}"


def test_course_check_passes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "course.py"), "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

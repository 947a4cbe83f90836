"""Tests of tools/course.py on small notebooks written in a temporary course tree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from tutorial_lib import checks
from tutorial_lib.checks import lecture01

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("course", ROOT / "tools" / "course.py")
course = importlib.util.module_from_spec(_spec)
sys.modules["course"] = course
_spec.loader.exec_module(course)

HEADER = """\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""

BADGE = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/"
    "{folder}/01_demo.ipynb)"
)

SOLUTION = (
    HEADER
    + """
# %% [markdown]
# # Demo
# """
    + BADGE.format(folder="solutions")
    + """

# %%
def square(x):
    y = x
    # BEGIN SOLUTION hint: Multiply x by itself.
    y = x * x
    # END SOLUTION
    return y


# %%
print(square(3))

# %%
def cube(x):
    if x is not None:
        # BEGIN SOLUTION
        return x**3
        # END SOLUTION


# %%
print("done")
"""
)


def make_tree(tmp_path: Path) -> Path:
    """A course tree with one solution and one lecture notebook."""
    for d in ("notebooks", "solutions", "exercises"):
        (tmp_path / d).mkdir()
    (tmp_path / "solutions" / "01_demo.py").write_text(SOLUTION)
    lecture = SOLUTION.replace("solutions/01_demo", "notebooks/01_demo")
    (tmp_path / "notebooks" / "01_demo.py").write_text(lecture)
    return tmp_path


def messages(root: Path) -> list[str]:
    return [p.message for p in course.check([], root)]


def test_strip_solutions_replaces_region_at_begin_indentation_with_hint():
    src = (
        "def f(x):\n    # BEGIN SOLUTION hint: Use x.\n    a = x\n    return a\n    # END SOLUTION"
    )
    out, n = course.strip_solutions(src)
    assert n == 1
    assert out == 'def f(x):\n    raise NotImplementedError("Exercise: Use x.")'


def test_strip_solutions_uses_default_hint_and_keeps_code_outside_regions():
    src = "a = 1\n# BEGIN SOLUTION\nb = 2\n# END SOLUTION\nc = 3"
    out, n = course.strip_solutions(src)
    assert n == 1
    assert out.splitlines() == [
        "a = 1",
        f'raise NotImplementedError("Exercise: {course.DEFAULT_HINT}")',
        "c = 3",
    ]


def test_strip_solutions_escapes_quotes_in_hint():
    out, _ = course.strip_solutions('# BEGIN SOLUTION hint: Call "sum".\nx = 1\n# END SOLUTION')
    assert out == 'raise NotImplementedError("Exercise: Call \\"sum\\".")'
    with pytest.raises(NotImplementedError, match='Exercise: Call "sum"'):
        exec(out)


@pytest.mark.parametrize(
    "src, what",
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "without a BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "nested"),
    ],
)
def test_strip_solutions_rejects_malformed_regions(src, what):
    with pytest.raises(course.CourseError, match=what):
        course.strip_solutions(src)


def test_exercise_without_any_region_is_rejected(tmp_path):
    root = make_tree(tmp_path)
    path = root / "solutions" / "01_demo.py"
    path.write_text(HEADER + "\n# %%\nx = 1\n")
    with pytest.raises(course.CourseError, match="at least one"):
        course.exercise_text(path)


def test_generated_exercise_has_stubs_no_answers_and_exercise_badge(tmp_path):
    root = make_tree(tmp_path)
    course.generate_exercises(root, run=False)
    text = (root / "exercises" / "01_demo.py").read_text()
    assert 'raise NotImplementedError("Exercise: Multiply x by itself.")' in text
    assert "        raise NotImplementedError(" in text  # nested region keeps its indentation
    assert "x * x" not in text and "x**3" not in text and "SOLUTION" not in text
    assert "blob/main/exercises/01_demo.ipynb" in text
    assert "solutions/" not in text
    nb = nbformat.read(root / "exercises" / "01_demo.ipynb", as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    compile(text, "exercise", "exec")


def test_exercises_generation_is_idempotent_and_removes_orphans(tmp_path):
    root = make_tree(tmp_path)
    course.generate_exercises(root, run=False)
    first = (root / "exercises" / "01_demo.ipynb").read_text()
    orphan = root / "exercises" / "09_gone.py"
    orphan.write_text(HEADER)
    course.generate_exercises(root, run=False)
    assert (root / "exercises" / "01_demo.ipynb").read_text() == first
    assert not orphan.exists()


def test_sync_keeps_outputs_of_unchanged_cells_and_drops_changed_ones(tmp_path):
    root = make_tree(tmp_path)
    py = root / "notebooks" / "01_demo.py"
    course.sync_pair(py)
    ipynb = py.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {i}\n")]
        cell.execution_count = i + 1
    ids = [c.id for c in nb.cells]
    nbformat.write(nb, ipynb)

    py.write_text(py.read_text().replace('print("done")', 'print("changed")'))
    course.sync_pair(py)
    nb = nbformat.read(ipynb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.outputs[0].text if c.outputs else None for c in code] == [
        "out 0\n",
        "out 1\n",
        "out 2\n",
        None,
    ]
    assert code[-1].execution_count is None
    assert [c.id for c in nb.cells][:-1] == ids[:-1]


def test_check_passes_after_run_and_fails_on_each_kind_of_staleness(tmp_path):
    root = make_tree(tmp_path)
    course.generate_exercises(root, run=False)
    assert any("never executed" in m for m in messages(root))
    for py in course.course_sources(root):
        course.run_notebook(py, timeout=60)
    assert messages(root) == []

    # stored outputs match the source hash; a solution edit makes the exercise stale
    sol = root / "solutions" / "01_demo.py"
    sol.write_text(sol.read_text().replace("Multiply x by itself.", "Square it."))
    found = messages(root)
    assert any("stale" in m for m in found), found
    assert any("out of sync" in m for m in found), found

    # a synced pair whose outputs come from the old source
    course.sync_pair(sol)
    course.generate_exercises(root, run=False)
    found = messages(root)
    assert any("older source" in m for m in found), found
    assert not any("out of sync" in m or "stale:" in m for m in found), found


def test_check_fails_on_missing_kernelspec(tmp_path):
    root = make_tree(tmp_path)
    py = root / "notebooks" / "01_demo.py"
    course.run_notebook(py, timeout=60)
    ipynb = py.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    del nb.metadata["kernelspec"]
    nbformat.write(nb, ipynb)
    found = [p.message for p in course.check([str(py)], root)]
    assert any("kernelspec" in m for m in found), found


def test_run_stores_exercise_errors_and_refuses_failing_lecture(tmp_path):
    root = make_tree(tmp_path)
    course.generate_exercises(root, run=True, timeout=60)
    nb = nbformat.read(root / "exercises" / "01_demo.ipynb", as_version=4)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert [e.evalue for e in errors] == ["Exercise: Multiply x by itself."]
    assert course.outputs_are_current(nb)

    py = root / "notebooks" / "01_demo.py"
    py.write_text(py.read_text().replace('print("done")', "1 / 0"))
    with pytest.raises(course.CourseError, match="execution failed"):
        course.run_notebook(py, timeout=60)
    assert not py.with_suffix(".ipynb").exists()


def test_run_executes_in_the_notebook_folder(tmp_path):
    root = make_tree(tmp_path)
    py = root / "notebooks" / "01_demo.py"
    py.write_text(HEADER + "\n# %%\nimport os\nprint(os.path.basename(os.getcwd()))\n")
    course.run_notebook(py, timeout=60)
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    assert nb.cells[0].outputs[0].text == "notebooks\n"


def test_command_line_check_exit_status(tmp_path):
    root = make_tree(tmp_path)
    assert course.main(["--root", str(root), "check"]) == 1
    assert course.main(["--root", str(root), "exercises"]) == 0
    assert course.main(["--root", str(root), "run", "--stale"]) == 0
    assert course.main(["--root", str(root), "check"]) == 0


def test_long_hint_stub_is_wrapped_like_ruff_format_and_still_raises():
    hint = "a long hint " * 10
    src = f"def f():\n    # BEGIN SOLUTION hint: {hint}\n    return 1\n    # END SOLUTION"
    out, n = course.strip_solutions(src)
    lines = out.splitlines()
    assert n == 1
    assert lines[1] == "    raise NotImplementedError(" and lines[-1] == "    )"
    assert lines[2].startswith('        "Exercise: a long hint')
    scope: dict = {}
    exec(out, scope)
    with pytest.raises(NotImplementedError, match="^Exercise: a long hint"):
        scope["f"]()


def test_scrub_paths_makes_traceback_paths_relative_and_leaves_streams(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    folder = tmp_path / "exercises"
    folder.mkdir()
    lib_line = f"File {tmp_path}/tutorial_lib/checks/lecture01.py:59, in _call"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"{tmp_path}/kept\n"),
        nbformat.v4.new_output(
            "error", ename="NotImplementedError", evalue="Exercise: x", traceback=[lib_line]
        ),
    ]
    nb.cells.append(cell)
    course.scrub_paths(nb, folder)
    assert cell.outputs[1].traceback == ["File ../tutorial_lib/checks/lecture01.py:59, in _call"]
    assert cell.outputs[0].text == f"{tmp_path}/kept\n"


# The learner-facing checks that the solution and exercise notebooks call.


def _autograd_divergence(f, z):
    z = z.detach().requires_grad_(True)
    v = f(z)
    dims = range(z.shape[1])
    grads = [torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)[0] for i in dims]
    return sum(g[:, i] for i, g in enumerate(grads))


def _exact_step(f, z, log_p, h):
    z = z.detach().requires_grad_(True)
    v = f(z)
    rows = [torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)[0] for i in range(z.shape[1])]
    eye = torch.eye(z.shape[1], dtype=z.dtype)
    logdet = torch.linalg.slogdet(eye + h * torch.stack(rows, 1)).logabsdet
    return (z + h * v).detach(), (log_p - logdet).detach()


def test_sample_points_are_reproducible_and_leave_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = checks.sample_points(8, 3, seed=5)
    b = checks.sample_points(8, 3, seed=5)
    assert a.shape == (8, 3) and torch.equal(a, b)
    assert not torch.equal(a, checks.sample_points(8, 3, seed=6))
    assert torch.equal(torch.rand(3), expected_next)


def test_lecture01_checks_pass_correct_answers(capsys):
    lecture01.divergence(_autograd_divergence)
    lecture01.step_log_density(_exact_step)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS divergence: 3 fields, 192 points")
    assert out[1].startswith("PASS flow step: 3 fields")


def test_lecture01_divergence_check_reports_wrong_values_with_tolerance():
    def off_by_a_bit(f, z):
        return _autograd_divergence(f, z) + 1e-3

    message = r"off by 1\.0e-03 at 64 of 64 points, tolerance 1e-08"
    with pytest.raises(AssertionError, match=message):
        lecture01.divergence(off_by_a_bit)
    with pytest.raises(AssertionError, match=r"expected a tensor of shape \(64,\), got \(64, 2\)"):
        lecture01.divergence(lambda f, z: f(z))


def test_lecture01_step_check_names_the_first_order_mistake():
    def first_order(f, z, log_p, h):
        return z + h * f(z), log_p - h * _autograd_divergence(f, z)

    with pytest.raises(AssertionError, match="not its first-order term"):
        lecture01.step_log_density(first_order)


def test_lecture01_checks_let_exercise_stubs_raise():
    def stub(*args):
        raise NotImplementedError("Exercise: fill me")

    with pytest.raises(NotImplementedError, match="Exercise: fill me"):
        lecture01.divergence(stub)
    with pytest.raises(NotImplementedError, match="Exercise: fill me"):
        lecture01.step_log_density(stub)

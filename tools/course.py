"""Course maintenance: pair, generate, execute and check the notebooks.

The py:percent file of each notebook is its source; the .ipynb next to it is generated from it
and stored with the outputs of a top-to-bottom run in a fresh kernel.

Commands (run from anywhere; paths default to every notebook of the course):

    python tools/course.py sync [paths]       write each .ipynb from its .py, keeping the outputs
                                              of cells whose source did not change
    python tools/course.py exercises          regenerate exercises/ from solutions/ and execute
                                              the exercise notebooks whose source changed
    python tools/course.py run [paths]        execute notebooks in a fresh kernel (cwd = the
                                              notebook's folder) and store outputs + source hash
    python tools/course.py check [paths]      fail when a pair is out of sync, an exercise is
                                              stale, a kernelspec is missing, or stored outputs
                                              do not come from the current source

Solution regions (solutions/*.py only), inside a code cell:

    # BEGIN SOLUTION hint: Sum the Jacobian's diagonal.
    ...answer lines...
    # END SOLUTION

become `raise NotImplementedError("Exercise: <hint>")` at the indentation of the BEGIN line.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import jupytext
    import nbformat
except ImportError as error:  # run outside the course environment
    sys.exit(
        f"course.py needs the course environment ({error}); set it up as README says: "
        "python -m pip install torch==2.13.0 && python -m pip install -r requirements.txt"
    )

log = logging.getLogger("course")

ROOT = Path(__file__).resolve().parent.parent
LECTURE_DIRS = ("notebooks", "solutions", "exercises")
SOLUTIONS = "solutions"
EXERCISES = "exercises"
KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": KERNEL_NAME}
PY_FORMAT = "py:percent"
METADATA_KEY = "course"
DEFAULT_HINT = "write the missing lines."
LINE_LENGTH = 99  # ruff's line-length in pyproject.toml

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b(?:\s*hint:\s*(?P<hint>.*?))?\s*$")
END_RE = re.compile(r"^[ \t]*#\s*END SOLUTION\b\s*$")
BADGE_RE = re.compile(r"(colab\.research\.google\.com/github/[^)\s]*?/blob/[^/)\s]+/)solutions/")


class CourseError(Exception):
    """A notebook that the tool cannot process (malformed solution region, failed run)."""


# ----------------------------------------------------------------------------------------------
# Reading, hashing, pairing


def read_source(py_path: Path) -> nbformat.NotebookNode:
    """Read a py:percent file into a notebook (no outputs)."""
    return jupytext.read(py_path, fmt=PY_FORMAT)


def read_ipynb(path: Path) -> nbformat.NotebookNode:
    """Read a stored .ipynb notebook."""
    return nbformat.read(path, as_version=4)


def cell_key(cell: nbformat.NotebookNode) -> tuple[str, str]:
    """The part of a cell that defines it: its type and its source."""
    return (cell.cell_type, cell.source)


def source_hash(nb: nbformat.NotebookNode) -> str:
    """sha256 over the types and sources of all cells, in order."""
    payload = json.dumps([cell_key(c) for c in nb.cells], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _fresh_id(source: str, index: int, used: set[str]) -> str:
    """A cell id that depends only on the cell's content and position, unique in `used`."""
    salt = 0
    while True:
        raw = f"{index}:{salt}:{source}".encode()
        cid = hashlib.sha1(raw).hexdigest()[:8]
        if cid not in used:
            used.add(cid)
            return cid
        salt += 1


def merge_outputs(
    new: nbformat.NotebookNode, old: nbformat.NotebookNode | None
) -> nbformat.NotebookNode:
    """Give the cells of `new` the ids, outputs and execution counts of unchanged `old` cells.

    Cells are matched in order by (type, source) with difflib; a changed cell loses its outputs.
    The course metadata (source hash of the last run) is kept, so `check` can tell whether the
    stored outputs still belong to the source.
    """
    nb = copy.deepcopy(new)
    used: set[str] = set()
    matched: dict[int, nbformat.NotebookNode] = {}
    if old is not None:
        a = [cell_key(c) for c in old.cells]
        b = [cell_key(c) for c in nb.cells]
        sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for block in sm.get_matching_blocks():
            for k in range(block.size):
                matched[block.b + k] = old.cells[block.a + k]
        if METADATA_KEY in old.metadata:
            nb.metadata[METADATA_KEY] = copy.deepcopy(old.metadata[METADATA_KEY])
        for key in ("language_info", "widgets"):
            if key in old.metadata:
                nb.metadata[key] = copy.deepcopy(old.metadata[key])
    for i, cell in enumerate(nb.cells):
        previous = matched.get(i)
        old_id = previous.get("id") if previous is not None else None
        if old_id and old_id not in used:
            cell["id"] = old_id
            used.add(old_id)
        else:
            cell["id"] = _fresh_id(cell.source, i, used)
        if cell.cell_type == "code":
            if previous is not None:
                cell.outputs = copy.deepcopy(previous.get("outputs", []))
                cell.execution_count = previous.get("execution_count")
                if "attachments" in previous:
                    cell["attachments"] = copy.deepcopy(previous["attachments"])
            else:
                cell.outputs = []
                cell.execution_count = None
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def write_ipynb(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Write `nb` as .ipynb (jupytext's metadata filter); return True when the file changed."""
    text = jupytext.writes(nb, fmt="ipynb")
    if not text.endswith("\n"):
        text += "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def write_text_if_changed(path: Path, text: str) -> bool:
    """Write `text` to `path` unless it already holds exactly that; return True when written."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def sync_pair(py_path: Path) -> bool:
    """Regenerate the .ipynb of `py_path`, keeping outputs of unchanged cells."""
    ipynb = py_path.with_suffix(".ipynb")
    old = read_ipynb(ipynb) if ipynb.exists() else None
    nb = merge_outputs(read_source(py_path), old)
    return write_ipynb(nb, ipynb)


# ----------------------------------------------------------------------------------------------
# Exercise generation


def _stub(indent: str, hint: str) -> list[str]:
    """The lines of a `raise NotImplementedError("Exercise: <hint>")` stub, laid out the way
    `ruff format` lays them out, so generated exercises pass a format check unchanged."""
    message = json.dumps(f"Exercise: {hint}", ensure_ascii=False)
    one_line = f"{indent}raise NotImplementedError({message})"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    inner = indent + " " * 4 if "\t" not in indent else indent + "\t"
    return [f"{indent}raise NotImplementedError(", f"{inner}{message}", f"{indent})"]


def strip_solutions(source: str, where: str = "<cell>") -> tuple[str, int]:
    """Replace every solution region of a code cell's source by a NotImplementedError stub.

    Returns the new source and the number of regions replaced. Raises CourseError on an END
    without BEGIN, a nested BEGIN or a BEGIN without END.
    """
    out: list[str] = []
    n_regions = 0
    inside = False
    begin_line = 0
    for lineno, line in enumerate(source.split("\n"), start=1):
        begin = BEGIN_RE.match(line)
        if begin:
            if inside:
                raise CourseError(
                    f"{where}: nested '# BEGIN SOLUTION' at line {lineno} "
                    f"(region opened at line {begin_line})"
                )
            inside, begin_line = True, lineno
            hint = (begin.group("hint") or "").strip() or DEFAULT_HINT
            out.extend(_stub(begin.group("indent"), hint))
            n_regions += 1
            continue
        if END_RE.match(line):
            if not inside:
                raise CourseError(f"{where}: '# END SOLUTION' at line {lineno} without a BEGIN")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise CourseError(f"{where}: '# BEGIN SOLUTION' at line {begin_line} is never closed")
    return "\n".join(out), n_regions


def exercise_notebook(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The exercise version of a solution notebook: regions stubbed, badge pointed at exercises/.

    Raises CourseError when the notebook has no solution region at all.
    """
    nb = copy.deepcopy(solution)
    total = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source, n = strip_solutions(cell.source, where=f"{name} cell {i + 1}")
            total += n
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = BADGE_RE.sub(rf"\1{EXERCISES}/", cell.source)
    if total == 0:
        raise CourseError(f"{name}: expected at least one '# BEGIN SOLUTION' region, found none")
    nb.metadata.pop(METADATA_KEY, None)
    return nb


def exercise_text(solution_py: Path) -> str:
    """The py:percent text of the exercise generated from `solution_py`."""
    nb = exercise_notebook(read_source(solution_py), solution_py.name)
    return jupytext.writes(nb, fmt=PY_FORMAT)


def generate_exercises(root: Path, run: bool = True, timeout: int = 600) -> list[Path]:
    """Write exercises/NN.py and .ipynb for every solutions/NN.py; run the stale ones.

    Exercise files without a solution are removed. Returns the exercise .py files.
    """
    sol_dir, ex_dir = root / SOLUTIONS, root / EXERCISES
    ex_dir.mkdir(exist_ok=True)
    written = []
    for sol in sorted(sol_dir.glob("*.py")):
        ex_py = ex_dir / sol.name
        if write_text_if_changed(ex_py, exercise_text(sol)):
            log.info("wrote %s", ex_py.relative_to(root))
        sync_pair(ex_py)
        written.append(ex_py)
    wanted = {p.stem for p in written}
    for orphan in sorted(ex_dir.glob("*.py")) + sorted(ex_dir.glob("*.ipynb")):
        if orphan.stem not in wanted:
            log.info("removed %s (no solution of that name)", orphan.relative_to(root))
            orphan.unlink()
    if run:
        for ex_py in written:
            nb = read_ipynb(ex_py.with_suffix(".ipynb"))
            if not outputs_are_current(nb):
                seconds = run_notebook(ex_py, timeout=timeout)
                log.info("ran %s in %.1f s", ex_py.relative_to(root), seconds)
    return written


# ----------------------------------------------------------------------------------------------
# Execution


def fast_mode_requested() -> bool:
    """Whether the course library's fast-mode switch is set in this environment."""
    from tutorial_lib.runtime import fast_mode

    return fast_mode()


def is_exercise(path: Path) -> bool:
    """True for notebooks under exercises/, whose gaps are expected to raise."""
    return path.resolve().parent.name == EXERCISES


def execute(
    nb: nbformat.NotebookNode, cwd: Path, timeout: int, allow_errors: bool
) -> nbformat.NotebookNode:
    """Execute `nb` in a fresh python3 kernel with working directory `cwd`; return it."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        allow_errors=allow_errors,
        record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


def scrub_paths(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Make file paths in stored tracebacks machine-independent, in place.

    Tracebacks name library files by absolute path; the repository root becomes a path relative
    to the notebook's folder (``../tutorial_lib/...``). Other outputs are left exactly as the
    kernel produced them, since nbval compares them.
    """
    root = str(_repository_root(cwd))
    relative = os.path.relpath(root, cwd)

    def scrub(text: str) -> str:
        return text.replace(root + os.sep, relative + os.sep)

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [scrub(line) for line in out.traceback]


def _repository_root(start: Path) -> Path:
    """The closest folder at or above `start` that holds pyproject.toml, else `start`."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "pyproject.toml").exists():
            return folder
    return start.resolve()


def outputs_are_current(nb: nbformat.NotebookNode) -> bool:
    """True when the stored outputs were produced from the notebook's current cells."""
    meta = nb.metadata.get(METADATA_KEY, {})
    return meta.get("source_hash") == source_hash(nb)


def run_notebook(path: Path, timeout: int = 600) -> float:
    """Sync, execute and store one notebook (given as .py or .ipynb); return wall seconds.

    Exercise notebooks run with errors allowed; any other notebook that raises is not written.
    """
    py_path = path.with_suffix(".py")
    ipynb = path.with_suffix(".ipynb")
    if not py_path.exists():
        raise CourseError(f"expected the source {py_path} next to {ipynb}, found none")
    old = read_ipynb(ipynb) if ipynb.exists() else None
    nb = merge_outputs(read_source(py_path), old)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    try:
        execute(nb, cwd=py_path.parent, timeout=timeout, allow_errors=is_exercise(py_path))
    except Exception as exc:  # nbclient raises CellExecutionError, DeadKernelError, timeouts
        msg = f"{py_path}: execution failed, stored notebook left as it was\n{exc}"
        raise CourseError(msg) from exc
    seconds = time.perf_counter() - start
    scrub_paths(nb, py_path.parent)
    nb.metadata[METADATA_KEY] = {
        "source_hash": source_hash(nb),
        "fast_mode": fast_mode_requested(),
    }
    write_ipynb(nb, ipynb)
    return seconds


# ----------------------------------------------------------------------------------------------
# Checks


@dataclass
class Problem:
    """One reason why `check` fails."""

    path: Path
    message: str

    def __str__(self) -> str:
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}: {self.message}"


def check_pair(py_path: Path) -> list[Problem]:
    """Problems of one .py/.ipynb pair: sync, kernelspec, freshness of outputs, fast mode."""
    problems: list[Problem] = []
    ipynb = py_path.with_suffix(".ipynb")
    src = read_source(py_path)
    if src.metadata.get("kernelspec", {}).get("name") != KERNEL_NAME:
        problems.append(Problem(py_path, f"expected a '{KERNEL_NAME}' kernelspec in the header"))
    if not ipynb.exists():
        problems.append(Problem(ipynb, "missing; run `python tools/course.py sync`"))
        return problems
    nb = read_ipynb(ipynb)
    if nb.metadata.get("kernelspec", {}).get("name") != KERNEL_NAME:
        got = nb.metadata.get("kernelspec", {}).get("name")
        problems.append(Problem(ipynb, f"expected kernelspec '{KERNEL_NAME}', got {got!r}"))
    a = [cell_key(c) for c in src.cells]
    b = [cell_key(c) for c in nb.cells]
    if a != b:
        n_diff = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
        problems.append(
            Problem(
                ipynb,
                f"out of sync with {py_path.name} ({len(a)} cells in .py, {len(b)} in .ipynb, "
                f"{n_diff} differ); run `python tools/course.py sync`",
            )
        )
        return problems
    meta = nb.metadata.get(METADATA_KEY, {})
    if "source_hash" not in meta:
        problems.append(Problem(ipynb, "never executed by `python tools/course.py run`"))
    elif not outputs_are_current(nb):
        problems.append(Problem(ipynb, "stored outputs come from an older source; run it again"))
    elif any(c.cell_type == "code" and c.execution_count is None for c in nb.cells):
        problems.append(Problem(ipynb, "some code cells have no stored execution"))
    if meta.get("fast_mode"):
        problems.append(Problem(ipynb, "stored outputs were made in fast mode (TUTORIAL_FAST)"))
    return problems


def check_exercises(root: Path) -> list[Problem]:
    """Problems of exercises/: stale or missing generated files, orphans, malformed regions."""
    problems: list[Problem] = []
    sol_dir, ex_dir = root / SOLUTIONS, root / EXERCISES
    solutions = sorted(sol_dir.glob("*.py"))
    for sol in solutions:
        ex_py = ex_dir / sol.name
        try:
            expected = exercise_text(sol)
        except CourseError as exc:
            problems.append(Problem(sol, str(exc)))
            continue
        if not ex_py.exists():
            problems.append(Problem(ex_py, "missing; run `python tools/course.py exercises`"))
        elif ex_py.read_text(encoding="utf-8") != expected:
            problems.append(
                Problem(
                    ex_py,
                    "stale: differs from its solution; run `python tools/course.py exercises`",
                )
            )
    names = {s.stem for s in solutions}
    for ex in sorted(ex_dir.glob("*.py")) + sorted(ex_dir.glob("*.ipynb")):
        if ex.stem not in names:
            problems.append(Problem(ex, "no solution of that name in solutions/"))
    return problems


def course_sources(root: Path) -> list[Path]:
    """Every py:percent notebook source of the course."""
    return [p for d in LECTURE_DIRS for p in sorted((root / d).glob("*.py"))]


def resolve(paths: Sequence[str], root: Path) -> list[Path]:
    """The .py sources named by `paths` (files or folders); all of the course when empty."""
    if not paths:
        return course_sources(root)
    found: list[Path] = []
    for raw in paths:
        p = Path(raw).resolve()
        if p.is_dir():
            found.extend(sorted(p.glob("*.py")))
        elif p.suffix in {".py", ".ipynb"}:
            found.append(p.with_suffix(".py"))
        else:
            raise CourseError(f"expected a .py, .ipynb or a folder, got {raw}")
    return found


def check(paths: Sequence[str], root: Path) -> list[Problem]:
    """All problems of the named notebooks (and of exercises/ when no paths are given)."""
    problems: list[Problem] = []
    for py_path in resolve(paths, root):
        if not py_path.exists():
            problems.append(Problem(py_path, "missing source"))
            continue
        problems.extend(check_pair(py_path))
    for d in LECTURE_DIRS:
        if paths:
            break
        for ipynb in sorted((root / d).glob("*.ipynb")):
            if not ipynb.with_suffix(".py").exists():
                problems.append(Problem(ipynb, "no .py source next to it"))
    if not paths:
        problems.extend(check_exercises(root))
    return problems


# ----------------------------------------------------------------------------------------------
# Command line


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


def _shown(path: Path, root: Path) -> str:
    """`path` relative to `root` when it lies inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="course.py", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    sub = parser.add_subparsers(dest="command", required=True)
    p_sync = sub.add_parser("sync", help="write each .ipynb from its .py, keeping outputs")
    p_sync.add_argument("paths", nargs="*")
    p_ex = sub.add_parser("exercises", help="regenerate exercises/ from solutions/")
    p_ex.add_argument("--no-run", action="store_true", help="do not execute stale exercises")
    p_ex.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p_run = sub.add_parser("run", help="execute notebooks in a fresh kernel and store outputs")
    p_run.add_argument("paths", nargs="*")
    p_run.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p_run.add_argument("--stale", action="store_true", help="only notebooks with stale outputs")
    p_check = sub.add_parser("check", help="fail when anything is out of sync or stale")
    p_check.add_argument("paths", nargs="*")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Kernels inherit this: idle OpenMP threads sleep instead of spinning, which keeps small
    # tensor work fast when the CPU is shared (outputs are unchanged).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    root = args.root.resolve()

    try:
        if args.command == "sync":
            for py_path in resolve(args.paths, root):
                if sync_pair(py_path):
                    print(f"synced {_shown(py_path, root)}")
            return 0
        if args.command == "exercises":
            generate_exercises(root, run=not args.no_run, timeout=args.timeout)
            return 0
        if args.command == "run":
            failed = 0
            for py_path in resolve(args.paths, root):
                ipynb = py_path.with_suffix(".ipynb")
                if args.stale and ipynb.exists():
                    stored = read_ipynb(ipynb)
                    fresh = merge_outputs(read_source(py_path), stored)
                    if outputs_are_current(fresh) and not check_pair(py_path):
                        continue
                try:
                    seconds = run_notebook(py_path, timeout=args.timeout)
                except CourseError as exc:
                    print(f"FAILED {exc}", file=sys.stderr)
                    failed += 1
                    continue
                print(f"ran {_shown(py_path, root)} in {seconds:.1f} s")
            return 1 if failed else 0
        problems = check(args.paths, root)
        _print(str(p) for p in problems)
        if problems:
            print(f"check failed: {len(problems)} problem(s)", file=sys.stderr)
            return 1
        print("check passed")
        return 0
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

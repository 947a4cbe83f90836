"""Project hygiene: pinned environments agree, and the code passes ruff."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_pins_the_same_versions_as_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env_lines = []
    in_pip = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- pip:"):
            in_pip = True
            continue
        if in_pip:
            if stripped.startswith("- "):
                env_lines.append(stripped[2:])
            elif stripped:
                in_pip = False
    env = _pins(env_lines)
    assert req, "requirements.txt pins nothing"
    assert env == req, f"environment.yml pip pins {env} differ from requirements.txt {req}"


def _ruff():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed; it is pinned in requirements.txt")
    return exe


def test_ruff_lint_passes():
    result = subprocess.run([_ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    cmd = [_ruff(), "format", "--check", "."]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_setup_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick.splitlines() if line.startswith("    ")]
    setup = next(c for c in commands if "requirements.txt" in c)
    assert setup in ci, f"README's set-up command {setup!r} is not what .ci/run runs"
    assert commands[-1] == "pytest", f"expected README's test command to be pytest: {commands}"
    assert "\npytest\n" in ci and "-eq 5" in ci, ".ci/run must run pytest and fail on exit 5"

"""The newcomer's first run: ``make run`` installs only what ShaleDB needs to run, with
no build-backend banner, and the test and lint tools come with ``make test``/``make lint``.

The fast tests read the Makefile and pyproject.toml; the slow one (``pytest -m slow``)
runs ``make run`` on a fresh clone with an empty pip cache, as a new machine has it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "pexpect", "redis"}
LINT_TOOLS = {"mypy", "ruff"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def recipe(target: str) -> str:
    """The recipe lines of Makefile target ``target``."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert match, f"no {target} target"
    return match.group(1)


def test_run_time_dependencies_hold_no_test_or_lint_tool() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    run_time = requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert not run_time & (TEST_TOOLS | LINT_TOOLS)
    assert requirement_names(extras["server"]) == {"uvloop"}
    assert requirement_names(extras["test"]) == TEST_TOOLS
    assert requirement_names(extras["lint"]) == LINT_TOOLS


def test_make_run_installs_the_run_time_set_in_compat_editable_mode() -> None:
    install = recipe("$(STAMP)")
    assert "-e '.[server]'" in install and "$(EDITABLE)" in install
    assert ",test" not in install and ",lint" not in install
    assert "--upgrade pip" not in install
    assert "editable_mode=compat" in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "'.[server,test]'" in recipe("$(TEST_STAMP)")
    assert "'.[server,test,lint]'" in recipe("$(LINT_STAMP)")


@pytest.mark.slow
def test_make_run_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = dict(os.environ, PIP_CACHE_DIR=str(tmp_path / "pip-cache"), PYTHON=sys.executable)
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "!!" not in output and "Editable installation" not in output, output
    installed = subprocess.run(
        [str(clone / ".venv/bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    assert not names & (TEST_TOOLS | LINT_TOOLS), names
    assert shutil.which("shaledb", path=str(clone / ".venv/bin"))

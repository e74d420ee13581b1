"""The README's Quickstart commands as CI runs them (issue 26): ``.ci/run`` runs the README's test command
word for word, that command runs the tests in parallel (pytest-xdist, in the ``test`` extra), and the README
says how long it takes."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO


def quickstart_commands() -> list[str]:
    """The ``sh`` blocks of the README's "Quickstart" section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_ci_runs_the_readmes_test_command_in_parallel() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    tests = commands[1]
    assert re.search(r"pytest -n (auto|\d+)\b", tests), tests
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines(), f".ci/run does not run the README's test command: {tests}"
    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(req.startswith("pytest-xdist") for req in extra["test"]), extra["test"]


def test_the_readme_says_how_long_the_tests_and_ci_take() -> None:
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    quickstart = text.split("## Quickstart", 1)[1].split(" ## ", 1)[0]
    assert re.search(r"takes (?:about|under) \d+ minutes? on 2 cores", quickstart), "the test command's time"
    assert re.search(r"`\.ci/run`[^.]* (?:about|under) \d+ minutes?", quickstart), ".ci/run's time"

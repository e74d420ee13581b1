"""Pinned npm packages for the tests that run JavaScript (the SDK end to end, Mermaid's parser).

A test folder (``tests/sdk``, ``tests/mermaid``) holds a ``package.json`` whose ``dependencies`` pin exact
versions. :func:`install` puts them into a cache directory outside the repository
(``~/.cache/chanlog-tests/<name>``, ``$CHANLOG_TEST_CACHE/<name>`` when set), reuses an install of the same
versions, holds a file lock so that parallel runs do not clash, and skips the calling test when ``node``/``npm``
are missing, Node.js is too old, or the install fails (no registry access), in the style of
``conftest.absent``: what is missing, where it was expected, what it is needed for.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: Seconds ``npm install`` may take.
INSTALL_TIMEOUT = 300
CACHE_ROOT = Path(os.environ.get("CHANLOG_TEST_CACHE") or Path.home() / ".cache" / "chanlog-tests")


def pinned(folder: Path) -> dict[str, str]:
    """The ``dependencies`` of ``folder/package.json``: package name -> exact version."""
    return json.loads((folder / "package.json").read_text())["dependencies"]


def installed_version(root: Path, package: str) -> str | None:
    """The version of ``package`` installed under ``root/node_modules``, or ``None``."""
    manifest = root / "node_modules" / Path(*package.split("/")) / "package.json"
    try:
        return json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None


def install(folder: Path, name: str, purpose: str, min_node: int = 18) -> Path:
    """The cache directory ``CACHE_ROOT/name`` with ``folder``'s pinned packages installed in it.

    ``purpose`` says what the packages are for, in skip reasons ("to run Mermaid's parser"). Skips the
    calling test when ``node``/``npm`` are missing, Node.js is older than ``min_node``, or the install fails
    or takes longer than :data:`INSTALL_TIMEOUT` seconds.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(f"missing node and npm: expected on PATH (needed {purpose})")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < min_node:
        pytest.skip(f"missing Node.js {min_node} or newer: found {version} on PATH (needed {purpose})")
    wanted = pinned(folder)
    what = ", ".join(f"{p}@{v}" for p, v in wanted.items())
    cache = CACHE_ROOT / name
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be installing
        if any(installed_version(cache, p) != v for p, v in wanted.items()):
            shutil.copyfile(folder / "package.json", cache / "package.json")
            try:
                done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cache,
                                      capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.skip(f"missing the npm packages {what}: expected in {cache} (needed {purpose}); "
                            f"npm install did not finish within {INSTALL_TIMEOUT} s")
            if done.returncode != 0 or any(installed_version(cache, p) != v for p, v in wanted.items()):
                tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
                pytest.skip(f"missing the npm packages {what}: expected in {cache} (needed {purpose}); "
                            f"npm install failed: {tail}")
    return cache
